"""Running the ``ip`` tool (and friends) with readable errors.

Every kernel change of the lab goes through here, so failures name the command and its stderr.
``ip_batch`` feeds several ``ip`` commands to one process (optionally inside a namespace).
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class LabError(RuntimeError):
    """A failure of the lab, worded for the user (names what failed and the log to read)."""


def run(argv: Sequence[str], check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"command failed ({proc.returncode}): {' '.join(argv)}: {proc.stderr.strip()}")
    return proc


def ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    return run([*prefix, *args], check=check)


def ip_batch(commands: Sequence[str], netns: str | None = None) -> None:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    run([*prefix, "-batch", "-"], stdin="\n".join(commands) + "\n")


def sysctl_in(netns: str, key: str, value: str) -> None:
    """A sysctl inside a lab namespace (never the root one)."""
    run(["ip", "netns", "exec", netns, "sysctl", "-qw", f"{key}={value}"])
