"""A lab process that dies keeps its exit status for the error message, even when other
subprocesses are started meanwhile (subprocess reaps dropped children it knows of)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from picket_lab import procs


def test_exit_status_survives_other_subprocesses(tmp_path: Path) -> None:
    started = procs.start(tmp_path, "dies", ["sh", "-c", "sleep 0.2; exit 3"])
    time.sleep(0.6)
    subprocess.run(["true"], check=True)  # the next Popen anywhere reaps children subprocess tracks
    assert not procs.alive(started.pid)
    assert procs.how_it_ended(started.pid) == "exit code 3"


def test_a_signal_is_named(tmp_path: Path) -> None:
    started = procs.start(tmp_path, "killed", ["sh", "-c", "kill -KILL $$"])
    deadline = time.monotonic() + 5
    while procs.alive(started.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert procs.how_it_ended(started.pid) == "killed by SIGKILL"


def test_up_and_down_do_not_wait_for_a_session_lock_held_around_them(tmp_path: Path) -> None:
    """`flock /run/picket-lab.lock pytest tests/e2e` must not deadlock with the lab's own up/down lock."""
    import fcntl
    import threading

    from picket_lab import lifecycle
    from picket_lab.paths import RunLayout

    layout = RunLayout(tmp_path / "picket-lab")
    with open(tmp_path / "picket-lab.lock", "w") as session:
        fcntl.flock(session, fcntl.LOCK_EX)
        entered = threading.Event()

        def up_or_down() -> None:
            with lifecycle._exclusive(layout):
                entered.set()

        threading.Thread(target=up_or_down, daemon=True).start()
        assert entered.wait(5), "the up/down lock waited for the session lock"
