"""Real packets through the agent's rules: each case's verdicts must equal picket.evaluating's.

Topology (namespaces ``pkt-age-*``): node n1 with pods x/a (server), x/b, y/c; node n2 with
pod x/d; the nodes routed to each other. For every case the compiled state is applied on both
nodes with ``picket agent --rules F --once`` (each node gets ``Compiled.for_node``), then nc
probes (TCP and UDP) run and must match ``connection_allowed`` of the evaluator, the
executable meaning of the model. SCTP is rendered and golden-tested, not probed here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from picket.evaluating import connection_allowed
from picket.model import Action, Compiled, Direction, Protocol
from tests.kernel.netns_topology import BACKENDS, Topology
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, net_set, pod, port_set, rule

pytestmark = pytest.mark.kernel

IPS = {"x/a": "10.71.1.2", "x/b": "10.71.1.3", "y/c": "10.71.1.4", "x/d": "10.71.2.2"}
NODES = {"x/a": "n1", "x/b": "n1", "y/c": "n1", "x/d": "n2"}
TCP_PORTS = (80, 81, 8005, 8011)
UDP_PORTS = (53, 54)
ING, EGR = Direction.INGRESS, Direction.EGRESS


@pytest.fixture(scope="module", params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Topology:
    t = Topology("age", request.param)
    try:
        t.add_node("n1", "192.168.71.1")
        t.add_node("n2", "192.168.72.1")
        t.link_nodes("n1", "192.168.200.1", "n2", "192.168.200.2", {"n1": ["10.71.2.0/24"], "n2": ["10.71.1.0/24"]})
        for key, ip in IPS.items():
            t.add_pod(key, ip, NODES[key])
            t.listen(key, tcp=TCP_PORTS, udp=UDP_PORTS)
        yield t
    finally:
        t.destroy()


def pods(**rule_sets: tuple) -> list:
    """One EndpointRules per pod; keyword ``a=(ingress, egress)`` sets x/a's rule sets."""
    out = []
    for key, ip in IPS.items():
        ing, eg = rule_sets.get(key.split("/")[1], (None, None))
        out.append(ep(pod(key, ip, NODES[key]), ingress=ing, egress=eg))
    return out


def allow(*rules_: object) -> tuple:
    return (("NetworkPolicy x/test", tuple(rules_)),)


CASES: dict[str, Callable[[], Compiled]] = {
    "default deny ingress": lambda: compiled(pods(a=(k8s(ING), None))),
    "default deny egress": lambda: compiled(pods(b=(None, k8s(EGR)))),
    "allow by pod peer": lambda: compiled(
        pods(a=(k8s(ING, *allow(rule(peers=("pods-b",)))), None)), [ip_set("pods-b", IPS["x/b"])]
    ),
    "allow by namespace peer (incl. the other node)": lambda: compiled(
        pods(a=(k8s(ING, *allow(rule(peers=("ns-x",)))), None)), [ip_set("ns-x", IPS["x/b"], IPS["x/d"])]
    ),
    "ipBlock of every address, with except": lambda: compiled(  # 0.0.0.0/0: hash:net refuses a /0 as such
        pods(a=(k8s(ING, *allow(rule(peers=("world",)))), None)),
        [net_set("world", ("0.0.0.0/0",), (f"{IPS['x/b']}/32",))],
    ),
    "ipBlock with except": lambda: compiled(
        pods(a=(k8s(ING, *allow(rule(peers=("block",)))), None)),
        [net_set("block", ("10.71.0.0/16",), (f"{IPS['x/b']}/32", "10.71.2.0/24"))],
    ),
    "numeric port, TCP and UDP": lambda: compiled(
        pods(a=(k8s(ING, *allow(rule(proto=Protocol.TCP, port=("80",)), rule(proto=Protocol.UDP, port=("53",)))), None))
    ),
    "endPort range": lambda: compiled(pods(a=(k8s(ING, *allow(rule(proto=Protocol.TCP, port=("8000-8010",)))), None))),
    "egress named port (ip,port set)": lambda: compiled(
        pods(b=(None, k8s(EGR, *allow(rule(named="np-http"))))), [port_set("np-http", f"{IPS['x/a']},tcp:80")]
    ),
    "egress and ingress both required": lambda: compiled(
        pods(
            a=(k8s(ING, *allow(rule(peers=("pods-b",)))), None),
            b=(None, k8s(EGR, *allow(rule(peers=("pods-c",))))),
            c=(None, k8s(EGR, *allow(rule(peers=("pods-a",))))),
        ),
        [ip_set("pods-b", IPS["x/b"]), ip_set("pods-c", IPS["y/c"]), ip_set("pods-a", IPS["x/a"])],
    ),
    "cross-node egress and ingress": lambda: compiled(
        pods(
            d=(None, k8s(EGR, *allow(rule(proto=Protocol.TCP, port=("80",), peers=("pods-a",))))),
            a=(k8s(ING, *allow(rule(peers=("pods-d",)))), None),
        ),
        [ip_set("pods-a", IPS["x/a"]), ip_set("pods-d", IPS["x/d"])],
    ),
    "replies of allowed connections (egress deny-all server)": lambda: compiled(
        pods(a=(k8s(ING, *allow(rule(proto=Protocol.TCP, port=("80",)))), k8s(EGR)))
    ),
    "deny rule before an allow, and pass to a later tier": lambda: compiled(
        pods(a=(_tiered(), None)), [ip_set("pods-b", IPS["x/b"]), ip_set("pods-c", IPS["y/c"])]
    ),
}


def _tiered():  # type: ignore[no-untyped-def]
    from tests.unit.agent.agent_builders import tier, tiers

    admin = tier(
        "admin",
        Action.PASS,
        ("GlobalNetworkPolicy deny-b-81", (rule(Action.DENY, proto=Protocol.TCP, port=("81",), peers=("pods-b",)),)),
        ("GlobalNetworkPolicy pass-c", (rule(Action.PASS, peers=("pods-c",)),)),
        ("GlobalNetworkPolicy allow-tcp", (rule(Action.ALLOW, proto=Protocol.TCP),)),
    )
    k8s_tier = tier("k8s", Action.DENY, ("NetworkPolicy x/udp", (rule(proto=Protocol.UDP, port=("53",)),)))
    return tiers(ING, admin, k8s_tier)


PROBES = [
    (src, dst, proto, port)
    for src, dst in (("x/b", "x/a"), ("y/c", "x/a"), ("x/d", "x/a"), ("x/a", "x/b"), ("x/b", "y/c"), ("x/a", "x/d"))
    for proto, port in (("tcp", 80), ("tcp", 81), ("tcp", 8005), ("tcp", 8011), ("udp", 53))
]


@pytest.mark.parametrize("case", list(CASES))
def test_probes_match_the_evaluator(topo: Topology, case: str) -> None:
    state = CASES[case]()
    for node in ("n1", "n2"):
        topo.agent(node, state)
    expected = [_expected(state, *p) for p in PROBES]
    got = topo.probes(PROBES)
    wrong = [(p, e) for p, e, g in zip(PROBES, expected, got, strict=True) if e != g]
    assert not wrong, f"{case}: kernel disagrees with the evaluator for {wrong}"
    assert (any(expected) and not all(expected)) or case.startswith("default"), "case must probe both verdicts"


def _expected(state: Compiled, src: str, dst: str, proto: str, port: int) -> bool:
    ok, _, _ = connection_allowed(
        state.endpoints.get(src),
        state.endpoints.get(dst),
        IPS[src],
        IPS[dst],
        Protocol(proto.upper()),
        port,
        state.peer_sets,
    )
    return ok


def test_sctp_probe(topo: Topology) -> None:
    """SCTP rules are rendered and golden-tested; packets are probed only where the kernel has SCTP."""
    import socket

    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_SCTP).close()
    except OSError:
        pytest.skip("this kernel has no SCTP (socket: protocol not supported); SCTP rules are golden-tested only")
    state = compiled(pods(a=(k8s(ING, *allow(rule(proto=Protocol.SCTP, port=("80",)))), None)))
    topo.agent("n1", state)
    server = topo._spawn(topo.pods["x/a"][0], ["socat", "SCTP-LISTEN:80,fork,reuseaddr", "PIPE"])
    try:
        client = ["ip", "netns", "exec", topo.pods["x/b"][0], "socat", "-T2", "-", f"SCTP:{IPS['x/a']}:{{port}}"]
        assert (
            "hi"
            in subprocess.run(
                [c.format(port=80) for c in client], input="hi\n", capture_output=True, text=True, timeout=10
            ).stdout
        )
    finally:
        server.terminate()
