"""Real IPv6 packets through the agent's rules, dual-stack pods enforced on both families (``pkt-ag6-*``).

Topology: node n1 with x/a (server, dual-stack), x/b (dual-stack), y/c (IPv6 only); node n2 with
x/d (dual-stack); the nodes joined over IPv4 and IPv6. IPv6 uses real neighbour discovery (no
static neighbour entries, ``netns_topology``) and every case flushes the neighbour caches
first, so each probe resolves its neighbours through whatever picket installed. For every case
the compiled state is applied on both nodes and every probe, of either family, must equal
``picket.evaluating.connection_allowed`` AND a hand-written expectation: the evaluator is the
model's meaning, the expectation guards against both being wrong the same way.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from picket.evaluating import connection_allowed
from picket.model import Compiled, Direction, Protocol
from tests.kernel.netns_topology import BACKENDS, Topology
from tests.unit.agent.agent_builders import compiled, ep, host, ip_set, k8s, net_set, pod, rule

pytestmark = pytest.mark.kernel
ING, EGR = Direction.INGRESS, Direction.EGRESS
V4 = {"x/a": "10.76.1.2", "x/b": "10.76.1.3", "x/d": "10.76.2.2"}
V6 = {"x/a": "fd00:76:1::2", "x/b": "fd00:76:1::3", "y/c": "fd00:76:1::4", "x/d": "fd00:76:2::2"}
NODES = {"x/a": "n1", "x/b": "n1", "y/c": "n1", "x/d": "n2"}
N1_6, N2_6 = "fd00:76:ff::1", "fd00:76:ff::2"


@pytest.fixture(scope="module", params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Iterator[Topology]:
    t = Topology("ag6", request.param)
    try:
        t.add_node("n1", "192.168.76.1")
        t.add_node("n2", "192.168.77.1")
        t.link_nodes("n1", "192.168.201.1", "n2", "192.168.201.2",
                     {"n1": ["10.76.2.0/24", "fd00:76:2::/64"], "n2": ["10.76.1.0/24", "fd00:76:1::/64"]},
                     v6=(N1_6, N2_6))
        for key in NODES:
            t.add_pod(key, V4.get(key, ""), NODES[key], ip6=V6[key])
            t.listen(key, tcp=(80, 81), udp=(53,))
        t.wait_reachable(PROBES)  # no rules yet: every probe of both families must get through
        yield t
    finally:
        t.destroy()


def pods(**rule_sets: tuple) -> list:  # type: ignore[type-arg]
    out = []
    for key in NODES:
        ing, eg = rule_sets.get(key.split("/")[1], (None, None))
        ips = tuple(ip for ip in (V4.get(key), V6[key]) if ip)
        out.append(ep(pod(key, ips[0], NODES[key], *ips[1:]), ingress=ing, egress=eg))
    return out


def allow(*rules_: object) -> tuple:  # type: ignore[type-arg]
    return (("NetworkPolicy x/test", tuple(rules_)),)


Probe = tuple[str, str, str, int, int]  # src, dst, proto, port, family
PROBES: list[Probe] = [
    (src, dst, proto, port, family)
    for src, dst in (("x/b", "x/a"), ("y/c", "x/a"), ("x/d", "x/a"), ("x/a", "x/b"), ("x/a", "x/d"))
    for proto, port in (("tcp", 80), ("tcp", 81), ("udp", 53))
    for family in (4, 6)
    if family == 6 or (src in V4 and dst in V4)
]

# name -> (compiled state, hand-written verdict per probe)
CASES: dict[str, tuple[Callable[[], Compiled], Callable[[Probe], bool]]] = {
    "no policy: everything reachable on both families": (lambda: compiled(pods()), lambda p: True),
    # The reason this file exists: before, an isolated pod's IPv6 traffic was not policed at all.
    "default deny ingress isolates x/a on IPv4 AND IPv6": (
        lambda: compiled(pods(a=(k8s(ING), None))), lambda p: p[1] != "x/a"),
    "allow by a dual-stack pod peer set": (
        lambda: compiled(pods(a=(k8s(ING, *allow(rule(peers=("pods-b",)))), None)),
                         [ip_set("pods-b", V4["x/b"], V6["x/b"])]),
        lambda p: p[1] != "x/a" or p[0] == "x/b"),
    "IPv6 ipBlock with except, and an IPv4 ipBlock, in one peer set": (
        lambda: compiled(pods(a=(k8s(ING, *allow(rule(proto=Protocol.TCP, port=("80",), peers=("blocks",)))), None)),
                         [net_set("blocks", ("fd00:76::/32", "10.76.2.0/24"), ("fd00:76:1::4/128",))]),
        lambda p: p[1] != "x/a" or (p[2:4] == ("tcp", 80) and (p[0] == "x/d" or (p[4] == 6 and p[0] == "x/b")))),
    "egress deny-all except IPv6 to x/d, replies still allowed": (
        lambda: compiled(pods(a=(None, k8s(EGR, *allow(rule(peers=("d6",)))))), [net_set("d6", ("fd00:76:2::/64",))]),
        lambda p: p[0] != "x/a" or (p[1] == "x/d" and p[4] == 6)),
    "cross-node: x/d's egress and x/a's ingress both required": (
        lambda: compiled(
            pods(a=(k8s(ING, *allow(rule(proto=Protocol.TCP, peers=("pods-d",)))), None),
                 d=(None, k8s(EGR, *allow(rule(proto=Protocol.TCP, port=("80",)))))),
            [ip_set("pods-d", V4["x/d"], V6["x/d"])]),
        lambda p: (p[1] != "x/a" or (p[0] == "x/d" and p[2] == "tcp"))
        and (p[0] != "x/d" or p[2:4] == ("tcp", 80))),
}


def _address(key: str, family: int) -> str:
    return V6[key] if family == 6 else V4[key]


def _predicted(state: Compiled, probe: Probe) -> bool:
    src, dst, proto, port, family = probe
    ok, _, _ = connection_allowed(state.endpoints.get(src), state.endpoints.get(dst), _address(src, family),
                                  _address(dst, family), Protocol(proto.upper()), port, state.peer_sets)
    return ok


def _flush_neighbours(topo: Topology) -> None:
    for ns in [*topo.nodes.values(), *(p[0] for p in topo.pods.values())]:
        subprocess.run(["ip", "-n", ns, "-6", "neigh", "flush", "all"], capture_output=True, check=False)


@pytest.mark.parametrize("case", list(CASES))
def test_probes_of_both_families_match_the_evaluator(topo: Topology, case: str) -> None:
    make, want = CASES[case]
    state = make()
    for node in ("n1", "n2"):
        topo.agent(node, state)
    _flush_neighbours(topo)
    expected = {p: want(p) for p in PROBES}
    predicted = {p: _predicted(state, p) for p in PROBES}
    assert predicted == expected, [p for p in PROBES if predicted[p] != expected[p]]
    live = dict(zip(PROBES, topo.probes(PROBES), strict=True))
    wrong = [f"{s} -> {d} {pr}/{po} IPv{f}: live {live[(s, d, pr, po, f)]}" for s, d, pr, po, f in PROBES
             if live[(s, d, pr, po, f)] != expected[(s, d, pr, po, f)]]
    assert not wrong, f"{wrong}\n{topo.diagnose()}"


def test_ip6tables_and_inet6_sets_hold_the_rules(topo: Topology) -> None:
    state = CASES["allow by a dual-stack pod peer set"][0]()
    topo.agent("n1", state)
    v6 = topo.save("n1", family=6)
    assert f"-d {V6['x/a']}/128" in v6 and "--icmpv6-type 135" in v6, v6
    assert f"-d {V4['x/a']}/32" in topo.save("n1", family=4)
    sets = topo.in_node("n1", "ipset", "list").stdout
    assert "family inet6" in sets and V6["x/b"] in sets and V4["x/b"] in sets


def test_neighbour_discovery_survives_a_deny_all_host_endpoint(topo: Topology) -> None:
    """n1's link to n2 is a host endpoint denying everything in and out (but the failsafe ports).
    Pod traffic between the nodes is forwarded, not the host's, so it is still allowed, but it
    needs n1 and n2 to resolve each other's link-layer addresses over that link: ND through
    n1's INPUT and OUTPUT, where the host endpoint's deny-all is (and where conntrack calls ND
    INVALID). Without picket's ND exemption the IPv6 probes fail."""
    base = pods()
    link = ep(host("n1.pklink", "n1", ips=(N1_6,), interface="pklink"), ingress=k8s(ING), egress=k8s(EGR))
    state = compiled([*base, link])
    for node in ("n1", "n2"):
        topo.agent(node, state)
    _flush_neighbours(topo)
    probes = [("x/d", "x/a", "tcp", 80, 6), ("x/a", "x/d", "tcp", 80, 6), ("x/a", "x/d", "udp", 53, 6)]
    assert topo.probes(probes) == [True, True, True]
    host_chain = topo.save("n1", family=6)
    assert "-i pklink" in host_chain and "--icmpv6-type 136" in host_chain
    # ... and the host endpoint does police: n2's host cannot reach n1's host on a non-failsafe port
    topo._spawn(topo.ns("n1"), ["socat", "TCP6-LISTEN:8080,fork,reuseaddr,ipv6only=1", "PIPE"])
    time.sleep(0.3)
    assert topo.in_node("n2", "nc", "-z", "-w", "2", N1_6, "8080", check=False).returncode != 0
