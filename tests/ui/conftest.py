"""Fixtures for the UI tests: a ``picket ui`` server on a cluster file (offline), and Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.ui.server import UiServer, serve
from picket_operator.ui.store import FileStore
from tests.ui import browser

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


def seed_objects(example: str, with_policy: bool) -> list[dict[str, Any]]:
    objects = load_cluster_file(EXAMPLES / example / "cluster.yaml")
    return [o for o in objects if with_policy or o.get("kind") != "NetworkPolicy"]


@pytest.fixture
def offline_server() -> Iterator[Any]:
    servers: list[UiServer] = []

    def start(example: str, with_policy: bool = False, extra: list[dict[str, Any]] | None = None) -> UiServer:
        server = serve(FileStore([*seed_objects(example, with_policy), *(extra or [])], f"examples/{example}"))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    why = browser.available()
    if why is not None:
        pytest.fail(f"the browser tests need Chromium and Selenium: {why}")
    with browser.chromium() as driver:
        yield driver
