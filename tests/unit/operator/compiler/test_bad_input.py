"""Bad input: every policy the compiler cannot honour yields a Problem naming the object and the
JSON path of the field; that policy is not applied at all, and every other policy still is."""

from __future__ import annotations

from typing import Any

import pytest

from picket.model import Problem
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import IncrementalCompiler
from tests.unit.operator.compiler.builders import compiled_allows, make_ns, make_pod, make_policy

GOOD = make_policy("x", "good", {"matchLabels": {"pod": "b"}}, ingress=[])


def cluster(bad: dict[str, Any]) -> list[dict[str, Any]]:
    return [make_ns("x"), make_pod("x", "a", "10.0.0.1", {"pod": "a"}), make_pod("x", "b", "10.0.0.2", {"pod": "b"}),
            GOOD, bad]


def bad_policy(**spec: Any) -> dict[str, Any]:
    # Selects x/a and would deny it all ingress, if it were (even partly) applied.
    return make_policy("x", "bad", {"matchLabels": {"pod": "a"}}, **spec)


SELECTOR_PEER = {"podSelector": {"matchExpressions": [{"key": "k", "operator": "Near", "values": ["v"]}]}}
CASES = [
    ("unknown_match_expressions_operator", bad_policy(ingress=[{"from": [SELECTOR_PEER]}]),
     "spec.ingress[0].from[0].podSelector.matchExpressions[0].operator", "unknown operator"),
    ("in_without_values", make_policy("x", "bad", {"matchExpressions": [{"key": "pod", "operator": "In"}]}),
     "spec.podSelector.matchExpressions[0].values", "non-empty"),
    ("exists_with_values", bad_policy(egress=[{"to": [{"namespaceSelector": {"matchExpressions": [
        {"key": "k", "operator": "Exists", "values": ["v"]}]}}]}]),
     "spec.egress[0].to[0].namespaceSelector.matchExpressions[0].values", "must be empty"),
    ("malformed_cidr", bad_policy(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.300/8"}}]}]),
     "spec.ingress[0].from[0].ipBlock.cidr", "malformed CIDR"),
    ("except_outside_cidr", bad_policy(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/16",
                                                                      "except": ["10.1.0.0/24"]}}]}]),
     "spec.ingress[0].from[0].ipBlock.except[0]", "not inside"),
    ("ip_block_with_selector", bad_policy(ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"},
                                                              "podSelector": {}}]}]),
     "spec.ingress[0].from[0].ipBlock", "cannot be combined"),
    ("empty_peer", bad_policy(ingress=[{"from": [{}]}]), "spec.ingress[0].from[0]", "must set"),
    ("port_out_of_range", bad_policy(ingress=[{"ports": [{"port": 70000}]}]),
     "spec.ingress[0].ports[0].port", "not a port number"),
    ("quoted_number_is_not_a_port_name", bad_policy(ingress=[{"ports": [{"port": "80"}]}]),
     "spec.ingress[0].ports[0].port", "neither a port number nor a valid port name"),
    ("bad_protocol", bad_policy(ingress=[{"ports": [{"port": 80, "protocol": "tcp"}]}]),
     "spec.ingress[0].ports[0].protocol", "not TCP, UDP or SCTP"),
    ("end_port_below_port", bad_policy(ingress=[{"ports": [{"port": 80, "endPort": 79}]}]),
     "spec.ingress[0].ports[0].endPort", ">= port"),
    ("end_port_with_named_port", bad_policy(ingress=[{"ports": [{"port": "http", "endPort": 90}]}]),
     "spec.ingress[0].ports[0].endPort", "named port"),
    ("bad_policy_type", bad_policy(policy_types=["Ingress", "Sideways"]), "spec.policyTypes[1]", "not Ingress"),
    ("ingress_not_a_list", bad_policy(ingress={"from": []}), "spec.ingress", "must be a list"),
    ("unknown_rule_field", bad_policy(ingress=[{"form": []}]), "spec.ingress[0].form", "unknown field"),
    ("label_value_not_a_string", make_policy("x", "bad", {"matchLabels": {"pod": 1}}),
     "spec.podSelector.matchLabels.pod", "must be a string"),
]


@pytest.mark.parametrize(("name", "bad", "path", "words"), CASES, ids=[c[0] for c in CASES])
def test_bad_policy_is_reported_and_not_applied(name: str, bad: dict[str, Any], path: str, words: str) -> None:
    compiled = compile_cluster(cluster(bad))
    problems = [p for p in compiled.problems if p.name == "bad"]
    assert problems, f"{name}: no problem reported"
    assert any(p.field == path and words in p.message for p in problems), [str(p) for p in problems]
    assert all(p.kind == "NetworkPolicy" and p.namespace == "x" for p in problems)
    # Not applied at all: x/a stays non-isolated, and the good policy still isolates x/b.
    assert compiled.endpoints["x/a"].ingress is None and compiled.endpoints["x/a"].egress is None
    assert compiled.endpoints["x/b"].ingress is not None
    assert compiled_allows(compiled, "x/b", "x/a", 80) and not compiled_allows(compiled, "x/a", "x/b", 80)


def test_incremental_reports_problems_of_the_event_and_keeps_the_last_good_state_out() -> None:
    inc = IncrementalCompiler()
    for obj in cluster(make_policy("x", "bad", {"matchLabels": {"pod": "a"}}, ingress=[])):
        inc.upsert_namespace(obj) if obj["kind"] == "Namespace" else None
        inc.upsert_pod(obj) if obj["kind"] == "Pod" else None
        inc.upsert_policy(obj) if obj["kind"] == "NetworkPolicy" else None
    assert inc.endpoint_rules("x/a") is not None and inc.endpoint_rules("x/a").ingress is not None  # type: ignore[union-attr]
    delta = inc.upsert_policy(CASES[0][1])
    assert delta.problems and delta.problems[0].field.endswith(".operator")
    assert delta.endpoints_changed == {"x/a"}  # the broken version is not applied: x/a opens up
    assert inc.endpoint_rules("x/a").ingress is None  # type: ignore[union-attr]
    assert inc.problems() == delta.problems
    assert inc.delete_policy("NetworkPolicy", "x", "bad").problems == () and inc.problems() == ()


def test_unknown_kinds_and_bad_pods_are_reported_without_stopping_the_rest() -> None:
    objects = [
        make_ns("x"),
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "x"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "x"}},
        make_pod("x", "odd", "not-an-ip"),
        make_pod("x", "a", "10.0.0.1"),
        GOOD,
    ]
    compiled = compile_cluster(objects)
    kinds = {(p.kind, p.field) for p in compiled.problems}
    assert ("Widget", "apiVersion") in kinds and ("Pod", "metadata") in kinds and ("Pod", "status.podIPs") in kinds
    assert set(compiled.endpoints) == {"x/a"}
    assert all(isinstance(p, Problem) for p in compiled.problems)


def test_named_port_that_resolves_nowhere_is_warned_about_but_the_policy_applies() -> None:
    inc = IncrementalCompiler()
    policy = make_policy("x", "np", {"matchLabels": {"pod": "a"}},
                         ingress=[{"ports": [{"port": 80}, {"port": "metrics"}]}],
                         egress=[{"ports": [{"port": "grpc", "protocol": "UDP"}]}])
    objects = [*cluster(GOOD)[:3], policy]
    compiled = compile_cluster(objects)
    fields = {p.field: p.message for p in compiled.problems}
    assert set(fields) == {"spec.ingress[0].ports[1].port", "spec.egress[0].ports[0].port"}
    assert "'metrics' (TCP) is declared by no pod this policy selects" in fields["spec.ingress[0].ports[1].port"]
    assert compiled.endpoints["x/a"].ingress is not None  # applied: x/a is isolated, port 80 open
    assert compiled_allows(compiled, "x/b", "x/a", 80) and not compiled_allows(compiled, "x/b", "x/a", 9090)
    for obj in objects:
        getattr(inc, {"Namespace": "upsert_namespace", "Pod": "upsert_pod"}.get(obj["kind"], "upsert_policy"))(obj)
    assert inc.problems() == compiled.problems
    inc.upsert_pod(make_pod("x", "a", "10.0.0.1", {"pod": "a"}, (("metrics", 9090, "TCP"),)))
    assert [p.field for p in inc.problems()] == ["spec.egress[0].ports[0].port"]
