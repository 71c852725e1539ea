"""Fixtures of the kind tier (``-m kind``): a real kind cluster with picket deployed from its image.

``kind_engine`` (session): the Docker engine in its own network namespace; ``kind`` (session):
``picket_lab.kind.cluster.up`` (node image and picket's image built here, cluster ``picket``,
``manifests/`` applied), dual-stack (``manifests/kind/kind-config-dual.yaml``): every pod has an
IPv4 and an IPv6 address, the tests probe IPv4 unless they ask for IPv6 (``test_kind_dualstack.py``).
A healthy dual-stack cluster that was already up is reused and left running (one of another family is
created again), otherwise the session tears everything down at the end (cluster, containers, engine,
namespace).
``pods`` (module): probe pods on every node in namespaces x and y; policies a test applies are
removed by ``policies`` after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from picket_lab.kind import cluster, engine
from picket_lab.kind.layout import Layout, layout
from tests.kind.harness import REPO, Kind

PLACEMENT = {"x/a": "picket-worker", "x/b": "picket-worker2", "x/c": "picket-control-plane",
             "y/a": "picket-worker", "y/b": "picket-worker2"}


def say(message: str) -> None:
    print(message, flush=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/kind/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.kind)
    # The README test deletes the cluster (its last step): it runs after every test that uses it;
    # the teardown test stops the whole tier, last of all.
    last = ("test_readme_deploy_to_kind_verbatim", "test_down_leaves_nothing_behind")
    items.sort(key=lambda item: next((n + 1 for n, name in enumerate(last) if item.name.startswith(name)), 0))


@pytest.fixture(scope="session")
def kind_engine() -> Iterator[Layout]:
    """The engine (and the packages and binaries it needs); stopped at the end unless it was running before."""
    if os.geteuid() != 0:
        pytest.skip("the kind tier needs root (network namespaces, a Docker engine of its own)")
    lay = layout()
    was_up = engine.healthy(lay) and cluster.cluster_exists(lay)
    engine.ensure_packages(say)
    engine.start(lay, say)
    cluster.link_clients(lay)
    yield lay
    if not was_up:
        cluster.down(lay, say)


@pytest.fixture(scope="session")
def kind(kind_engine: Layout) -> Kind:
    timings = cluster.up(REPO, kind_engine, say, ip_family="dual")
    say(f"kind tier up: {timings.text()}")
    return Kind(kind_engine)


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
