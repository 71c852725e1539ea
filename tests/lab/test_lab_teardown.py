"""``lab down`` leaves nothing behind, and a failed ``lab up`` cleans up after itself.

These take the lab down, so they are marked ``lab_destructive``: the fixture plugin runs them
*first* in the session, before any test (or session fixture, like the e2e deployment) uses the
shared ``lab``; they bring up and take down their own lab, and restore one that was running.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from picket_lab import lifecycle, network, procs
from picket_lab.api import Lab, LabNotRunning
from picket_lab.build import BuildResult, ensure_built
from picket_lab.controlplane import is_mounted
from picket_lab.paths import BINARIES, BuildPaths, build_paths, run_layout
from picket_lab.shell import LabError
from picket_lab.state import read_state

pytestmark = [pytest.mark.lab, pytest.mark.lab_destructive, pytest.mark.timeout(3600)]


def quiet(_: str) -> None:
    pass


@pytest.fixture
def own_lab() -> Iterator[None]:
    """Root and binaries; afterwards, a lab that was running before is running again."""
    if os.geteuid() != 0:
        pytest.skip("the local cluster needs root")
    ensure_built(quiet)
    layout = run_layout()
    before = read_state(layout.state)
    was_up = before is not None and lifecycle.healthy(layout, before)
    yield
    if was_up and before is not None:
        lifecycle.up(before.node_count, quiet)
    else:
        lifecycle.down(quiet)


def assert_nothing_left(run_dir: Path) -> None:
    assert network.lab_namespaces() == []
    assert not network.root_link_exists()
    assert procs.marked_pids(run_dir) == []
    assert not is_mounted(run_layout().etcd_data)


@pytest.mark.usefixtures("own_lab")
def test_down_leaves_nothing_behind() -> None:
    lifecycle.up(2, quiet)
    lab = Lab.current()
    spawned = lab.spawn("lab-test-leftover", ["sleep", "600"], node=lab.nodes[0])
    daemons = procs.pidfile_pids(lab.run_dir)
    assert spawned.alive() and len(daemons) >= 6
    lifecycle.down(quiet)
    assert_nothing_left(lab.run_dir)
    assert not any(procs.alive(pid) for pid in [spawned.pid, *daemons.values()])
    with pytest.raises(LabNotRunning):
        Lab.current()


@pytest.mark.usefixtures("own_lab")
def test_a_component_dying_at_start_gives_one_message_and_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = build_paths()
    broken = BuildPaths(real.kubernetes, real.etcd, tmp_path)
    broken.bin_dir.mkdir()
    for name in BINARIES:
        broken.binary(name).symlink_to(real.binary(name))
    broken.binary("etcd").unlink()
    broken.binary("etcd").write_text("#!/bin/sh\necho 'etcd: cannot start (test)'\nexit 3\n")
    broken.binary("etcd").chmod(0o755)
    monkeypatch.setattr(lifecycle, "ensure_built", lambda progress: BuildResult(broken, (), 0.0))
    lifecycle.down(quiet)
    with pytest.raises(LabError, match=r"etcd exited during start-up \(exit code 3\); read .*etcd\.log"):
        lifecycle.up(2, quiet)
    run_dir = run_layout().root
    assert "cannot start (test)" in (run_dir / "logs" / "etcd.log").read_text()
    assert_nothing_left(run_dir)


def test_a_port_in_use_is_reported_before_anything_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        monkeypatch.setattr(lifecycle, "PORTS", {port: "kube-apiserver"})
        with pytest.raises(LabError, match=f"port {port} \\(for kube-apiserver\\) is already in use"):
            lifecycle.check_ports_free()
