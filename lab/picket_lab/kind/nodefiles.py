"""The files of picket's kind node image, as text: pure, so the image's stamp is a hash of them.

What a kind node needs (learnt from kind's node image and its ``create`` steps, written here):
systemd as PID 1 (``container=docker``, stop signal SIGRTMIN+3), containerd with the systemd cgroup
driver and the CNI plugins Debian installs in /usr/lib/cni, kubelet as a unit in its own slice that
waits for kubeadm's config, ``/kind/version`` (kind reads it to pick the kubeadm config API), and
an entrypoint that makes / shared (kubelet's mount propagation), turns on forwarding in the node's
own namespace and says which cgroup version it found (kind waits for that line, or for systemd's
"Reached target Multi-User System"). ``restrict_oom_score_adj`` is set only when the machine lacks
CAP_SYS_RESOURCE (containerd would otherwise fail to lower OOM scores). Used by ``nodeimage.py``.
"""

from __future__ import annotations

PAUSE_VERSION = "3.10.2"  # kubeadm v1.37's constants.PauseVersion
ETCD_TAG = "3.7.0-0"  # kubeadm v1.37's constants.DefaultEtcdVersion

ENTRYPOINT = """#!/bin/sh
# picket's kind node: prepare the container, then run systemd.
set -e
mount --make-rshared /
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  echo "INFO: detected cgroup v2"
else
  echo "INFO: detected cgroup v1"
fi
sysctl -qw net.ipv4.ip_forward=1 || true
sysctl -qw net.ipv4.conf.all.route_localnet=1 || true
exec "$@"
"""

KUBELET_SERVICE = """[Unit]
Description=kubelet (picket's kind node)
After=containerd.service
Wants=containerd.service
ConditionPathExists=/var/lib/kubelet/config.yaml

[Service]
# cgroup v1: systemd makes kubelet.slice only in the hierarchies it manages; kubelet checks them all
# (cpuset's copy needs the parent's cpus and mems before anything can join it).
ExecStartPre=/bin/sh -c 'for d in /sys/fs/cgroup/*/; do [ -f "$$d/cgroup.procs" ] || continue; \
  mkdir -p "$$d/kubelet.slice"; if [ -f "$$d/cpuset.cpus" ]; then \
  cat "$$d/cpuset.cpus" > "$$d/kubelet.slice/cpuset.cpus"; \
  cat "$$d/cpuset.mems" > "$$d/kubelet.slice/cpuset.mems"; fi; done; true'
ExecStart=/usr/bin/kubelet
Restart=always
StartLimitInterval=0
RestartSec=1s
CPUAccounting=true
MemoryAccounting=true
Slice=kubelet.slice
KillMode=process

[Install]
WantedBy=multi-user.target
"""

KUBELET_SLICE = """[Unit]
Description=kubelet and the pods it runs (cgroupRoot /kubelet)
Before=slices.target

[Slice]
CPUAccounting=true
MemoryAccounting=true
"""

KUBELET_KUBEADM_DROPIN = """[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf \\
--kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
EnvironmentFile=-/etc/default/kubelet
ExecStart=
ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS
"""

# Units that make no sense in a container (or would fight over its tty).
MASKED_UNITS = ("getty@tty1.service", "console-getty.service", "systemd-udevd.service",
                "systemd-udevd-control.socket", "systemd-udevd-kernel.socket", "systemd-binfmt.service",
                "systemd-modules-load.service", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
                "systemd-remount-fs.service", "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                "fstrim.timer", "systemd-journald-audit.socket")

STORAGE_MANIFEST = """# picket's kind node image ships no storage provisioner; a default class keeps kind's step happy.
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"""

PAUSE_C = """/* The pod sandbox's process: sleeps until told to stop, reaps children. Written for picket's kind node. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) { (void)sig; _exit(0); }
static void reap(int sig) { (void)sig; while (waitpid(-1, NULL, WNOHANG) > 0) {} }

int main(void) {
    struct sigaction a = {0}, r = {0};
    a.sa_handler = stop;
    sigaction(SIGINT, &a, NULL);
    sigaction(SIGTERM, &a, NULL);
    r.sa_handler = reap;
    r.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &r, NULL);
    for (;;) pause();
    return 0;
}
"""


def containerd_config(restrict_oom_score_adj: bool) -> str:
    restrict = "true" if restrict_oom_score_adj else "false"
    return f"""# picket's kind node: containerd for kubelet (CRI), systemd cgroups, CNI plugins from Debian.
version = 2

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:{PAUSE_VERSION}"
  # true only where the machine lacks CAP_SYS_RESOURCE (OOM scores could not be lowered)
  restrict_oom_score_adj = {restrict}

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/opt/cni/bin"
  conf_dir = "/etc/cni/net.d"
"""


def component_images(kubernetes: str) -> dict[str, str]:
    """Image reference -> the binary it runs, as kubeadm names them for this version."""
    return {
        f"registry.k8s.io/kube-apiserver:{kubernetes}": "kube-apiserver",
        f"registry.k8s.io/kube-controller-manager:{kubernetes}": "kube-controller-manager",
        f"registry.k8s.io/kube-scheduler:{kubernetes}": "kube-scheduler",
        f"registry.k8s.io/kube-proxy:{kubernetes}": "kube-proxy",
        f"registry.k8s.io/etcd:{ETCD_TAG}": "etcd",
        f"registry.k8s.io/pause:{PAUSE_VERSION}": "pause",
    }


def node_dockerfile(base: str) -> str:
    masks = " ".join(MASKED_UNITS)
    return f"""FROM {base}
COPY kubelet kubeadm kubectl /usr/bin/
COPY entrypoint /usr/local/bin/entrypoint
COPY kubelet.service kubelet.slice /etc/systemd/system/
COPY 10-kubeadm.conf /etc/systemd/system/kubelet.service.d/10-kubeadm.conf
COPY containerd.toml /etc/containerd/config.toml
COPY version /kind/version
COPY default-storage.yaml /kind/manifests/default-storage.yaml
COPY images.tar /kind/images/images.tar
RUN mkdir -p /opt/cni /etc/cni/net.d /var/lib/kubelet \\
 && ln -sfn /usr/lib/cni /opt/cni/bin \\
 && chmod 0755 /usr/local/bin/entrypoint \\
 && systemctl enable containerd.service kubelet.service \\
 && systemctl mask {masks} \\
 && rm -f /etc/machine-id && touch /etc/machine-id
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
"""
