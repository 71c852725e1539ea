"""Tiny builders of raw Kubernetes objects for the compiler tests, and a verdict helper."""

from __future__ import annotations

from typing import Any

from picket.evaluating import connection_allowed
from picket.model import Compiled, Protocol

ABSENT: Any = object()  # "leave this field out" (distinct from an empty list)


def make_ns(
    name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(labels or {})}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def make_pod(
    ns: str,
    name: str,
    ip: str | None,
    labels: dict[str, str] | None = None,
    ports: tuple[tuple[str, int, str], ...] = (("http", 80, "TCP"),),
    node: str = "node-1",
    **tweaks: Any,
) -> dict[str, Any]:
    """``ports``: (name, number, protocol); tweaks: phase=, host_network=, deleting=."""
    status: dict[str, Any] = {"phase": tweaks.get("phase", "Running")}
    if ip:
        status["podIP"] = ip
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [{"name": "c", "ports": [{"name": n, "containerPort": p, "protocol": pr} for n, p, pr in ports]}],
    }
    if tweaks.get("host_network"):
        spec["hostNetwork"] = True
    meta: dict[str, Any] = {"namespace": ns, "name": name, "labels": dict(labels or {})}
    if tweaks.get("deleting"):
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


def make_policy(
    ns: str,
    name: str = "p",
    pod_selector: dict[str, Any] | None = None,
    ingress: Any = ABSENT,
    egress: Any = ABSENT,
    policy_types: Any = ABSENT,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": pod_selector if pod_selector is not None else {}}
    for key, value in (("ingress", ingress), ("egress", egress), ("policyTypes", policy_types)):
        if value is not ABSENT:
            spec[key] = value
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": name},
            "spec": spec}


def compiled_allows(compiled: Compiled, src: str, dst: str, port: int, protocol: str = "TCP") -> bool:
    """The verdict of the COMPILED rule sets (sender's egress AND receiver's ingress)."""
    if src == dst:
        return True
    s, d = compiled.endpoints[src], compiled.endpoints[dst]
    ok, _, _ = connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0], Protocol(protocol), port,
                                  compiled.peer_sets)
    return ok
