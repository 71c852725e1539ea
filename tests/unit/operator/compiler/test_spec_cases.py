"""Table-driven cases, one per point of the NetworkPolicy API reference.

Each case adds policies (and namespace tweaks) to a small base cluster and lists connections with
the expected verdict. The verdict is checked on the COMPILED rule sets (``picket.evaluating``)
and, independently, on the reference oracle, so a wrong expectation and a wrong compiler both
show up.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from picket_operator.compiler.compiling import compile_cluster
from tests.unit.operator.compiler.builders import compiled_allows, make_ns, make_pod, make_policy
from tests.unit.operator.compiler.oracle import Oracle

Check = tuple[str, str, int, str, bool]  # src, dst, port, protocol, allowed
LEGACY = {"net.beta.kubernetes.io/network-policy": json.dumps({"ingress": {"isolation": "DefaultDeny"}})}


def base(ns_annotations: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    notes = ns_annotations or {}
    return [
        make_ns("x", {"ns": "x"}, notes.get("x")),
        make_ns("y", {"ns": "y"}, notes.get("y")),
        make_pod("x", "a", "10.0.1.1", {"pod": "a", "app": "web"}, (("http", 80, "TCP"), ("dns", 53, "UDP"))),
        make_pod("x", "b", "10.0.1.2", {"pod": "b"}, (("http", 8080, "TCP"),)),
        make_pod("y", "a", "10.0.2.1", {"pod": "a"}, (("http", 80, "TCP"),)),
        make_pod("y", "b", "10.0.2.2", {"pod": "b", "app": "web"}, (("http", 81, "TCP"),)),
    ]


@dataclass
class Case:
    name: str
    policies: list[dict[str, Any]]
    checks: list[Check]
    ns_annotations: dict[str, dict[str, str]] = field(default_factory=dict)


WEB = {"matchLabels": {"app": "web"}}
POD_A = {"matchLabels": {"pod": "a"}}
POD_B = {"matchLabels": {"pod": "b"}}

CASES = [
    Case("no_policy_means_non_isolated", [], [("x/b", "x/a", 80, "TCP", True), ("y/a", "x/b", 1, "UDP", True)]),
    Case("empty_pod_selector_selects_every_pod_of_the_namespace", [make_policy("x", ingress=[])],
         [("y/a", "x/b", 8080, "TCP", False), ("x/a", "x/b", 8080, "TCP", False), ("x/a", "y/a", 80, "TCP", True)]),
    Case("ingress_empty_list_allows_nothing", [make_policy("x", pod_selector=WEB, ingress=[])],
         [("x/b", "x/a", 80, "TCP", False), ("x/a", "x/b", 8080, "TCP", True)]),
    Case("ingress_absent_still_isolates_ingress_by_default", [make_policy("x", pod_selector=WEB)],
         [("x/b", "x/a", 80, "TCP", False), ("y/a", "x/a", 80, "TCP", False)]),
    Case("ingress_one_empty_rule_allows_everything", [make_policy("x", pod_selector=WEB, ingress=[{}])],
         [("x/b", "x/a", 9999, "TCP", True), ("y/a", "x/a", 5, "SCTP", True)]),
    Case("from_empty_list_matches_all_sources", [make_policy("x", pod_selector=WEB, ingress=[{"from": [],
         "ports": [{"port": 80}]}])], [("y/a", "x/a", 80, "TCP", True), ("y/a", "x/a", 81, "TCP", False)]),
    Case("ingress_only_policy_leaves_egress_open", [make_policy("x", pod_selector=WEB, ingress=[])],
         [("x/a", "y/a", 80, "TCP", True)]),
    Case("empty_egress_list_without_policy_types_does_not_affect_egress",
         [make_policy("x", pod_selector=WEB, ingress=[{}], egress=[])], [("x/a", "y/a", 80, "TCP", True)]),
    Case("egress_rules_default_policy_types_to_ingress_and_egress",
         [make_policy("x", pod_selector=POD_A, egress=[{"to": [{"podSelector": POD_B}]}])],
         [("x/a", "x/b", 8080, "TCP", True), ("x/a", "y/a", 80, "TCP", False), ("x/b", "x/a", 80, "TCP", False)]),
    Case("policy_types_egress_only_ignores_ingress_rules",
         [make_policy("x", pod_selector=POD_A, ingress=[], policy_types=["Egress"])],
         [("x/b", "x/a", 80, "TCP", True), ("x/a", "x/b", 8080, "TCP", False)]),
    Case("pod_selector_peer_selects_the_policys_namespace_only",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"podSelector": POD_B}]}])],
         [("x/b", "x/a", 80, "TCP", True), ("y/b", "x/a", 80, "TCP", False)]),
    Case("empty_namespace_selector_selects_all_namespaces",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"namespaceSelector": {}}]}])],
         [("y/b", "x/a", 80, "TCP", True), ("x/b", "x/a", 80, "TCP", True)]),
    Case("namespace_selector_by_kubernetes_io_metadata_name",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
             "kubernetes.io/metadata.name": "y"}}}]}])],
         [("y/a", "x/a", 80, "TCP", True), ("x/b", "x/a", 80, "TCP", False)]),
    Case("namespace_and_pod_selector_in_one_peer_are_anded",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}},
                                                                  "podSelector": POD_B}]}])],
         [("y/b", "x/a", 80, "TCP", True), ("y/a", "x/a", 80, "TCP", False), ("x/b", "x/a", 80, "TCP", False)]),
    Case("several_peers_are_ored",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}},
                                                                  {"podSelector": POD_B}]}])],
         [("y/a", "x/a", 80, "TCP", True), ("x/b", "x/a", 80, "TCP", True)]),
    Case("ip_block_with_except_matches_pod_ips",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"ipBlock": {"cidr": "10.0.2.0/24",
                                                                               "except": ["10.0.2.2/32"]}}]}])],
         [("y/a", "x/a", 80, "TCP", True), ("y/b", "x/a", 80, "TCP", False), ("x/b", "x/a", 80, "TCP", False)]),
    Case("egress_ip_block_matches_destination_pod_ips",
         [make_policy("x", pod_selector=POD_A, egress=[{"to": [{"ipBlock": {"cidr": "10.0.2.0/24"}}]}])],
         [("x/a", "y/a", 80, "TCP", True), ("x/a", "x/b", 8080, "TCP", False)]),
    Case("match_expressions_in_and_does_not_exist",
         [make_policy("x", pod_selector={"matchExpressions": [{"key": "pod", "operator": "In", "values": ["b"]}]},
                      ingress=[{"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [
                          {"key": "app", "operator": "DoesNotExist"}]}}]}])],
         [("y/a", "x/b", 8080, "TCP", True), ("y/b", "x/b", 8080, "TCP", False)]),
    Case("not_in_matches_pods_without_the_label",
         [make_policy("x", pod_selector={"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]},
                      ingress=[])],
         [("x/a", "x/b", 8080, "TCP", False), ("x/b", "x/a", 80, "TCP", True)]),
    Case("exists_selects_pods_with_the_key",
         [make_policy("y", pod_selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}, ingress=[])],
         [("x/a", "y/b", 81, "TCP", False), ("x/a", "y/a", 80, "TCP", True)]),
    Case("numeric_port_protocol_defaults_to_tcp",
         [make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"port": 80}]}])],
         [("x/b", "x/a", 80, "TCP", True), ("x/b", "x/a", 80, "UDP", False), ("x/b", "x/a", 81, "TCP", False)]),
    Case("protocol_only_entry_allows_every_port_of_that_protocol",
         [make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"protocol": "UDP"}]}])],
         [("x/b", "x/a", 53, "UDP", True), ("x/b", "x/a", 9999, "UDP", True), ("x/b", "x/a", 80, "TCP", False)]),
    Case("end_port_makes_an_inclusive_range",
         [make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"port": 80, "endPort": 82}]}])],
         [("x/b", "x/a", 82, "TCP", True), ("x/b", "x/a", 83, "TCP", False), ("x/b", "x/a", 79, "TCP", False)]),
    Case("sctp_is_supported",
         [make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"port": 80, "protocol": "SCTP"}]}])],
         [("x/b", "x/a", 80, "SCTP", True), ("x/b", "x/a", 80, "TCP", False)]),
    Case("ingress_named_port_resolves_on_each_target_pod",
         [make_policy("x", ingress=[{"ports": [{"port": "http"}]}])],
         [("y/a", "x/a", 80, "TCP", True), ("y/a", "x/a", 8080, "TCP", False),
          ("y/a", "x/b", 8080, "TCP", True), ("y/a", "x/b", 80, "TCP", False)]),
    Case("named_port_needs_the_same_protocol",
         [make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"port": "dns", "protocol": "TCP"}]}])],
         [("x/b", "x/a", 53, "TCP", False), ("x/b", "x/a", 53, "UDP", False)]),
    Case("egress_named_port_resolves_on_each_destination_pod",
         [make_policy("x", pod_selector=POD_A, egress=[{"ports": [{"port": "http"}]}])],
         [("x/a", "y/a", 80, "TCP", True), ("x/a", "y/b", 81, "TCP", True), ("x/a", "y/b", 80, "TCP", False),
          ("x/a", "x/b", 8080, "TCP", True)]),
    Case("unresolvable_named_port_matches_nothing",
         [make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"port": "nosuch"}]}])],
         [("x/b", "x/a", 80, "TCP", False)]),
    Case("policies_are_additive",
         [make_policy("x", "p1", POD_A, ingress=[{"from": [{"podSelector": POD_B}]}]),
          make_policy("x", "p2", POD_A, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}])],
         [("x/b", "x/a", 80, "TCP", True), ("y/a", "x/a", 80, "TCP", True)]),
    Case("a_connection_needs_sender_egress_and_receiver_ingress",
         [make_policy("x", pod_selector=POD_A, egress=[], policy_types=["Egress"])],
         [("x/a", "y/a", 80, "TCP", False), ("y/a", "x/a", 80, "TCP", True)]),
    Case("legacy_namespace_annotation_isolates_ingress", [],
         [("x/b", "x/a", 80, "TCP", False), ("y/a", "x/b", 8080, "TCP", False), ("x/a", "y/a", 80, "TCP", True)],
         {"x": LEGACY}),
    Case("legacy_isolation_combines_with_policies",
         [make_policy("x", pod_selector=POD_A, ingress=[{"from": [{"podSelector": POD_B}]}])],
         [("x/b", "x/a", 80, "TCP", True), ("y/a", "x/a", 80, "TCP", False), ("x/a", "x/b", 8080, "TCP", False)],
         {"x": LEGACY}),
    Case("malformed_legacy_annotation_is_ignored", [], [("x/b", "x/a", 80, "TCP", True)],
         {"x": {"net.beta.kubernetes.io/network-policy": "{not json"}}),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_spec_case(case: Case) -> None:
    objects = base(case.ns_annotations) + case.policies
    compiled = compile_cluster(objects)
    oracle = Oracle(objects)
    for src, dst, port, protocol, expected in case.checks:
        where = f"{src} -> {dst} {protocol}/{port}"
        assert oracle.allowed(src, dst, port, protocol) == expected, f"oracle disagrees with the case: {where}"
        assert compiled_allows(compiled, src, dst, port, protocol) == expected, f"compiled verdict wrong: {where}"


def test_unselected_endpoints_have_no_rule_sets_and_selected_ones_one_kubernetes_tier() -> None:
    compiled = compile_cluster([*base(), make_policy("x", "p2", POD_A, ingress=[]), make_policy("x", "p1", POD_A)])
    assert compiled.endpoints["x/b"].ingress is None and compiled.endpoints["x/b"].egress is None
    ingress = compiled.endpoints["x/a"].ingress
    assert ingress is not None and [t.name for t in ingress.tiers] == ["kubernetes"]
    assert [p.policy for p in ingress.tiers[0].policies] == ["NetworkPolicy x/p1", "NetworkPolicy x/p2"]
    assert compiled.endpoints["x/a"].egress is None


def test_pods_outside_the_pod_network_are_not_endpoints() -> None:
    objects = [
        *base(),
        make_pod("x", "pending", None),
        make_pod("x", "host", "192.168.0.1", host_network=True),
        make_pod("x", "done", "10.0.1.9", phase="Succeeded"),
        make_pod("x", "failed", "10.0.1.8", phase="Failed"),
        make_pod("x", "leaving", "10.0.1.7", {"pod": "b"}, deleting=True),
        make_policy("x", ingress=[{"from": [{"namespaceSelector": {}}]}]),
    ]
    compiled = compile_cluster(objects)
    assert set(compiled.endpoints) == {"x/a", "x/b", "y/a", "y/b", "x/leaving"}
    members = {m for ps in compiled.peer_sets.values() for m in ps.members}
    assert "10.0.1.7" in members  # terminating pods keep being enforced and matched
    assert not members & {"192.168.0.1", "10.0.1.9", "10.0.1.8"}
    assert set(Oracle(objects).pods()) == set(compiled.endpoints)


def test_equal_selectors_share_one_peer_set() -> None:
    peer = {"from": [{"podSelector": POD_B}]}
    compiled = compile_cluster([*base(), make_policy("x", "p1", POD_A, ingress=[peer]),
                                make_policy("x", "p2", {}, ingress=[peer, {"from": [{"podSelector": POD_A}]}])])
    assert len(compiled.peer_sets) == 2
    rules_a = compiled.endpoints["x/a"].ingress
    assert rules_a is not None
    used = [r.peers for p in rules_a.tiers[0].policies for r in p.rules]
    assert used[0] == used[1]


def test_an_ingress_named_port_declared_by_two_containers_allows_both_numbers() -> None:
    # Kubernetes rejects a port name twice in ONE container, not in two: a sidecar may name its
    # port "http" too. The name then stands for every such port of the pod (as for egress, and as
    # the oracle says); found by the oracle property test, which resolved only the first.
    pod = make_pod("x", "a", "10.0.1.1", {"pod": "a"}, (("http", 80, "TCP"),))
    pod["spec"]["containers"].append({"name": "sidecar", "ports": [{"name": "http", "containerPort": 8080}]})
    objects = [make_ns("x", {"ns": "x"}), pod, make_pod("x", "b", "10.0.1.2", {"pod": "b"}),
               make_policy("x", pod_selector=POD_A, ingress=[{"ports": [{"port": "http"}]}])]
    compiled, oracle = compile_cluster(objects), Oracle(objects)
    for port, expected in ((80, True), (8080, True), (81, False)):
        assert oracle.allowed("x/b", "x/a", port, "TCP") is expected
        assert compiled_allows(compiled, "x/b", "x/a", port, "TCP") is expected, port
