"""The pure renderer: chain layout, tier semantics as targets, expansion, names, golden text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from picket.model import Action, Compiled, Direction, PeerSetKind, Protocol
from picket_agent.rendering import naming
from picket_agent.rendering.renderer import RenderSettings, render
from tests.unit.agent.agent_builders import compiled, ep, host, ip_set, k8s, net_set, pod, port_set, rule, tier, tiers

ING, EGR = Direction.INGRESS, Direction.EGRESS
GOLDEN = Path(__file__).with_name("golden")


DEFAULTS = RenderSettings()


def texts(c: Compiled, settings: RenderSettings = DEFAULTS) -> dict[str, list[str]]:
    d = render(c, settings)
    return {name: [r.text() for r in rules] for name, rules in d.chains.items()}


def test_forward_checks_egress_then_ingress_and_never_accepts_new_traffic() -> None:
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING))]))
    fwd = chains[naming.FORWARD_CHAIN]
    assert "--ctstate RELATED,ESTABLISHED" in fwd[0] and fwd[0].endswith("-j ACCEPT")
    assert "--ctstate INVALID" in fwd[1] and fwd[1].endswith("-j DROP")
    assert fwd[2].endswith(f"-j {naming.POD_EGRESS_CHAIN}") and fwd[3].endswith(f"-j {naming.POD_INGRESS_CHAIN}")
    assert not any(line.endswith("-j ACCEPT") for line in fwd[2:])


@pytest.mark.parametrize(
    ("action", "expected_target"),
    [
        (Action.ALLOW, "-j RETURN"),
        (Action.DENY, "-g PICKET-DROP-"),
        (Action.PASS, "-g PICKET-TIER-"),
        (Action.LOG, "-j NFLOG"),
    ],
)
def test_actions_become_targets(action: Action, expected_target: str) -> None:
    rs = tiers(
        ING, tier("admin", Action.PASS, ("GNP p", (rule(action, proto=Protocol.TCP),))), tier("k8s", Action.DENY)
    )
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), ingress=rs)]))
    first = chains[naming.tier_chain("x/a", "Ingress", 0)]
    assert expected_target in first[0] and '--comment "GNP p rule 0"' in first[0]


@pytest.mark.parametrize(
    ("default", "last_rule_target"),
    [(Action.DENY, "-g PICKET-DROP-"), (Action.ALLOW, "-j RETURN"), (Action.PASS, "-j RETURN")],
)
def test_tier_end_default(default: Action, last_rule_target: str) -> None:
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), ingress=tiers(ING, tier("t", default)))]))
    assert last_rule_target in chains[naming.tier_chain("x/a", "Ingress", 0)][-1]


def test_pass_in_the_last_tier_returns_and_in_earlier_tiers_goes_to_the_next() -> None:
    rs = tiers(ING, tier("a", Action.PASS), tier("b", Action.PASS))
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), ingress=rs)]))
    assert chains[naming.tier_chain("x/a", "Ingress", 0)][-1].endswith(f"-g {naming.tier_chain('x/a', 'Ingress', 1)}")
    assert chains[naming.tier_chain("x/a", "Ingress", 1)][-1].endswith("-j RETURN")


def test_dispatch_by_source_for_egress_and_destination_for_ingress() -> None:
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING), egress=k8s(EGR))]))
    assert chains[naming.POD_INGRESS_CHAIN] == [
        f'-d 10.0.0.2/32 -m comment --comment "x/a ingress" -g {naming.tier_chain("x/a", "Ingress", 0)}'
    ]
    assert chains[naming.POD_EGRESS_CHAIN] == [
        f'-s 10.0.0.2/32 -m comment --comment "x/a egress" -g {naming.tier_chain("x/a", "Egress", 0)}'
    ]


def test_unisolated_direction_has_no_dispatch() -> None:
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), egress=k8s(EGR))]))
    assert chains[naming.POD_INGRESS_CHAIN] == []


@pytest.mark.parametrize(
    ("r", "direction", "expected"),
    [
        (rule(proto=Protocol.TCP, port=("80",)), ING, ["-p tcp -m tcp --dport 80"]),
        (rule(proto=Protocol.UDP, port=("8000-8010",)), ING, ["-p udp -m udp --dport 8000:8010"]),
        (rule(proto=Protocol.SCTP, port=("80", "90-99")), ING, ["-p sctp -m multiport --dports 80,90:99"]),
        (
            rule(port=("80",)),
            ING,
            ["-p tcp -m tcp --dport 80", "-p udp -m udp --dport 80", "-p sctp -m sctp --dport 80"],
        ),
        (rule(proto=Protocol.ICMP), ING, ["-p icmp"]),
        (rule(proto=Protocol.ICMP, port=("80",)), ING, []),  # an ICMP packet has no port: never matches
        (rule(not_proto=Protocol.UDP), ING, ["! -p udp"]),
        (rule(proto=Protocol.TCP, not_ports=("25",)), ING, ["-p tcp -m multiport ! --dports 25"]),
        (rule(peers=("p1", "p2")), ING, ["-m set --match-set {p1} src", "-m set --match-set {p2} src"]),
        (rule(peers=("p1",)), EGR, ["-m set --match-set {p1} dst"]),
        (rule(not_peers=("p1",)), EGR, ["-m set ! --match-set {p1} dst"]),
        (rule(named="np"), EGR, ["-m set --match-set {np} dst,dst"]),
        (
            rule(proto=Protocol.TCP, port=("80",), named="np"),
            EGR,
            ["-p tcp -m tcp --dport 80", "-p tcp -m set --match-set {np} dst,dst"],
        ),
    ],
)
def test_rule_expansion(r, direction: Direction, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    rs = k8s(direction, ("NetworkPolicy x/p", (r,)))
    c = compiled(
        [ep(pod("x/a", "10.0.0.2"), **{direction.value.lower(): rs})],
        [ip_set("p1", "10.0.0.3"), ip_set("p2", "10.0.0.4"), port_set("np", "10.0.0.3,tcp:8080")],
    )
    names = {
        "p1": naming.set_name("p1", "hash:ip"),
        "p2": naming.set_name("p2", "hash:ip"),
        "np": naming.set_name("np", "hash:ip,port"),
    }
    chain = texts(c)[naming.tier_chain("x/a", direction.value, 0)]
    want = [f'{e.format(**names)} -m comment --comment "NetworkPolicy x/p rule 0" -j RETURN'.lstrip() for e in expected]
    assert chain[:-1] == want


def test_many_ports_are_split_into_multiport_chunks_of_15_slots() -> None:
    ports = tuple(str(p) for p in range(1000, 1020))
    c = compiled(
        [ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING, ("NetworkPolicy x/p", (rule(proto=Protocol.TCP, port=ports),))))]
    )
    chain = texts(c)[naming.tier_chain("x/a", "Ingress", 0)][:-1]
    assert len(chain) == 2 and chain[0].count(",") == 14 and chain[1].count(",") == 4


def test_log_rule_with_several_alternatives_logs_once_through_a_sub_chain() -> None:
    c = compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING, ("GNP l", (rule(Action.LOG, port=("22",)),))))])
    chains = texts(c)
    tier0 = chains[naming.tier_chain("x/a", "Ingress", 0)]
    sub = naming.rule_chain("x/a", "Ingress", 0, "GNP l#0")
    assert tier0[0].endswith(f"-j {sub}")
    assert len(chains[sub]) == 3 and all("-g PICKET-LOG-" in line for line in chains[sub])


def test_ipblock_except_becomes_nomatch_and_missing_sets_are_created_empty() -> None:
    c = compiled(
        [ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING, ("NetworkPolicy x/p", (rule(peers=("blk", "gone")),))))],
        [net_set("blk", ("10.0.0.0/8", "10.9.9.9"), ("10.1.0.0/16",))],
    )
    sets = render(c).sets
    blk = sets[naming.set_name("blk", "hash:net")]
    assert blk.members == ("10.0.0.0/8", "10.9.9.9/32") and blk.nomatch == ("10.1.0.0/16",)
    gone = sets[naming.set_name("gone", "hash:net")]
    assert gone.kind is PeerSetKind.NET and gone.members == ()


def test_a_block_of_every_address_becomes_its_two_halves() -> None:
    # hash:net cannot hold a /0: the kernel answers IPSET_ERR_INVALID_CIDR (4104), which failed
    # the node's whole sync (found by upstream's conformance suites on kind: a 0.0.0.0/0 peer).
    c = compiled(
        [ep(pod("x/a", "10.0.0.2"), egress=k8s(EGR, ("NetworkPolicy x/p", (rule(peers=("world", "none")),)))),
         ep(pod("x/b", "fd00::2"), egress=k8s(EGR, ("NetworkPolicy x/p", (rule(peers=("world",)),))))],
        [net_set("world", ("0.0.0.0/0", "::/0", "10.0.0.0/8"), ("10.0.0.2/32", "fd00::2/128")),
         net_set("none", ("10.0.0.0/8",), ("0.0.0.0/0",))],
    )
    d = render(c)
    world = d.sets[naming.set_name("world", "hash:net")]
    assert world.members == ("0.0.0.0/1", "10.0.0.0/8", "128.0.0.0/1") and world.nomatch == ("10.0.0.2/32",)
    assert d.sets[naming.set_name("none", "hash:net")].nomatch == ("0.0.0.0/1", "128.0.0.0/1")
    assert d.v6 is not None
    world6 = next(s for s in d.v6.sets.values() if s.source == "world")
    assert world6.members == ("8000::/1", "::/1") and world6.nomatch == ("fd00::2/128",)
    assert not d.problems


def test_bad_endpoint_is_reported_and_skipped_others_rendered() -> None:
    c = compiled([ep(pod("x/a", "not-an-ip"), ingress=k8s(ING)), ep(pod("x/b", "10.0.0.3"), ingress=k8s(ING))])
    d = render(c)
    assert d.failed == {"x/a"} and "x/b" in d.versions and "x/a" not in d.versions
    assert any("endpoint x/a" in p for p in d.problems)
    assert not any("x/a" in r.comment for rules in d.chains.values() for r in rules)


def test_a_set_looked_up_by_a_skipped_endpoint_still_exists_for_the_next_one() -> None:
    uses_s = k8s(ING, ("NetworkPolicy x/p", (rule(peers=("s",)),)))
    c = compiled([ep(pod("x/a", "not-an-ip"), ingress=uses_s), ep(pod("x/b", "10.0.0.3"), ingress=uses_s)],
                 [ip_set("s", "10.0.0.9")])
    d = render(c)
    assert d.failed == {"x/a"} and naming.set_name("s", "hash:ip") in d.sets


def test_bad_peer_set_member_is_reported_and_left_out() -> None:
    c = compiled(
        [ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING, ("NetworkPolicy x/p", (rule(peers=("s",)),))))],
        [ip_set("s", "10.0.0.3", "10.0.0.999")],
    )
    d = render(c)
    assert d.sets[naming.set_name("s", "hash:ip")].members == ("10.0.0.3",)
    assert any("10.0.0.999" in p for p in d.problems)


def test_host_endpoints_hook_input_and_output_with_failsafes_first() -> None:
    c = compiled([ep(host("n1", ips=("192.168.1.1",), interface="eth0"), ingress=k8s(ING), egress=k8s(EGR))])
    chains = texts(c, RenderSettings(host_apply_on_forward=True))
    inp = chains[naming.INPUT_CHAIN]
    assert inp[0].startswith("-i lo") and "--dports 22,179,2379,2380,5473,6443,6666,6667" in inp[3]
    assert "-p udp -m multiport --dports 68" in inp[4] and inp[5].startswith("-i eth0")
    out = chains[naming.OUTPUT_CHAIN]
    assert "-p udp -m multiport --dports 53,67" in out[4] and out[5].startswith("-o eth0")
    assert any(line.startswith("-i eth0") and "(forwarded)" in line for line in chains[naming.FORWARD_CHAIN])
    # its own addresses too: a host's own pods reach it over their veths, not over eth0
    assert inp[6].startswith("-d 192.168.1.1/32") and out[6].startswith("-s 192.168.1.1/32")


NEW_OF_A_POD = (f'-m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment '
                f'"picket: egress of a local pod to this node" -j {naming.POD_EGRESS_CHAIN}')


def test_a_local_pods_new_traffic_to_its_node_goes_through_its_egress_in_input() -> None:
    # Delivered locally (INPUT), never forwarded: without this a Deny to the pod's own node did nothing.
    chains = texts(compiled([ep(pod("x/a", "10.0.0.2"), egress=k8s(EGR))]))
    assert chains[naming.INPUT_CHAIN] == [
        '-i lo -m comment --comment "picket: loopback is never policed" -j RETURN', NEW_OF_A_POD]
    # the same dispatch chain as FORWARD's: -s <pod ip> -g its first egress tier
    assert chains[naming.POD_EGRESS_CHAIN][0].startswith("-s 10.0.0.2/32")


def test_input_is_left_alone_without_egress_policies() -> None:
    # ingress only: nothing in INPUT (replies to kubelet probes, node -> pod, never meet picket there)
    assert texts(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING))]))[naming.INPUT_CHAIN] == []


def test_pod_egress_in_input_comes_before_the_failsafe_ports_and_host_endpoints() -> None:
    # Both must allow, as between two pods: the pod's egress first (RETURN on allow), then the
    # host endpoint's failsafe ports and ingress. Replies are accepted before either.
    c = compiled([ep(pod("x/a", "10.0.0.2"), egress=k8s(EGR)),
                  ep(host("n1", ips=("192.168.1.1",), interface="eth0"), ingress=k8s(ING))])
    inp = texts(c)[naming.INPUT_CHAIN]
    established = next(i for i, t in enumerate(inp) if "--ctstate RELATED,ESTABLISHED" in t and "ACCEPT" in t)
    pods = inp.index(NEW_OF_A_POD)
    failsafe = next(i for i, t in enumerate(inp) if "failsafe" in t)
    assert inp[0].startswith("-i lo") and established < pods < failsafe
    assert inp[-1].startswith("-d 192.168.1.1/32")


def test_staged_egress_is_audited_in_input_too() -> None:
    from picket.model import EndpointRules

    c = compiled([EndpointRules(pod("x/a", "10.0.0.2"), staged_egress=k8s(EGR))])
    inp = texts(c)[naming.INPUT_CHAIN]
    assert inp[1] == (f'-m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment '
                      f'"picket: audit mode, staged egress of a local pod to this node" -j {naming.AUDIT_EGRESS_CHAIN}')


@pytest.mark.parametrize("name", ["k8s-basic", "tiers-sctp-log"])
def test_golden_save_text(name: str) -> None:
    text = render(GOLDEN_STATES[name](), RenderSettings(log_drops=True)).save_text()
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("PICKET_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text()


GOLDEN_STATES = {
    "k8s-basic": lambda: compiled(
        [
            ep(
                pod("x/a", "10.244.1.2"),
                ingress=k8s(
                    ING,
                    (
                        "NetworkPolicy x/web",
                        (
                            rule(proto=Protocol.TCP, port=("80",), peers=("frontends",)),
                            rule(proto=Protocol.TCP, port=("8000-8080",), peers=("block",)),
                        ),
                    ),
                ),
                egress=k8s(
                    EGR, ("NetworkPolicy x/egress", (rule(named="named-http"), rule(proto=Protocol.UDP, port=("53",))))
                ),
            ),
            ep(pod("x/b", "10.244.1.3"), egress=k8s(EGR)),
        ],
        [
            ip_set("frontends", "10.244.1.3", "10.244.2.3"),
            net_set("block", ("10.0.0.0/8",), ("10.1.0.0/16",)),
            port_set("named-http", "10.244.2.3,tcp:8080"),
        ],
    ),
    "tiers-sctp-log": lambda: compiled(
        [
            ep(
                pod("x/a", "10.244.1.2"),
                ingress=tiers(
                    ING,
                    tier(
                        "admin",
                        Action.PASS,
                        (
                            "GlobalNetworkPolicy deny-sctp",
                            (rule(Action.DENY, proto=Protocol.SCTP, port=("9", "100-200")),),
                        ),
                        ("GlobalNetworkPolicy log-ssh", (rule(Action.LOG, proto=Protocol.TCP, port=("22",)),)),
                        ("GlobalNetworkPolicy pass-ops", (rule(Action.PASS, peers=("ops",)),)),
                    ),
                    tier("k8s", Action.DENY, ("NetworkPolicy x/sctp", (rule(proto=Protocol.SCTP, port=("5000",)),))),
                ),
            ),
            ep(
                host("node-1", ips=("192.168.1.10",), interface="eth0"),
                ingress=tiers(
                    ING, tier("default", Action.DENY, ("GlobalNetworkPolicy allow-icmp", (rule(proto=Protocol.ICMP),)))
                ),
            ),
        ],
        [ip_set("ops", "10.244.3.4")],
    ),
}


def test_render_cache_gives_the_same_state_and_follows_peer_set_changes() -> None:
    from picket_agent.rendering.renderer import RenderCache

    cache = RenderCache()
    first = GOLDEN_STATES["k8s-basic"]()
    assert render(first, cache=cache) == render(first)
    assert render(first, cache=cache) == render(first)  # now from the cache
    changed = compiled(list(first.endpoints.values()), [ip_set("frontends", "10.244.9.9")])
    assert render(changed, cache=cache) == render(changed)
    fewer = compiled(list(first.endpoints.values())[:1])
    assert render(fewer, cache=cache) == render(fewer) and set(cache.entries) == {"x/a"}


def test_a_rule_shared_by_endpoints_is_followed_by_each_of_them_in_the_render_cache() -> None:
    """The renderer expands each distinct rule once per render and replays the peer-set lookups
    it made into every endpoint that shares it: when the set changes kind (here ip -> net, a new
    ipset name), every endpoint holding the rule must be rendered again, not only the first."""
    from picket_agent.rendering.renderer import RenderCache

    shared = rule(peers=("peers",))
    eps = [ep(pod(f"x/{n}", f"10.244.1.{i}", "n1"), ingress=k8s(ING, ("NetworkPolicy x/p", (shared,))))
           for i, n in enumerate("abc", start=2)]
    cache = RenderCache()
    before = compiled(eps, [ip_set("peers", "10.244.9.9")])
    assert render(before, cache=cache) == render(before)
    after = compiled(eps, [net_set("peers", ("10.244.9.0/24",))])
    fresh = render(after)
    assert render(after, cache=cache) == fresh
    names = {m.params[0].values[0] for c in fresh.chains.values() for r in c for m in r.matches if m.name == "set"}
    assert names == {naming.set_name("peers", PeerSetKind.NET.value)}, names


def test_endpoint_version_is_the_stable_hash_of_the_endpoint_rules() -> None:
    """The version the agent reports applied is compared with versions operators published (a
    CompiledEndpoint's ``spec.version`` is ``stable_hash`` of its rules): the renderer's faster,
    memoised computation must give exactly that hash, staged rule sets and hosts included (the
    lab's migration test caught a version that was merely deterministic)."""
    from picket.model import EndpointRules, stable_hash
    from picket_agent.rendering.renderer import endpoint_version

    ers = [er for make in GOLDEN_STATES.values() for er in make().endpoints.values()]
    staged = k8s(ING, ("NetworkPolicy x/s", (rule(proto=Protocol.TCP, port=("81",)),)))
    ers.append(EndpointRules(pod("x/s", "10.244.1.9", "n1", "fd00::9"), staged_ingress=staged, staged_egress=staged))
    assert len(ers) >= 5
    for er in ers:
        assert endpoint_version(er) == stable_hash(er.to_dict()), er.endpoint.key


def test_allow_rules_sharing_all_but_their_ports_become_one_rule() -> None:
    # 3 policies: ps a on 80, ps a on 443 (-> one multiport rule), ps b on 80 (its own rule)
    c = compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(
        ING, ("NetworkPolicy x/p1", (rule(proto=Protocol.TCP, port=("80",), peers=("a",)),)),
        ("NetworkPolicy x/p2", (rule(proto=Protocol.TCP, port=("443",), peers=("a",)),)),
        ("NetworkPolicy x/p3", (rule(proto=Protocol.TCP, port=("80",), peers=("b",)),))))],
        [ip_set("a", "10.0.0.3"), ip_set("b", "10.0.0.4")])
    chain = texts(c)[naming.tier_chain("x/a", "Ingress", 0)]
    assert len(chain) == 3, chain  # two rules and the tier's default
    assert "--dports 80,443" in chain[0] and "NetworkPolicy x/p1 rule 0 (+1 merged)" in chain[0]
    assert "--dport 80" in chain[1] and '"NetworkPolicy x/p3 rule 0"' in chain[1]


def test_a_rule_for_any_port_absorbs_the_port_rules_it_shares_all_else_with() -> None:
    c = compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(
        ING, ("NetworkPolicy x/p1", (rule(proto=Protocol.TCP, port=("80",), peers=("a",)),
                                     rule(proto=Protocol.TCP, peers=("a",))))))],
        [ip_set("a", "10.0.0.3")])
    chain = texts(c)[naming.tier_chain("x/a", "Ingress", 0)]
    assert len(chain) == 2 and "dport" not in chain[0], chain


def test_allow_rules_are_not_merged_across_a_rule_of_another_action() -> None:
    t = tiers(ING, tier("admin", Action.PASS,
                        ("P", (rule(proto=Protocol.TCP, port=("80",), peers=("a",)),
                               rule(Action.DENY, proto=Protocol.TCP, port=("443",)),
                               rule(proto=Protocol.TCP, port=("443",), peers=("a",))))))
    c = compiled([ep(pod("x/a", "10.0.0.2"), ingress=t)], [ip_set("a", "10.0.0.3")])
    chain = texts(c)[naming.tier_chain("x/a", "Ingress", 0)]
    assert len(chain) == 4 and "dport 80" in chain[0] and "dport 443" in chain[2], chain


def test_the_allow_merge_knows_every_field_of_a_rule() -> None:
    # ``tiers.merge_allow_runs`` keys rules on every field but action, ports and named_ports: a
    # new field of Rule must be added to that key, or rules differing in it would be merged.
    from dataclasses import fields

    from picket.model import Rule
    assert {f.name for f in fields(Rule)} == {"action", "protocol", "ports", "named_ports", "peers", "not_protocol",
                                              "not_ports", "not_peers"}
