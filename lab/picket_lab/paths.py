"""Where the lab keeps things: the binary cache (keyed by versions) and the run directory.

Pure look-ups of environment-derived settings; every other lab module asks here instead of
reading the environment itself. ``PICKET_CACHE`` overrides the cache root, otherwise
``$XDG_CACHE_HOME/picket`` or ``~/.cache/picket``; ``PICKET_LAB_DIR`` overrides the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.3"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
RUN_DIR_DEFAULT = "/run/picket-lab"


def staging_version(kubernetes_version: str) -> str:
    """k8s.io/kubernetes v1.M.P publishes its staging modules as v0.M.P."""
    major, rest = kubernetes_version.lstrip("v").split(".", 1)
    if major != "1":
        raise ValueError(f"unexpected Kubernetes version {kubernetes_version!r}")
    return f"v0.{rest}"


def cache_root() -> Path:
    if os.environ.get("PICKET_CACHE"):
        return Path(os.environ["PICKET_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "picket"


@dataclass(frozen=True)
class BuildPaths:
    kubernetes: str
    etcd: str
    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def src_dir(self) -> Path:
        return self.root / "src"

    @property
    def log_file(self) -> Path:
        return self.root / "build.log"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name


def build_paths(kubernetes: str = KUBERNETES_VERSION, etcd: str = ETCD_VERSION) -> BuildPaths:
    return BuildPaths(kubernetes, etcd, cache_root() / f"k8s-{kubernetes}-etcd-{etcd}")


def run_dir() -> Path:
    return Path(os.environ.get("PICKET_LAB_DIR", RUN_DIR_DEFAULT))


@dataclass(frozen=True)
class RunLayout:
    """Files of one running lab under its run directory."""

    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def pods(self) -> Path:
        return self.root / "pods"

    def component_kubeconfig(self, name: str) -> Path:
        return self.root / "kubeconfigs" / f"{name}.kubeconfig"

    def pod_record(self, namespace: str, name: str) -> Path:
        return self.pods / f"{namespace}_{name}.json"


def run_layout() -> RunLayout:
    return RunLayout(run_dir())
