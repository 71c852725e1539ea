"""ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2, network-policy-api v0.2.0), table-driven.

Each case names the point of the API reference it checks (quoted), adds policies to a small base
cluster and lists connections with the expected verdict. Verdicts are checked on the COMPILED rule
sets (``picket.evaluating``) and, independently, on the three-tier oracle. Bad input: a Problem
naming the field, the policy not applied at all, other policies unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from picket.evaluating import verdict
from picket.model import Action, Protocol
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.frontends.clusternetworkpolicy import translate_cluster_network_policy
from picket_operator.compiler.incremental import IncrementalCompiler
from tests.unit.operator.compiler.builders import compiled_allows, make_ns, make_pod, make_policy
from tests.unit.operator.compiler.cnp_oracle import ThreeTierOracle

Check = tuple[str, str, int, str, bool]  # src, dst, port, protocol, allowed


def cnp(name: str, tier: str = "Admin", priority: int = 10, subject: dict[str, Any] | None = None,
        ingress: list[dict[str, Any]] | None = None, egress: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"tier": tier, "priority": priority,
                            "subject": subject if subject is not None else {"namespaces": {}}}
    if ingress is not None:
        spec["ingress"] = ingress
    if egress is not None:
        spec["egress"] = egress
    return {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": name}, "spec": spec}


def ns_is(name: str) -> dict[str, Any]:
    return {"matchLabels": {"kubernetes.io/metadata.name": name}}


SENSITIVE = {"namespaces": ns_is("sensitive")}
FROM_ALL = [{"namespaces": {}}]
TCP80 = [{"tcp": {"destinationPort": {"number": 80}}}]


def base() -> list[dict[str, Any]]:
    return [
        make_ns("sensitive"), make_ns("monitoring", {"role": "monitoring"}), make_ns("x", {"team": "a"}),
        make_pod("sensitive", "db", "10.0.1.1", {"app": "db"}, (("http", 80, "TCP"), ("dns", 53, "UDP"))),
        make_pod("monitoring", "prom", "10.0.2.1", {"app": "prom"}),
        make_pod("x", "a", "10.0.3.1", {"app": "web"}, (("http", 8080, "TCP"),)),
        make_pod("x", "b", "10.0.3.2", {"app": "client"}, (("http", 81, "TCP"),)),
    ]


@dataclass
class Case:
    name: str
    policies: list[dict[str, Any]]
    checks: list[Check]


CASES = [
    Case("no_cnp_means_default_allow", [], [("x/a", "sensitive/db", 80, "TCP", True)]),
    # "If Admin tier has made a final decision (Accept or Deny) on a connection, then no further
    # evaluation is done."
    Case("admin_deny_wins_over_a_networkpolicy_allow", [
        cnp("guard", subject=SENSITIVE, ingress=[{"action": "Deny", "from": FROM_ALL}]),
        make_policy("sensitive", "np", ingress=[{}]),
    ], [("x/a", "sensitive/db", 80, "TCP", False), ("monitoring/prom", "sensitive/db", 80, "TCP", False)]),
    Case("admin_accept_wins_over_a_networkpolicy_deny", [
        cnp("open", subject=SENSITIVE, ingress=[{"action": "Accept", "from": [{"namespaces": {"matchLabels":
                                                                                          {"role": "monitoring"}}}]}]),
        make_policy("sensitive", "np", ingress=[]),
    ], [("monitoring/prom", "sensitive/db", 80, "TCP", True), ("x/a", "sensitive/db", 80, "TCP", False)]),
    # The README guardrail: deny everyone into `sensitive` except monitoring (an earlier Accept rule).
    Case("guardrail_accept_monitoring_then_deny_the_rest_rules_in_order", [
        cnp("guard", subject=SENSITIVE, ingress=[
            {"name": "allow-monitoring", "action": "Accept",
             "from": [{"namespaces": {"matchLabels": {"role": "monitoring"}}}]},
            {"name": "deny-the-rest", "action": "Deny", "from": FROM_ALL}]),
    ], [("monitoring/prom", "sensitive/db", 80, "TCP", True), ("x/a", "sensitive/db", 80, "TCP", False),
        ("x/a", "x/b", 81, "TCP", True)]),
    # "Pass: ... passes evaluation to the next tier. For example, if an Admin tier CNP uses Pass
    # action, NetworkPolicy evaluation will happen next."
    Case("admin_pass_skips_lower_admin_rules_to_the_networkpolicy_tier", [
        cnp("pass-x", priority=1, subject={"namespaces": ns_is("x")},
            ingress=[{"action": "Pass", "from": [{"namespaces": ns_is("x")}]}]),
        cnp("deny-all", priority=2, subject={"namespaces": ns_is("x")}, ingress=[{"action": "Deny", "from": FROM_ALL}]),
        make_policy("x", "np", pod_selector={"matchLabels": {"app": "web"}}, ingress=[{"ports": [{"port": 8080}]}]),
    ], [("x/b", "x/a", 8080, "TCP", True), ("x/b", "x/a", 9, "TCP", False), ("x/a", "x/b", 81, "TCP", True),
        ("monitoring/prom", "x/b", 81, "TCP", False)]),
    Case("admin_pass_with_no_networkpolicy_goes_to_baseline", [
        cnp("pass", subject={"namespaces": ns_is("x")}, ingress=[{"action": "Pass", "from": FROM_ALL}]),
        cnp("base-deny", tier="Baseline", subject={"namespaces": ns_is("x")},
            ingress=[{"action": "Deny", "from": FROM_ALL}]),
    ], [("sensitive/db", "x/a", 80, "TCP", False)]),
    # "Baseline tier is a cluster-wide policy that can be overridden by the v1.NetworkPolicy."
    Case("baseline_default_deny_opened_by_a_networkpolicy", [
        cnp("default-deny", tier="Baseline", priority=1000, subject={"namespaces": {}},
            ingress=[{"action": "Deny", "from": FROM_ALL}]),
        make_policy("x", "allow-web", pod_selector={"matchLabels": {"app": "web"}},
                    ingress=[{"ports": [{"port": 8080}]}]),
    ], [("x/b", "x/a", 8080, "TCP", True), ("x/a", "x/b", 81, "TCP", False),
        ("x/a", "sensitive/db", 80, "TCP", False)]),
    # Pass in the Baseline tier: "passes evaluation to the next tier" - the default, which allows.
    Case("baseline_pass_falls_to_the_default_allow", [
        cnp("pass", tier="Baseline", priority=1, subject={"namespaces": {}}, ingress=[{"action": "Pass",
                                                                                    "from": FROM_ALL}]),
        cnp("deny", tier="Baseline", priority=2, subject={"namespaces": {}}, ingress=[{"action": "Deny",
                                                                                    "from": FROM_ALL}]),
    ], [("x/a", "sensitive/db", 80, "TCP", True)]),
    # "Policies with lower priority values have higher precedence".
    Case("lower_priority_value_first", [
        cnp("z-accept", priority=1, subject=SENSITIVE, ingress=[{"action": "Accept", "from": FROM_ALL}]),
        cnp("a-deny", priority=2, subject=SENSITIVE, ingress=[{"action": "Deny", "from": FROM_ALL}]),
    ], [("x/a", "sensitive/db", 80, "TCP", True)]),
    # "If two (or more) policies in the same tier with the same priority could match a connection,
    # then the implementation can apply any of the matching policies" - picket: by name.
    Case("equal_priorities_apply_by_name", [
        cnp("b-accept", priority=5, subject=SENSITIVE, ingress=[{"action": "Accept", "from": FROM_ALL}]),
        cnp("a-deny", priority=5, subject=SENSITIVE, ingress=[{"action": "Deny", "from": FROM_ALL}]),
    ], [("x/a", "sensitive/db", 80, "TCP", False)]),
    # "CNPs with no ingress rules do not affect ingress traffic."
    Case("no_rules_no_effect_and_no_isolation", [
        cnp("empty", subject={"namespaces": {}}),
        cnp("only-egress", subject=SENSITIVE, egress=[{"action": "Accept", "to": FROM_ALL}]),
    ], [("x/a", "sensitive/db", 80, "TCP", True), ("sensitive/db", "x/a", 5, "UDP", True)]),
    Case("subject_pods_is_namespace_and_pod_selector", [
        cnp("web-only", subject={"pods": {"namespaceSelector": ns_is("x"), "podSelector": {"matchLabels":
                                                                                        {"app": "web"}}}},
            ingress=[{"action": "Deny", "from": FROM_ALL}]),
    ], [("sensitive/db", "x/a", 8080, "TCP", False), ("sensitive/db", "x/b", 81, "TCP", True)]),
    Case("peer_pods_is_namespace_and_pod_selector", [
        cnp("deny-prom", subject=SENSITIVE, ingress=[{"action": "Deny", "from": [
            {"pods": {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "prom"}}}}]}]),
    ], [("monitoring/prom", "sensitive/db", 80, "TCP", False), ("x/a", "sensitive/db", 80, "TCP", True)]),
    # "If unspecified, protocol-specific attributes will not be used to match traffic."
    Case("protocols_ports_and_ranges", [
        cnp("ports", subject=SENSITIVE, ingress=[{"action": "Deny", "from": FROM_ALL, "protocols": [
            {"tcp": {"destinationPort": {"number": 80}}},
            {"udp": {"destinationPort": {"range": {"start": 50, "end": 60}}}}]}]),
    ], [("x/a", "sensitive/db", 80, "TCP", False), ("x/a", "sensitive/db", 81, "TCP", True),
        ("x/a", "sensitive/db", 53, "UDP", False), ("x/a", "sensitive/db", 61, "UDP", True),
        ("x/a", "sensitive/db", 80, "SCTP", True)]),
    # "DestinationNamedPort selects a destination port on a pod based on the ContainerPort name."
    Case("ingress_named_port_resolved_on_the_receiver", [
        cnp("named", subject={"namespaces": {}}, ingress=[{"action": "Deny", "from": FROM_ALL,
                                                           "protocols": [{"destinationNamedPort": "http"}]}]),
    ], [("x/b", "sensitive/db", 80, "TCP", False), ("sensitive/db", "x/a", 8080, "TCP", False),
        ("sensitive/db", "x/a", 80, "TCP", True), ("x/a", "x/b", 81, "TCP", False)]),
    Case("egress_named_port_of_any_protocol_resolved_on_the_destination", [
        cnp("named", subject={"namespaces": ns_is("x")}, egress=[{"action": "Deny", "to": FROM_ALL,
                                                                  "protocols": [{"destinationNamedPort": "dns"}]}]),
    ], [("x/a", "sensitive/db", 53, "UDP", False), ("x/a", "sensitive/db", 53, "TCP", True),
        ("x/a", "sensitive/db", 80, "TCP", True)]),
    # "Networks defines a way to select peers via CIDR blocks ... cluster-internal traffic will be
    # checked against the rule as well."
    Case("egress_networks_match_pod_addresses_too", [
        cnp("no-10-0-1", subject={"namespaces": ns_is("x")}, egress=[{"action": "Deny",
                                                                      "to": [{"networks": ["10.0.1.0/24"]}]}]),
    ], [("x/a", "sensitive/db", 80, "TCP", False), ("x/a", "monitoring/prom", 80, "TCP", True)]),
    # A connection needs the sender's egress AND the receiver's ingress.
    Case("egress_deny_of_the_sender_blocks_an_admin_accept_at_the_receiver", [
        cnp("out", subject={"namespaces": ns_is("x")}, egress=[{"action": "Deny", "to": [{"namespaces":
                                                                                         ns_is("sensitive")}]}]),
        cnp("in", subject=SENSITIVE, ingress=[{"action": "Accept", "from": FROM_ALL}]),
    ], [("x/a", "sensitive/db", 80, "TCP", False), ("monitoring/prom", "sensitive/db", 80, "TCP", True)]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_spec_case(case: Case) -> None:
    objects = base() + case.policies
    compiled = compile_cluster(objects)
    assert compiled.problems == ()
    oracle = ThreeTierOracle(objects)
    for src, dst, port, protocol, expected in case.checks:
        assert oracle.allowed(src, dst, port, protocol) == expected, f"oracle: {src} -> {dst} {protocol}/{port}"
        assert compiled_allows(compiled, src, dst, port, protocol) == expected, f"{src} -> {dst} {protocol}/{port}"


def test_tiers_and_rule_names_in_the_rule_set() -> None:
    objects = [
        *base(),
        cnp("guard", subject=SENSITIVE, ingress=[{"name": "allow-monitoring", "action": "Accept", "from": FROM_ALL},
                                                 {"action": "Deny", "from": FROM_ALL, "protocols": TCP80}]),
        cnp("base", tier="Baseline", subject=SENSITIVE, ingress=[{"action": "Deny", "from": FROM_ALL}]),
        make_policy("sensitive", "np", ingress=[{}]),
    ]
    rule_set = compile_cluster(objects).endpoints["sensitive/db"].ingress
    assert rule_set is not None
    assert [(t.name, t.default) for t in rule_set.tiers] == [
        ("admin", Action.PASS), ("kubernetes", Action.DENY), ("baseline", Action.PASS)]
    assert [p.policy for p in rule_set.tiers[0].policies] == [
        "ClusterNetworkPolicy guard rule allow-monitoring", "ClusterNetworkPolicy guard rule ingress[1]"]
    assert [p.policy for p in rule_set.tiers[2].policies] == ["ClusterNetworkPolicy base rule ingress[0]"]


# -- bad input ----------------------------------------------------------------------------------

def spec_with(**changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"tier": "Admin", "priority": 10, "subject": {"namespaces": {}},
                            "ingress": [{"action": "Deny", "from": FROM_ALL}]}
    spec.update(changes)
    return spec


def ingress(**rule: Any) -> list[dict[str, Any]]:
    return [{"action": "Deny", "from": FROM_ALL, **rule}]


BAD = [
    ("tier_unknown", spec_with(tier="Platform"), "spec.tier", "is not Admin or Baseline"),
    ("tier_missing", {k: v for k, v in spec_with().items() if k != "tier"}, "spec.tier", "required"),
    ("priority_above_1000", spec_with(priority=1001), "spec.priority", "0 to 1000"),
    ("priority_negative", spec_with(priority=-1), "spec.priority", "0 to 1000"),
    ("priority_not_integer", spec_with(priority="10"), "spec.priority", "0 to 1000"),
    ("subject_two_fields", spec_with(subject={"namespaces": {}, "pods": {"podSelector": {}}}), "spec.subject",
     "exactly one of namespaces, pods"),
    ("subject_missing", {k: v for k, v in spec_with().items() if k != "subject"}, "spec.subject", "required"),
    ("subject_pods_without_pod_selector", spec_with(subject={"pods": {"namespaceSelector": {}}}),
     "spec.subject.pods.podSelector", "required"),
    ("subject_bad_operator", spec_with(subject={"namespaces": {"matchExpressions": [
        {"key": "a", "operator": "Foo"}]}}), "spec.subject.namespaces.matchExpressions[0].operator",
     "unknown operator"),
    ("unknown_spec_field", spec_with(order=3), "spec.order", "unknown field"),
    ("action_allow_is_not_an_action", spec_with(ingress=[{"action": "Allow", "from": FROM_ALL}]),
     "spec.ingress[0].action", "is not Accept, Deny or Pass"),
    ("from_missing", spec_with(ingress=[{"action": "Deny"}]), "spec.ingress[0].from", "required"),
    ("from_empty", spec_with(ingress=[{"action": "Deny", "from": []}]), "spec.ingress[0].from", "required"),
    ("too_many_rules", spec_with(ingress=[{"action": "Deny", "from": FROM_ALL}] * 26), "spec.ingress",
     "a maximum of 25 rules"),
    ("rule_name_too_long", spec_with(ingress=ingress(name="n" * 101)), "spec.ingress[0].name", "at most 100"),
    ("ingress_networks_peer", spec_with(ingress=[{"action": "Deny", "from": [{"networks": ["10.0.0.0/8"]}]}]),
     "spec.ingress[0].from[0].networks", "unknown field"),
    ("peer_two_fields", spec_with(ingress=[{"action": "Deny", "from": [{"namespaces": {}, "pods": {
        "podSelector": {}}}]}]), "spec.ingress[0].from[0]", "exactly one of"),
    ("domain_names_rejected", spec_with(egress=[{"action": "Accept", "to": [{"domainNames": ["example.com"]}]}]),
     "spec.egress[0].to[0].domainNames", "domainNames peers (experimental) are not supported by picket"),
    ("nodes_bad_selector", spec_with(egress=[{"action": "Accept", "to": [{"nodes": {"matchLabels": "x"}}]}]),
     "spec.egress[0].to[0].nodes.matchLabels", "must be a map"),
    ("nodes_in_ingress", spec_with(ingress=[{"action": "Deny", "from": [{"nodes": {}}]}]),
     "spec.ingress[0].from[0].nodes", "unknown field"),
    ("named_port_with_nodes", spec_with(egress=[{"action": "Deny", "to": [{"nodes": {}}],
                                                 "protocols": [{"destinationNamedPort": "http"}]}]),
     "spec.egress[0].protocols", "cannot be used with a networks or nodes peer"),
    ("networks_not_cidr", spec_with(egress=[{"action": "Deny", "to": [{"networks": ["10.0.0.1"]}]}]),
     "spec.egress[0].to[0].networks[0]", "CIDR format"),
    ("networks_malformed", spec_with(egress=[{"action": "Deny", "to": [{"networks": ["10.0.0.300/8"]}]}]),
     "spec.egress[0].to[0].networks[0]", "malformed CIDR"),
    ("networks_empty", spec_with(egress=[{"action": "Deny", "to": [{"networks": []}]}]),
     "spec.egress[0].to[0].networks", "1 to 25 CIDRs"),
    ("named_port_with_networks", spec_with(egress=[{"action": "Deny", "to": [{"networks": ["10.0.0.0/8"]}],
                                                    "protocols": [{"destinationNamedPort": "http"}]}]),
     "spec.egress[0].protocols", "cannot be used with a networks or nodes peer"),
    ("protocol_two_fields", spec_with(ingress=ingress(protocols=[{"tcp": {"destinationPort": {"number": 1}},
                                                                  "udp": {"destinationPort": {"number": 1}}}])),
     "spec.ingress[0].protocols[0]", "exactly one of tcp, udp, sctp"),
    ("protocol_icmp", spec_with(ingress=ingress(protocols=[{"icmp": {}}])), "spec.ingress[0].protocols[0].icmp",
     "unknown field"),
    ("protocols_empty", spec_with(ingress=ingress(protocols=[])), "spec.ingress[0].protocols", "1 to 25"),
    ("port_zero", spec_with(ingress=ingress(protocols=[{"tcp": {"destinationPort": {"number": 0}}}])),
     "spec.ingress[0].protocols[0].tcp.destinationPort.number", "not a port number"),
    ("port_number_and_range", spec_with(ingress=ingress(protocols=[{"tcp": {"destinationPort": {
        "number": 1, "range": {"start": 1, "end": 2}}}}])), "spec.ingress[0].protocols[0].tcp.destinationPort",
     "exactly one of number, range"),
    # "Start port must be less than End port"
    ("range_start_equals_end", spec_with(ingress=ingress(protocols=[{"udp": {"destinationPort": {
        "range": {"start": 80, "end": 80}}}}])), "spec.ingress[0].protocols[0].udp.destinationPort.range",
     "must be less than end"),
    ("named_port_invalid", spec_with(ingress=ingress(protocols=[{"destinationNamedPort": "HTTP_1"}])),
     "spec.ingress[0].protocols[0].destinationNamedPort", "not a valid port name"),
]


@pytest.mark.parametrize(("spec", "field", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_problem_naming_the_field_and_never_half_applied(
        spec: dict[str, Any], field: str, message: str) -> None:
    bad = {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
           "metadata": {"name": "bad"}, "spec": spec}
    translation = translate_cluster_network_policy(bad)
    assert translation.policy is None
    assert any(p.field == field and message in p.message for p in translation.problems), translation.problems
    assert all(p.kind == "ClusterNetworkPolicy" and p.name == "bad" for p in translation.problems)
    # Other policies are unaffected; the bad one contributes nothing.
    good = cnp("good", subject=SENSITIVE, ingress=[{"action": "Deny", "from": FROM_ALL}])
    compiled = compile_cluster([*base(), bad, good])
    assert {p.name for p in compiled.problems} == {"bad"}
    assert not compiled_allows(compiled, "x/a", "sensitive/db", 80)
    assert compiled_allows(compiled, "x/b", "x/a", 8080) and compiled_allows(compiled, "sensitive/db", "x/b", 81)


def test_problem_reads_with_the_kind_name_and_field() -> None:
    bad = cnp("dns", egress=[{"action": "Accept", "to": [{"domainNames": ["*.example.com"]}]}])
    (problem,) = compile_cluster([*base(), bad]).problems
    assert str(problem).startswith("ClusterNetworkPolicy dns: spec.egress[0].to[0].domainNames: domainNames peers")


# "If an implementation sees no fields are set then it can infer that the deployed CRD is of an
# incompatible version with an unknown field. In that case it should fail closed. For "Accept"
# rules, "fail closed" means: "treat the rule as matching no traffic". For "Deny" and "Pass" rules,
# "fail closed" means: "treat the rule as a 'Deny all' rule"."
@pytest.mark.parametrize(("action", "allowed"), [("Accept", True), ("Deny", False), ("Pass", False)])
def test_a_peer_with_no_known_field_fails_closed(action: str, allowed: bool) -> None:
    guard = cnp("guard", subject=SENSITIVE, ingress=[
        {"name": "future", "action": action, "from": [{"services": {"name": "x"}}]},
        {"name": "accept-the-rest", "action": "Accept", "from": FROM_ALL}])
    compiled = compile_cluster([*base(), guard, make_policy("sensitive", "np", ingress=[])])
    (warning,) = compiled.problems  # a warning: the policy is applied
    assert warning.field == "spec.ingress[0].from[0]" and "fails closed" in warning.message
    # Accept: the rule matches nothing, the next rule accepts; Deny/Pass: the rule denies all.
    assert compiled_allows(compiled, "x/a", "sensitive/db", 80) == allowed


def test_an_accept_rule_keeps_its_known_peers_when_one_fails_closed() -> None:
    guard = cnp("guard", subject=SENSITIVE, ingress=[
        {"action": "Accept", "from": [{"services": {}}, {"namespaces": {"matchLabels": {"role": "monitoring"}}}]},
        {"action": "Deny", "from": FROM_ALL}])
    compiled = compile_cluster([*base(), guard])
    assert len(compiled.problems) == 1
    assert compiled_allows(compiled, "monitoring/prom", "sensitive/db", 80)
    assert not compiled_allows(compiled, "x/a", "sensitive/db", 80)


def test_a_deny_rule_failing_closed_denies_everything_even_before_an_accept() -> None:
    guard = cnp("guard", subject=SENSITIVE, ingress=[
        {"action": "Deny", "from": [{"services": {}}], "protocols": TCP80},
        {"action": "Accept", "from": FROM_ALL}])
    compiled = compile_cluster([*base(), guard])
    assert not compiled_allows(compiled, "monitoring/prom", "sensitive/db", 5, "UDP")


# -- nodes peers ----------------------------------------------------------------------------------

def make_node(name: str, ip: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}]}}


NODES = [make_node("cp", "172.18.0.2", {"node-role.kubernetes.io/control-plane": ""}),
         make_node("worker", "172.18.0.3", {"pool": "workers"})]


def egress_to(compiled: Any, src: str, ip: str, port: int = 6443) -> bool:
    rule_set = compiled.endpoints[src].egress
    return rule_set is None or verdict(rule_set, ip, Protocol.TCP, port, compiled.peer_sets).allowed


# "Nodes defines a way to select a set of nodes in the cluster (based on the node's labels). It
# selects the nodeIPs as the peer type by matching on the IPs present in the node.Status.Addresses
# field of the node. This field follows standard label selector semantics; if present but empty,
# it selects all Nodes."
def test_nodes_peer_matches_the_selected_nodes_addresses() -> None:
    guard = cnp("no-control-plane", subject={"namespaces": ns_is("x")}, egress=[
        {"name": "api", "action": "Deny", "to": [{"nodes": {"matchExpressions": [
            {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}]}}]}])
    compiled = compile_cluster([*base(), *NODES, guard])
    assert compiled.problems == ()
    assert not egress_to(compiled, "x/a", "172.18.0.2")
    assert egress_to(compiled, "x/a", "172.18.0.3")
    assert compiled_allows(compiled, "x/a", "sensitive/db", 80)  # pods are never node peers
    (name,) = {p for t in compiled.endpoints["x/a"].egress.tiers for e in t.policies for r in e.rules  # type: ignore[union-attr]
               for p in r.peers}
    assert name.startswith("nodes-") and compiled.peer_sets[name].members == ("172.18.0.2",)


def test_empty_nodes_selector_selects_every_node_and_follows_node_events() -> None:
    guard = cnp("no-nodes", subject={"namespaces": ns_is("x")}, egress=[{"action": "Deny", "to": [{"nodes": {}}]}])
    compiler = IncrementalCompiler()
    for obj in [*base(), guard, *NODES]:
        compiler.upsert_policy(obj) if obj["kind"] in ("Node", "ClusterNetworkPolicy") else (
            compiler.upsert_namespace(obj) if obj["kind"] == "Namespace" else compiler.upsert_pod(obj))
    snap = compiler.snapshot()
    assert snap == compile_cluster([*base(), *NODES, guard])
    assert not egress_to(snap, "x/a", "172.18.0.2") and not egress_to(snap, "x/a", "172.18.0.3")
    delta = compiler.delete_policy("Node", "", "worker")
    assert len(delta.peer_sets_changed) == 1 and not delta.endpoints_changed
    assert egress_to(compiler.snapshot(), "x/a", "172.18.0.3")
    assert compiler.snapshot() == compile_cluster([*base(), NODES[0], guard])
