"""The kopf handlers: thin. Each event is handed to the compiler feed; nothing else happens here.

``register(registry, feed)`` registers, on an explicit kopf registry (not kopf's global one):

* in-memory indices of the Pods, Namespaces and NetworkPolicies that exist (keys only). kopf
  fills every index from the initial listing *before* it calls any event handler, which is what
  lets the feed know when the initial state is complete (``CompilerFeed.check_ready``);
* ``@kopf.on.event`` handlers that upsert or delete the object in the compiler.

``on.event`` handlers store no progress or diff-base annotations, so kopf never patches a Pod,
Namespace or policy and adds no finalizers: the operator only needs get/list/watch on them.
Handlers are ``async`` so they run in kopf's event loop one at a time (no thread pool): the
compiler is touched by one event at a time, under the feed's lock against the publisher thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

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

INDEX_POD, INDEX_NAMESPACE, INDEX_POLICY = "picket_pod_keys", "picket_namespace_keys", "picket_policy_keys"


def _meta(body: Mapping[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _raw(body: Mapping[str, Any]) -> dict[str, Any]:
    # kopf's Body is a read-only view over the raw JSON; the compiler gets a plain dict.
    return dict(body)


def register(registry: kopf.OperatorRegistry, feed: CompilerFeed) -> None:
    def ready_check(kwargs: Mapping[str, Any]) -> None:
        if feed.ready():
            return
        policy_keys: set[str] = set()
        for index_name, index in kwargs.items():
            if index_name.startswith(INDEX_POLICY):
                policy_keys.update(index.keys())
        feed.check_ready(
            {"pod": kwargs[INDEX_POD].keys(), "namespace": kwargs[INDEX_NAMESPACE].keys(), "policy": policy_keys}
        )

    # Indices: keys of what exists, in the same form the feed records what it has seen.

    @kopf.index("", "v1", "pods", id=INDEX_POD, registry=registry)
    def _pod_keys(namespace: str | None, name: str, **_: Any) -> dict[str, bool]:
        return {f"{namespace}/{name}": True}

    @kopf.index("", "v1", "namespaces", id=INDEX_NAMESPACE, registry=registry)
    def _namespace_keys(name: str, **_: Any) -> dict[str, bool]:
        return {name: True}

    # Events.

    @kopf.on.event("", "v1", "pods", registry=registry)
    async def _pod(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
        namespace, name = _meta(body)
        if type == "DELETED":
            feed.delete_pod(namespace, name)
        else:
            feed.upsert_pod(_raw(body))
        ready_check(kwargs)

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def _namespace(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
        if type == "DELETED":
            feed.delete_namespace(_meta(body)[1])
        else:
            feed.upsert_namespace(_raw(body))
        ready_check(kwargs)

    for group, version, plural, kind in POLICY_RESOURCES:
        _register_policy(registry, feed, group, version, plural, kind, ready_check)


def _register_policy(
    registry: kopf.OperatorRegistry,
    feed: CompilerFeed,
    group: str,
    version: str,
    plural: str,
    kind: str,
    ready_check: Any,
) -> None:
    qualified = qualified_kind(group, kind)  # "NetworkPolicy", "NetworkPolicy.projectcalico.org", ...
    suffix = f"{plural}_{group.replace('.', '_')}"

    @kopf.index(group, version, plural, id=f"{INDEX_POLICY}_{suffix}", registry=registry)
    def _keys(namespace: str | None, name: str, **_: Any) -> dict[str, bool]:
        return {f"{qualified}/{namespace or ''}/{name}": True}

    @kopf.on.event(group, version, plural, id=f"picket_{suffix}", registry=registry)
    async def _policy(type: str | None, body: kopf.Body, **kwargs: Any) -> None:
        namespace, name = _meta(body)
        if type == "DELETED":
            feed.delete_policy(qualified, namespace, name)
        else:
            raw = _raw(body)
            raw.setdefault("apiVersion", f"{group}/{version}")
            raw.setdefault("kind", kind)
            feed.upsert_policy(raw)
        ready_check(kwargs)



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
