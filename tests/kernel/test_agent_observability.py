"""Drop log lines and Prometheus drop counters, from real dropped packets (``pkt-ago-*``)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from picket.model import Direction, Protocol
from tests.kernel.netns_topology import BACKENDS, Topology
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, pod, rule

pytestmark = pytest.mark.kernel
A, B = "10.74.1.2", "10.74.1.3"


@pytest.fixture(params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Topology:
    t = Topology("ago", request.param)
    try:
        t.add_node("n1", "192.168.75.1")
        t.add_pod("x/a", A, "n1")
        t.add_pod("x/b", B, "n1")
        t.listen("x/a", tcp=(80, 81))
        yield t
    finally:
        t.destroy()


def test_drops_are_logged_and_counted(topo: Topology, tmp_path: Path) -> None:
    state = compiled(
        [
            ep(
                pod("x/a", A, "n1"),
                ingress=k8s(
                    Direction.INGRESS,
                    ("NetworkPolicy x/web", (rule(proto=Protocol.TCP, port=("81",), peers=("clients",)),)),
                ),
            ),
            ep(pod("x/b", B, "n1")),
        ],
        [ip_set("clients", B)],
    )
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(state.to_dict()))
    agent = topo.spawn_agent("n1", rules, "--log-drops", "--metrics-port", "9465")
    try:
        _wait(lambda: "PICKET-DROP" in topo.save("n1"))
        time.sleep(0.5)  # the NFLOG socket binds in its own thread
        assert topo.probe("x/b", "x/a", "tcp", 81)
        assert not topo.probe("x/b", "x/a", "tcp", 80)
        scrape = topo.in_node(
            "n1",
            "python3",
            "-c",
            "import urllib.request as u;print(u.urlopen('http://127.0.0.1:9465/metrics').read().decode())",
        ).stdout
    finally:
        agent.terminate()
        out, err = agent.communicate(timeout=10)
    assert "DROP x/b -> x/a tcp/80 ingress: no policy of tier k8s allows it" in out, out + err
    line = next(ln for ln in scrape.splitlines() if ln.startswith("picket_dropped_packets_total{"))
    assert 'endpoint="x/a"' in line and 'direction="ingress"' in line and 'policy="tier k8s default"' in line
    assert float(line.rsplit(" ", 1)[1]) >= 1
    assert 'picket_agent_syncs_total{result="ok"}' in scrape


def _wait(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_audit_mode_logs_and_counts_would_be_drops_without_dropping(topo: Topology, tmp_path: Path) -> None:
    """x/a's only policy is staged (audit mode): a default deny with port 81 allowed from x/b.
    Nothing is dropped: both ports answer, over IPv4. The port-80 connection is logged as a
    would-be drop naming the staged policy, and counted; the port-81 one is not."""
    from picket.model import EndpointRules

    staged = k8s(Direction.INGRESS,
                 ("NetworkPolicy x/web", (rule(proto=Protocol.TCP, port=("81",), peers=("clients",)),)))
    state = compiled([EndpointRules(pod("x/a", A, "n1"), staged_ingress=staged), ep(pod("x/b", B, "n1"))],
                     [ip_set("clients", B)])
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(state.to_dict()))
    agent = topo.spawn_agent("n1", rules, "--metrics-port", "9466")  # no --log-drops: audit logs anyway
    try:
        _wait(lambda: "PICKET-AUDIT-INGRESS" in topo.save("n1"))
        time.sleep(0.5)  # the NFLOG socket binds in its own thread
        assert topo.probe("x/b", "x/a", "tcp", 81)
        assert topo.probe("x/b", "x/a", "tcp", 80), "audit mode must never drop"
        time.sleep(1.5)  # nfnetlink_log batches: a lone packet is flushed after its 1 s timeout
        scrape = topo.in_node(
            "n1", "python3", "-c",
            "import urllib.request as u;print(u.urlopen('http://127.0.0.1:9466/metrics').read().decode())",
        ).stdout
    finally:
        agent.terminate()
        out, err = agent.communicate(timeout=10)
    assert ("WOULD DROP x/b -> x/a tcp/80 ingress: no policy of tier k8s allows it "
            "(staged: NetworkPolicy x/web)") in out, out + err
    assert "tcp/81" not in out
    line = next(ln for ln in scrape.splitlines() if ln.startswith("picket_audit_would_drop_packets_total{"))
    assert 'endpoint="x/a"' in line and 'policy="tier k8s default"' in line and float(line.rsplit(" ", 1)[1]) >= 1
    assert not [ln for ln in scrape.splitlines() if ln.startswith("picket_dropped_packets_total{")]
