"""Which frontend translates which policy kind, and how policy objects are keyed.

A frontend is ``ir.Frontend``: raw object -> ``ir.Translation``. Built-in entries are imported
lazily by module path (so this module imports nothing heavy); other parts add theirs with
``register_frontend`` (e.g. the Calico frontend, at import of its module) or by an additive
entry in ``BUILTIN``. Called by ``compiling`` and ``incremental`` for every policy object.

Policy keys are ``(kind, namespace, name)``; ``kind`` is the bare kind for networking.k8s.io
(``"NetworkPolicy"``) and ``"<Kind>.<group>"`` for every other API group (``"NetworkPolicy.
projectcalico.org"``, ``"GlobalNetworkPolicy.projectcalico.org"``), like kubectl's resource.group,
so that equally named kinds of different groups never collide. ``resolve_kind`` accepts a bare
kind for other groups too when it is unambiguous.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from picket.model import Problem
from picket_operator import ir

K8S_GROUP = "networking.k8s.io"
BUILTIN: dict[tuple[str, str], str] = {
    (K8S_GROUP, "NetworkPolicy"): "picket_operator.k8s_frontend:translate_network_policy",
    ("projectcalico.org", "GlobalNetworkPolicy"): "picket_operator.calico.frontend:translate",
    ("projectcalico.org", "NetworkPolicy"): "picket_operator.calico.frontend:translate",
}
_registered: dict[tuple[str, str], ir.Frontend] = {}


def register_frontend(group: str, kind: str, frontend: ir.Frontend) -> None:
    _registered[(group, kind)] = frontend


def group_of(obj: Mapping[str, Any]) -> str:
    api_version = obj.get("apiVersion")
    text = api_version if isinstance(api_version, str) else ""
    return text.split("/", 1)[0] if "/" in text else ""


def qualified_kind(group: str, kind: str) -> str:
    return kind if group == K8S_GROUP else f"{kind}.{group}"


def known_kinds() -> set[str]:
    return {qualified_kind(g, k) for g, k in (*BUILTIN, *_registered)}


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


def frontend_for(group: str, kind: str) -> ir.Frontend | None:
    if (group, kind) in _registered:
        return _registered[(group, kind)]
    target = BUILTIN.get((group, kind))
    if target is None:
        return None
    module_name, func_name = target.split(":")
    frontend: ir.Frontend = getattr(importlib.import_module(module_name), func_name)
    _registered[(group, kind)] = frontend
    return frontend


def policy_key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    kind, group = str(obj.get("kind", "")), group_of(obj)
    default_ns = "default" if group == K8S_GROUP or kind == "NetworkPolicy" else ""
    return (qualified_kind(group, kind), str(meta.get("namespace", default_ns)), str(meta.get("name", "")))


def translate(obj: Mapping[str, Any]) -> ir.Translation:
    """Translate any policy object; an unknown apiVersion/kind is a Problem, not a crash."""
    kind, group = str(obj.get("kind", "")), group_of(obj)
    frontend = frontend_for(group, kind)
    if frontend is None:
        _, ns, name = policy_key(obj)
        message = f"no frontend for apiVersion {obj.get('apiVersion')!r} kind {kind!r}; ignored"
        return ir.Translation(None, (Problem(kind or "Unknown", ns, name, "apiVersion", message),))
    try:
        return frontend(obj)
    except Exception as exc:  # a frontend bug must not stop the other policies
        _, ns, name = policy_key(obj)
        return ir.Translation(None, (Problem(kind, ns, name, "", f"frontend failed: {exc!r}"),))
