"""Taking over a node from the previous version: legacy rules out, nft rules in, in one pass, no gap (``pkt-agm-*``).

The previous agent always wrote iptables-legacy rules. Here a node is "nft" the way kube-proxy's
wrapper tells (the kubelet's canary chain exists in the nft mangle table) and holds the old
agent's legacy chains and hooks. While two probers open a new TCP connection every 20 ms (x/b
allowed, y/c denied), the new agent runs once with the backend detected (``auto``): afterwards
picket's chains are in ``iptables-nft-save`` and gone from ``iptables-legacy-save``, every x/b
attempt succeeded and every y/c attempt failed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from picket.model import Compiled, Direction, Protocol
from tests.kernel.netns_topology import Topology
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, pod, rule

pytestmark = pytest.mark.kernel
A, B, C = "10.78.1.2", "10.78.1.3", "10.78.1.4"


def state() -> Compiled:
    web = ("NetworkPolicy x/web", (rule(proto=Protocol.TCP, port=("80",), peers=("clients",)),))
    return compiled(
        [ep(pod("x/a", A, "n1"), ingress=k8s(Direction.INGRESS, web)),
         ep(pod("y/c", C, "n1"), egress=k8s(Direction.EGRESS, ("NetworkPolicy y/out", (rule(),))))],
        [ip_set("clients", B)],
    )


@pytest.fixture()
def topo() -> Iterator[Topology]:
    t = Topology("agm", "legacy")
    try:
        t.add_node("n1", "192.168.78.1")
        for key, ip in (("x/a", A), ("x/b", B), ("y/c", C)):
            t.add_pod(key, ip, "n1")
        t.listen("x/a", tcp=(80,))
        yield t
    finally:
        t.destroy()


def picket_lines(save: str) -> list[str]:
    return [line for line in save.splitlines() if "PICKET-" in line]


def test_legacy_rules_are_replaced_by_nft_rules_in_one_pass_without_a_gap(topo: Topology) -> None:
    topo.agent("n1", state())  # the "previous version": legacy rules
    assert picket_lines(topo.save())
    # The kubelet's canary in nft: kube-proxy's wrapper (and our detection) call this node nft.
    topo.in_node("n1", "iptables-nft", "-t", "mangle", "-N", "KUBE-KUBELET-CANARY")
    probers = {key: _prober(topo, key, 5.0) for key in ("x/b", "y/c")}
    time.sleep(1.5)
    topo.backend = "auto"
    out = topo.agent("n1", state())
    results = {key: json.loads(p.communicate(timeout=30)[0]) for key, p in probers.items()}
    assert "iptables backend: nft" in out.stderr and "legacy chains removed=" in out.stderr, out.stderr
    topo.backend = "legacy"
    assert not picket_lines(topo.save()), "the old legacy chains and hooks are gone"
    topo.backend = "nft"
    nft = topo.save()
    assert "-A FORWARD -m comment --comment \"picket: forward policy\" -j PICKET-FORWARD" in nft
    assert any(line.startswith(":PICKET-TIER") for line in nft.splitlines())
    assert results["x/b"]["ok"] > 100 and results["x/b"]["failed"] == 0, results
    assert results["y/c"]["ok"] == 0 and results["y/c"]["failed"] > 2, results
    # and the nft rules alone enforce
    assert topo.probe("x/b", "x/a", "tcp", 80) and not topo.probe("y/c", "x/a", "tcp", 80)


def _prober(topo: Topology, key: str, seconds: float) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("prober.py")
    return subprocess.Popen(
        ["ip", "netns", "exec", topo.pods[key][0], sys.executable, str(script), A, "80", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
