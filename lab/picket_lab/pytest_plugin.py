"""pytest plugin: the session-scoped ``lab`` fixture (registered from tests/conftest.py).

The fixture cleans what an earlier crashed run left, builds the binaries if the cache misses
them (progress goes straight to the terminal, since the first build takes minutes), brings up a
2-node lab once per session and tears it down at the end, also when tests fail. A healthy 2-node
lab that is already running (``picket lab up`` by a developer) is reused and left running.
Without root it skips. Tests using it carry ``@pytest.mark.lab``; the binaries are built right
after collection (outside any test's timeout) when a selected test uses the fixture. Tests that
take the lab down carry ``lab_destructive`` and run first, before the shared lab is up.
At the end, the fixture checks that ``lab down`` left nothing behind. ``wait_for`` polls.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from picket_lab import lifecycle, network, procs
from picket_lab.api import Lab
from picket_lab.build import BuildError, ensure_built, missing_binaries
from picket_lab.paths import build_paths, run_layout
from picket_lab.state import read_state
from picket_lab.topology import ROOT_LINK

T = TypeVar("T")
LAB_NODES = 2
DESTRUCTIVE = "lab_destructive"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{DESTRUCTIVE}: takes the lab down; runs first, before the shared lab exists")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take the lab down run before every other test of the session, so no session
    fixture built on the shared lab (an operator deployment, ...) sees its processes killed."""
    items.sort(key=lambda item: item.get_closest_marker(DESTRUCTIVE) is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build missing binaries before the first test, so the cold build counts against no test's timeout.

    Only when a selected test uses the ``lab`` fixture; a failure is printed here and raised again
    (as a test error) by the fixture.
    """
    if session.config.option.collectonly:
        return
    wants_lab = any("lab" in getattr(item, "fixturenames", ()) for item in session.items)
    if wants_lab and os.geteuid() == 0 and missing_binaries(build_paths()):
        try:
            ensure_built(_progress)
        except BuildError as err:
            _progress(str(err))


def _progress(message: str) -> None:
    print(f"\n[lab] {message}", file=sys.__stderr__, flush=True)


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``condition`` until it returns something truthy; fail the test naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    if os.geteuid() != 0:
        pytest.skip("the local cluster needs root")
    layout = run_layout()
    state = read_state(layout.state)
    if state is not None and state.node_count == LAB_NODES and lifecycle.healthy(layout, state):
        _progress("reusing the lab that is already running (it stays up after the tests)")
        yield Lab.current()
        return
    ensure_built(_progress)
    lifecycle.up(LAB_NODES, _progress)  # removes what a crashed run left behind first
    try:
        yield Lab.current()
    finally:
        lifecycle.down(_progress)
        _assert_nothing_left(layout.root)


def _assert_nothing_left(run_dir: Path) -> None:
    left = network.lab_namespaces() + ([ROOT_LINK] if network.root_link_exists() else [])
    left += [f"process {pid}" for pid in procs.marked_pids(run_dir)]
    assert not left, f"'lab down' left behind: {', '.join(left)}"
