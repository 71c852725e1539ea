"""The images a user would pull, made here: python:3.11-slim and busybox:1.36 stand-ins, and picket's own.

``docker build`` containers have no network on these machines, so the repository's Dockerfile is
built against stand-ins that carry what it would download:

* ``python:3.11-slim``: the ``python`` root file system (Debian's Python 3.11, pip, gcc and the
  agent's Debian packages; ``rootfs.py``) plus an ``/etc/pip.conf`` that sends pip to a wheelhouse
  (picket's dependencies as ``pip download`` gets them: wheels, and python-iptables as source),
  served over HTTP on the engine's bridge address while a build runs. The Dockerfile is used
  unmodified, by the README's own command ``docker build -t picket:dev .``.
* ``busybox:1.36``: the ``probe`` root file system (OpenBSD netcat, busybox httpd, socat for UDP echo).

Both are tagged with the names the Dockerfile and the README use, in the tier's own engine only.
Called by ``cluster.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path

from picket_lab.kind import engine, rootfs
from picket_lab.kind.layout import NETNS, KindError, Layout, run

Progress = Callable[[str], None]
PYTHON_STANDIN = "python:3.11-slim"
BUSYBOX_STANDIN = "busybox:1.36"
PICKET_IMAGE = "picket:dev"
WHEELHOUSE_PORT = 8765
BUILD_REQUIREMENTS = ("setuptools>=68", "wheel")


def requirements(repo: Path) -> list[str]:
    with open(repo / "pyproject.toml", "rb") as fh:
        project = tomllib.load(fh)
    return [*project["project"]["dependencies"], *BUILD_REQUIREMENTS]


def wheelhouse_dir(lay: Layout, reqs: list[str]) -> Path:
    return lay.cache / "kind-wheels" / hashlib.sha256("\n".join(sorted(reqs)).encode()).hexdigest()[:12]


def ensure_wheelhouse(lay: Layout, repo: Path, progress: Progress) -> Path:
    reqs = requirements(repo)
    target = wheelhouse_dir(lay, reqs)
    if (target / ".complete").exists():
        return target
    progress(f"kind: pip download of picket's dependencies into {target}")
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["python3", "-m", "pip", "download", "-q", "--disable-pip-version-check", "--dest",
                           str(target), *reqs], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KindError(f"pip download failed: {proc.stderr.strip()[-2000:]}")
    (target / ".complete").write_text("\n".join(reqs) + "\n")
    return target


def bridge_gateway() -> str:
    """docker0's address in the engine's namespace: what build containers reach the namespace by."""
    out = run(["ip", "-n", NETNS, "-4", "-o", "addr", "show", "dev", "docker0"])
    fields = out.stdout.split()
    return fields[fields.index("inet") + 1].split("/")[0]


@contextlib.contextmanager
def wheelhouse_server(lay: Layout, directory: Path) -> Iterator[str]:
    """Serve the wheelhouse on the engine's bridge address (inside the engine's namespace) while building."""
    address = bridge_gateway()
    url = f"http://{address}:{WHEELHOUSE_PORT}/"
    proc = subprocess.Popen(["ip", "netns", "exec", NETNS, "python3", "-m", "http.server", str(WHEELHOUSE_PORT),
                             "--bind", address, "--directory", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            probe = subprocess.run(["ip", "netns", "exec", NETNS, "python3", "-c",
                                    f"import urllib.request; urllib.request.urlopen({url!r}, timeout=1)"],
                                   capture_output=True, check=False)
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise KindError(f"the wheelhouse server on {url} did not start")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _build(lay: Layout, tag: str, dockerfile: str, files: dict[str, bytes | Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="picket-kind-ctx-") as tmp:
        ctx = Path(tmp)
        (ctx / "Dockerfile").write_text(dockerfile)
        for name, content in files.items():
            if isinstance(content, Path):
                shutil.copy2(content, ctx / name)
            else:
                (ctx / name).write_bytes(content)
        engine.docker(lay, "build", "-q", "-t", tag, str(ctx))


def _label(lay: Layout, ref: str, key: str) -> str:
    out = engine.docker(lay, "image", "inspect", ref, "--format", f'{{{{index .Config.Labels "{key}"}}}}', check=False)
    return out.stdout.strip() if out.returncode == 0 else ""


def ensure_python_standin(lay: Layout, url: str, progress: Progress) -> None:
    base = rootfs.ensure_image(lay, lambda *a, **k: engine.docker(lay, *a, **k), "python", progress)
    want = f"{base} {url} trusted"
    if _label(lay, PYTHON_STANDIN, "dev.picket.kind.standin") == want:
        return
    progress(f"kind: tagging a stand-in {PYTHON_STANDIN} (Debian's Python 3.11 + a pip.conf for the wheelhouse)")
    host = url.split("/")[2].split(":")[0]
    pip_conf = (f"[global]\nno-index = true\nfind-links = {url}\ntrusted-host = {host}\n"
                "disable-pip-version-check = true\n")
    _build(lay, PYTHON_STANDIN, f'FROM {base}\nCOPY pip.conf /etc/pip.conf\nLABEL dev.picket.kind.standin="{want}"\n'
           'CMD ["python3"]\n', {"pip.conf": pip_conf.encode()})


def ensure_busybox_standin(lay: Layout, progress: Progress) -> None:
    base = rootfs.ensure_image(lay, lambda *a, **k: engine.docker(lay, *a, **k), "probe", progress)
    if _label(lay, BUSYBOX_STANDIN, "dev.picket.kind.standin") == base:
        return
    progress(f"kind: tagging a stand-in {BUSYBOX_STANDIN} (OpenBSD netcat, busybox httpd)")
    links = " && ".join(f"ln -sf /bin/busybox /usr/local/bin/{a}" for a in ("httpd", "wget"))
    _build(lay, BUSYBOX_STANDIN, f'FROM {base}\nRUN {links}\nLABEL dev.picket.kind.standin="{base}"\nCMD ["sh"]\n', {})


def build_picket(lay: Layout, repo: Path, progress: Progress, env: dict[str, str]) -> float:
    """``docker build -t picket:dev .`` in the repository, as the README has it; returns seconds taken."""
    progress(f"kind: docker build -t {PICKET_IMAGE} . (the repository's Dockerfile)")
    began = time.monotonic()
    proc = subprocess.run(["ip", "netns", "exec", NETNS, "docker", "build", "-t", PICKET_IMAGE, "."], cwd=repo,
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise KindError(f"docker build of picket failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return time.monotonic() - began


def client_env(lay: Layout) -> dict[str, str]:
    """The environment of a command run for the user in the engine's namespace (kind, kubectl, docker)."""
    path = f"{lay.bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin:{os.environ.get('PATH', '')}"
    return {**os.environ, "PATH": path, "DOCKER_HOST": lay.docker_host, "KUBECONFIG": str(lay.kubeconfig)}

