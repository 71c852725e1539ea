"""The kopf handlers: thin. Each event is handed to the compiler feed; nothing else happens here.

``register(registry, feed)`` registers, on an explicit kopf registry (not kopf's global one):

* ``@kopf.on.event`` handlers that upsert or delete the object in the compiler.

When the initial state is complete, the feed knows from ``initial_keys``: one listing of every
watched kind at start (``main`` hands it to ``CompilerFeed.expect``), with ``object_exists`` to
forget an object deleted before kopf's own listing saw it. No kopf indices: kopf makes one
readiness toggle per indexed object and each wakes every waiting worker, which is quadratic in
the number of objects (minutes of start-up at 5,000 pods).

``on.event`` handlers store no progress or diff-base annotations, so kopf never patches a Pod,
Namespace or policy and adds no finalizers: the operator only needs get/list/watch on them.
Handlers are ``async`` so they run in kopf's event loop one at a time (no thread pool): the
compiler is touched by one event at a time, under the feed's lock against the publisher thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from picket.apiclient import ApiError, KubeClient
from picket_operator.compiler.frontends.registry import qualified_kind
from picket_operator.publishing.intake import CompilerFeed
from picket_operator.publishing.policystatus import GROUP, PLURAL, VERSION, PolicyStatusWriter

# (group, version, plural, kind) of every policy kind the operator compiles. kopf runs with
# cluster scanning off, so a kind whose CRD is not installed when the operator starts is simply not
# watched (the Calico kinds, on a cluster without picket's Calico-compatible CRDs).
POLICY_RESOURCES: list[tuple[str, str, str, str]] = [
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
    ("projectcalico.org", "v3", "networkpolicies", "NetworkPolicy"),
    ("projectcalico.org", "v3", "globalnetworkpolicies", "GlobalNetworkPolicy"),
    # Calico's staged (audit mode) policies: compiled into staged rule sets only, never enforced.
    ("projectcalico.org", "v3", "stagednetworkpolicies", "StagedNetworkPolicy"),
    ("projectcalico.org", "v3", "stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy"),
    ("projectcalico.org", "v3", "stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy"),
    # Not policies, but compiled on the same path (IncrementalCompiler.upsert_policy dispatches them):
    # host endpoints become endpoints host/<name>; network sets' nets join selector peer sets.
    ("projectcalico.org", "v3", "hostendpoints", "HostEndpoint"),
    ("projectcalico.org", "v3", "globalnetworksets", "GlobalNetworkSet"),
    ("projectcalico.org", "v3", "networksets", "NetworkSet"),
    # network-policy-api's ClusterNetworkPolicy (Admin and Baseline tiers), when its CRD is installed,
    # and Nodes: their addresses are the peers of its `nodes` selectors (not endpoints).
    ("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "ClusterNetworkPolicy"),
    ("", "v1", "nodes", "Node"),
]

def _meta(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _raw(body: Mapping[str, Any]) -> dict[str, Any]:
    # kopf's Body is a read-only view over the raw JSON; the compiler gets a plain dict.
    return dict(body)


def register(registry: kopf.OperatorRegistry, feed: CompilerFeed) -> None:
    @kopf.on.event("", "v1", "pods", registry=registry)
    async def _pod(type: str | None, body: kopf.Body, **_: Any) -> None:
        namespace, name = _meta(body)
        if type == "DELETED":
            feed.delete_pod(namespace, name)
        else:
            feed.upsert_pod(_raw(body))

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def _namespace(type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            feed.delete_namespace(_meta(body)[1])
        else:
            feed.upsert_namespace(_raw(body))

    for group, version, plural, kind in POLICY_RESOURCES:
        _register_policy(registry, feed, group, version, plural, kind)


def _collection(group: str, version: str, plural: str, namespace: str = "") -> str:
    prefix = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"


def initial_keys(client: KubeClient) -> dict[str, set[str]]:
    """The keys of every object of every watched kind now, as the feed records them. A kind the
    API server does not serve (its CRD is not installed) is skipped, as kopf skips it."""
    out: dict[str, set[str]] = {"pod": set(), "namespace": set(), "policy": set()}
    out["pod"] = {"/".join(_meta(o)) for o in client.get("/api/v1/pods").get("items", [])}
    out["namespace"] = {_meta(o)[1] for o in client.get("/api/v1/namespaces").get("items", [])}
    for group, version, plural, kind in POLICY_RESOURCES:
        try:
            items = client.get(_collection(group, version, plural)).get("items", [])
        except ApiError as exc:
            if exc.status == 404:
                continue
            raise
        qualified = qualified_kind(group, kind)
        out["policy"] |= {f"{qualified}/{ns}/{name}" for ns, name in map(_meta, items)}
    return out


def object_exists(client: KubeClient, kind: str, key: str) -> bool:
    """Whether the object a feed key names still exists (errors count as "exists": keep waiting)."""
    if kind == "pod":
        namespace, _, name = key.partition("/")
        path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    elif kind == "namespace":
        path = f"/api/v1/namespaces/{key}"
    else:
        qualified, namespace, name = key.split("/", 2)
        found = [r for r in POLICY_RESOURCES if qualified_kind(r[0], r[3]) == qualified]
        if not found:
            return False
        group, version, plural, _ = found[0]
        path = f"{_collection(group, version, plural, namespace)}/{name}"
    try:
        client.get(path)
    except ApiError as exc:
        return exc.status != 404
    return True


def _register_policy(
    registry: kopf.OperatorRegistry,
    feed: CompilerFeed,
    group: str,
    version: str,
    plural: str,
    kind: str,
) -> None:
    qualified = qualified_kind(group, kind)  # "NetworkPolicy", "NetworkPolicy.projectcalico.org", ...
    suffix = f"{plural}_{group.replace('.', '_')}"

    @kopf.on.event(group, version, plural, id=f"picket_{suffix}", registry=registry)
    async def _policy(type: str | None, body: kopf.Body, **_: Any) -> None:
        namespace, name = _meta(body)
        if type == "DELETED":
            feed.delete_policy(qualified, namespace, name)
        else:
            raw = _raw(body)
            raw.setdefault("apiVersion", f"{group}/{version}")
            raw.setdefault("kind", kind)
            feed.upsert_policy(raw)


def register_policy_status(registry: kopf.OperatorRegistry, writer: PolicyStatusWriter) -> None:
    """ClusterNetworkPolicy events also go to the status writer (``status.conditions``)."""

    @kopf.on.event(GROUP, VERSION, PLURAL, id="picket_clusternetworkpolicy_status", registry=registry)
    async def _status(type: str | None, body: kopf.Body, **_: Any) -> None:
        if type == "DELETED":
            writer.forget(_meta(body)[1])
        else:
            raw = _raw(body)
            raw.setdefault("apiVersion", f"{GROUP}/{VERSION}")
            raw.setdefault("kind", "ClusterNetworkPolicy")
            writer.observe(raw)
