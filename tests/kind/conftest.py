"""Fixtures of the kind tier (``-m kind``): a real kind cluster with picket deployed from its image.

``kind`` (session): ``picket_lab.kind.cluster.up`` (engine in its own network namespace, node image
and picket's image built here, cluster ``picket``, ``manifests/`` applied); a healthy cluster that
was already up is reused and left running, otherwise the session tears everything down at the end.
``pods`` (module): probe pods on every node in namespaces x and y; policies a test applies are
removed by ``policies`` after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from picket_lab.kind import cluster, engine
from picket_lab.kind.layout import layout
from tests.kind.harness import REPO, Kind

PLACEMENT = {"x/a": "picket-worker", "x/b": "picket-worker2", "x/c": "picket-control-plane",
             "y/a": "picket-worker", "y/b": "picket-worker2"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kind/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.kind)


@pytest.fixture(scope="session")
def kind() -> Iterator[Kind]:
    if os.geteuid() != 0:
        pytest.skip("the kind tier needs root (network namespaces, a Docker engine of its own)")
    lay = layout()
    was_up = engine.healthy(lay) and cluster.cluster_exists(lay)
    timings = cluster.up(REPO, lay, lambda m: print(m, flush=True))
    print(f"kind tier up: {timings.text()}", flush=True)
    yield Kind(lay)
    if not was_up:
        cluster.down(lay, lambda m: print(m, flush=True))


@pytest.fixture(scope="module")
def pods(kind: Kind) -> Iterator[list[str]]:
    kind.make_pods(PLACEMENT)
    yield list(PLACEMENT)
    for namespace in ("x", "y"):
        kind.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


@pytest.fixture
def policies(kind: Kind) -> Iterator[list[tuple[str, str]]]:
    """Append (namespace, name) of every NetworkPolicy the test creates; they are deleted after it."""
    made: list[tuple[str, str]] = []
    yield made
    for namespace, name in made:
        kind.delete("networkpolicy", name, namespace)
