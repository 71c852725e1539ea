"""The kind tier end to end: ``up`` (engine, images, cluster, picket deployed), ``down``, ``status``.

``up`` is idempotent and records how long each step took (``Timings``, printed by ``picket kind up``
and kept in ``<run dir>/timings.json``): packages, binaries, engine, node image, cluster, picket
image, load, deploy. Every user-facing command (kind, kubectl, docker) runs through ``shell`` inside
the engine's network namespace with ``DOCKER_HOST``, ``KUBECONFIG`` and ``PATH`` set, exactly as the
README's commands are typed; the cluster is created from ``manifests/kind/kind-config.yaml`` with
the node image built here (``KIND_NODE_IMAGE``), picket's image is built from the repository's
Dockerfile and ``manifests/`` applied unmodified. ``down`` deletes the cluster and stops the engine;
its images stay cached in the engine's data root.

``up(..., ip_family="dual")`` (``picket kind up --ip-family dual``) creates the cluster from
``manifests/kind/kind-config-dual.yaml`` instead (``networking.ipFamily: dual``: every node gets a
podCIDR and an InternalIP of each family, every pod an IPv4 and an IPv6 address). A running cluster
of the other family is deleted and created again; the family of a running cluster is read from its
nodes' podCIDRs (``family_of``). kind v0.33 puts the nodes on the docker network ``kind``, which it
creates with an IPv6 ULA subnet (``fc00:f853:ccd:e793::/64`` for that name) and falls back to IPv4
only when the engine cannot do IPv6; it reuses an existing ``kind`` network as it is, and a dual
cluster on an IPv4-only network fails ("failed to get IPv6 address for node"). The network lives in
the engine's data root, which survives ``down``, so before a dual cluster is created an existing
``kind`` network without an IPv6 subnet is removed (``network_has_ipv6``; nothing is attached to it
then: the cluster was deleted first) and kind makes it again. The engine needs no ``--ipv6``: that
daemon option only concerns docker's default bridge, never a user-defined network like ``kind``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from picket_lab.build import ensure_built
from picket_lab.kind import engine, images, nodeimage
from picket_lab.kind.binaries import ensure_binaries, kind_binaries
from picket_lab.kind.layout import CLUSTER, NETNS, KindError, Layout
from picket_lab.paths import build_paths

Progress = Callable[[str], None]
KIND_CONFIG = "manifests/kind/kind-config.yaml"
KIND_CONFIGS = {"ipv4": KIND_CONFIG, "dual": "manifests/kind/kind-config-dual.yaml"}  # --ip-family -> config
IP_FAMILIES = tuple(KIND_CONFIGS)
KIND_NETWORK = "kind"  # kind's fixed docker network name (no KIND_EXPERIMENTAL_DOCKER_NETWORK here)
NETWORK_FORMAT = "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{end}}"


@dataclass
class Timings:
    steps: dict[str, float] = field(default_factory=dict)

    def time(self, name: str, fn: Callable[[], object]) -> None:
        began = time.monotonic()
        fn()
        self.steps[name] = round(time.monotonic() - began, 2)

    def text(self) -> str:
        return ", ".join(f"{k} {v:.1f}s" for k, v in self.steps.items())


def shell(lay: Layout, script: str, cwd: Path | None = None, check: bool = True, timeout: float | None = 900,
          extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a bash script as a user would type it, inside the engine's namespace."""
    env = {**images.client_env(lay), **(extra_env or {})}
    proc = subprocess.run(["ip", "netns", "exec", NETNS, "bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise KindError(f"failed ({proc.returncode}): {script.strip()[:300]}\n{(proc.stdout + proc.stderr)[-3000:]}")
    return proc


def link_clients(lay: Layout) -> None:
    lay.bin_dir.mkdir(parents=True, exist_ok=True)
    for name, target in (("kind", kind_binaries().kind), ("kubectl", build_paths().binary("kubectl")),
                         ("docker", Path(engine.DEBIAN_DOCKER))):
        link = lay.bin_dir / name
        if link.is_symlink() and Path(link.readlink()) == target:
            continue
        link.unlink(missing_ok=True)
        link.symlink_to(target)


def cluster_exists(lay: Layout) -> bool:
    proc = shell(lay, "kind get clusters", check=False, timeout=60)
    return proc.returncode == 0 and CLUSTER in proc.stdout.split()


def nodes_ready(lay: Layout) -> bool:
    proc = shell(lay, "kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type==\"Ready\")]"
                 ".status}{\" \"}{end}'", check=False, timeout=60)
    states = proc.stdout.split()
    return proc.returncode == 0 and len(states) == 3 and set(states) == {"True"}


def family_of(pod_cidrs: str) -> str | None:
    """``ipv4``, ``dual`` (or ``ipv6``) from the nodes' podCIDRs as kubectl prints them (any separators); None
    when there are none."""
    cidrs = [c for c in pod_cidrs.replace(",", " ").replace("[", " ").replace("]", " ").replace('"', " ").split()
             if "/" in c]
    has4, has6 = any("." in c for c in cidrs), any(":" in c for c in cidrs)
    return "dual" if has4 and has6 else "ipv6" if has6 else "ipv4" if has4 else None


def cluster_family(lay: Layout) -> str | None:
    proc = shell(lay, "kubectl get nodes -o jsonpath='{range .items[*]}{.spec.podCIDRs}{\" \"}{end}'", check=False,
                 timeout=60)
    return family_of(proc.stdout) if proc.returncode == 0 else None


def network_has_ipv6(inspect: str) -> bool:
    """From ``docker network inspect --format NETWORK_FORMAT``: IPv6 enabled and an IPv6 subnet."""
    words = inspect.split()
    return bool(words) and words[0] == "true" and any(":" in w for w in words[1:])


def ensure_dual_network(lay: Layout, progress: Progress) -> None:
    """Remove an IPv4-only ``kind`` network (kind would reuse it as it is); kind creates it again with IPv6."""
    proc = engine.docker(lay, "network", "inspect", KIND_NETWORK, "--format", NETWORK_FORMAT, check=False, timeout=60)
    if proc.returncode != 0 or network_has_ipv6(proc.stdout):
        return  # absent (kind creates it with IPv6), or fine as it is
    progress(f"kind: docker network {KIND_NETWORK} has no IPv6 subnet ({proc.stdout.strip()}); removing it so "
             "kind creates it dual-stack")
    removed = engine.docker(lay, "network", "rm", KIND_NETWORK, check=False, timeout=60)
    if removed.returncode != 0:
        raise KindError(f"docker network rm {KIND_NETWORK} failed (a dual-stack cluster needs it with IPv6): "
                        f"{removed.stderr.strip()[-1000:]}")


def build_images(lay: Layout, repo: Path, progress: Progress) -> None:
    """picket:dev from the repository's Dockerfile (against the stand-ins), and the busybox stand-in."""
    wheels = images.ensure_wheelhouse(lay, repo, progress)
    with images.wheelhouse_server(lay, wheels) as url:
        images.ensure_python_standin(lay, url, progress)
        images.build_picket(lay, repo, progress, images.client_env(lay))
    images.ensure_busybox_standin(lay, progress)


def create_cluster(lay: Layout, repo: Path, node_image: str, progress: Progress, ip_family: str = "ipv4") -> None:
    config = KIND_CONFIGS[ip_family]
    if ip_family == "dual":
        ensure_dual_network(lay, progress)
    progress(f"kind: kind create cluster --config {config} (node image {node_image})")
    shell(lay, f"kind create cluster --config {config} --image {node_image}", cwd=repo, timeout=600)


def load_images(lay: Layout, progress: Progress) -> None:
    progress(f"kind: kind load docker-image {images.PICKET_IMAGE} {images.BUSYBOX_STANDIN}")
    shell(lay, f"kind load docker-image {images.PICKET_IMAGE} {images.BUSYBOX_STANDIN} --name {CLUSTER}")


def deploy(lay: Layout, repo: Path, progress: Progress) -> None:
    progress("kind: kubectl apply --server-side -k manifests/; waiting for the rollouts")
    shell(lay, "kubectl apply --server-side -k manifests/", cwd=repo)
    shell(lay, "kubectl -n picket-system rollout status deployment/picket-operator --timeout=180s && "
               "kubectl -n picket-system rollout status daemonset/picket-agent --timeout=180s")


def image_id(lay: Layout, ref: str) -> str:
    return engine.docker(lay, "image", "inspect", ref, "--format", "{{.Id}}", check=False).stdout.strip()


def redeploy(lay: Layout, repo: Path, progress: Progress) -> None:
    shell(lay, "kubectl apply --server-side -k manifests/", cwd=repo)
    shell(lay, "kubectl -n picket-system rollout restart deployment/picket-operator daemonset/picket-agent")
    deploy(lay, repo, progress)


def up(repo: Path, lay: Layout, progress: Progress = print, rebuild_picket: bool = True,
       ip_family: str = "ipv4") -> Timings:
    """Everything, reusing what is already there (a cluster of another IP family is not); the time of each step."""
    if ip_family not in KIND_CONFIGS:
        raise KindError(f"unknown IP family {ip_family!r} (one of {', '.join(IP_FAMILIES)})")
    t = Timings()
    t.time("packages", lambda: engine.ensure_packages(progress))
    t.time("binaries", lambda: (ensure_built(progress), ensure_binaries(progress)))
    t.time("engine", lambda: engine.start(lay, progress))
    link_clients(lay)
    holder: dict[str, str] = {}
    t.time("node image", lambda: holder.update(node=nodeimage.ensure_node_image(lay, progress)))
    fresh = False
    running = cluster_exists(lay) and nodes_ready(lay)
    found = cluster_family(lay) if running else None  # None: unknown (kubectl failed); the cluster is kept
    if found is not None and found != ip_family:
        progress(f"kind: the running cluster is {found}, {ip_family} was asked for: creating it again")
        running = False
    if not running:
        if cluster_exists(lay):
            shell(lay, f"kind delete cluster --name {CLUSTER}")
        t.time("cluster", lambda: create_cluster(lay, repo, holder["node"], progress, ip_family))
        fresh = True
    if rebuild_picket or fresh:
        before = image_id(lay, images.PICKET_IMAGE)
        t.time("picket image", lambda: build_images(lay, repo, progress))
        changed = image_id(lay, images.PICKET_IMAGE) != before
        if fresh or changed:
            t.time("load", lambda: load_images(lay, progress))
        if fresh:
            t.time("deploy", lambda: deploy(lay, repo, progress))
        elif changed:  # a rebuilt image under the same tag: restart the pods onto it
            t.time("deploy", lambda: redeploy(lay, repo, progress))
    lay.run.mkdir(parents=True, exist_ok=True)
    (lay.run / "timings.json").write_text(json.dumps(t.steps, indent=2) + "\n")
    return t


def down(lay: Layout, progress: Progress = print) -> None:
    if engine.healthy(lay):
        link_clients(lay)
        if cluster_exists(lay):
            progress(f"kind: kind delete cluster --name {CLUSTER}")
            shell(lay, f"kind delete cluster --name {CLUSTER}", check=False)
        leftovers = engine.docker(lay, "ps", "-aq", check=False).stdout.split()
        if leftovers:
            engine.docker(lay, "rm", "-f", *leftovers, check=False)
    progress(f"kind: stopping the engine and removing network namespace {NETNS}")
    engine.stop(lay)


def status(lay: Layout) -> tuple[bool, str]:
    if not engine.healthy(lay):
        return False, f"engine: not running (namespace {NETNS} {'present' if engine.netns_inode() else 'absent'})"
    link_clients(lay)
    if not cluster_exists(lay):
        return False, "engine: running; cluster: absent"
    nodes = shell(lay, "kubectl get nodes -o wide", check=False).stdout
    pods = shell(lay, "kubectl -n picket-system get pods -o wide", check=False).stdout
    family = cluster_family(lay) or "unknown (no podCIDRs yet)"
    return nodes_ready(lay), f"engine: running; IP family: {family}\n{nodes}\n{pods}"
