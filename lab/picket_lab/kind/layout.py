"""Names and places of the kind tier: one engine, one network namespace, one cluster per machine.

Pure look-ups; every other module of the tier asks here. The run directory (``PICKET_KIND_DIR``,
default ``/run/picket-kind``) holds what dies with the engine: its socket, pidfile, exec root, log,
the runtime wrapper and the admin kubeconfig. Docker's data root is a cache (images survive a
``down``): ``<picket cache>/kind-engine/docker``. Root file systems made by debootstrap are cached
as tarballs in ``<picket cache>/kind-rootfs/``.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from picket_lab.paths import cache_root

NETNS = "pkt-kind"
CLUSTER = "picket"
RUN_DIR_DEFAULT = "/run/picket-kind"
SUITE = "bookworm"


class KindError(RuntimeError):
    """A failure of the kind tier, worded for the user (what failed, the log to read)."""


@dataclass(frozen=True)
class Layout:
    run: Path
    cache: Path

    @property
    def socket(self) -> Path:
        return self.run / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.run / "dockerd.pid"

    @property
    def exec_root(self) -> Path:
        return self.run / "exec"

    @property
    def log(self) -> Path:
        return self.run / "dockerd.log"

    @property
    def runtime_wrapper(self) -> Path:
        return self.run / "runc-without-sys-resource"

    @property
    def kubeconfig(self) -> Path:
        return self.run / "kubeconfig"

    @property
    def bin_dir(self) -> Path:
        """kind, kubectl and Docker's client, first on PATH of every command run in the engine's namespace."""
        return self.run / "bin"

    @property
    def data_root(self) -> Path:
        return self.cache / "kind-engine" / "docker"

    @property
    def rootfs_dir(self) -> Path:
        return self.cache / "kind-rootfs"


def layout() -> Layout:
    return Layout(Path(os.environ.get("PICKET_KIND_DIR", RUN_DIR_DEFAULT)), cache_root())


def run(argv: list[str], check: bool = True, stdin: str | bytes | None = None,
        timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, raising KindError with its stderr when it fails."""
    proc = subprocess.run(argv, input=stdin.decode() if isinstance(stdin, bytes) else stdin,
                          capture_output=True, text=True, check=False, timeout=timeout)
    if check and proc.returncode != 0:
        raise KindError(f"command failed ({proc.returncode}): {' '.join(argv)}: {(proc.stderr or proc.stdout).strip()}")
    return proc
