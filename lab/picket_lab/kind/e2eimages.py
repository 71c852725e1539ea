"""The images upstream's netpol suite runs, built here and loaded into the kind nodes (nothing is pulled).

The suite's pods run ``/agnhost porter`` and the prober execs ``/agnhost connect`` in them (no
shell), so the image is agnhost alone, ``FROM scratch``, tagged exactly as the e2e framework names
it: the reference is read from ``test/utils/image/manifest.go`` of the same release (its default
registry list and ``configs[Agnhost]``). The pause image the pods' sandboxes need is part of the
kind node image already (kubelet's sandbox image); ``missing_in_node`` lets the caller check.

Loading does what ``kind load docker-image`` does, per node: ``docker save`` piped into
``ctr -n k8s.io images import`` inside the node container. A node that already holds the image
(same config digest, the image ID Docker reports) is skipped. The Docker client is pointed at the
kind tier's engine socket; callers pass a ``Docker`` function (argv, stdin) -> completed process.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Docker = Callable[..., subprocess.CompletedProcess[bytes]]
IMAGE_LABEL = "dev.picket.e2e.binary-sha256"
_REGISTRY_FIELD = re.compile(r"^\s*(\w+Registry):\s*\"([^\"]+)\",", re.MULTILINE)


class ImageError(RuntimeError):
    """An image could not be built or loaded; the message names the command and its output."""


def e2e_image_ref(manifest_go: str, image_id: str) -> str:
    """``<registry>/<name>:<version>`` of ``configs[<image_id>]`` with upstream's default registries.

    >>> e2e_image_ref('PromoterE2eRegistry: "r.io/e2e",\\nconfigs[Agnhost] = Config{list.PromoterE2eRegistry, '
    ...               '"agnhost", "2.66.1"}', "Agnhost")
    'r.io/e2e/agnhost:2.66.1'
    """
    registries = dict(_REGISTRY_FIELD.findall(manifest_go))
    line = re.search(rf"configs\[{re.escape(image_id)}\]\s*=\s*Config\{{list\.(\w+),\s*\"([^\"]+)\",\s*\"([^\"]+)\"\}}",
                     manifest_go)
    if line is None:
        raise ImageError(f"manifest.go has no configs[{image_id}]")
    field, name, version = line.groups()
    if field not in registries:
        raise ImageError(f"manifest.go has no default for {field} (needed by configs[{image_id}])")
    return f"{registries[field]}/{name}:{version}"


def agnhost_dockerfile(binary_sha256: str) -> str:
    return (f"FROM scratch\nCOPY agnhost /agnhost\nLABEL {IMAGE_LABEL}={binary_sha256}\n"
            'ENTRYPOINT ["/agnhost"]\nCMD ["pause"]\n')


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    image_id: str
    built: bool


def ensure_agnhost_image(docker: Docker, ref: str, binary: Path, binary_sha256: str) -> BuiltImage:
    """Build ``ref`` from the binary unless the engine already has it built from the same binary."""
    inspect = docker("image", "inspect", ref, "--format", f'{{{{.Id}}}} {{{{index .Config.Labels "{IMAGE_LABEL}"}}}}',
                     check=False)
    if inspect.returncode == 0:
        image_id, _, stamp = inspect.stdout.decode().strip().partition(" ")
        if stamp == binary_sha256:
            return BuiltImage(ref, image_id, False)
    with tempfile.TemporaryDirectory(prefix="picket-e2e-ctx-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(agnhost_dockerfile(binary_sha256))
        try:
            (ctx / "agnhost").hardlink_to(binary)
        except OSError:  # another file system
            shutil.copy2(binary, ctx / "agnhost")
        docker("build", "-q", "-t", ref, str(ctx))
    image_id = docker("image", "inspect", ref, "--format", "{{.Id}}").stdout.decode().strip()
    return BuiltImage(ref, image_id, True)


def kind_nodes(docker: Docker, cluster: str) -> list[str]:
    out = docker("ps", "--filter", f"label=io.x-k8s.kind.cluster={cluster}", "--format", "{{.Names}}")
    return sorted(n for n in out.stdout.decode().split() if n)


def node_has_image(docker: Docker, node: str, ref: str, image_id: str) -> bool:
    """True when the node's containerd has ``ref`` whose config blob is ``image_id``."""
    listed = docker("exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q", f"name=={ref}", check=False)
    if listed.returncode != 0 or ref not in listed.stdout.decode().split():
        return False
    blob = docker("exec", node, "ctr", "-n", "k8s.io", "content", "get", image_id, check=False)
    return blob.returncode == 0


def load_into_nodes(docker: Docker, ref: str, image_id: str, nodes: list[str]) -> list[str]:
    """Import the image into every node lacking it; returns the nodes loaded."""
    todo = [n for n in nodes if not node_has_image(docker, n, ref, image_id)]
    if not todo:
        return []
    archive = docker("save", ref).stdout
    for node in todo:
        docker("exec", "-i", node, "ctr", "-n", "k8s.io", "images", "import", "--all-platforms", "--digests",
               "--snapshotter=overlayfs", "-", stdin=archive)
    return todo


def missing_in_node(docker: Docker, node: str, refs: list[str]) -> list[str]:
    """The references a node's containerd (namespace k8s.io) does not hold."""
    listed = docker("exec", node, "ctr", "-n", "k8s.io", "images", "ls", "-q").stdout.decode().split()
    return [r for r in refs if r not in listed]


def docker_client(docker_host: str, timeout: float = 600) -> Docker:
    """A Docker function for the engine at ``docker_host`` (``unix:///run/picket-kind/docker.sock``)."""

    def run(*args: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        argv = ["docker", "-H", docker_host, *args]
        proc = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise ImageError(f"{' '.join(argv[:8])} failed ({proc.returncode}): "
                             f"{(proc.stderr or proc.stdout).decode(errors='replace').strip()[-2000:]}")
        return proc

    return run
