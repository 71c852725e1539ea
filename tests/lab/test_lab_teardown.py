"""``lab down`` leaves nothing behind: no lab namespace, no root link, no process, no tmpfs.

Marked ``lab_destructive``: the fixture plugin runs these after every other test of the session,
and each brings the lab back up afterwards.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from picket.lab import lifecycle, network, procs
from picket.lab.api import Lab
from picket.lab.build import BuildResult
from picket.lab.controlplane import is_mounted
from picket.lab.paths import BINARIES, BuildPaths, build_paths
from picket.lab.shell import LabError

pytestmark = [pytest.mark.lab, pytest.mark.lab_destructive, pytest.mark.timeout(3600)]


def test_down_leaves_nothing_behind(lab: Lab) -> None:
    spawned = lab.spawn("lab-test-leftover", ["sleep", "600"], node=lab.nodes[0])
    daemons = procs.pidfile_pids(lab.run_dir)
    assert spawned.alive() and daemons
    try:
        lifecycle.down(lambda _: None)
        assert network.lab_namespaces() == []
        assert not network.root_link_exists()
        assert procs.marked_pids(lab.run_dir) == []
        assert not any(procs.alive(pid) for pid in [spawned.pid, *daemons.values()])
        assert not is_mounted(lab.layout.etcd_data)
        with pytest.raises(Exception, match="not up"):
            Lab.current()
    finally:
        lifecycle.up(len(lab.nodes), lambda _: None)
    assert Lab.current().nodes == lab.nodes


def test_a_component_dying_at_start_gives_one_message_and_leaves_nothing(
        lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = build_paths()
    broken = BuildPaths(real.kubernetes, real.etcd, tmp_path)
    broken.bin_dir.mkdir()
    for name in BINARIES:
        broken.binary(name).symlink_to(real.binary(name))
    broken.binary("etcd").unlink()
    broken.binary("etcd").write_text("#!/bin/sh\necho 'etcd: cannot start (test)'\nexit 3\n")
    broken.binary("etcd").chmod(0o755)
    monkeypatch.setattr(lifecycle, "ensure_built", lambda progress: BuildResult(broken, (), 0.0))
    try:
        lifecycle.down(lambda _: None)
        with pytest.raises(LabError, match=r"etcd exited during start-up \(exit code 3\); read .*etcd\.log"):
            lifecycle.up(2, lambda _: None)
        assert "cannot start (test)" in (lab.run_dir / "logs" / "etcd.log").read_text()
        assert network.lab_namespaces() == [] and not network.root_link_exists()
        assert procs.marked_pids(lab.run_dir) == [] and not is_mounted(lab.layout.etcd_data)
    finally:
        monkeypatch.undo()
        lifecycle.up(len(lab.nodes), lambda _: None)


def test_a_port_in_use_is_reported_before_anything_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        monkeypatch.setattr(lifecycle, "PORTS", {port: "kube-apiserver"})
        with pytest.raises(LabError, match=f"port {port} \\(for kube-apiserver\\) is already in use"):
            lifecycle.check_ports_free()
