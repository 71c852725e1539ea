"""The agent's pod routes (``--pod-network``) in a throwaway network namespace: picket's own, and only those.

``kernel/podroutes.sync`` runs inside the namespace (``ip netns exec``); a route someone else put
there (another protocol) must survive every sync, picket's stale ones must go. Both families: the
namespace's ``eth0`` (one end of a veth pair whose other end is up too) has an IPv4 address and a
global IPv6 one (``nodad``, and duplicate address detection off in the namespace, so nothing is
tentative), and the IPv6 podCIDRs go via global gateways on that link, as on a dual-stack kind
node (the other nodes' IPv6 InternalIPs on the shared docker network). The namespace's name
carries this process's pid (``pkt-<tag>-<pid>-``), so a concurrent session's sweep leaves it alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

NS = f"pkt-agrt-{os.getpid()}-n"
pytestmark = pytest.mark.kernel


def sh(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True).stdout


@pytest.fixture
def netns() -> Iterator[str]:
    subprocess.run(["ip", "netns", "del", NS], capture_output=True, check=False)
    sh("ip", "netns", "add", NS)
    for scope in ("all", "default"):  # inside the test's namespace only
        sh("ip", "netns", "exec", NS, "sysctl", "-qw", f"net.ipv6.conf.{scope}.accept_dad=0")
    sh("ip", "-n", NS, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
    sh("ip", "-n", NS, "link", "set", "eth1", "up")
    sh("ip", "-n", NS, "addr", "add", "172.18.0.4/16", "dev", "eth0")
    sh("ip", "-n", NS, "addr", "add", "fc00:f853:ccd:e793::4/64", "dev", "eth0", "nodad")
    sh("ip", "-n", NS, "link", "set", "eth0", "up")
    yield NS
    sh("ip", "netns", "del", NS)


def sync(desired: dict[str, str]) -> str:
    code = f"from picket_agent.kernel import podroutes; print(podroutes.sync({desired!r}))"
    return subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c", code], check=True, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}).stdout.strip()


def routes(family: str = "-4") -> set[str]:
    """``dst via gateway dev proto`` of picket's (proto 91) and the foreign (proto static) routes."""
    found = set()
    for line in sh("ip", "-n", NS, family, "route", "show").splitlines():
        words = line.split()
        if "proto" in words and words[words.index("proto") + 1] in ("91", "static"):
            found.add(" ".join(words[:words.index("proto") + 2]))
    return found


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


def test_sync_handles_both_families_and_leaves_foreign_ipv6_routes_alone(netns: str) -> None:
    foreign4 = "10.99.0.0/24 via 172.18.0.9 dev eth0 proto static"
    foreign6 = "fd00:99::/64 via fc00:f853:ccd:e793::9 dev eth0 proto static"
    sh("ip", "-n", NS, "route", "add", "10.99.0.0/24", "via", "172.18.0.9", "proto", "static")
    sh("ip", "-n", NS, "-6", "route", "add", "fd00:99::/64", "via", "fc00:f853:ccd:e793::9", "proto", "static")
    dual = {"10.244.0.0/24": "172.18.0.3", "fd00:10:244::/64": "fc00:f853:ccd:e793::3",
            "10.244.2.0/24": "172.18.0.2", "fd00:10:244:2::/64": "fc00:f853:ccd:e793::2"}
    assert sync(dual) == "(4, 0)"
    assert routes("-4") == {foreign4, "10.244.0.0/24 via 172.18.0.3 dev eth0 proto 91",
                            "10.244.2.0/24 via 172.18.0.2 dev eth0 proto 91"}
    assert routes("-6") == {foreign6, "fd00:10:244::/64 via fc00:f853:ccd:e793::3 dev eth0 proto 91",
                            "fd00:10:244:2::/64 via fc00:f853:ccd:e793::2 dev eth0 proto 91"}
    assert sync(dual) == "(4, 0)"  # nothing stale the second time
    # a node's IPv6 InternalIP changed (written uncompressed: compared in canonical form), another node left
    assert sync({"10.244.0.0/24": "172.18.0.3", "fd00:10:244:0::/64": "fc00:f853:0ccd:e793:0:0:0:7"}) == "(2, 3)"
    assert routes("-4") == {foreign4, "10.244.0.0/24 via 172.18.0.3 dev eth0 proto 91"}
    assert routes("-6") == {foreign6, "fd00:10:244::/64 via fc00:f853:ccd:e793::7 dev eth0 proto 91"}
    assert sync({}) == "(0, 2)"
    assert routes("-4") == {foreign4}
    assert routes("-6") == {foreign6}
