"""Which frontend translates which policy kind, and how policy objects are keyed.

A frontend is ``ir.Frontend``: raw object -> ``ir.Translation``. The built-in frontends are
plain imports listed in ``BUILTIN``; a new policy kind adds its entry there (or calls
``register_frontend``). Called by ``compiling`` and ``incremental`` for every policy object.

Policy keys are ``(kind, namespace, name)``; ``kind`` is the bare kind for networking.k8s.io
(``"NetworkPolicy"``) and ``"<Kind>.<group>"`` for every other API group (``"NetworkPolicy.
projectcalico.org"``, ``"GlobalNetworkPolicy.projectcalico.org"``), like kubectl's resource.group,
so that equally named kinds of different groups never collide. ``resolve_kind`` accepts a bare
kind for other groups too when it is unambiguous.

Calico's staged kinds (``StagedNetworkPolicy``, ``StagedGlobalNetworkPolicy``,
``StagedKubernetesNetworkPolicy``) go to ``calico.staged.translate_staged``, which hands them to
the enforced kind's frontend and marks the result ``staged`` (audit mode).

Legacy NetworkPolicies (``extensions/v1beta1``, ``networking.k8s.io/v1beta1``) go to
``legacy.translate_legacy_policy`` (convert to v1, then the v1 frontend) and share the key kind
``NetworkPolicy``: the API server stored every version of a NetworkPolicy as one object.

Calico ``HostEndpoint``, ``GlobalNetworkSet`` and ``NetworkSet`` (and core ``Node``s, for
ClusterNetworkPolicy ``nodes`` peers) are not policies but arrive on the same path
(``IncrementalCompiler.upsert_policy`` dispatches them): ``OBJECT_KINDS`` lists them so that keys
and ``resolve_kind`` know them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from picket.model import Problem
from picket_operator.compiler import ir
from picket_operator.compiler.frontends.calico.frontend import translate as translate_calico_policy
from picket_operator.compiler.frontends.calico.staged import translate_staged
from picket_operator.compiler.frontends.clusternetworkpolicy import translate_cluster_network_policy
from picket_operator.compiler.frontends.legacy import translate_legacy_policy
from picket_operator.compiler.frontends.networkpolicy import translate_network_policy

K8S_GROUP = "networking.k8s.io"
CALICO_GROUP = "projectcalico.org"
NETPOL_API_GROUP = "policy.networking.k8s.io"  # network-policy-api: ClusterNetworkPolicy (v1alpha2)
BUILTIN: dict[tuple[str, str], ir.Frontend] = {
    (K8S_GROUP, "NetworkPolicy"): translate_network_policy,
    ("extensions", "NetworkPolicy"): translate_legacy_policy,
    (CALICO_GROUP, "GlobalNetworkPolicy"): translate_calico_policy,
    (CALICO_GROUP, "NetworkPolicy"): translate_calico_policy,
    # Calico's audit mode: compiled by the enforced kind's frontend into staged rule sets only.
    (CALICO_GROUP, "StagedNetworkPolicy"): translate_staged,
    (CALICO_GROUP, "StagedGlobalNetworkPolicy"): translate_staged,
    (CALICO_GROUP, "StagedKubernetesNetworkPolicy"): translate_staged,
    (NETPOL_API_GROUP, "ClusterNetworkPolicy"): translate_cluster_network_policy,
}
# Versions of a group whose objects need another frontend than the group's current version.
LEGACY_VERSIONS: dict[tuple[str, str], ir.Frontend] = {
    (f"{K8S_GROUP}/v1beta1", "NetworkPolicy"): translate_legacy_policy,
}
# Non-policy objects the compiler takes on the policy path (endpoints and address sets).
OBJECT_KINDS = frozenset({(CALICO_GROUP, "HostEndpoint"), (CALICO_GROUP, "GlobalNetworkSet"),
                          (CALICO_GROUP, "NetworkSet"), ("", "Node")})  # Node: ClusterNetworkPolicy nodes peers
# Namespaced kinds of other groups (their objects default to namespace "default", as kubectl does).
NAMESPACED_KINDS = frozenset({"NetworkPolicy", "NetworkSet", "StagedNetworkPolicy", "StagedKubernetesNetworkPolicy"})
_registered: dict[tuple[str, str], ir.Frontend] = {}


def register_frontend(group: str, kind: str, frontend: ir.Frontend) -> None:
    _registered[(group, kind)] = frontend


def group_of(obj: Mapping[str, Any]) -> str:
    api_version = obj.get("apiVersion")
    text = api_version if isinstance(api_version, str) else ""
    return text.split("/", 1)[0] if "/" in text else ""


def qualified_kind(group: str, kind: str) -> str:
    same_as_k8s = group in (K8S_GROUP, "") or (group, kind) == ("extensions", "NetworkPolicy")
    return kind if same_as_k8s else f"{kind}.{group}"


def known_kinds() -> set[str]:
    return {qualified_kind(g, k) for g, k in (*BUILTIN, *_registered, *OBJECT_KINDS)}


def object_kind(obj: Mapping[str, Any]) -> str | None:
    """The bare kind of a HostEndpoint / (Global)NetworkSet object, None for anything else."""
    kind = obj.get("kind")
    return kind if isinstance(kind, str) and (group_of(obj), kind) in OBJECT_KINDS else None


def resolve_kind(kind: str) -> str:
    """``delete_policy``'s kind argument -> the key kind (bare kinds of other groups if unique)."""
    kinds = known_kinds()
    if kind in kinds:
        return kind
    matches = [k for k in kinds if k.split(".", 1)[0] == kind]
    return matches[0] if len(matches) == 1 else kind


def is_policy(obj: Mapping[str, Any]) -> bool:
    kind = obj.get("kind")
    return isinstance(kind, str) and frontend_for(group_of(obj), kind) is not None


def frontend_for(group: str, kind: str, api_version: str = "") -> ir.Frontend | None:
    target = LEGACY_VERSIONS.get((api_version, kind))
    if target is None and (group, kind) in _registered:
        return _registered[(group, kind)]
    return target or BUILTIN.get((group, kind))


def policy_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    kind, group = str(obj.get("kind", "")), group_of(obj)
    default_ns = "default" if group == K8S_GROUP or kind in NAMESPACED_KINDS else ""
    return (qualified_kind(group, kind), str(meta.get("namespace", default_ns)), str(meta.get("name", "")))


def translate(obj: Mapping[str, Any]) -> ir.Translation:
    """Translate any policy object; an unknown apiVersion/kind is a Problem, not a crash."""
    kind, group = str(obj.get("kind", "")), group_of(obj)
    frontend = frontend_for(group, kind, str(obj.get("apiVersion", "")))
    if frontend is None:
        _, ns, name = policy_key(obj)
        message = f"no frontend for apiVersion {obj.get('apiVersion')!r} kind {kind!r}; ignored"
        return ir.Translation(None, (Problem(kind or "Unknown", ns, name, "apiVersion", message),))
    try:
        return frontend(obj)
    except Exception as exc:  # a frontend bug must not stop the other policies
        _, ns, name = policy_key(obj)
        return ir.Translation(None, (Problem(kind, ns, name, "", f"frontend failed: {exc!r}"),))
