"""The compiler feed: the one place that holds the IncrementalCompiler and what it has been fed.

Called by the kopf handlers (``handlers.py``, in kopf's event loop) for every Pod, Namespace and
policy event, and read by the publisher thread (``publisher.py``). Each event updates the
compiler under a lock and marks the keys its ``Delta`` names dirty in the publisher; nothing is
recomputed or written here.

It also knows when the initial listing has been digested: kopf fills its in-memory indices with
every object before it calls any event handler, so once every key in those indices has been fed
to the compiler (``check_ready``), the compiled state is complete and the publisher may delete
compiled objects that are no longer wanted. Before that it must not: after a restart an empty
compiler would otherwise delete everything.

Problems (invalid input) are kept per object with a reference to the object, so that the leader
can post a Kubernetes Event on it (``events.py``); the log line is written here, once per change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from picket.model import Problem
from picket_operator.compiler.frontends.registry import group_of, qualified_kind
from picket_operator.compiler.incremental import Delta, IncrementalCompiler
from picket_operator.publishing import objects as publishing

log = logging.getLogger("picket.operator.feed")

ObjectKey = tuple[str, str, str]  # (kind, namespace, name)
Marker = Callable[[Iterable[str], Iterable[str]], None]  # (endpoint keys, peer set names)


@dataclass(frozen=True)
class ObjectRef:
    """Enough of an object to post an Event on it (core/v1 involvedObject)."""

    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body.get("metadata") or {}
        return cls(
            str(body.get("apiVersion", "")),
            str(body.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name", "")),
            str(meta.get("uid", "")),
        )


class CompilerFeed:
    def __init__(self, compiler: IncrementalCompiler | None = None, mark: Marker | None = None) -> None:
        self.compiler = compiler or IncrementalCompiler()
        self.lock = threading.Lock()
        self._mark: Marker = mark or (lambda _e, _p: None)
        self._seen: dict[str, set[str]] = {"pod": set(), "namespace": set(), "policy": set()}
        self._ready = threading.Event()
        self._problems: dict[ObjectKey, tuple[ObjectRef, tuple[Problem, ...]]] = {}

    def set_marker(self, mark: Marker) -> None:
        self._mark = mark

    # Events (from the kopf handlers) -------------------------------------------------------------

    def upsert_pod(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        self._seen["pod"].add(f"{meta.get('namespace')}/{meta.get('name')}")
        with self.lock:
            delta = self.compiler.upsert_pod(body)
        self._after(delta, body)

    def delete_pod(self, namespace: str, name: str) -> None:
        self._seen["pod"].discard(f"{namespace}/{name}")
        with self.lock:
            delta = self.compiler.delete_pod(namespace, name)
        self._after(delta, None)

    def upsert_namespace(self, body: Mapping[str, Any]) -> None:
        self._seen["namespace"].add(str((body.get("metadata") or {}).get("name")))
        with self.lock:
            delta = self.compiler.upsert_namespace(body)
        self._after(delta, body)

    def delete_namespace(self, name: str) -> None:
        self._seen["namespace"].discard(name)
        with self.lock:
            delta = self.compiler.delete_namespace(name)
        self._after(delta, None)

    def upsert_policy(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        kind = qualified_kind(group_of(body), str(body.get("kind")))
        self._seen["policy"].add(f"{kind}/{meta.get('namespace') or ''}/{meta.get('name')}")
        with self.lock:
            delta = self.compiler.upsert_policy(body)
        self._after(delta, body)

    def delete_policy(self, kind: str, namespace: str, name: str) -> None:
        """``kind`` qualified as ``frontends.qualified_kind`` makes it (``NetworkPolicy.projectcalico.org``)."""
        self._seen["policy"].discard(f"{kind}/{namespace}/{name}")
        with self.lock:
            delta = self.compiler.delete_policy(kind, namespace, name)
        self._after(delta, None, (kind, namespace, name))

    def _after(self, delta: Delta, body: Mapping[str, Any] | None, gone: ObjectKey | None = None) -> None:
        self._mark(
            delta.endpoints_changed | delta.endpoints_removed,
            delta.peer_sets_changed | delta.peer_sets_removed,
        )
        if body is not None:
            ref = ObjectRef.of(body)
            kind = qualified_kind(group_of(body), ref.kind)
            self._record_problems((kind, ref.namespace, ref.name), ref, delta.problems)
        elif gone is not None:
            self._problems.pop(gone, None)

    def _record_problems(self, key: ObjectKey, ref: ObjectRef, problems: tuple[Problem, ...]) -> None:
        before = self._problems.get(key, (ref, ()))[1]
        if problems == before:
            return
        if problems:
            self._problems[key] = (ref, problems)
            for p in problems:
                log.warning("invalid input: %s", p)
        else:
            self._problems.pop(key, None)
            log.info("%s %s/%s: no problems any more", key[0], key[1], key[2])

    def problems(self) -> list[tuple[ObjectRef, Problem]]:
        return [(ref, p) for ref, ps in list(self._problems.values()) for p in ps]

    # Readiness ---------------------------------------------------------------------------------------

    def check_ready(self, indexed: Mapping[str, Iterable[str]]) -> bool:
        """True once every indexed key (per kind) has been fed; stays true after that."""
        if self._ready.is_set():
            return True
        materialised = {kind: set(keys) for kind, keys in indexed.items()}
        if all(keys <= self._seen[kind] for kind, keys in materialised.items()):
            with self.lock:
                counts = {k: len(v) for k, v in self._seen.items()}
            log.info("initial state compiled: %s", ", ".join(f"{n} {k}s" for k, n in counts.items()))
            self._ready.set()
        return self._ready.is_set()

    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    # Reads (from the publisher thread) ---------------------------------------------------------------

    def endpoint_object(self, key: str) -> dict[str, Any] | None:
        with self.lock:
            er = self.compiler.endpoint_rules(key)
        return None if er is None else publishing.endpoint_object(er)

    def peer_set_object(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            ps = self.compiler.peer_set(name)
        return None if ps is None else publishing.peer_set_object(ps)

    def all_keys(self) -> tuple[set[str], set[str]]:
        with self.lock:
            snap = self.compiler.snapshot()
        return set(snap.endpoints), set(snap.peer_sets)
