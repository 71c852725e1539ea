"""What the publisher last wrote, and the pure plan of the next writes (diff-based publishing).

``Ledger`` remembers, per compiled object, the identity it was written under and a content
fingerprint (hash of labels and spec). ``plan`` takes the keys marked dirty since the last sync
and a way to build each key's desired object (None: it should not exist) and returns only the
writes and deletes that change something, in a safe order for the agents watching:

1. peer sets written before the endpoints that may start referencing them,
2. endpoints written, then endpoints deleted,
3. peer sets deleted last, when nothing references them any more.

``recover`` rebuilds a ledger from the objects listed from the API server, so a restarted or
newly elected operator writes only what differs from what is already published.
Pure: no I/O, no clock; ``publisher.py`` performs the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.model import Endpoint, ModelError, stable_hash

Obj = dict[str, Any]


@dataclass(frozen=True)
class Written:
    namespace: str  # "" for cluster-scoped objects
    name: str
    fingerprint: str


def fingerprint(obj: Mapping[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return stable_hash({"labels": labels, "spec": obj.get("spec")}, 24)


def identity(obj: Mapping[str, Any], fp: str | None = None) -> Written:
    meta = obj.get("metadata") or {}
    return Written(str(meta.get("namespace") or ""), str(meta["name"]), fp or fingerprint(obj))


@dataclass
class Ledger:
    endpoints: dict[str, Written] = field(default_factory=dict)  # endpoint key -> written object
    peer_sets: dict[str, Written] = field(default_factory=dict)  # peer set name -> written object


@dataclass
class Plan:
    peer_set_writes: list[Obj] = field(default_factory=list)
    endpoint_writes: list[tuple[str, Obj]] = field(default_factory=list)  # (key, object); content changed
    endpoint_deletes: list[tuple[str, Written]] = field(default_factory=list)
    peer_set_deletes: list[tuple[str, Written]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.peer_set_writes)
            + len(self.endpoint_writes)
            + len(self.endpoint_deletes)
            + len(self.peer_set_deletes)
        )


def plan(
    ledger: Ledger,
    endpoint_keys: Iterable[str],
    peer_set_names: Iterable[str],
    desired_endpoint: Callable[[str], Obj | None],
    desired_peer_set: Callable[[str], Obj | None],
) -> Plan:
    out = Plan()
    for name in sorted(set(peer_set_names)):
        obj = desired_peer_set(name)
        if obj is None:
            if name in ledger.peer_sets:
                out.peer_set_deletes.append((name, ledger.peer_sets[name]))
        elif _changed(ledger.peer_sets.get(name), obj):
            out.peer_set_writes.append(obj)
    for key in sorted(set(endpoint_keys)):
        obj = desired_endpoint(key)
        old = ledger.endpoints.get(key)
        if obj is None:
            if old is not None:
                out.endpoint_deletes.append((key, old))
        elif _changed(old, obj):
            out.endpoint_writes.append((key, obj))
    # An endpoint that moved to a new object identity leaves the old object behind.
    for key, obj in out.endpoint_writes:
        old = ledger.endpoints.get(key)
        if old is not None and (old.namespace, old.name) != _where(obj):
            out.endpoint_deletes.append((key, old))
    return out


def _where(obj: Mapping[str, Any]) -> tuple[str, str]:
    w = identity(obj, "-")
    return w.namespace, w.name


def _changed(old: Written | None, obj: Mapping[str, Any]) -> bool:
    return old is None or old.fingerprint != fingerprint(obj) or (old.namespace, old.name) != _where(obj)


def record(ledger: Ledger, p: Plan, failed: set[tuple[str, str]]) -> None:
    """Apply a performed plan to the ledger, except the (kind, key) pairs that failed."""
    for obj in p.peer_set_writes:
        name = identity(obj).name
        if ("pps", name) not in failed:
            ledger.peer_sets[name] = identity(obj)
    for key, old in p.endpoint_deletes:
        if ("pcep", key) not in failed and ledger.endpoints.get(key) == old:
            del ledger.endpoints[key]
    for key, obj in p.endpoint_writes:
        if ("pcep", key) not in failed:
            ledger.endpoints[key] = identity(obj)
    for name, _ in p.peer_set_deletes:
        if ("pps", name) not in failed:
            ledger.peer_sets.pop(name, None)


def endpoint_key_of(obj: Mapping[str, Any]) -> str | None:
    """The endpoint key a published CompiledEndpoint is for (None: unreadable, a stale schema)."""
    try:
        return Endpoint.from_dict((obj.get("spec") or {})["endpoint"]).key
    except (KeyError, TypeError, ModelError):
        return None


def recover(endpoint_objects: Iterable[Mapping[str, Any]], peer_set_objects: Iterable[Mapping[str, Any]]) -> tuple[
    Ledger, list[Written]
]:
    """A ledger of what is published, and the endpoint objects no key can be derived from."""
    ledger, unreadable = Ledger(), []
    for obj in endpoint_objects:
        key = endpoint_key_of(obj)
        if key is None:
            unreadable.append(identity(obj))
        else:
            ledger.endpoints[key] = identity(obj)
    for obj in peer_set_objects:
        ledger.peer_sets[identity(obj).name] = identity(obj)
    return ledger, unreadable
