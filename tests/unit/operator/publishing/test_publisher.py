"""The publisher's write sequence against a recording client (no API server; order and retries only)."""

from __future__ import annotations

from typing import Any

from picket.apiclient import ApiError
from picket.model import EndpointRules
from picket_operator.publishing import objects as publishing
from picket_operator.publishing.writer import Publisher, PublisherSettings
from tests.unit.operator.publishing.test_ledger import Desired, pcep, pod, pps, rules


class RecordingClient:
    def __init__(self, fail: set[str] | None = None, lists: dict[str, list[Any]] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or set()
        self.lists = lists or {}

    def _do(self, verb: str, path: str) -> dict[str, Any]:
        self.calls.append((verb, path))
        if any(f in path for f in self.fail):
            raise ApiError(403, "Forbidden", "refused")
        return {"metadata": {"resourceVersion": "7"}, "items": self.lists.get(path.rsplit("/", 1)[-1], [])}

    def apply(self, path: str, body: Any, field_manager: str) -> dict[str, Any]:
        return self._do("apply", path)

    def merge_patch(self, path: str, body: Any) -> dict[str, Any]:
        return self._do("patch", path)

    def delete(self, path: str) -> dict[str, Any]:
        return self._do("delete", path)

    def get(self, path: str) -> dict[str, Any]:
        return self._do("get", path)


class Feed:
    def __init__(self, eps: list[EndpointRules], sets: dict[str, Any]) -> None:
        self.desired, self.sets = Desired(*eps), sets

    def ready(self) -> bool:
        return True

    def node_object(self, node: str) -> Any:
        return self.desired(node)

    def peer_set_object(self, name: str) -> Any:
        return self.sets.get(name)

    def has_endpoint(self, key: str) -> bool:
        return any(er.endpoint.key == key for eps in self.desired.by_node.values() for er in eps)

    def all_keys(self) -> tuple[set[str], set[str]]:
        return set(self.desired.by_node), set(self.sets)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(eps: list[EndpointRules], sets: dict[str, Any], client: RecordingClient, leader: bool = True,
         full: bool = False, clock: Clock | None = None) -> Publisher:
    pub = Publisher(client, Feed(eps, sets), PublisherSettings(workers=1, gc_grace=30.0),  # type: ignore[arg-type]
                    lambda: leader, clock=clock or Clock())
    pub._need_full = full  # most tests drive incremental syncs
    return pub


def names(client: RecordingClient) -> list[tuple[str, str]]:
    return [(v, p.split("/v1alpha1/", 1)[-1]) for v, p in client.calls]


def test_order_peer_sets_then_rule_sets_then_nodes_and_no_status_writes() -> None:
    client = RecordingClient()
    deny = rules("x/deny")
    pub = make([pod("a", ingress=deny), pod("b", ingress=deny)], {"s1": pps("s1", ["10.0.0.1"])}, client)
    pub.mark(["n1"], ["s1"])
    pub.sync_once()
    assert names(client) == [("apply", "compiledpeersets/s1"),
                             ("apply", f"compiledrulesets/{publishing.rule_set_name(deny)}"),
                             ("apply", "compilednodes/n1")]
    client.calls.clear()
    pub.mark(["n1"], ["s1"])  # nothing changed: nothing written
    pub.sync_once()
    assert client.calls == []


def test_a_node_whose_rule_set_was_refused_is_not_written_and_is_retried() -> None:
    deny = rules("x/deny")
    client = RecordingClient(fail={f"compiledrulesets/{publishing.rule_set_name(deny)}"})
    pub = make([pod("a", "n1", ingress=deny), pod("b", "n2")], {}, client)
    pub.mark(["n1", "n2"], [])
    pub.sync_once()
    assert ("apply", "compilednodes/n1") not in names(client) and ("apply", "compilednodes/n2") in names(client)
    assert set(pub.ledger.nodes) == {"n2"}
    assert ("pcn", "n1") in pub._retry and ("pcn", "n2") not in pub._retry


def test_a_follower_writes_nothing() -> None:
    client = RecordingClient()
    pub = make([pod("a")], {}, client, leader=False)
    pub.mark(["n1"], [])
    pub.sync_once()
    assert client.calls == []
    assert not pub.ledger.nodes


def test_unreferenced_rule_sets_are_deleted_after_the_grace_period() -> None:
    client, clock = RecordingClient(), Clock()
    deny = rules("x/deny")
    pub = make([pod("a", ingress=deny)], {}, client, clock=clock)
    pub.mark(["n1"], [])
    pub.sync_once()
    pub._feed.desired = Desired(pod("a"))  # type: ignore[attr-defined]
    pub.mark(["n1"], [])
    pub.sync_once()
    client.calls.clear()
    clock.now += 29
    assert not pub._housekeeping_due()
    clock.now += 2
    assert pub._housekeeping_due()
    pub.sync_once()
    assert names(client) == [("delete", f"compiledrulesets/{publishing.rule_set_name(deny)}")]


def test_previous_form_objects_are_deleted_only_after_the_node_reports_the_new_form() -> None:
    client, clock = RecordingClient(), Clock()
    client.lists["compiledendpoints"] = [pcep("x", "a", "v1", "n1"), pcep("x", "b", "v1", "n2")]
    pub = make([pod("a", "n1"), pod("b", "n2")], {}, client, full=True, clock=clock)
    pub.sync_once()  # full: writes both nodes, deletes nothing yet (no agent reported them applied)
    assert not [c for c in names(client) if c[0] == "delete"]
    assert set(pub.ledger.legacy) == {"x/a", "x/b"}
    client.lists["compilednodes"] = [{"metadata": {"name": "n1"}, "status": {"appliedVersion": "v"}},
                                     {"metadata": {"name": "n2"}, "status": {}}]
    client.calls.clear()
    clock.now += 0.5
    pub.sync_once()  # too early to look again
    assert client.calls == []
    clock.now += 1
    assert pub._housekeeping_due()
    pub.sync_once()
    assert [c for c in names(client) if c[0] == "delete"] == [("delete", "namespaces/x/compiledendpoints/a")]
    assert set(pub.ledger.legacy) == {"x/b"}
