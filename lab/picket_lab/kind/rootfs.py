"""Base images without a registry: Debian root file systems made by debootstrap, imported into the engine.

No image can be pulled on these machines and ``docker build`` has no network, so every image the
tier needs starts from ``debootstrap --variant=minbase bookworm`` with the Debian packages it needs
already installed (``FLAVOURS``). A flavour's tarball is cached under a stamp of its package list
(``<cache>/kind-rootfs/<flavour>-<stamp>.tar``), and the imported image is tagged with the same
stamp, so a changed list rebuilds and a warm cache costs one ``docker image inspect``.
Called by ``images.py`` and ``nodeimage.py``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from picket_lab.kind.layout import SUITE, KindError, Layout

Progress = Callable[[str], None]
MIRROR = "http://deb.debian.org/debian"

# python: what the Dockerfile's python:3.11-slim base brings (Python 3.11, pip, headers) plus what its
# RUN steps would install online (a C compiler, iptables, ipset, conntrack, kmod), so that an offline
# build finds them present. node: what a kind node image carries from its base image. probe: the
# test pods' image, a stand-in for busybox whose nc can probe (-z, -u: OpenBSD's netcat; Debian's
# busybox nc has neither), whose httpd serves TCP and whose socat echoes UDP.
FLAVOURS: dict[str, tuple[str, ...]] = {
    "python": ("python3", "python3-pip", "python3-dev", "gcc", "libc6-dev", "iptables", "ipset", "conntrack",
               "kmod", "ca-certificates"),
    "node": ("systemd", "systemd-sysv", "dbus", "containerd", "runc", "containernetworking-plugins", "iptables", "curl",
             "nftables", "ipset", "kmod", "iproute2", "conntrack", "socat", "procps", "ca-certificates",
             "ethtool", "libseccomp2"),
    "probe": ("netcat-openbsd", "busybox-static", "socat"),
}


def stamp(flavour: str) -> str:
    text = f"{SUITE} minbase {' '.join(sorted(FLAVOURS[flavour]))}"
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def image_ref(flavour: str) -> str:
    return f"picket-kind/{flavour}-rootfs:{stamp(flavour)}"


def tarball(lay: Layout, flavour: str) -> Path:
    return lay.rootfs_dir / f"{flavour}-{stamp(flavour)}.tar"


def ensure_tarball(lay: Layout, flavour: str, progress: Progress) -> Path:
    target = tarball(lay, flavour)
    if target.exists():
        return target
    if shutil.which("debootstrap") is None:
        raise KindError("debootstrap is not installed (picket kind up installs it with apt)")
    lay.rootfs_dir.mkdir(parents=True, exist_ok=True)
    debs = lay.rootfs_dir / "debs"
    debs.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=lay.rootfs_dir, prefix=f".{flavour}-") as tmp:
        root = Path(tmp) / "root"
        log = lay.rootfs_dir / f"{flavour}-debootstrap.log"
        progress(f"kind: debootstrap {SUITE} ({flavour}: {len(FLAVOURS[flavour])} packages); log: {log}")
        with open(log, "w") as out:
            proc = subprocess.run(
                ["nice", "debootstrap", "--variant=minbase", f"--include={','.join(FLAVOURS[flavour])}",
                 f"--cache-dir={debs}", SUITE, str(root), MIRROR],
                stdout=out, stderr=subprocess.STDOUT, check=False)
        if proc.returncode != 0:
            raise KindError(f"debootstrap of the {flavour} root file system failed; read {log}")
        _tidy(root, flavour)
        partial = target.with_name(f".{target.name}.tmp{os.getpid()}")
        subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-cf", str(partial), "."], check=True)
        os.replace(partial, target)
    return target


def _tidy(root: Path, flavour: str) -> None:
    """What a container image should not carry: apt lists, caches; Python's 'externally managed' marker."""
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        d = root / sub
        if d.is_dir():
            for entry in d.iterdir():
                if entry.is_file():
                    entry.unlink()
    if flavour == "python":
        # python:3.11-slim has a pip that installs into the system; Debian's python3 refuses (PEP 668).
        for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()
    (root / "etc/apt/sources.list").write_text(f"deb {MIRROR} {SUITE} main\n")


def ensure_image(lay: Layout, docker: Callable[..., subprocess.CompletedProcess[str]], flavour: str,
                 progress: Progress) -> str:
    """The flavour's image in the engine (imported from the cached tarball when missing)."""
    ref = image_ref(flavour)
    if docker("image", "inspect", ref, check=False).returncode == 0:
        return ref
    tar = ensure_tarball(lay, flavour, progress)
    progress(f"kind: docker import {ref}")
    docker("import", "--change", 'CMD ["/bin/bash"]', str(tar), ref)
    return ref
