"""``status.conditions`` of ClusterNetworkPolicies: whether picket enforces each one, and why not.

The network-policy-api leaves the conditions to the implementation ("Currently there are no rules
as to what these conditions should display, and it is up to each implementation to report what
they see fit"). picket writes one condition, type ``Accepted``:

* ``True`` / ``Accepted``: compiled and enforced (message: tier, priority, rule counts);
* ``True`` / ``AcceptedWithWarnings``: enforced, with warnings (a peer that fails closed);
* ``False`` / ``NotSupported`` or ``Invalid``: not applied at all (never half-applied); the
  message names the field of the first problem, e.g. ``spec.egress[0].to[0].domainNames: ...``.

``desired_condition`` is pure: it translates the object with the same frontend the compiler uses.
``PolicyStatusWriter`` is fed by a kopf event handler (``observe`` / ``forget``), and its own
thread (``run``) writes what changed while this replica leads, with server-side apply on the
status subresource under field manager ``picket-operator`` (``conditions`` is a list-map keyed by
``type``, so other implementations' conditions are left alone). An unchanged condition is not
written again; a status write produces a watch event whose object then needs no write: no loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from picket.apiclient import ApiError, KubeClient, custom_path
from picket_operator.compiler.frontends import registry as frontends

log = logging.getLogger("picket.operator.status")

GROUP, VERSION, PLURAL, KIND = "policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "ClusterNetworkPolicy"
CONDITION = "Accepted"
FIELD_MANAGER = "picket-operator"
RESYNC_SECONDS = 60.0


def desired_condition(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The ``Accepted`` condition for one object, without ``lastTransitionTime``."""
    translation = frontends.translate(obj)
    meta = obj.get("metadata") or {}
    condition: dict[str, Any] = {"type": CONDITION, "observedGeneration": int(meta.get("generation") or 0)}
    problems = "; ".join(f"{p.field}: {p.message}" for p in translation.problems)
    policy = translation.policy
    if policy is None:
        unsupported = any("not supported" in p.message for p in translation.problems)
        condition.update(status="False", reason="NotSupported" if unsupported else "Invalid",
                         message=f"not applied: {problems}")
    elif translation.problems:
        condition.update(status="True", reason="AcceptedWithWarnings", message=f"enforced by picket; {problems}")
    else:
        spec = obj.get("spec") or {}
        condition.update(status="True", reason="Accepted", message=(
            f"enforced by picket: tier {spec.get('tier')}, priority {spec.get('priority')}, "
            f"{len(spec.get('ingress') or [])} ingress and {len(spec.get('egress') or [])} egress rules"))
    condition["message"] = condition["message"][:32768]
    return condition


def current_condition(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == CONDITION:
            return dict(condition)
    return None


def status_patch(obj: Mapping[str, Any], now: datetime) -> dict[str, Any] | None:
    """The apply body for the status subresource, or None when the condition is already right."""
    want = desired_condition(obj)
    have = current_condition(obj)
    if have is not None and all(have.get(k) == v for k, v in want.items()):
        return None
    same_status = have is not None and have.get("status") == want["status"] and have.get("lastTransitionTime")
    want["lastTransitionTime"] = have["lastTransitionTime"] if same_status and have else \
        now.strftime("%Y-%m-%dT%H:%M:%SZ")
    name = (obj.get("metadata") or {}).get("name")
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": name},
            "status": {"conditions": [want]}}


class PolicyStatusWriter:
    def __init__(self, client: KubeClient, is_leader: Callable[[], bool]) -> None:
        self._client, self._is_leader = client, is_leader
        self._lock = threading.Lock()
        self._objects: dict[str, Mapping[str, Any]] = {}
        self._dirty: set[str] = set()
        self._wake = threading.Event()
        self.written_total = 0

    def observe(self, body: Mapping[str, Any]) -> None:
        name = str((body.get("metadata") or {}).get("name", ""))
        with self._lock:
            self._objects[name] = body
            self._dirty.add(name)
        self._wake.set()

    def forget(self, name: str) -> None:
        with self._lock:
            self._objects.pop(name, None)
            self._dirty.discard(name)

    def reset(self) -> None:
        """Check every object again (on becoming leader)."""
        with self._lock:
            self._dirty = set(self._objects)
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if not self._wake.wait(RESYNC_SECONDS):
                self.reset()
            self._wake.clear()
            if self._is_leader():
                self.sync()

    def sync(self) -> None:
        with self._lock:
            todo = {n: self._objects[n] for n in self._dirty if n in self._objects}
            self._dirty.clear()
        for name, obj in sorted(todo.items()):
            body = status_patch(obj, datetime.now(UTC))
            if body is None:
                continue
            try:
                self._client.apply(custom_path(GROUP, VERSION, PLURAL, name=name) + "/status", body, FIELD_MANAGER)
            except ApiError as exc:
                if exc.status != 404:  # deleted meanwhile: nothing to report on
                    log.warning("could not write the status of ClusterNetworkPolicy %s: %s", name, exc)
                    with self._lock:
                        self._dirty.add(name)
                continue
            self.written_total += 1
            condition = body["status"]["conditions"][0]
            log.info("ClusterNetworkPolicy %s: %s=%s (%s) %s", name, CONDITION, condition["status"],
                     condition["reason"], condition["message"])
