"""``lab down`` leaves nothing behind: no lab namespace, no root link, no process, no tmpfs.

Runs after the other lab tests of this directory; it brings the lab back up afterwards so that
tests later in the session still find it.
"""

from __future__ import annotations

import pytest

from picket.lab import lifecycle, network, procs
from picket.lab.api import Lab
from picket.lab.controlplane import is_mounted

pytestmark = [pytest.mark.lab, pytest.mark.timeout(3600)]


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
