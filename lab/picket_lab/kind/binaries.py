"""Build and cache the binaries a kind node needs beyond the local cluster's, from the Go module proxy.

The local cluster's build (``picket_lab.build``) already makes kube-apiserver, kube-controller-manager,
kube-scheduler, kubectl and etcd; a kind node also runs kubelet, kubeadm and kube-proxy, and the
machine needs ``kind`` itself. They are built here the same way (a wrapper module pinning
``k8s.io/kubernetes`` and its staging modules at the local cluster's version, ``CGO_ENABLED=0``,
version-stamped ldflags) into ``<cache>/kind-k8s-<version>/bin/``; kind goes to
``<cache>/kind-<kind version>/bin/kind``. Each binary is written under a temporary name and
renamed, so an interrupted build never leaves half a binary. Called by ``picket kind build`` and
``picket kind up``; a warm cache returns at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from picket_lab.build import (
    GO_FALLBACKS,
    BuildError,
    kubernetes_ldflags,
    kubernetes_wrapper_gomod,
    staging_modules,
    tools_go,
)
from picket_lab.paths import KUBERNETES_VERSION, cache_root

Progress = Callable[[str], None]
KIND_VERSION = "v0.33.0"
KIND_MODULE = "sigs.k8s.io/kind"
NODE_PACKAGES = {
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
    "kubeadm": "k8s.io/kubernetes/cmd/kubeadm",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
}
HEARTBEAT_SECONDS = 15.0


@dataclass(frozen=True)
class KindBinaries:
    """Where the node binaries and kind live for one Kubernetes and one kind version."""

    kubernetes: str
    kind_version: str
    root: Path

    @property
    def node_bin(self) -> Path:
        return self.root / f"kind-k8s-{self.kubernetes}" / "bin"

    @property
    def src_dir(self) -> Path:
        return self.root / f"kind-k8s-{self.kubernetes}" / "src"

    @property
    def log_file(self) -> Path:
        return self.root / f"kind-k8s-{self.kubernetes}" / "build.log"

    @property
    def kind(self) -> Path:
        return self.root / f"kind-{self.kind_version}" / "bin" / "kind"

    def node_binary(self, name: str) -> Path:
        return self.node_bin / name

    def missing(self) -> list[str]:
        todo = [n for n in NODE_PACKAGES if not os.access(self.node_binary(n), os.X_OK)]
        if not os.access(self.kind, os.X_OK):
            todo.append("kind")
        return todo


def kind_binaries(kubernetes: str = KUBERNETES_VERSION, kind_version: str = KIND_VERSION) -> KindBinaries:
    return KindBinaries(kubernetes, kind_version, cache_root())


def go_binary() -> str:
    go = shutil.which("go") or next((g for g in GO_FALLBACKS if os.access(g, os.X_OK)), None)
    if go is None:
        raise BuildError("the Go toolchain ('go') is not on PATH; install Go >= 1.26")
    return go


def ensure_binaries(progress: Progress = print, bins: KindBinaries | None = None) -> list[str]:
    """Build what is missing; returns the names built (empty on a warm cache)."""
    bins = bins or kind_binaries()
    todo = bins.missing()
    if not todo:
        return []
    bins.node_bin.mkdir(parents=True, exist_ok=True)
    builder = _GoRunner(bins.log_file, progress)
    node_todo = [n for n in todo if n in NODE_PACKAGES]
    if node_todo:
        src = _prepare_kubernetes(builder, bins)
        for name in node_todo:
            builder.build(name, NODE_PACKAGES[name], src, kubernetes_ldflags(bins.kubernetes), bins.node_binary(name))
    if "kind" in todo:
        bins.kind.parent.mkdir(parents=True, exist_ok=True)
        src = bins.src_dir / "kind"
        src.mkdir(parents=True, exist_ok=True)
        gomod = f"module picket.dev/kindbuild/kind\n\ngo 1.26.0\n\nrequire {KIND_MODULE} {bins.kind_version}\n"
        (src / "go.mod").write_text(gomod)
        (src / "tools.go").write_text(tools_go([KIND_MODULE]))
        builder.go(["mod", "tidy"], src, "go mod tidy (kind)")
        builder.build("kind", KIND_MODULE, src, "-s -w", bins.kind)
    return todo


def _prepare_kubernetes(builder: _GoRunner, bins: KindBinaries) -> Path:
    src = bins.src_dir / "kubernetes"
    src.mkdir(parents=True, exist_ok=True)
    info = json.loads(builder.go(["mod", "download", "-json", f"k8s.io/kubernetes@{bins.kubernetes}"], src,
                                 "download k8s.io/kubernetes", capture=True))
    staging = staging_modules(Path(info["GoMod"]).read_text())
    if not staging:
        raise BuildError(f"found no staging modules in {info['GoMod']}; cannot pin k8s.io/* modules")
    (src / "go.mod").write_text(kubernetes_wrapper_gomod(bins.kubernetes, staging).replace(
        "picket.dev/labbuild/kubernetes", "picket.dev/kindbuild/kubernetes"))
    (src / "tools.go").write_text(tools_go(sorted(NODE_PACKAGES.values())))
    builder.go(["mod", "tidy"], src, "go mod tidy (Kubernetes node binaries)")
    return src


class _GoRunner:
    def __init__(self, log_file: Path, progress: Progress) -> None:
        self.log_file, self.progress, self.t0 = log_file, progress, time.monotonic()
        self.exe = go_binary()
        self.env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}

    def build(self, name: str, package: str, src: Path, ldflags: str, target: Path) -> None:
        tmp = target.with_name(f".{name}.tmp{os.getpid()}")
        self.progress(f"kind build: compiling {name} ({package}); log: {self.log_file}")
        began = time.monotonic()
        try:
            self.go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), package], src, f"build {name}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.progress(f"kind build: {name} ready in {time.monotonic() - began:.0f}s")

    def go(self, args: list[str], cwd: Path, what: str, capture: bool = False) -> str:
        with open(self.log_file, "a") as log:
            log.write(f"\n$ go {' '.join(args)}   (in {cwd})\n")
            log.flush()
            proc = subprocess.Popen(["nice", self.exe, *args], cwd=cwd, env=self.env,
                                    stdout=subprocess.PIPE if capture else log, stderr=log, text=True)
            began = time.monotonic()
            while True:
                try:
                    stdout, _ = proc.communicate(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    self.progress(f"kind build:   ... {what}: {time.monotonic() - began:.0f}s")
        if proc.returncode != 0:
            raise BuildError(f"kind build failed at '{what}' (go exited {proc.returncode}); read {self.log_file}")
        return stdout or ""
