"""Where the UI's cluster state comes from and where a saved policy goes.

* ``FileStore(path)`` (``picket ui --cluster FILE``): the cluster file's objects, kept in memory;
  Save and Delete change that memory only (the file is never written), so the offline editor can
  be tried freely.
* ``ApiStore(kube)`` (the user's kubeconfig): Namespaces, Pods, NetworkPolicies (and picket's
  optional Calico kinds) listed from the API server, re-listed at most every ``refresh`` seconds
  and right after every Save or Delete (so the selected pods are right after saving). Save is a
  server-side apply (field manager ``picket-ui``) with the kubeconfig's own credentials, so the UI
  never has more rights than its user. If fields another manager owns survive the apply (a label
  the user removed from a selector that ``kubectl apply`` once set), the object is replaced with
  what the user wrote, guarded by its resourceVersion. An API error is raised as ``SaveError``
  with the server's message; the UI shows it inline and keeps the form.

Both build a ``workbench.Workbench`` per state. Thread-safe (the server is threaded).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from picket.failsafe import Failsafe
from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.ui.insight import effective_types
from picket_operator.ui.workbench import Workbench, clean_policy, object_id

FIELD_MANAGER = "picket-ui"


def _built(bench: Workbench) -> Workbench:
    threading.Thread(target=bench.warm, name="picket-ui-warm", daemon=True).start()
    return bench


class SaveError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class FileStore:
    mode = "offline"

    def __init__(self, objects: list[dict[str, Any]], source: str, failsafe: Failsafe | None = None) -> None:
        self.source = source
        self.identity = f"offline: {source} (changes stay in memory)"
        self._objects = objects
        self._failsafe = failsafe
        self._lock = threading.Lock()
        self._bench = _built(Workbench(objects, failsafe))

    @classmethod
    def from_file(cls, path: str | Path, failsafe: Failsafe | None = None) -> FileStore:
        return cls(load_cluster_file(path), str(path), failsafe)

    def workbench(self) -> Workbench:
        return self._bench

    def save(self, policy: Mapping[str, Any], original: tuple[str, str] | None) -> dict[str, Any]:
        obj = clean_policy(policy)
        with self._lock:
            drop = {object_id(obj)}
            if original:
                drop.add(("NetworkPolicy.networking.k8s.io", *original))
            kept = [o for o in self._objects if object_id(o) not in drop]
            self._objects = [*kept, obj]
            self._bench = _built(Workbench(self._objects, self._failsafe))
        return obj

    def delete(self, namespace: str, name: str) -> None:
        with self._lock:
            target = ("NetworkPolicy.networking.k8s.io", namespace, name)
            if not any(object_id(o) == target for o in self._objects):
                raise SaveError(404, f"networkpolicies.networking.k8s.io {name!r} not found in {namespace}")
            self._objects = [o for o in self._objects if object_id(o) != target]
            self._bench = _built(Workbench(self._objects, self._failsafe))


def compiled_nodes(kube: Any) -> list[dict[str, Any]]:
    """picket's CompiledNode objects (what each node's agent enforces, and its status); [] when the
    CRD is not installed or the user may not read them."""
    from picket.apiclient import ApiError

    try:
        items = kube.get("/apis/picket.dev/v1alpha1/compilednodes").get("items", [])
    except ApiError as exc:
        if exc.status in (403, 404):
            return []
        raise
    return [{"apiVersion": "picket.dev/v1alpha1", "kind": "CompiledNode", **item} for item in items]


def policy_path(namespace: str, name: str | None = None) -> str:
    tail = f"/{name}" if name else ""
    return f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies{tail}"


class ApiStore:
    mode = "live"

    def __init__(self, kube: Any, lister: Callable[[Any], list[dict[str, Any]]], identity: str,
                 failsafe: Failsafe | None = None, refresh: float = 2.0,
                 status_lister: Callable[[Any], list[dict[str, Any]]] | None = None) -> None:
        self._kube = kube
        self._lister = lister
        self._status_lister = status_lister or compiled_nodes
        self.identity = identity
        self._failsafe = failsafe
        self._refresh = refresh
        self._lock = threading.Lock()
        self._bench: Workbench | None = None
        self._fingerprint: tuple[Any, ...] = ()
        self._listed = 0.0

    def workbench(self, force: bool = False) -> Workbench:
        with self._lock:
            if force or self._bench is None or time.monotonic() - self._listed > self._refresh:
                objects = self._lister(self._kube)
                nodes = self._status_lister(self._kube)
                self._listed = time.monotonic()
                fingerprint = tuple(sorted((*object_id(o), str((o.get("metadata") or {}).get("resourceVersion")))
                                           for o in [*objects, *nodes]))
                if self._bench is None or fingerprint != self._fingerprint:
                    self._bench = _built(Workbench(objects, self._failsafe, nodes))
                    self._fingerprint = fingerprint
            return self._bench

    def save(self, policy: Mapping[str, Any], original: tuple[str, str] | None) -> dict[str, Any]:
        from picket.apiclient import ApiError

        obj = clean_policy(policy)
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        try:
            result = self._kube.apply(policy_path(namespace, name), obj, FIELD_MANAGER)
            if defaulted(result.get("spec") or {}) != defaulted(obj["spec"]) or _kept_labels(result, obj):
                body = {**obj, "metadata": {**obj["metadata"],
                                            "resourceVersion": (result.get("metadata") or {}).get("resourceVersion")}}
                result = self._kube.replace(policy_path(namespace, name), body, fieldManager=FIELD_MANAGER)
            if original and tuple(original) != (namespace, name):
                self._kube.delete(policy_path(*original))
        except ApiError as exc:
            raise SaveError(exc.status or 502, exc.message or str(exc)) from exc
        self.workbench(force=True)
        return dict(result)

    def delete(self, namespace: str, name: str) -> None:
        from picket.apiclient import ApiError

        try:
            self._kube.delete(policy_path(namespace, name))
        except ApiError as exc:
            raise SaveError(exc.status or 502, exc.message or str(exc)) from exc
        self.workbench(force=True)


def defaulted(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A NetworkPolicy spec as the API server stores it: policyTypes and port protocols defaulted,
    empty selectors and lists as the server leaves them."""
    out: dict[str, Any] = json.loads(json.dumps(dict(spec)))
    out["policyTypes"] = effective_types(out)
    for field in ("ingress", "egress"):
        for rule in out.get(field) or []:
            for port in (rule or {}).get("ports") or []:
                if isinstance(port, dict):
                    port.setdefault("protocol", "TCP")
    return out


def _kept_labels(result: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether the applied object still has a description/labels the user removed."""
    got = result.get("metadata") or {}
    want = wanted.get("metadata") or {}
    for key in ("labels", "annotations"):
        extra = set(got.get(key) or {}) - set(want.get(key) or {})
        extra.discard("kubectl.kubernetes.io/last-applied-configuration")
        if extra:
            return True
    return False
