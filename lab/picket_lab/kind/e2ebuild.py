"""Build and cache upstream's conformance tools from Go sources: ``e2e.test``, ``agnhost`` and ``ginkgo``.

All three come from the Kubernetes release the local cluster runs (``picket_lab.paths``), through the
Go module proxy, with the lab's wrapper module (``picket_lab.build.kubernetes_wrapper_gomod``: it
pins every staging module at ``v0.M.P``). The wrapper's ``tools.go`` imports ``test/e2e``, every
package ``test/e2e/e2e_test.go`` imports (read from the module cache, so ``go mod tidy`` records the
test binary's dependencies too), agnhost and ginkgo's CLI; ``go test -c`` then builds the
unmodified upstream test binary. ginkgo's CLI is the version ``test/e2e`` links (it comes out of
the same module graph), which ``ginkgo -p`` requires of the binary it drives. agnhost is stamped
with its own VERSION file, e2e.test with the release version, like upstream's builds.

Everything lands in ``<cache>/e2e-k8s-<version>/bin/`` under a temporary name first and is renamed
when complete, so an interrupted build never leaves half a binary. Builds run under ``nice``
(these machines are shared). Called by ``picket_lab.kind.conformance``; a warm cache returns at once.
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

from picket_lab.build import (
    GO_FALLBACKS,
    BuildError,
    kubernetes_ldflags,
    kubernetes_wrapper_gomod,
    staging_modules,
    tools_go,
)
from picket_lab.kind.e2eimages import e2e_image_ref
from picket_lab.paths import KUBERNETES_VERSION, cache_root

Progress = Callable[[str], None]
HEARTBEAT_SECONDS = 15.0
E2E_PACKAGE = "k8s.io/kubernetes/test/e2e"
AGNHOST_PACKAGE = "k8s.io/kubernetes/test/images/agnhost"
GINKGO_PACKAGE = "github.com/onsi/ginkgo/v2/ginkgo"
TOOLS = ("e2e.test", "agnhost", "ginkgo")
_IMPORT = re.compile(r'^\s*(?:[\w.]+\s+)?"([\w.-]+\.[\w.-]+/[^"]+)"', re.MULTILINE)


@dataclass(frozen=True)
class E2EPaths:
    """The conformance tools of one Kubernetes version."""

    kubernetes: str
    root: Path

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def src_dir(self) -> Path:
        return self.root / "src" / "kubernetes"

    @property
    def log_file(self) -> Path:
        return self.root / "build.log"

    @property
    def images_file(self) -> Path:
        """The image references the e2e framework of this version asks for (read from its manifest.go)."""
        return self.bin_dir / "images.json"

    def binary(self, name: str) -> Path:
        return self.bin_dir / name

    def missing(self) -> list[str]:
        todo = [t for t in TOOLS if not os.access(self.binary(t), os.X_OK)]
        return todo if todo or self.images_file.exists() else ["images.json"]


def e2e_paths(kubernetes: str = KUBERNETES_VERSION) -> E2EPaths:
    return E2EPaths(kubernetes, cache_root() / f"e2e-k8s-{kubernetes}")


def e2e_test_imports(e2e_test_go: str) -> list[str]:
    """Module-qualified imports of upstream's e2e_test.go (standard-library ones have no dot)."""
    return sorted(set(_IMPORT.findall(e2e_test_go)))


def wrapper_tools(e2e_test_go: str) -> str:
    return tools_go(sorted({E2E_PACKAGE, AGNHOST_PACKAGE, GINKGO_PACKAGE, *e2e_test_imports(e2e_test_go)}))


def agnhost_ldflags(agnhost_version: str) -> str:
    return f"-s -w -X main.Version={agnhost_version}"


def go_argv(tool: str, output: Path, kubernetes: str, agnhost_version: str) -> list[str]:
    """The ``go`` arguments that build one tool into ``output``."""
    if tool == "e2e.test":
        # -vet=off: go test would otherwise vet test/e2e and compute facts for every dependency (minutes)
        return ["test", "-c", "-vet=off", "-trimpath", "-ldflags", kubernetes_ldflags(kubernetes), "-o", str(output),
                E2E_PACKAGE]
    if tool == "agnhost":
        return ["build", "-trimpath", "-ldflags", agnhost_ldflags(agnhost_version), "-o", str(output), AGNHOST_PACKAGE]
    if tool == "ginkgo":
        return ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(output), GINKGO_PACKAGE]
    raise ValueError(f"unknown tool {tool!r}")


@dataclass(frozen=True)
class E2EBuild:
    paths: E2EPaths
    built: tuple[str, ...]
    seconds: float


def ensure_e2e_tools(progress: Progress = print, paths: E2EPaths | None = None) -> E2EBuild:
    paths = paths or e2e_paths()
    start = time.monotonic()
    if not paths.missing():
        return E2EBuild(paths, (), 0.0)
    paths.root.mkdir(parents=True, exist_ok=True)
    with _locked(paths.root / ".lock"):
        todo = paths.missing()
        if todo:
            _build(paths, todo, progress)
    return E2EBuild(paths, tuple(todo), time.monotonic() - start)


def _build(paths: E2EPaths, todo: list[str], progress: Progress) -> None:
    runner = _GoRunner(paths.log_file, progress)
    progress(f"e2e build: building {', '.join(todo)} (Kubernetes {paths.kubernetes}); e2e.test takes several "
             f"minutes the first time; log: {paths.log_file}")
    module_dir = _prepare(paths, runner)
    agnhost_version = (module_dir / "test" / "images" / "agnhost" / "VERSION").read_text().strip()
    paths.bin_dir.mkdir(parents=True, exist_ok=True)
    manifest = (module_dir / "test" / "utils" / "image" / "manifest.go").read_text()
    refs = {"agnhost": e2e_image_ref(manifest, "Agnhost"), "pause": e2e_image_ref(manifest, "Pause")}
    if not refs["agnhost"].endswith(f":{agnhost_version}"):
        raise BuildError(f"the e2e framework asks for {refs['agnhost']} but agnhost's VERSION is {agnhost_version}")
    tmp_refs = paths.images_file.with_name(f".images.json.tmp{os.getpid()}")
    tmp_refs.write_text(json.dumps(refs, indent=1) + "\n")
    os.replace(tmp_refs, paths.images_file)
    for tool in (t for t in todo if t in TOOLS):
        target = paths.binary(tool)
        tmp = target.with_name(f".{tool}.tmp{os.getpid()}")
        began = time.monotonic()
        try:
            runner.go(go_argv(tool, tmp, paths.kubernetes, agnhost_version), paths.src_dir, f"build {tool}")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        progress(f"e2e build: {tool} ready in {time.monotonic() - began:.0f}s")


def _prepare(paths: E2EPaths, runner: _GoRunner) -> Path:
    """Write the wrapper module; returns k8s.io/kubernetes's directory in the module cache."""
    src = paths.src_dir
    src.mkdir(parents=True, exist_ok=True)
    info = json.loads(runner.go(["mod", "download", "-json", f"k8s.io/kubernetes@{paths.kubernetes}"], src,
                                "download k8s.io/kubernetes", capture=True))
    staging = staging_modules(Path(info["GoMod"]).read_text())
    if not staging:
        raise BuildError(f"found no staging modules in {info['GoMod']}; cannot pin k8s.io/* modules")
    module_dir = Path(info["Dir"])
    gomod = kubernetes_wrapper_gomod(paths.kubernetes, staging).replace("labbuild/kubernetes", "e2ebuild/kubernetes")
    tools = wrapper_tools((module_dir / "test" / "e2e" / "e2e_test.go").read_text())
    if _read(src / "go.mod").split("\nrequire")[0] != gomod.split("\nrequire")[0] or _read(src / "tools.go") != tools:
        (src / "go.mod").write_text(gomod)
        (src / "tools.go").write_text(tools)
        runner.go(["mod", "tidy"], src, "go mod tidy (e2e wrapper)")
    return module_dir


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


@contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


class _GoRunner:
    """``nice go ...`` with the lab's build environment, output to the log, a heartbeat on the terminal."""

    def __init__(self, log_file: Path, progress: Progress) -> None:
        go = shutil.which("go") or next((g for g in GO_FALLBACKS if os.access(g, os.X_OK)), None)
        if go is None:
            raise BuildError("the Go toolchain ('go') is not on PATH; install Go >= 1.26")
        self.go_exe, self.log_file, self.progress = go, log_file, progress
        self.env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false"}

    def go(self, args: list[str], cwd: Path, what: str, capture: bool = False) -> str:
        with open(self.log_file, "a") as log:
            log.write(f"\n$ go {' '.join(args)}   (in {cwd})\n")
            log.flush()
            proc = subprocess.Popen(["nice", self.go_exe, *args], cwd=cwd, env=self.env,
                                    stdout=subprocess.PIPE if capture else log, stderr=log, text=True)
            began = time.monotonic()
            while True:
                try:
                    stdout, _ = proc.communicate(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    self.progress(f"e2e build:   ... {what}: {time.monotonic() - began:.0f}s")
        if proc.returncode != 0:
            raise BuildError(f"e2e build failed at '{what}' (go exited {proc.returncode}); read {self.log_file}")
        return stdout or ""
