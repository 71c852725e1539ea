"""No gap while rule sets are replaced and while the agent restarts (``pkt-agc-*``).

Two probers open a new TCP connection every 20 ms to x/a:80 the whole time: x/b (allowed) and
y/c (denied). Meanwhile the rules file is rewritten back and forth between two states that
give the same verdicts through different chains and ipset contents, and the agent is stopped
(SIGTERM, then SIGKILL) and started again. Every x/b attempt must succeed and every y/c
attempt must fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from picket.model import Compiled, Direction, Protocol
from tests.kernel.netns_topology import BACKENDS, Topology
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, pod, rule

pytestmark = pytest.mark.kernel
A, B, C = "10.73.1.2", "10.73.1.3", "10.73.1.4"


def state(variant: int) -> Compiled:
    web = ("NetworkPolicy x/web", (rule(proto=Protocol.TCP, port=("80",), peers=("clients",)),))
    other = ("NetworkPolicy x/metrics", (rule(proto=Protocol.TCP, port=(f"{9000 + variant}",), peers=("scrapers",)),))
    policies = (web, other) if variant % 2 else (other, web)
    clients = (B, f"10.73.9.{variant + 1}")  # membership changes each time: a swap every rewrite
    return compiled(
        [
            ep(pod("x/a", A, "n1"), ingress=k8s(Direction.INGRESS, *policies)),
            ep(pod("y/c", C, "n1"), egress=k8s(Direction.EGRESS, ("NetworkPolicy y/out", (rule(),)))),
        ],
        [ip_set("clients", *clients), ip_set("scrapers", f"10.73.8.{variant + 1}")],
    )


@pytest.fixture(params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Topology:
    t = Topology("agc", request.param)
    try:
        t.add_node("n1", "192.168.74.1")
        t.add_pod("x/a", A, "n1")
        t.add_pod("x/b", B, "n1")
        t.add_pod("y/c", C, "n1")
        t.listen("x/a", tcp=(80,))
        yield t
    finally:
        t.destroy()


def test_no_gap_while_replacing_rules_and_restarting(topo: Topology, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(state(0).to_dict()))
    topo.agent("n1", state(0))  # enforced before the probers start
    agent = topo.spawn_agent("n1", rules, "--resync-seconds", "1", "--min-sync-interval", "0")
    probers = {key: _prober(topo, key, 12.0) for key in ("x/b", "y/c")}
    variant = 0
    end = time.monotonic() + 10.0
    restarts = 0
    while time.monotonic() < end:
        variant += 1
        tmp = rules.with_suffix(".tmp")
        tmp.write_text(json.dumps(state(variant).to_dict()))
        tmp.replace(rules)  # atomic: the watcher never reads half a file
        time.sleep(0.3)
        if variant % 8 == 0:  # stop the agent (gently, then not) and start it again
            agent.terminate() if restarts % 2 == 0 else agent.kill()
            agent.wait(timeout=10)
            restarts += 1
            agent = topo.spawn_agent("n1", rules, "--resync-seconds", "1", "--min-sync-interval", "0")
    results = {key: json.loads(p.communicate(timeout=30)[0]) for key, p in probers.items()}
    agent.terminate()
    agent.wait(timeout=10)
    assert restarts >= 2 and variant >= 20
    assert results["x/b"]["ok"] > 100 and results["x/b"]["failed"] == 0, results
    assert results["y/c"]["ok"] == 0 and results["y/c"]["failed"] > 5, results


def _prober(topo: Topology, key: str, seconds: float) -> subprocess.Popen[str]:
    script = Path(__file__).with_name("prober.py")
    return subprocess.Popen(
        ["ip", "netns", "exec", topo.pods[key][0], sys.executable, str(script), A, "80", str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
