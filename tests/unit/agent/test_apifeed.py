"""The agent's API feed without an API server: what it submits, and when it reports status."""

from __future__ import annotations

from typing import Any

from picket.model import Compiled
from picket_agent.apifeed import ApiFeed
from tests.unit.operator.publishing.test_ledger import pcep


def full_pcep(ns: str, name: str, version: str, node: str = "n1", status: dict[str, str] | None = None,
              rv: str = "1") -> dict[str, Any]:
    obj = pcep(ns, name, version, node)
    obj["spec"].update({"schemaVersion": 1, "ingress": None, "egress": None})
    obj["metadata"]["resourceVersion"] = rv
    obj["status"] = status or {}
    return obj


class Client:
    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((path, body))
        return {}


def make() -> tuple[ApiFeed, Client, list[Compiled]]:
    client, submitted = Client(), []
    feed = ApiFeed(client, "n1", submitted.append)  # type: ignore[arg-type]
    feed._sync_eps([full_pcep("x", "a", "v1")])
    feed._sync_pss([])
    return feed, client, submitted


def drain(feed: ApiFeed) -> None:
    feed.flush_reports()
    feed._pool.shutdown(wait=True)


def test_status_only_changes_do_not_change_the_rules() -> None:
    feed, _, _ = make()
    assert feed._endpoints.event("MODIFIED", full_pcep("x", "a", "v1", status={"applied": "Pending"}, rv="2")) is False
    assert feed._endpoints.event("MODIFIED", full_pcep("x", "a", "v2", rv="3")) is True
    assert set(feed.snapshot().endpoints) == {"x/a"}


def test_applied_version_is_reported_once_per_state() -> None:
    feed, client, _ = make()
    feed.applied({"x/a": "v0"})  # an older version than the object's: not reported
    feed.applied({"x/a": "v1"})
    feed.applied({"x/a": "v1"})  # the same state again: not reported twice
    drain(feed)
    assert [b["status"]["appliedVersion"] for _, b in client.patches] == ["v1"]
    assert client.patches[0][0].endswith("/namespaces/x/compiledendpoints/a/status")


def test_a_reset_to_pending_of_an_applied_version_is_reported_again() -> None:
    feed, client, _ = make()
    feed.applied({"x/a": "v1"})
    feed.flush_reports()
    feed._event_eps("MODIFIED", full_pcep("x", "a", "v1", status={"applied": "Pending"}, rv="5"))
    feed._event_eps("MODIFIED", full_pcep("x", "a", "v1", status={"applied": "True", "appliedVersion": "v1"}, rv="6"))
    drain(feed)
    assert len(client.patches) == 2
