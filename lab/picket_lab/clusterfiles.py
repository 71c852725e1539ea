"""Cluster files on the local cluster: create their objects, read the live ones back, list probe targets.

Cluster files (``examples/*/cluster.yaml``, ``examples/model-cluster.yaml``) describe Namespaces,
Pods (with ``nodeName`` like ``node-1`` and a ``status.podIP`` for offline compiles) and
policies. ``for_lab`` adapts them to the lab: ``node-<i>`` becomes the lab's i-th node (round
robin), status and the fixed IP are dropped (the lab's node runtime assigns addresses), and
policies are split off so they can be applied later, one at a time.

``live_objects`` lists what the API server holds (Namespaces, Pods, NetworkPolicies, and
ClusterNetworkPolicies when their CRD is installed) in the form
the offline compiler reads, so a prediction can be compiled from the live cluster;
``targets`` lists running lab pods with their network namespace and IP for the prober.
"""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from picket.apiclient import ApiError, KubeClient
from picket_lab.api import Lab
from picket_lab.probing import Target
from picket_lab.shell import LabError

Obj = dict[str, Any]
POLICY_KINDS = {"NetworkPolicy", "GlobalNetworkPolicy", "GlobalNetworkSet", "HostEndpoint", "ClusterNetworkPolicy",
                "StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy"}
# Optional kinds that live_objects reads when their CRD is installed (404 otherwise).
OPTIONAL_KINDS = (("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", "ClusterNetworkPolicy",
                   "policy.networking.k8s.io/v1alpha2"),)
SYSTEM_NAMESPACES = {"default", "kube-system", "kube-public", "kube-node-lease", "picket-system"}
_NODE = re.compile(r"^node-(\d+)$")


def load(path: Path | str) -> list[Obj]:
    return [d for d in yaml.safe_load_all(Path(path).read_text()) if isinstance(d, dict)]


def for_lab(objects: Iterable[Obj], nodes: Sequence[str]) -> tuple[list[Obj], list[Obj]]:
    """(namespaces and pods adapted to the lab, policies) of a cluster file."""
    base, policies = [], []
    for obj in objects:
        if obj.get("kind") in POLICY_KINDS:
            policies.append(obj)
            continue
        obj = copy.deepcopy(obj)
        obj.pop("status", None)
        if obj.get("kind") == "Pod":
            spec = obj.setdefault("spec", {})
            match = _NODE.match(str(spec.get("nodeName", "")))
            if match:
                spec["nodeName"] = nodes[(int(match.group(1)) - 1) % len(nodes)]
        base.append(obj)
    return base, policies


def path_of(obj: Obj, name: str | None = None) -> str:
    """The collection path (or the object path with ``name``) of an object's kind."""
    kind, meta = obj.get("kind"), obj.get("metadata") or {}
    ns = meta.get("namespace") or "default"
    tail = f"/{name}" if name else ""
    if kind == "Namespace":
        return f"/api/v1/namespaces{tail}"
    if kind == "Pod":
        return f"/api/v1/namespaces/{ns}/pods{tail}"
    if kind == "NetworkPolicy" and str(obj.get("apiVersion", "")).startswith("networking.k8s.io"):
        return f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies{tail}"
    raise ValueError(f"picket_lab.clusterfiles cannot place a {obj.get('apiVersion')} {kind}")


def apply(kube: KubeClient, objects: Iterable[Obj]) -> None:
    """Server-side apply each object (create or update), as ``kubectl apply --server-side`` does."""
    for obj in objects:
        path = path_of(obj, obj["metadata"]["name"])
        try:
            kube.apply(path, obj, "picket-lab-model")
        except ApiError as exc:
            if exc.status != 422 or obj.get("kind") != "Pod":
                raise
            # A pod's spec is immutable (e.g. another nodeName): replace the pod.
            delete(kube, [obj], wait=60)
            kube.apply(path, obj, "picket-lab-model")


def delete(kube: KubeClient, objects: Iterable[Obj], wait: float = 0) -> None:
    """Delete each object; with ``wait``, until the API server no longer has them (pods finish)."""
    objects = list(objects)
    for obj in objects:
        try:
            kube.delete(path_of(obj, obj["metadata"]["name"]))
        except ApiError as exc:
            if exc.status != 404:
                raise
    deadline = time.monotonic() + wait
    for obj in objects if wait else []:
        while time.monotonic() < deadline:
            try:
                kube.get(path_of(obj, obj["metadata"]["name"]))
            except ApiError as exc:
                if exc.status == 404:
                    break
                raise
            time.sleep(0.1)


def live_objects(kube: KubeClient) -> list[Obj]:
    out: list[Obj] = []
    for path, kind, api in (
        ("/api/v1/namespaces", "Namespace", "v1"),
        ("/api/v1/pods", "Pod", "v1"),
        ("/api/v1/nodes", "Node", "v1"),  # ClusterNetworkPolicy `nodes` peers
        ("/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy", "networking.k8s.io/v1"),
    ):
        for item in kube.get(path).get("items", []):
            out.append({"apiVersion": api, "kind": kind, **item})
    for path, kind, api in OPTIONAL_KINDS:
        try:
            items = kube.get(path).get("items", [])
        except ApiError as exc:
            if exc.status != 404:
                raise
            items = []
        out += [{"apiVersion": api, "kind": kind, **item} for item in items]
    return out


def pod_keys(objects: Iterable[Obj], include_system: bool = False) -> list[str]:
    keys = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        if obj.get("kind") != "Pod" or meta.get("deletionTimestamp"):
            continue
        if not (obj.get("status") or {}).get("podIP"):
            continue
        if include_system or meta.get("namespace") not in SYSTEM_NAMESPACES:
            keys.append(f"{meta.get('namespace')}/{meta.get('name')}")
    return sorted(keys)


def keys_of(objects: Iterable[Obj]) -> list[str]:
    """Keys ("ns/name") of the Pods among ``objects`` (no status needed)."""
    return sorted(
        f"{(o.get('metadata') or {}).get('namespace') or 'default'}/{(o.get('metadata') or {}).get('name')}"
        for o in objects
        if o.get("kind") == "Pod"
    )


def targets(lab: Lab, keys: Iterable[str]) -> list[Target]:
    out = []
    for key in keys:
        namespace, _, name = key.partition("/")
        try:
            out.append(Target(key, lab.pod_netns(namespace, name), lab.pod_ip(namespace, name)))
        except LabError:
            continue  # not (yet) running on a lab node
    return out


def running(lab: Lab, kube: KubeClient, keys: Iterable[str]) -> bool:
    """True when every pod has an IP in the API and a network namespace on its lab node."""
    wanted = set(keys)
    ready = set(pod_keys(live_objects(kube), include_system=True))
    return wanted <= ready and len(targets(lab, wanted)) == len(wanted)
