"""The kind tier end to end: ``up`` (engine, images, cluster, picket deployed), ``down``, ``status``.

``up`` is idempotent and records how long each step took (``Timings``, printed by ``picket kind up``
and kept in ``<run dir>/timings.json``): packages, binaries, engine, node image, cluster, picket
image, load, deploy. Every user-facing command (kind, kubectl, docker) runs through ``shell`` inside
the engine's network namespace with ``DOCKER_HOST``, ``KUBECONFIG`` and ``PATH`` set, exactly as the
README's commands are typed; the cluster is created from ``manifests/kind/kind-config.yaml`` with
the node image built here (``KIND_NODE_IMAGE``), picket's image is built from the repository's
Dockerfile and ``manifests/`` applied unmodified. ``down`` deletes the cluster and stops the engine;
its images stay cached in the engine's data root.
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


def build_images(lay: Layout, repo: Path, progress: Progress) -> None:
    """picket:dev from the repository's Dockerfile (against the stand-ins), and the busybox stand-in."""
    wheels = images.ensure_wheelhouse(lay, repo, progress)
    with images.wheelhouse_server(lay, wheels) as url:
        images.ensure_python_standin(lay, url, progress)
        images.build_picket(lay, repo, progress, images.client_env(lay))
    images.ensure_busybox_standin(lay, progress)


def create_cluster(lay: Layout, repo: Path, node_image: str, progress: Progress) -> None:
    progress(f"kind: kind create cluster --config {KIND_CONFIG} (node image {node_image})")
    shell(lay, f"kind create cluster --config {KIND_CONFIG} --image {node_image}", cwd=repo, timeout=600)


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


def up(repo: Path, lay: Layout, progress: Progress = print, rebuild_picket: bool = True) -> Timings:
    """Everything, reusing what is already there; returns the time of each step."""
    t = Timings()
    t.time("packages", lambda: engine.ensure_packages(progress))
    t.time("binaries", lambda: (ensure_built(progress), ensure_binaries(progress)))
    t.time("engine", lambda: engine.start(lay, progress))
    link_clients(lay)
    holder: dict[str, str] = {}
    t.time("node image", lambda: holder.update(node=nodeimage.ensure_node_image(lay, progress)))
    fresh = False
    if not (cluster_exists(lay) and nodes_ready(lay)):
        if cluster_exists(lay):
            shell(lay, f"kind delete cluster --name {CLUSTER}")
        t.time("cluster", lambda: create_cluster(lay, repo, holder["node"], progress))
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
    return nodes_ready(lay), f"engine: running\n{nodes}\n{pods}"
