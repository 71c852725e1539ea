"""Real packets from a pod to its OWN node's address: policed by the pod's egress (``pkt-agn-*``).

Such a connection is delivered locally (the node's INPUT), never forwarded, so it used to pass
whatever the pod's egress said (the network-policy-api conformance suite's node-peer deny found
it). Topology: node n1 (192.168.81.1 and fd00:81:ff::1 on its lo) serving TCP 8080, 8081 and 22
in its own namespace; dual-stack pods x/a (the client) and x/b (a server, for node -> pod). For
every case the compiled state is applied with ``picket agent --rules F --once`` and every probe,
of either family, must equal the hand-written expectation and, where no host endpoint is
involved, ``picket.evaluating.connection_allowed`` (the node is just an address to it). A host
endpoint on n1 composes: the pod's egress first, then the failsafe ports and the host's ingress.
Node -> pod connections (kubelet probes) stay open under a pod's ingress and egress deny-all:
their replies come back through INPUT and are no new connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from picket.evaluating import connection_allowed
from picket.model import Action, Compiled, Direction, Protocol, Rule, RuleSet
from tests.kernel.netns_topology import BACKENDS, Topology
from tests.unit.agent.agent_builders import compiled, ep, host, k8s, net_set, pod, rule, tier, tiers

pytestmark = pytest.mark.kernel
ING, EGR = Direction.INGRESS, Direction.EGRESS
V4 = {"x/a": "10.81.1.2", "x/b": "10.81.1.3"}
V6 = {"x/a": "fd00:81:1::2", "x/b": "fd00:81:1::3"}
NODE = {4: "192.168.81.1", 6: "fd00:81:ff::1"}
NODE_PORTS = (8080, 8081, 22)

Probe = tuple[str, int, int]  # who ("x/a": x/a -> node, "node": node -> x/b:80), port, family
PROBES: list[Probe] = [("x/a", port, family) for port in NODE_PORTS for family in (4, 6)]
PROBES += [("node", 80, family) for family in (4, 6)]


@pytest.fixture(scope="module", params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Iterator[Topology]:
    t = Topology("agn", request.param)
    try:
        t.add_node("n1", NODE[4])
        t.in_node("n1", "ip", "addr", "add", f"{NODE[6]}/128", "dev", "lo", "nodad")
        for key in V4:
            t.add_pod(key, V4[key], "n1", ip6=V6[key])
        t.listen("x/b", tcp=(80,))
        for port in NODE_PORTS:  # served by n1's own namespace, on both families
            t._spawn(t.ns("n1"), ["socat", f"TCP-LISTEN:{port},fork,reuseaddr", "PIPE"])
            t._spawn(t.ns("n1"), ["socat", f"TCP6-LISTEN:{port},fork,reuseaddr,ipv6only=1", "PIPE"])
        _wait_all_open(t)
        yield t
    finally:
        t.destroy()


def _probe(t: Topology, who: str, port: int, family: int) -> bool:
    if who == "node":
        ip = V6["x/b"] if family == 6 else V4["x/b"]
        return t.in_node("n1", "nc", "-z", "-w", "2", ip, str(port), check=False).returncode == 0
    return t.probe(who, NODE[family], "tcp", port)


def _probe_all(t: Topology) -> dict[Probe, bool]:
    return {p: _probe(t, *p) for p in PROBES}


def _wait_all_open(t: Topology, timeout: float = 15) -> None:
    """No rules yet: every probe must get through (a closed one later is policy, not setup)."""
    t.agent("n1", Compiled({}, {}))
    deadline = time.monotonic() + timeout
    while True:
        down = [p for p, ok in _probe_all(t).items() if not ok]
        if not down:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topology not ready, unreachable: {down}\n{t.diagnose()}")
        time.sleep(0.5)


NODE_NET = ("node", (f"{NODE[4]}/32", f"{NODE[6]}/128"))
OTHER_NET = ("other", ("192.168.99.1/32", "fd00:99::1/128"))
LOCKED_B = (k8s(ING), k8s(EGR))  # x/b: ingress and egress deny-all (its replies to the node must still pass)


def _state(
    a_egress: RuleSet | None = None, b: tuple[RuleSet | None, RuleSet | None] = LOCKED_B,
    host_ingress: RuleSet | None = None,
) -> Compiled:
    eps = [ep(pod("x/a", V4["x/a"], "n1", V6["x/a"]), egress=a_egress),
           ep(pod("x/b", V4["x/b"], "n1", V6["x/b"]), *b)]
    if host_ingress is not None:
        eps.append(ep(host("n1", "n1", (NODE[4], NODE[6])), ingress=host_ingress))
    return compiled(eps, [net_set(*NODE_NET), net_set(*OTHER_NET)])


def _allow(*rules_: Rule) -> RuleSet:
    return k8s(EGR, ("NetworkPolicy x/egress", rules_))
DENY_NODE_ADMIN = tiers(EGR, tier("admin", Action.PASS, ("ClusterNetworkPolicy no-node",
                                                          (rule(Action.DENY, peers=("node",)),))))

# name -> (state, who reaches what: hand-written, host endpoint involved)
CASES: dict[str, tuple[Callable[[], Compiled], Callable[[Probe], bool], bool]] = {
    "no policy at all": (lambda: _state(b=(None, None)), lambda p: True, False),
    "x/a egress deny-all: its own node is closed too": (
        lambda: _state(k8s(EGR)), lambda p: p[0] == "node", False),
    "x/a egress allows the node's /32 and /128": (
        lambda: _state(_allow(rule(peers=("node",)))), lambda p: True, False),
    "x/a egress allows the node on TCP 8080 only": (
        lambda: _state(_allow(rule(proto=Protocol.TCP, port=("8080",), peers=("node",)))),
        lambda p: p[0] == "node" or p[1] == 8080, False),
    "x/a egress allows another address only": (
        lambda: _state(_allow(rule(peers=("other",)))), lambda p: p[0] == "node", False),
    "admin-tier Deny of the node (a ClusterNetworkPolicy nodes peer), then nothing": (
        lambda: _state(DENY_NODE_ADMIN), lambda p: p[0] == "node", False),
    # With a host endpoint both must allow; the failsafe ports are the host's, not the pod's.
    "host deny-all, x/a egress open: only the failsafe port 22": (
        lambda: _state(None, host_ingress=k8s(ING)), lambda p: p[0] == "node" or p[1] == 22, True),
    "host deny-all, x/a egress allows the node: still only 22": (
        lambda: _state(_allow(rule(peers=("node",))), host_ingress=k8s(ING)),
        lambda p: p[0] == "node" or p[1] == 22, True),
    "host deny-all, x/a egress deny-all: failsafe does not override the pod's egress": (
        lambda: _state(k8s(EGR), host_ingress=k8s(ING)), lambda p: p[0] == "node", True),
}


def _evaluated(state: Compiled, probe: Probe) -> bool:
    who, port, family = probe
    if who == "node":
        return True  # the node -> its pods: always allowed (the NetworkPolicy spec); not in the model
    src = state.endpoints["x/a"]
    return connection_allowed(src, None, (V6 if family == 6 else V4)["x/a"], NODE[family], Protocol.TCP, port,
                              state.peer_sets)[0]


@pytest.mark.parametrize("name", list(CASES))
def test_a_pods_egress_to_its_own_node(topo: Topology, name: str) -> None:
    make, want, with_host = CASES[name]
    state = make()
    topo.agent("n1", state)
    expected = {p: want(p) for p in PROBES}
    if not with_host:
        evaluated = {p: _evaluated(state, p) for p in PROBES}
        assert evaluated == expected, [p for p in PROBES if evaluated[p] != expected[p]]
    live = _probe_all(topo)
    wrong = [f"{'x/a -> node' if w == 'x/a' else 'node -> x/b'} tcp/{port} IPv{f}: live {live[(w, port, f)]}"
             for (w, port, f) in PROBES if live[(w, port, f)] != expected[(w, port, f)]]
    assert not wrong, f"{name}: {wrong}\n{topo.save('n1', counters=True)}"


def test_cleanup_reopens_the_node(topo: Topology) -> None:
    topo.agent("n1", _state(k8s(EGR)))
    assert not _probe(topo, "x/a", 8080, 4)
    topo.agent("n1", Compiled({}, {}), "--cleanup")
    assert _probe(topo, "x/a", 8080, 4) and _probe(topo, "x/a", 8080, 6)
