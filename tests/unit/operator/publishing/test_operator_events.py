"""Events for invalid input: one per new problem, on the offending object, naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

from picket.model import Problem
from picket_operator.publishing.events import event_body, new_problems
from picket_operator.publishing.intake import ObjectRef

REF = ObjectRef("networking.k8s.io/v1", "NetworkPolicy", "x", "bad", "uid-1")
P1 = Problem("NetworkPolicy", "x", "bad", "spec.ingress[0].from[0].ipBlock.cidr", "not a CIDR: 'nope'")
P2 = Problem("NetworkPolicy", "x", "bad", "spec.podSelector", "bad operator")


def test_only_new_problems_are_posted() -> None:
    assert new_problems([(REF, P1), (REF, P2)], {(REF, P1)}) == [(REF, P2)]
    assert new_problems([(REF, P1)], {(REF, P1)}) == []


def test_event_names_object_and_field() -> None:
    body = event_body(REF, P1, datetime(2026, 1, 1, tzinfo=UTC), "op-1")
    assert body["involvedObject"] == {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "name": "bad", "namespace": "x", "uid": "uid-1"
    }
    assert body["metadata"]["namespace"] == "x"
    assert body["type"] == "Warning" and body["reason"] == "InvalidPolicy"
    assert body["message"].startswith("spec.ingress[0].from[0].ipBlock.cidr: ")
