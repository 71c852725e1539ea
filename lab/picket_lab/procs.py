"""Background processes of the lab: start with a log and a pidfile, find, stop.

Every process gets ``PICKET_LAB_RUN_DIR=<run dir>`` in its environment (the marker) and writes
its output to ``<run dir>/logs/<name>.log``; its pid goes to ``<run dir>/pids/<name>.pid``.
``stop_all`` kills what the pidfiles name *and* whatever ``/proc`` shows carrying the marker, so
leftovers of a crashed run (lost pidfiles) are found too. Inside a node, processes are started
through ``ip netns exec`` (which execs, so the pid is the program's own).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

MARKER = "PICKET_LAB_RUN_DIR"


@dataclass(frozen=True)
class Started:
    name: str
    pid: int
    log: Path


def log_path(run_dir: Path, name: str) -> Path:
    return run_dir / "logs" / f"{name}.log"


def pidfile(run_dir: Path, name: str) -> Path:
    return run_dir / "pids" / f"{name}.pid"


def start(run_dir: Path, name: str, argv: Sequence[str], netns: str | None = None,
          env: Mapping[str, str] | None = None) -> Started:
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    log = log_path(run_dir, name)
    # nsenter (not ``ip netns exec``): only the network namespace changes; ``ip netns exec`` would
    # also give the process a private mount namespace, hiding the netns it creates from everyone else.
    full = ["nsenter", f"--net=/run/netns/{netns}", "--", *argv] if netns else list(argv)
    environ = {**os.environ, **(env or {}), MARKER: str(run_dir)}
    with open(log, "ab") as out:
        proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=environ, start_new_session=True)
    _children[proc.pid] = proc
    pidfile(run_dir, name).write_text(f"{proc.pid}\n")
    return Started(name, proc.pid, log)


# Our children stay referenced: a dropped Popen lands in subprocess' own list of children to reap,
# and the next Popen anywhere in this process reaps it there, losing the exit status we report.
_children: dict[int, subprocess.Popen[bytes]] = {}
_exit_status: dict[int, int] = {}


def alive(pid: int) -> bool:
    """True while the process runs; reaps it (keeping its status) if it is our own exited child."""
    child = _children.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        code = child.returncode
        _exit_status[pid] = (-code & 0x7F) if code < 0 else (code << 8)  # as os.waitpid reports it
        return False
    with contextlib.suppress(ChildProcessError):
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            _exit_status[pid] = status
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def how_it_ended(pid: int) -> str:
    """"exit code 1", "killed by SIGKILL", or "" when unknown (not our child, or still running)."""
    status = _exit_status.get(pid)
    if status is None:
        return ""
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit code {os.WEXITSTATUS(status)}"


def pidfile_pids(run_dir: Path) -> dict[str, int]:
    found = {}
    for f in sorted((run_dir / "pids").glob("*.pid")) if (run_dir / "pids").is_dir() else []:
        with contextlib.suppress(ValueError, OSError):
            found[f.stem] = int(f.read_text().strip())
    return found


def is_ours(pid: int, run_dir: Path) -> bool:
    try:
        return f"{MARKER}={run_dir}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def marked_pids(run_dir: Path) -> list[int]:
    """Processes whose environment carries our marker (never this process or its parent)."""
    own = {os.getpid(), os.getppid()}
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) not in own and is_ours(int(e), run_dir)]


def stop(pids: Sequence[int], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL whatever is left after ``grace`` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = [p for p in pids if alive(p)]
        if not pids:
            return


def stop_all(run_dir: Path, rounds: int = 5) -> list[int]:
    """Stop every process of the lab; scans again after each round, since a dying node runtime may
    have just forked a short-lived child (which inherits the marker)."""
    stopped: list[int] = []
    recorded = {p for p in pidfile_pids(run_dir).values() if is_ours(p, run_dir)}  # a pid may have been reused
    for _ in range(rounds):
        pids = [p for p in sorted(recorded | set(marked_pids(run_dir))) if alive(p)]
        if not pids:
            break
        stop(pids)
        stopped += pids
        recorded = set()
    for f in (run_dir / "pids").glob("*.pid") if (run_dir / "pids").is_dir() else []:
        f.unlink(missing_ok=True)
    return stopped
