"""Tiny builders of the objects the lab tests create, and small helpers around the lab API."""

from __future__ import annotations

import uuid
from typing import Any

from picket.apiclient import ApiError
from picket_lab.api import Lab

IMAGE = "registry.k8s.io/pause:3.10"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def ports(tcp: tuple[int, ...] = (), udp: tuple[int, ...] = ()) -> list[dict[str, Any]]:
    return ([{"containerPort": p, "protocol": "TCP"} for p in tcp]
            + [{"containerPort": p, "protocol": "UDP"} for p in udp])


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def pod(ns: str, name: str, container_ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "main", "image": IMAGE, "ports": container_ports}], **spec}}


def spread_deployment(ns: str, name: str, replicas: int, container_ports: list[dict[str, Any]]) -> dict[str, Any]:
    """A Deployment whose replicas must spread evenly over the nodes (maxSkew 1, DoNotSchedule)."""
    labels = {"app": name}
    spread = [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "DoNotSchedule",
               "labelSelector": {"matchLabels": labels}}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"namespace": ns, "name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"topologySpreadConstraints": spread,
                         "containers": [{"name": "main", "image": IMAGE, "ports": container_ports}]}}}}


def running_pods(lab: Lab, ns: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = lab.kube().get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"]
    return [p for p in items if p["status"].get("phase") == "Running" and p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")]


def gone(lab: Lab, path: str) -> bool:
    try:
        lab.kube().get(path)
    except ApiError as err:
        return err.status == 404
    return False
