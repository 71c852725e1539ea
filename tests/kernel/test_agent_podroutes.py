"""The agent's pod routes (``--pod-network``) in a throwaway network namespace: picket's own, and only those.

``kernel/podroutes.sync`` runs inside the namespace (``ip netns exec``); a route someone else put
there (another protocol) must survive every sync, picket's stale ones must go.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

NS = "pkt-agroutes"
pytestmark = pytest.mark.kernel


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    sh("ip", "netns", "add", NS)
    sh("ip", "-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    sh("ip", "-n", NS, "link", "set", "eth1", "up")
    sh("ip", "-n", NS, "addr", "add", "172.18.0.4/16", "dev", "eth0")
    sh("ip", "-n", NS, "link", "set", "eth0", "up")
    yield NS
    sh("ip", "netns", "del", NS)


def sync(desired: dict[str, str]) -> None:
    code = f"from picket_agent.kernel import podroutes; print(podroutes.sync({desired!r}))"
    subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c", code], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


def routes() -> set[str]:
    return {" ".join(line.split()) for line in sh("ip", "-n", NS, "-4", "route", "show").splitlines()
            if "proto 91" in line or "proto static" in line}


def test_sync_replaces_and_removes_only_picket_routes(netns: str) -> None:
    sh("ip", "-n", NS, "route", "add", "10.99.0.0/24", "via", "172.18.0.9", "proto", "static")
    sync({"10.244.0.0/24": "172.18.0.3", "10.244.2.0/24": "172.18.0.2"})
    assert routes() == {"10.99.0.0/24 via 172.18.0.9 dev eth0 proto static",
                        "10.244.0.0/24 via 172.18.0.3 dev eth0 proto 91",
                        "10.244.2.0/24 via 172.18.0.2 dev eth0 proto 91"}
    sync({"10.244.0.0/24": "172.18.0.7"})  # a node moved, another left
    assert routes() == {"10.99.0.0/24 via 172.18.0.9 dev eth0 proto static",
                        "10.244.0.0/24 via 172.18.0.7 dev eth0 proto 91"}
    sync({})
    assert routes() == {"10.99.0.0/24 via 172.18.0.9 dev eth0 proto static"}
