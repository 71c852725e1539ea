"""The publisher's write sequence against a recording client (no API server; order and retries only)."""

from __future__ import annotations

from typing import Any

from picket.apiclient import ApiError
from picket_operator.publishing.writer import Publisher, PublisherSettings
from tests.unit.operator.publishing.test_ledger import pcep, pps


class RecordingClient:
    def __init__(self, fail: set[str] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail = fail or set()

    def _do(self, verb: str, path: str) -> dict[str, Any]:
        self.calls.append((verb, path))
        if any(f in path for f in self.fail):
            raise ApiError(403, "Forbidden", "namespace is being terminated")
        return {"metadata": {"resourceVersion": "7"}, "items": []}

    def apply(self, path: str, body: Any, field_manager: str) -> dict[str, Any]:
        return self._do("apply", path)

    def merge_patch(self, path: str, body: Any) -> dict[str, Any]:
        return self._do("patch", path)

    def delete(self, path: str) -> dict[str, Any]:
        return self._do("delete", path)

    def get(self, path: str) -> dict[str, Any]:
        return self._do("get", path)


class Feed:
    def __init__(self, eps: dict[str, Any], sets: dict[str, Any]) -> None:
        self.eps, self.sets = eps, sets

    def ready(self) -> bool:
        return True

    def endpoint_object(self, key: str) -> Any:
        return self.eps.get(key)

    def peer_set_object(self, name: str) -> Any:
        return self.sets.get(name)

    def all_keys(self) -> tuple[set[str], set[str]]:
        return set(self.eps), set(self.sets)


def make(eps: dict[str, Any], sets: dict[str, Any], client: RecordingClient, leader: bool = True) -> Publisher:
    pub = Publisher(client, Feed(eps, sets), PublisherSettings(workers=1), lambda: leader)  # type: ignore[arg-type]
    pub._need_full = False  # these tests drive incremental syncs
    return pub


def test_order_peer_sets_then_endpoints_then_status_resets() -> None:
    client = RecordingClient()
    pub = make({"x/a": pcep("x", "a", "v1")}, {"s1": pps("s1", ["10.0.0.1"])}, client)
    pub.mark(["x/a"], ["s1"])
    pub.sync_once()
    verbs = [(v, p.rsplit("/", 2)[-2] if p.endswith("/status") else p.rsplit("/", 1)[-1]) for v, p in client.calls]
    assert verbs == [("apply", "s1"), ("apply", "a"), ("patch", "a")]
    client.calls.clear()
    pub.mark(["x/a"], ["s1"])  # nothing changed: nothing written
    pub.sync_once()
    assert client.calls == []


def test_a_refused_key_is_retried_alone_and_does_not_block_others() -> None:
    client = RecordingClient(fail={"/namespaces/gone/"})
    pub = make({"gone/a": pcep("gone", "a", "v1"), "x/b": pcep("x", "b", "v1")}, {}, client)
    pub.mark(["gone/a", "x/b"], [])
    pub.sync_once()
    assert set(pub.ledger.endpoints) == {"x/b"}
    assert ("pcep", "gone/a") in pub._retry and ("pcep", "x/b") not in pub._retry


def test_a_follower_writes_nothing() -> None:
    client = RecordingClient()
    pub = make({"x/a": pcep("x", "a", "v1")}, {}, client, leader=False)
    pub.mark(["x/a"], [])
    pub.sync_once()
    assert client.calls == []
    assert not pub.ledger.endpoints
