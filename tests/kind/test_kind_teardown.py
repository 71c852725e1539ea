"""``picket kind down`` leaves nothing behind: no cluster containers, no dockerd, no process in the
engine's network namespace, no namespace, no mount of the engine's. Runs last (it stops the tier)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from picket_lab.kind import cluster, engine
from picket_lab.kind.layout import Layout

pytestmark = [pytest.mark.kind, pytest.mark.timeout(600)]


def test_down_leaves_nothing_behind(kind_engine: Layout) -> None:
    lay = kind_engine
    engine.start(lay, print)
    inode = engine.netns_inode()
    assert inode is not None and engine.pids_in_netns(inode), "the engine runs in its namespace"
    dockerd = int(lay.pidfile.read_text())
    cluster.down(lay, print)
    assert not Path("/run/netns/pkt-kind").exists()
    assert engine.pids_in_netns(inode) == []
    assert not Path(f"/proc/{dockerd}/cmdline").exists() or not Path(f"/proc/{dockerd}/cmdline").read_bytes()
    assert not lay.pidfile.exists() and not lay.socket.exists() and not lay.exec_root.exists()
    mounts = Path("/proc/self/mounts").read_text()
    assert str(lay.exec_root) not in mounts and str(lay.data_root) not in mounts
    assert all(str(lay.run) not in line for line in mounts.splitlines()), mounts
    assert os.path.isdir(lay.data_root), "images stay cached"
