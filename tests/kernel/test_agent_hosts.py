"""Real packets to a host endpoint: failsafe ports, deny-all, an allow from a peer set.

Topology (namespaces ``pkt-agh-*``): nodes n1 and n2 joined by ``pklink`` (192.168.210.1/.2, the
nodes' addresses, like the lab's eth0); pods x/a (labelled ``calico-prometheus-access: "true"``)
and x/b on n1, x/c (labelled) and x/d on n2. n1's host namespace serves TCP 22 (failsafe), 9091
(metrics) and 8080 (something else). The objects are Calico YAML compiled by the real compiler
(``compile_cluster``) and applied on each node with ``picket agent --rules F --once``, so the
traffic enters n1's INPUT from its own pods (over their veths), from n2's pods (forwarded by n2,
in on pklink) and from n2's host itself. Every probe must equal the evaluator's verdict on the
compiled model AND the hand-written expectation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from picket.evaluating import connection_allowed
from picket.model import Compiled, Protocol
from picket_operator.compiler.compiling import compile_cluster
from tests.kernel.netns_topology import BACKENDS, Topology

pytestmark = pytest.mark.kernel

N1, N2 = "192.168.210.1", "192.168.210.2"
PODS = {"x/a": ("10.72.1.2", "n1", True), "x/b": ("10.72.1.3", "n1", False),
        "x/c": ("10.72.2.2", "n2", True), "x/d": ("10.72.2.3", "n2", False)}
SOURCES = [*PODS, "host n2"]
PORTS = (22, 9091, 8080)
LABELLED = {"x/a", "x/c"}


def _objects(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}]
    for key, (ip, node, labelled) in PODS.items():
        ns, name = key.split("/")
        labels = {"calico-prometheus-access": "true"} if labelled else {}
        out.append({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": labels},
                    "spec": {"nodeName": node, "containers": [{"name": "c"}]},
                    "status": {"phase": "Running", "podIP": ip}})
    out.append({"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
                "metadata": {"name": "n1.pklink", "labels": {"running-calico": "true"}},
                "spec": {"node": "n1", "interfaceName": "pklink", "expectedIPs": [N1]}})
    return out + list(extra)


def _gnp(name: str, ingress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
            "spec": {"selector": 'running-calico == "true"', "order": 500, "types": ["Ingress"], "ingress": ingress}}


DENY_ALL = _gnp("deny-all", [{"action": "Deny"}])
ALLOW_METRICS = _gnp("allow-metrics", [{"action": "Allow", "protocol": "TCP",
                                        "source": {"selector": 'calico-prometheus-access == "true"'},
                                        "destination": {"ports": [9091]}}])
N2_SET = {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkSet",
          "metadata": {"name": "n2", "labels": {"calico-prometheus-access": "true"}}, "spec": {"nets": [f"{N2}/32"]}}

# name -> (objects, who reaches n1 on each port: hand-written)
CASES: dict[str, tuple[list[dict[str, Any]], Callable[[str, int], bool]]] = {
    "no policy: only failsafe ports": (_objects(), lambda s, port: port == 22),
    "deny-all policy: failsafe 22 still open": (_objects(DENY_ALL), lambda s, port: port == 22),
    "allow 9091 from the labelled peer set": (
        _objects(ALLOW_METRICS), lambda s, port: port == 22 or (port == 9091 and s in LABELLED)),
    "a GlobalNetworkSet adds n2's host to the peer set": (
        _objects(ALLOW_METRICS, N2_SET),
        lambda s, port: port == 22 or (port == 9091 and (s in LABELLED or s == "host n2"))),
}


@pytest.fixture(scope="module", params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Iterator[Topology]:
    t = Topology("agh", request.param)
    try:
        t.add_node("n1", "192.168.73.1")
        t.add_node("n2", "192.168.74.1")
        t.link_nodes("n1", N1, "n2", N2, {"n1": ["10.72.2.0/24"], "n2": ["10.72.1.0/24"]})
        for key, (ip, node, _) in PODS.items():
            t.add_pod(key, ip, node)
        for port in PORTS:  # served by n1's host namespace
            t._spawn(t.ns("n1"), ["socat", f"TCP-LISTEN:{port},fork,reuseaddr", "PIPE"])
        yield t
    finally:
        t.destroy()


def _probe(t: Topology, src: str, port: int) -> bool:
    if src == "host n2":
        return t.in_node("n2", "nc", "-z", "-w", "2", N1, str(port), check=False).returncode == 0
    return t.probe(src, N1, "tcp", port)


def _probe_all(t: Topology, cases: list[tuple[str, int]]) -> dict[tuple[str, int], bool]:
    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(zip(cases, pool.map(lambda c: _probe(t, *c), cases), strict=True))


def _predicted(compiled: Compiled, src: str, port: int) -> bool:
    host = compiled.endpoints["host/n1.pklink"]
    src_er = compiled.endpoints.get(src)
    src_ip = N2 if src == "host n2" else PODS[src][0]
    return connection_allowed(src_er, host, src_ip, N1, Protocol.TCP, port, compiled.peer_sets)[0]


def test_all_reachable_before_any_host_endpoint(topo: Topology) -> None:
    # n1 serves all three ports, and nothing polices them yet: a closed result later is policy.
    for node in ("n1", "n2"):
        topo.agent(node, Compiled({}, {}))
    live = _probe_all(topo, [(s, p) for s in SOURCES for p in PORTS])
    assert all(live.values()), [c for c, ok in live.items() if not ok]


@pytest.mark.parametrize("name", list(CASES))
def test_host_endpoint_verdicts_with_packets(topo: Topology, name: str) -> None:
    objects, want = CASES[name]
    compiled = compile_cluster(objects)
    assert not compiled.problems, compiled.problems
    for node in ("n1", "n2"):
        topo.agent(node, compiled)
    cases = [(s, p) for s in SOURCES for p in PORTS]
    live = _probe_all(topo, cases)
    expected = {c: want(*c) for c in cases}
    predicted = {c: _predicted(compiled, *c) for c in cases}
    assert predicted == expected, [c for c in cases if predicted[c] != expected[c]]
    assert live == expected, [f"{s} -> n1:{p} live {ok}" for (s, p), ok in live.items() if ok != expected[(s, p)]]


def test_agent_cleanup_reopens_the_host(topo: Topology) -> None:
    topo.agent("n1", compile_cluster(_objects(DENY_ALL)))
    assert not _probe(topo, "x/b", 8080)
    topo.agent("n1", Compiled({}, {}), "--cleanup")
    assert _probe(topo, "x/b", 8080) and _probe(topo, "host n2", 9091)
