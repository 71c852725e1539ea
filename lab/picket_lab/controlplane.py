"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler: credentials, flags, readiness.

``make_credentials`` writes the CA, every certificate and kubeconfig; the ``start_*`` functions
launch one component each (logs and pidfiles through ``procs``); ``wait_ready`` polls a health
endpoint until it answers, failing at once with the log's path if the process exits. etcd keeps
its data on a tmpfs mounted in the run directory. Called by ``lifecycle.up``.
"""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Callable
from pathlib import Path

from picket.apiclient import Credentials, KubeClient
from picket_lab import pki, procs
from picket_lab.kubeconfig import client_cert_kubeconfig
from picket_lab.paths import BuildPaths, RunLayout
from picket_lab.shell import LabError, run
from picket_lab.topology import (
    API_ADDRESS,
    API_PORT,
    CONTROLLER_MANAGER_PORT,
    ETCD_CLIENT_PORT,
    ETCD_PEER_PORT,
    FIRST_SERVICE_IP,
    SCHEDULER_PORT,
    SERVICE_CIDR,
    NodeSpec,
    api_url,
)

ISSUER = "https://kubernetes.default.svc.cluster.local"
READY_TIMEOUT = 90.0


def admin_credentials(layout: RunLayout) -> Credentials:
    pki_dir = layout.pki
    return Credentials(api_url(), str(pki_dir / "ca.crt"), str(pki_dir / "admin.crt"), str(pki_dir / "admin.key"))


def make_credentials(layout: RunLayout, nodes: list[NodeSpec]) -> None:
    ca = pki.Authority.create(layout.pki)
    ca.issue_server("apiserver", "kube-apiserver", (API_ADDRESS, "127.0.0.1", FIRST_SERVICE_IP), pki.API_DNS_NAMES)
    pki.service_account_keys(layout.pki)
    clients = [("admin", pki.ADMIN), ("kube-controller-manager", pki.CONTROLLER_MANAGER),
               ("kube-scheduler", pki.SCHEDULER)]
    clients += [(node.name, pki.node_identity(node.name)) for node in nodes]
    for stem, who in clients:
        pair = ca.issue_client(stem, who)
        creds = Credentials(api_url(), str(ca.cert_path), str(pair.cert), str(pair.key))
        target = layout.admin_kubeconfig if stem == "admin" else layout.component_kubeconfig(stem)
        client_cert_kubeconfig(target, creds, stem)


def mount_etcd_tmpfs(layout: RunLayout) -> None:
    layout.etcd_data.mkdir(parents=True, exist_ok=True)
    if not is_mounted(layout.etcd_data):
        run(["mount", "-t", "tmpfs", "-o", "size=1g,mode=0700", "picket-lab-etcd", str(layout.etcd_data)])


def is_mounted(path: Path) -> bool:
    target = str(path.resolve())
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def start_etcd(layout: RunLayout, bins: BuildPaths) -> procs.Started:
    client, peer = f"http://127.0.0.1:{ETCD_CLIENT_PORT}", f"http://127.0.0.1:{ETCD_PEER_PORT}"
    return procs.start(layout.root, "etcd", [
        str(bins.binary("etcd")), "--name=picket-lab", f"--data-dir={layout.etcd_data / 'data'}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=picket-lab={peer}", "--unsafe-no-fsync", "--log-level=warn",
        "--quota-backend-bytes=1073741824"])


def start_apiserver(layout: RunLayout, bins: BuildPaths) -> procs.Started:
    p = layout.pki
    return procs.start(layout.root, "kube-apiserver", [
        str(bins.binary("kube-apiserver")), f"--etcd-servers=http://127.0.0.1:{ETCD_CLIENT_PORT}",
        f"--bind-address={API_ADDRESS}", f"--advertise-address={API_ADDRESS}", f"--secure-port={API_PORT}",
        f"--tls-cert-file={p / 'apiserver.crt'}", f"--tls-private-key-file={p / 'apiserver.key'}",
        f"--client-ca-file={p / 'ca.crt'}", "--authorization-mode=Node,RBAC",
        f"--service-account-key-file={p / 'sa.pub'}", f"--service-account-signing-key-file={p / 'sa.key'}",
        f"--service-account-issuer={ISSUER}", f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--allow-privileged=true", "--profiling=false", "--v=1"])


def _component_flags(layout: RunLayout, name: str, port: int) -> list[str]:
    kubeconfig = layout.component_kubeconfig(name)
    return [f"--kubeconfig={kubeconfig}", f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--secure-port={port}", "--profiling=false", "--v=1"]


def start_controller_manager(layout: RunLayout, bins: BuildPaths) -> procs.Started:
    name = "kube-controller-manager"
    return procs.start(layout.root, name, [
        str(bins.binary(name)), *_component_flags(layout, name, CONTROLLER_MANAGER_PORT),
        "--use-service-account-credentials", "--controllers=*",
        f"--service-account-private-key-file={layout.pki / 'sa.key'}", f"--root-ca-file={layout.pki / 'ca.crt'}",
        f"--cluster-signing-cert-file={layout.pki / 'ca.crt'}", f"--cluster-signing-key-file={layout.pki / 'ca.key'}",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--allocate-node-cidrs=false",
        "--concurrent-namespace-syncs=5", "--concurrent-deployment-syncs=10", "--concurrent-replicaset-syncs=10"])


def start_scheduler(layout: RunLayout, bins: BuildPaths) -> procs.Started:
    name = "kube-scheduler"
    return procs.start(layout.root, name, [str(bins.binary(name)), *_component_flags(layout, name, SCHEDULER_PORT)])


def etcd_healthy() -> bool:
    return _http_ok(http.client.HTTPConnection("127.0.0.1", ETCD_CLIENT_PORT, timeout=2), "/health")


def apiserver_ready(layout: RunLayout) -> Callable[[], bool]:
    kube = KubeClient.from_credentials(admin_credentials(layout), user_agent="picket-lab")
    return lambda: _quiet(lambda: kube.get_text("/readyz", timeout=5) == "ok")


def component_healthy(port: int) -> Callable[[], bool]:
    ctx = ssl._create_unverified_context()  # the components serve a self-signed cert; loopback only
    return lambda: _http_ok(http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=2), "/healthz")


def _http_ok(conn: http.client.HTTPConnection, path: str) -> bool:
    try:
        conn.request("GET", path)
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def _quiet(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except Exception:
        return False


def wait_ready(started: procs.Started, check: Callable[[], bool], what: str, timeout: float = READY_TIMEOUT) -> None:
    """Poll ``check`` until true; fail at once if the process dies, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if not procs.alive(started.pid):
            ended = procs.how_it_ended(started.pid)
            raise LabError(f"{what} exited during start-up{f' ({ended})' if ended else ''}; read {started.log}")
        if time.monotonic() > deadline:
            raise LabError(f"{what} was not ready within {timeout:.0f}s; read {started.log}")
        time.sleep(0.1)
