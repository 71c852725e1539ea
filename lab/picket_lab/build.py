"""Build and cache the lab's binaries from Go sources through the module proxy.

Kubernetes: a wrapper module requires ``k8s.io/kubernetes v1.M.P`` and replaces every staging
module (the release's own go.mod points them at ``./staging/...``, which a module download does
not have) with its published ``v0.M.P``; that list is regenerated from the release's go.mod.
etcd: a second wrapper module requires ``go.etcd.io/etcd/server/v3`` (a main package); separate,
so the two dependency graphs never pull each other's versions. Each binary is built into a
temporary name and renamed into ``bin/``, so an interrupted build never leaves half a binary.
Called by ``picket lab build``, ``lab up`` and the pytest fixture; a warm cache returns at once.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from picket_lab.paths import BINARIES, BuildPaths, build_paths, staging_version

Progress = Callable[[str], None]
HEARTBEAT_SECONDS = 15.0
GO_FALLBACKS = ("/usr/local/go/bin/go", "/usr/lib/go/bin/go")  # where Go installs land when not on PATH
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
ETCD_VERSION_PKG = "go.etcd.io/etcd/api/v3/version"
K8S_PACKAGES = {
    "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
}
_STAGING_LINE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s*=>\s*\./staging/", re.MULTILINE)
_UNVERSIONED_REQUIRE = re.compile(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*$", re.MULTILINE)


class BuildError(RuntimeError):
    """One readable message, naming the log file to read."""


@dataclass(frozen=True)
class BuildResult:
    paths: BuildPaths
    built: tuple[str, ...]
    seconds: float


def staging_modules(release_gomod: str) -> list[str]:
    """The modules the release requires as ``v0.0.0`` and replaces with its own ./staging directory.

    Only required ones: a few staging modules (sample-cli-plugin, ...) are replaced but never
    required, and some of those are not published at all.
    """
    return sorted(set(_STAGING_LINE.findall(release_gomod)) & set(_UNVERSIONED_REQUIRE.findall(release_gomod)))


def kubernetes_wrapper_gomod(kubernetes: str, staging: list[str]) -> str:
    pinned = staging_version(kubernetes)
    lines = ["module picket.dev/labbuild/kubernetes", "", "go 1.26.0", "", "require (",
             f"\tk8s.io/kubernetes {kubernetes}"]
    lines += [f"\t{m} {pinned}" for m in staging]
    lines += [")", "", "replace ("]
    lines += [f"\t{m} => {m} {pinned}" for m in staging]
    return "\n".join([*lines, ")", ""])


def etcd_wrapper_gomod(etcd: str) -> str:
    return f"module picket.dev/labbuild/etcd\n\ngo 1.26.0\n\nrequire {ETCD_MODULE} {etcd}\n"


def tools_go(packages: list[str]) -> str:
    imports = "".join(f'\t_ "{p}"\n' for p in packages)
    return f"//go:build tools\n\npackage tools\n\nimport (\n{imports})\n"


def kubernetes_ldflags(kubernetes: str) -> str:
    major, minor = kubernetes.lstrip("v").split(".")[:2]
    stamp = {"gitVersion": kubernetes, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean",
             "buildDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    flags = [f"-X {pkg}.{k}={v}" for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
             for k, v in stamp.items()]
    return " ".join(["-s", "-w", *flags])


def etcd_ldflags(etcd: str) -> str:
    return f"-s -w -X {ETCD_VERSION_PKG}.GitSHA={etcd}"


def missing_binaries(paths: BuildPaths) -> list[str]:
    return [b for b in BINARIES if not os.access(paths.binary(b), os.X_OK)]


def ensure_built(progress: Progress = print, paths: BuildPaths | None = None) -> BuildResult:
    paths = paths or build_paths()
    start = time.monotonic()
    if not missing_binaries(paths):
        return BuildResult(paths, (), 0.0)
    paths.root.mkdir(parents=True, exist_ok=True)
    with _locked(paths.root / ".lock"):
        todo = missing_binaries(paths)
        if todo:
            _Builder(paths, progress).build(todo)
    return BuildResult(paths, tuple(todo), time.monotonic() - start)


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Builder:
    def __init__(self, paths: BuildPaths, progress: Progress) -> None:
        self.paths, self.progress, self.t0 = paths, progress, time.monotonic()
        go = shutil.which("go") or next((g for g in GO_FALLBACKS if os.access(g, os.X_OK)), None)
        if go is None:
            raise BuildError("the Go toolchain ('go') is not on PATH; install Go >= 1.26 and retry 'picket lab build'")
        self.go = go
        self.env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}

    def build(self, todo: list[str]) -> None:
        self.progress(f"lab build: building {', '.join(todo)} (Kubernetes {self.paths.kubernetes}, etcd "
                      f"{self.paths.etcd}); the first build takes several minutes; log: {self.paths.log_file}")
        self.paths.bin_dir.mkdir(parents=True, exist_ok=True)
        k8s_todo = [b for b in todo if b in K8S_PACKAGES]
        if k8s_todo:
            src = self._prepare_kubernetes()
            for name in k8s_todo:
                self._build_one(name, K8S_PACKAGES[name], src, kubernetes_ldflags(self.paths.kubernetes))
        if "etcd" in todo:
            src = self._prepare_etcd()
            self._build_one("etcd", ETCD_MODULE, src, etcd_ldflags(self.paths.etcd))
        self.progress(f"lab build: done in {self._elapsed()}; binaries in {self.paths.bin_dir}")

    def _prepare_kubernetes(self) -> Path:
        src = self.paths.src_dir / "kubernetes"
        src.mkdir(parents=True, exist_ok=True)
        self.progress("lab build: resolving k8s.io/kubernetes and its staging modules")
        info = json.loads(self._go(["mod", "download", "-json", f"k8s.io/kubernetes@{self.paths.kubernetes}"], src,
                                   "download k8s.io/kubernetes", capture=True))
        staging = staging_modules(Path(info["GoMod"]).read_text())
        if not staging:
            raise BuildError(f"found no staging modules in {info['GoMod']}; cannot pin k8s.io/* modules")
        (src / "go.mod").write_text(kubernetes_wrapper_gomod(self.paths.kubernetes, staging))
        (src / "tools.go").write_text(tools_go(sorted(K8S_PACKAGES.values())))
        self._go(["mod", "tidy"], src, "go mod tidy (Kubernetes wrapper)")
        return src

    def _prepare_etcd(self) -> Path:
        src = self.paths.src_dir / "etcd"
        src.mkdir(parents=True, exist_ok=True)
        (src / "go.mod").write_text(etcd_wrapper_gomod(self.paths.etcd))
        (src / "tools.go").write_text(tools_go([ETCD_MODULE]))
        self.progress("lab build: resolving etcd")
        self._go(["mod", "tidy"], src, "go mod tidy (etcd wrapper)")
        return src

    def _build_one(self, name: str, package: str, src: Path, ldflags: str) -> None:
        target = self.paths.binary(name)
        tmp = target.with_name(f".{name}.tmp{os.getpid()}")
        self.progress(f"lab build: compiling {name} ({package})")
        began = time.monotonic()
        try:
            self._go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(tmp), package], src, f"build {name}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        self.progress(f"lab build: {name} ready in {time.monotonic() - began:.0f}s (total {self._elapsed()})")

    def _go(self, args: list[str], cwd: Path, what: str, capture: bool = False) -> str:
        with open(self.paths.log_file, "a") as log:
            log.write(f"\n$ go {' '.join(args)}   (in {cwd})\n")
            log.flush()
            out = subprocess.PIPE if capture else log
            proc = subprocess.Popen([self.go, *args], cwd=cwd, env=self.env, stdout=out, stderr=log, text=True)
            began = time.monotonic()
            while True:
                try:
                    stdout, _ = proc.communicate(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    self.progress(f"lab build:   ... {what}: {time.monotonic() - began:.0f}s (total {self._elapsed()})")
        if proc.returncode != 0:
            raise BuildError(f"lab build failed at '{what}' (go exited {proc.returncode}); read {self.paths.log_file}")
        return stdout or ""

    def _elapsed(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 60}m{s % 60:02d}s"
