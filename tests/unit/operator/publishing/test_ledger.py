"""The publisher's pure diff: only changed objects are written, in an order safe for the agents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from picket.model import Endpoint, EndpointKind, EndpointRules, RuleSet
from picket_operator.publishing import ledger as L
from picket_operator.publishing import objects as publishing


def pcep(ns: str, name: str, version: str, node: str = "n1") -> dict[str, Any]:
    """A CompiledEndpoint of the previous form (one per pod)."""
    endpoint = {"kind": "Pod", "namespace": ns, "name": name, "node": node, "ips": ["10.0.0.1"]}
    return {
        "apiVersion": "picket.dev/v1alpha1",
        "kind": "CompiledEndpoint",
        "metadata": {"name": name, "namespace": ns, "labels": {"picket.dev/node": node}},
        "spec": {"version": version, "endpoint": endpoint},
    }


def pps(name: str, members: list[str]) -> dict[str, Any]:
    return {"kind": "CompiledPeerSet", "metadata": {"name": name}, "spec": {"members": members}}


def rules(policy: str, direction: str = "Ingress") -> RuleSet:
    return RuleSet.from_dict({"direction": direction, "tiers": [
        {"name": "kubernetes", "default": "Deny", "policies": [{"policy": policy, "rules": []}]}]})


def rule_set(rs: RuleSet) -> dict[str, Any]:
    return publishing.rule_set_object(rs)


def pod(name: str, node: str = "n1", ip: str = "10.0.0.1", ingress: RuleSet | None = None) -> EndpointRules:
    return EndpointRules(Endpoint(EndpointKind.POD, "x", name, node, (ip,)), ingress)


class Desired:
    """The desired state by node, built with the real builders: node -> (CompiledNode, rule sets)."""

    def __init__(self, *endpoints: EndpointRules) -> None:
        self.by_node: dict[str, list[EndpointRules]] = {}
        for er in endpoints:
            self.by_node.setdefault(er.endpoint.node, []).append(er)

    def __call__(self, node: str) -> tuple[dict[str, Any] | None, Mapping[str, dict[str, Any]]]:
        eps = self.by_node.get(node)
        if not eps:
            return None, {}
        sets = {publishing.rule_set_name(er.ingress): rule_set(er.ingress) for er in eps if er.ingress}
        rows = [publishing.binding_row(er, publishing.rule_set_name(er.ingress) if er.ingress else None, None)
                for er in eps]
        return publishing.node_object(node, rows), sets


def no_sets(_name: str) -> None:
    return None


def test_a_policy_over_many_pods_is_one_rule_set_and_one_write_per_node() -> None:
    deny = rules("x/deny")
    before = Desired(*(pod(f"p{i}", f"n{i % 3}") for i in range(300)))
    ledger = L.Ledger()
    L.record(ledger, L.plan(ledger, ["n0", "n1", "n2"], (), before, no_sets), set(), 0.0)
    after = Desired(*(pod(f"p{i}", f"n{i % 3}", ingress=deny) for i in range(300)))
    plan = L.plan(ledger, ["n0", "n1", "n2"], (), after, no_sets)
    assert [o["metadata"]["name"] for o in plan.rule_set_writes] == [publishing.rule_set_name(deny)]
    assert [n for n, _ in plan.node_writes] == ["n0", "n1", "n2"]
    assert len(plan) == 4
    L.record(ledger, plan, set(), 1.0)
    assert len(L.plan(ledger, ["n0", "n1", "n2"], (), after, no_sets)) == 0  # nothing changed: nothing written


def test_a_rule_set_already_published_is_not_written_again() -> None:
    deny = rules("x/deny")
    ledger = L.Ledger()
    L.record(ledger, L.plan(ledger, ["n1"], (), Desired(pod("a", ingress=deny)), no_sets), set(), 0.0)
    plan = L.plan(ledger, ["n2"], (), Desired(pod("a", ingress=deny), pod("b", "n2", ingress=deny)), no_sets)
    assert plan.rule_set_writes == [] and [n for n, _ in plan.node_writes] == ["n2"]


CASES = {
    "a pod isolated": ([pod("a")], [pod("a", ingress=rules("p"))], {"writes": ["n1"], "deletes": [], "sets": 1}),
    "the last pod gone": ([pod("a")], [], {"writes": [], "deletes": ["n1"], "sets": 0}),
    "a first pod": ([], [pod("a")], {"writes": ["n1"], "deletes": [], "sets": 0}),
    "a pod moved": ([pod("a", "n1")], [pod("a", "n2")], {"writes": ["n2"], "deletes": ["n1"], "sets": 0}),
    "a new IP": ([pod("a")], [pod("a", ip="10.0.0.9")], {"writes": ["n1"], "deletes": [], "sets": 0}),
    "nothing, never written": ([], [], {"writes": [], "deletes": [], "sets": 0}),
}


@pytest.mark.parametrize("before, after, expected", CASES.values(), ids=CASES.keys())
def test_node_diff(before: list[EndpointRules], after: list[EndpointRules], expected: dict[str, Any]) -> None:
    ledger = L.Ledger()
    L.record(ledger, L.plan(ledger, ["n1", "n2"], (), Desired(*before), no_sets), set(), 0.0)
    plan = L.plan(ledger, ["n1", "n2"], (), Desired(*after), no_sets)
    assert [n for n, _ in plan.node_writes] == expected["writes"]
    assert [n for n, _ in plan.node_deletes] == expected["deletes"]
    assert len(plan.rule_set_writes) == expected["sets"]


def test_peer_sets_are_written_and_deleted_only_when_they_change() -> None:
    before = {"keep": pps("keep", ["1"]), "change": pps("change", ["1"]), "gone": pps("gone", ["1"])}
    after = {"keep": pps("keep", ["1"]), "change": pps("change", ["1", "2"]), "new": pps("new", [])}
    ledger = L.Ledger(peer_sets={k: L.identity(o) for k, o in before.items()})
    plan = L.plan(ledger, (), set(before) | set(after), Desired(), after.get)
    assert sorted(o["metadata"]["name"] for o in plan.peer_set_writes) == ["change", "new"]
    assert [n for n, _ in plan.peer_set_deletes] == ["gone"]


def test_record_keeps_failed_keys_out_of_the_ledger() -> None:
    deny = rules("x/deny")
    desired = Desired(pod("a", "n1", ingress=deny), pod("b", "n2"))
    ledger = L.Ledger()
    plan = L.plan(ledger, ["n1", "n2"], (), desired, no_sets)
    L.record(ledger, plan, {("pcn", "n1"), ("prs", publishing.rule_set_name(deny))}, 0.0)
    assert set(ledger.nodes) == {"n2"} and ledger.rule_sets == {}
    again = L.plan(ledger, ["n1", "n2"], (), desired, no_sets)  # the failed ones are planned again
    assert [n for n, _ in again.node_writes] == ["n1"] and len(again.rule_set_writes) == 1


def test_unreferenced_rule_sets_are_collected_after_the_grace_period_only() -> None:
    deny, allow = rules("x/deny"), rules("x/allow")
    ledger = L.Ledger()
    L.record(ledger, L.plan(ledger, ["n1"], (), Desired(pod("a", ingress=deny)), no_sets), set(), 0.0)
    L.record(ledger, L.plan(ledger, ["n1"], (), Desired(pod("a", ingress=allow)), no_sets), set(), 10.0)
    assert L.collectable(ledger, 39.0, grace=30.0) == []
    assert [n for n, _ in L.collectable(ledger, 40.0, grace=30.0)] == [publishing.rule_set_name(deny)]
    # named again before the grace period ends: kept, and not rewritten
    plan = L.plan(ledger, ["n1"], (), Desired(pod("a", ingress=deny)), no_sets)
    assert plan.rule_set_writes == []
    L.record(ledger, plan, set(), 20.0)
    assert L.collectable(ledger, 100.0, grace=30.0) == [(publishing.rule_set_name(allow),
                                                         ledger.rule_sets[publishing.rule_set_name(allow)])]


def test_recover_reads_what_is_published_and_rewrites_nothing() -> None:
    deny = rules("x/deny")
    desired = Desired(pod("a", ingress=deny))
    node, sets = desired("n1")
    assert node is not None
    junk = {"metadata": {"name": "junk", "namespace": "x"}, "spec": {}}
    ledger, unreadable = L.recover([node], list(sets.values()), [pps("s1", [])], [pcep("x", "a", "v1"), junk], 0.0)
    assert set(ledger.nodes) == {"n1"} and set(ledger.rule_sets) == set(sets) and set(ledger.peer_sets) == {"s1"}
    assert ledger.legacy == {"x/a": (L.identity(pcep("x", "a", "v1")), "n1")}
    assert [(w.namespace, w.name) for w in unreadable] == [("x", "junk")]
    assert len(L.plan(ledger, ["n1"], ["s1"], desired, {"s1": pps("s1", [])}.get)) == 0


def test_previous_form_objects_go_when_their_node_switched_or_their_endpoint_is_gone() -> None:
    ledger, _ = L.recover([], [], [], [pcep("x", "a", "v1", "n1"), pcep("x", "b", "v1", "n2"),
                                       pcep("x", "gone", "v1", "n2")], 0.0)
    desired = {"x/a", "x/b"}.__contains__
    assert L.legacy_deletes(ledger, set(), desired) == [("x/gone", ledger.legacy["x/gone"][0])]
    assert [k for k, _ in L.legacy_deletes(ledger, {"n1"}, desired)] == ["x/a", "x/gone"]
    assert L.switched_nodes([{"metadata": {"name": "n1"}, "status": {"appliedVersion": "v"}},
                             {"metadata": {"name": "n2"}, "status": {}}]) == {"n1"}
