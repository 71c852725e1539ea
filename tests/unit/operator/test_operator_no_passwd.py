"""The operator starts as a uid without a passwd entry (manifests/ run it as 65532, the image has no such user).

kopf names its own peering identity with ``getpass.getuser()`` unless it is given one, and that raises
KeyError for a uid without a passwd entry and without USER/LOGNAME: the operator crash-looped on kind.
The process here is the real ``picket operator``, in a mount namespace of its own whose /etc/passwd
is empty and whose nsswitch.conf reads only files (nss-systemd would make up an entry for root), so
its uid has no entry, as 65532 has none in the image; it has the environment a container gets
(no USER, LOGNAME or POD_ID), against an API server that does not answer: it must get past kopf's
start-up (kopf's login activity runs) instead of dying with the KeyError.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:9", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: not-a-token}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a mount namespace with an empty /etc/passwd")
@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_operator_starts_as_uid_without_passwd_entry(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    empty = tmp_path / "passwd"
    empty.write_text("")
    nsswitch = tmp_path / "nsswitch.conf"
    nsswitch.write_text("passwd: files\ngroup: files\nhosts: files\n")
    operator = [sys.executable, "-m", "picket.cli", "operator", "--kubeconfig", str(kubeconfig), "--log-level", "INFO"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/", "PYTHONUNBUFFERED": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$0" /etc/passwd && mount --bind "$1" /etc/nsswitch.conf && shift && exec "$@"',
         str(empty), str(nsswitch), *operator],
        env=env, cwd="/",
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            lines.append(line)
            if "Initial authentication has finished" in line or "Traceback" in line or time.monotonic() > deadline:
                break
    finally:
        proc.kill()
        rest, _ = proc.communicate(timeout=10)
        lines.append(rest or "")
    output = "".join(lines)
    assert "getpwuid" not in output, output
    assert "KeyError" not in output, output
    assert "Initial authentication has finished" in output, output
