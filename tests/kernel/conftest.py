"""Kernel tests: root only; each module builds its own ``pkt-`` namespaces and removes them."""

from __future__ import annotations

import os

import pytest

from tests.kernel.netns_topology import sweep


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kernel/" in str(item.fspath) and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="kernel tests need root (CI runs them as root)"))


@pytest.fixture(scope="session", autouse=True)
def _sweep_leftovers() -> None:
    if os.geteuid() == 0:
        sweep("pkt-ag")  # this suite's prefix only: other suites may be running
