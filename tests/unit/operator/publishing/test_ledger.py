"""The publisher's pure diff: only changed objects are written, in an order safe for the agents."""

from __future__ import annotations

from typing import Any

import pytest

from picket_operator.publishing import ledger as L


def pcep(ns: str, name: str, version: str, node: str = "n1") -> dict[str, Any]:
    endpoint = {"kind": "Pod", "namespace": ns, "name": name, "node": node, "ips": ["10.0.0.1"]}
    return {
        "apiVersion": "picket.dev/v1alpha1",
        "kind": "CompiledEndpoint",
        "metadata": {"name": name, "namespace": ns, "labels": {"picket.dev/node": node}},
        "spec": {"version": version, "endpoint": endpoint},
    }


def pps(name: str, members: list[str]) -> dict[str, Any]:
    return {"kind": "CompiledPeerSet", "metadata": {"name": name}, "spec": {"members": members}}


def written_ledger(eps: dict[str, dict[str, Any]], sets: dict[str, dict[str, Any]]) -> L.Ledger:
    return L.Ledger({k: L.identity(o) for k, o in eps.items()}, {k: L.identity(o) for k, o in sets.items()})


def test_unchanged_objects_are_not_written() -> None:
    eps = {"x/a": pcep("x", "a", "v1")}
    sets = {"s1": pps("s1", ["10.0.0.1"])}
    plan = L.plan(written_ledger(eps, sets), eps, sets, eps.get, sets.get)
    assert len(plan) == 0


CASES = {
    "endpoint content changed": (
        {"x/a": pcep("x", "a", "v1")}, {"x/a": pcep("x", "a", "v2")}, {"writes": ["x/a"], "deletes": []}
    ),
    "endpoint removed": ({"x/a": pcep("x", "a", "v1")}, {}, {"writes": [], "deletes": ["x/a"]}),
    "endpoint new": ({}, {"x/a": pcep("x", "a", "v1")}, {"writes": ["x/a"], "deletes": []}),
    "node label changed": (
        {"x/a": pcep("x", "a", "v1", "n1")}, {"x/a": pcep("x", "a", "v1", "n2")}, {"writes": ["x/a"], "deletes": []}
    ),
    "removed and never written": ({}, {}, {"writes": [], "deletes": []}),
}


@pytest.mark.parametrize("before, after, expected", CASES.values(), ids=CASES.keys())
def test_endpoint_diff(before: dict[str, Any], after: dict[str, Any], expected: dict[str, list[str]]) -> None:
    keys = set(before) | set(after) | {"x/a"}
    plan = L.plan(written_ledger(before, {}), keys, (), after.get, lambda _n: None)
    assert [k for k, _ in plan.endpoint_writes] == expected["writes"]
    assert [k for k, _ in plan.endpoint_deletes] == expected["deletes"]


def test_moved_identity_deletes_the_old_object() -> None:
    before = {"host/h1": pcep("picket-system", "host-h1", "v1")}
    after = {"host/h1": pcep("other", "host-h1", "v1")}
    plan = L.plan(written_ledger(before, {}), ["host/h1"], (), after.get, lambda _n: None)
    assert [k for k, _ in plan.endpoint_writes] == ["host/h1"]
    assert [(k, w.namespace) for k, w in plan.endpoint_deletes] == [("host/h1", "picket-system")]


def test_peer_sets_are_written_and_deleted_only_when_they_change() -> None:
    before = {"keep": pps("keep", ["1"]), "change": pps("change", ["1"]), "gone": pps("gone", ["1"])}
    after = {"keep": pps("keep", ["1"]), "change": pps("change", ["1", "2"]), "new": pps("new", [])}
    plan = L.plan(written_ledger({}, before), (), set(before) | set(after), lambda _k: None, after.get)
    assert sorted(o["metadata"]["name"] for o in plan.peer_set_writes) == ["change", "new"]
    assert [n for n, _ in plan.peer_set_deletes] == ["gone"]


def test_record_keeps_failed_keys_out_of_the_ledger() -> None:
    after = {"x/a": pcep("x", "a", "v1"), "x/b": pcep("x", "b", "v1")}
    ledger = L.Ledger()
    plan = L.plan(ledger, after, (), after.get, lambda _n: None)
    L.record(ledger, plan, failed={("pcep", "x/b")})
    assert set(ledger.endpoints) == {"x/a"}
    # the failed one is planned again on the next sync, the written one is not
    again = L.plan(ledger, after, (), after.get, lambda _n: None)
    assert [k for k, _ in again.endpoint_writes] == ["x/b"]


def test_recover_reads_keys_from_published_objects() -> None:
    listed = [pcep("x", "a", "v1"), {"metadata": {"name": "junk", "namespace": "x"}, "spec": {}}]
    ledger, unreadable = L.recover(listed, [pps("s1", [])])
    assert set(ledger.endpoints) == {"x/a"}
    assert set(ledger.peer_sets) == {"s1"}
    assert [(w.namespace, w.name) for w in unreadable] == [("x", "junk")]
    # what was recovered is not rewritten
    plan = L.plan(ledger, ["x/a"], ["s1"], {"x/a": pcep("x", "a", "v1")}.get, {"s1": pps("s1", [])}.get)
    assert len(plan) == 0
