"""Property: the rendered chains decide every packet exactly as ``picket.evaluating`` does.

Random rule sets (tiers with every default, Allow/Deny/Pass/Log, protocols, ports and ranges,
named ports, peers and negations, ipBlock excepts) for two dual-stack pods; random packets of
either family between them, an outside address and the node's own address (the peer sets hold
members of both); ``chainsim`` walks the rendered chains (FORWARD, or INPUT for a packet to the
node: a pod's egress must hold there too), the evaluator decides from the model, and they
must agree. The kernel tests then show the kernel agrees with the chains.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from picket.evaluating import connection_allowed
from picket.model import Action, Direction, PolicyRules, PortRange, Protocol, Rule, RuleSet, Tier
from picket_agent.rendering.renderer import render
from tests.unit.agent.agent_builders import compiled, ep, ip_set, net_set, pod, port_set
from tests.unit.agent.chainsim import forward, to_node

IPS = {"x/a": "10.0.0.2", "x/b": "10.0.0.3"}
OUTSIDE = "10.1.2.3"
IPS6 = {"x/a": "fd00::2", "x/b": "fd00::3"}
OUTSIDE6 = "fd00:1:2::3"
NODE, NODE6 = "10.0.0.1", "fd00::1"  # the node's own address: in "net" (and not excepted)
SETS = [
    ip_set("a", IPS["x/a"], IPS6["x/a"]),
    ip_set("b", IPS["x/b"], IPS6["x/b"]),
    net_set("net", ("10.0.0.0/8", "fd00::/16"), ("10.0.0.3/32", "10.1.0.0/16", "fd00::3/128", "fd00:1::/32")),
    port_set("np", f"{IPS['x/a']},tcp:80", f"{IPS['x/b']},udp:53", f"{IPS6['x/a']},tcp:80", f"{IPS6['x/b']},udp:53"),
]
PORTS = [PortRange(80, 80), PortRange(53, 53), PortRange(79, 81), PortRange(1000, 2000)]

protocols = st.sampled_from([None, None, Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP])
rules = st.builds(
    Rule,
    action=st.sampled_from(list(Action)),
    protocol=protocols,
    ports=st.one_of(st.just(()), st.lists(st.sampled_from(PORTS), max_size=2, unique=True).map(tuple)),
    named_ports=st.sampled_from([None, None, "np"]),
    peers=st.one_of(
        st.just(()), st.lists(st.sampled_from(["a", "b", "net", "missing"]), max_size=2, unique=True).map(tuple)
    ),
    not_protocol=st.sampled_from([None, None, Protocol.UDP]),
    not_ports=st.just(()),
    not_peers=st.lists(st.sampled_from(["a", "net"]), max_size=1).map(tuple),
)
policies = st.builds(PolicyRules, st.sampled_from(["P1", "P2"]), st.lists(rules, max_size=3).map(tuple))
tiers_ = st.builds(
    Tier,
    st.sampled_from(["admin", "k8s"]),
    st.lists(policies, max_size=2).map(tuple),
    st.sampled_from([Action.DENY, Action.ALLOW, Action.PASS]),
)


def rule_sets(direction: Direction) -> st.SearchStrategy[RuleSet | None]:
    built = st.builds(RuleSet, st.just(direction), st.lists(tiers_, min_size=1, max_size=2).map(tuple))
    return st.one_of(st.none(), built, built)


packets = st.tuples(
    st.sampled_from(["x/a", "x/b", "out"]),
    st.sampled_from(["x/a", "x/b", "out", "node"]),
    st.sampled_from(list(Protocol)),
    st.sampled_from([80, 53, 81, 1500, 9]),
    st.sampled_from([4, 6]),
)


ONLY_EGRESS_ALLOWS = (
    RuleSet(Direction.INGRESS, (Tier("k8s", (), Action.DENY),)),
    None,
    None,
    RuleSet(Direction.EGRESS, (Tier("k8s", (PolicyRules("P1", (Rule(),)),), Action.DENY),)),
)


# an egress allow must not skip the ingress check
@example(*ONLY_EGRESS_ALLOWS, [("x/b", "x/a", Protocol.TCP, 80, 4), ("x/b", "x/a", Protocol.TCP, 80, 6)])
# a pod whose egress denies everything must not reach its own node (INPUT), on either family
@example(None, RuleSet(Direction.EGRESS, (Tier("k8s", (), Action.DENY),)), None, None,
         [("x/a", "node", Protocol.TCP, 80, 4), ("x/a", "node", Protocol.UDP, 53, 6)])
@settings(max_examples=400, deadline=None)
@given(
    rule_sets(Direction.INGRESS),
    rule_sets(Direction.EGRESS),
    rule_sets(Direction.INGRESS),
    rule_sets(Direction.EGRESS),
    st.lists(packets, min_size=1, max_size=8),
)
def test_rendered_chains_agree_with_the_evaluator(ai, ae, bi, be, pkts) -> None:  # type: ignore[no-untyped-def]
    c = compiled([ep(pod("x/a", IPS["x/a"], "node-1", IPS6["x/a"]), ai, ae),
                  ep(pod("x/b", IPS["x/b"], "node-1", IPS6["x/b"]), bi, be)], SETS)
    desired = render(c)
    if desired.failed:  # e.g. notPorts without a protocol: reported, not rendered
        return
    assert desired.v6 is not None
    for s, d, proto, port, family in pkts:
        if s == d:
            continue
        ips, outside, node = (IPS6, OUTSIDE6, NODE6) if family == 6 else (IPS, OUTSIDE, NODE)
        src, dst = ips.get(s, outside), node if d == "node" else ips.get(d, outside)
        p = None if proto is Protocol.ICMP else port
        want, _, _ = connection_allowed(c.endpoints.get(s), c.endpoints.get(d), src, dst, proto, p, c.peer_sets)
        walk = to_node if d == "node" else forward
        assert walk(desired, src, dst, proto, p) == want, (s, d, proto, p)


# Runs of ALLOW rules sharing everything but their ports are merged into one rule (``tiers.
# merge_allow_runs``): rules drawn from a small space, mostly ALLOW, so that merging happens in
# most examples, and the occasional DENY/PASS/LOG that must end a run.
merge_rules = st.builds(
    Rule,
    action=st.sampled_from([Action.ALLOW] * 4 + [Action.DENY, Action.DENY, Action.PASS, Action.LOG]),
    protocol=st.sampled_from([None, Protocol.TCP, Protocol.TCP, Protocol.UDP]),
    ports=st.one_of(st.just(()), st.lists(st.sampled_from(PORTS), max_size=2, unique=True).map(tuple)),
    peers=st.sampled_from([(), ("b",), ("b",), ("net",)]),  # the packets come from x/b and outside
    not_peers=st.sampled_from([(), (), ("net",)]),
)
merge_rule_sets = st.builds(
    RuleSet, st.just(Direction.INGRESS),
    st.lists(st.builds(Tier, st.sampled_from(["admin", "k8s"]),
                       st.lists(st.builds(PolicyRules, st.sampled_from(["P1", "P2", "P3"]),
                                          st.lists(merge_rules, min_size=1, max_size=4).map(tuple)),
                                min_size=1, max_size=4).map(tuple),
                       st.sampled_from([Action.DENY, Action.PASS])),
             min_size=1, max_size=2).map(tuple),
)


_K80 = Rule(Action.ALLOW, Protocol.TCP, (PortRange(80, 80),), None, ("b",))
_K1000 = Rule(Action.ALLOW, Protocol.TCP, (PortRange(1000, 2000),), None, ("b",))


# an ALLOW after a DENY must not be merged into an ALLOW before it (it would jump the DENY)
@example(RuleSet(Direction.INGRESS, (Tier("k8s", (PolicyRules("P1", (_K80, Rule(Action.DENY, Protocol.TCP),
                                                                     _K1000)),), Action.DENY),)),
         [("x/b", "x/a", Protocol.TCP, 1500, 4), ("x/b", "x/a", Protocol.TCP, 80, 6)])
@settings(max_examples=300, deadline=None)
@given(merge_rule_sets, st.lists(packets, min_size=1, max_size=8))
def test_merged_allow_runs_decide_as_the_evaluator(ingress: RuleSet, pkts) -> None:  # type: ignore[no-untyped-def]
    c = compiled([ep(pod("x/a", IPS["x/a"], "node-1", IPS6["x/a"]), ingress, None),
                  ep(pod("x/b", IPS["x/b"], "node-1", IPS6["x/b"]), None, None)], SETS)
    desired = render(c)
    assert not desired.failed
    for s, d, proto, port, family in pkts:
        if s == d or d != "x/a":
            continue
        ips, outside = (IPS6, OUTSIDE6) if family == 6 else (IPS, OUTSIDE)
        src = ips.get(s, outside)
        p = None if proto is Protocol.ICMP else port
        want, _, _ = connection_allowed(c.endpoints.get(s), c.endpoints.get(d), src, ips[d], proto, p, c.peer_sets)
        assert forward(desired, src, ips[d], proto, p) == want, (s, d, proto, p)
