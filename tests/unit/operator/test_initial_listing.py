"""The start-up listing that tells the feed when the initial state is complete (no kopf indices)."""

from __future__ import annotations

from typing import Any

from picket.apiclient import ApiError
from picket_operator.handlers import initial_keys, object_exists
from picket_operator.publishing.intake import CompilerFeed
from tests.unit.operator.compiler.builders import make_ns, make_pod, make_policy


class Client:
    """Serves collections by path; anything else is 404 (a CRD that is not installed, a gone object)."""

    def __init__(self, collections: dict[str, list[dict[str, Any]]]) -> None:
        self.collections = collections

    def get(self, path: str) -> dict[str, Any]:
        if path in self.collections:
            return {"items": self.collections[path]}
        for base, items in self.collections.items():
            for o in items:
                meta = o["metadata"]
                ns = meta.get("namespace")
                where = base.replace(base.rsplit("/", 1)[1], f"namespaces/{ns}/{base.rsplit('/', 1)[1]}") if ns \
                    else base
                if path == f"{where}/{meta['name']}":
                    return o
        raise ApiError(404, "NotFound", path)


def test_the_listed_keys_are_the_ones_the_feed_records() -> None:
    pods, nss, pols = [make_pod("x", "a", "10.0.0.1")], [make_ns("x")], [make_policy("x", "p")]
    client = Client({"/api/v1/pods": pods, "/api/v1/namespaces": nss,
                     "/apis/networking.k8s.io/v1/networkpolicies": pols, "/api/v1/nodes": []})
    keys = initial_keys(client)  # type: ignore[arg-type]
    assert keys == {"pod": {"x/a"}, "namespace": {"x"}, "policy": {"NetworkPolicy/x/p"}}
    feed = CompilerFeed()
    feed.expect(keys, lambda kind, key: object_exists(client, kind, key))  # type: ignore[arg-type]
    for obj in nss:
        feed.upsert_namespace(obj)
    for obj in pods:
        feed.upsert_pod(obj)
    assert not feed.ready()
    for obj in pols:
        feed.upsert_policy(obj)
    assert feed.ready()


def test_object_exists_asks_the_api_and_only_404_means_gone() -> None:
    client = Client({"/api/v1/pods": [make_pod("x", "a", "10.0.0.1")], "/api/v1/namespaces": [make_ns("x")],
                     "/apis/networking.k8s.io/v1/networkpolicies": [make_policy("x", "p")]})
    assert object_exists(client, "pod", "x/a")  # type: ignore[arg-type]
    assert not object_exists(client, "pod", "x/b")  # type: ignore[arg-type]
    assert object_exists(client, "namespace", "x")  # type: ignore[arg-type]
    assert object_exists(client, "policy", "NetworkPolicy/x/p")  # type: ignore[arg-type]
    assert not object_exists(client, "policy", "NetworkPolicy/x/q")  # type: ignore[arg-type]
