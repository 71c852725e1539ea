"""The compiler feed: the one place that holds the IncrementalCompiler and what it has been fed.

Called by the kopf handlers (``handlers.py``, in kopf's event loop) for every Pod, Namespace and
policy event, and read by the publisher thread (``writer.py``). Each event updates the
compiler under a lock and marks dirty in the publisher the *nodes* of the endpoints its
``Delta`` names (the node before and after, for an endpoint that moved) and its peer sets;
nothing is recomputed or written here. The feed keeps which endpoints live on which node, so
``node_object`` builds one node's CompiledNode from that node's endpoints alone; rule-set
objects and binding rows are cached (rule sets by value, rows by the endpoint's rules object),
so a change over many pods costs one digest per distinct rule set.

It also knows when the initial listing has been digested: the operator lists every watched kind
once at start (``handlers.initial_keys``) and hands the keys to ``expect``; once each of them has
been fed to the compiler (or is gone), the compiled state is complete and the publisher may
delete compiled objects that are no longer wanted. Before that it must not: after a restart an
empty compiler would otherwise delete everything. (kopf's in-memory indices gave the same signal,
but they cost one readiness toggle per object that wakes every waiting worker: quadratic, minutes
at 5,000 pods.)

Problems (invalid input) are kept per object with a reference to the object, so that the leader
can post a Kubernetes Event on it (``events.py``); the log line is written here, once per change.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from picket.model import EndpointRules, Problem, RuleSet
from picket_operator.compiler.frontends.registry import group_of, qualified_kind
from picket_operator.compiler.incremental import Delta, IncrementalCompiler
from picket_operator.publishing import objects as publishing

log = logging.getLogger("picket.operator.feed")

ObjectKey = tuple[str, str, str]  # (kind, namespace, name)
Marker = Callable[[Iterable[str], Iterable[str]], None]  # (node names, peer set names)
Exists = Callable[[str, str], bool]  # (kind, key) -> does the object still exist? (the API, via main)
CACHE_LIMIT = 20_000  # rule sets remembered by value before the cache starts afresh


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
        self._gone: dict[str, set[str]] = {k: set() for k in self._seen}  # deleted before ``expect``
        self._unseen: set[tuple[str, str]] = set()  # listed at start, not fed yet
        self._expecting = False
        self._exists: Exists | None = None
        self._ready = threading.Event()
        self._problems: dict[ObjectKey, tuple[ObjectRef, tuple[Problem, ...]]] = {}
        self._node_of: dict[str, str] = {}  # endpoint key -> its node
        self._on_node: dict[str, set[str]] = {}  # node -> endpoint keys
        self._rule_sets: dict[RuleSet, tuple[str, dict[str, Any]]] = {}  # value -> (name, object)
        self._rows: dict[str, tuple[EndpointRules, dict[str, Any], tuple[str, ...]]] = {}

    def set_marker(self, mark: Marker) -> None:
        self._mark = mark

    # Events (from the kopf handlers) -------------------------------------------------------------

    def upsert_pod(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        self._saw("pod", f"{meta.get('namespace')}/{meta.get('name')}")
        with self.lock:
            delta = self.compiler.upsert_pod(body)
        self._after(delta, body)

    def delete_pod(self, namespace: str, name: str) -> None:
        self._saw("pod", f"{namespace}/{name}", deleted=True)
        with self.lock:
            delta = self.compiler.delete_pod(namespace, name)
        self._after(delta, None)

    def upsert_namespace(self, body: Mapping[str, Any]) -> None:
        self._saw("namespace", str((body.get("metadata") or {}).get("name")))
        with self.lock:
            delta = self.compiler.upsert_namespace(body)
        self._after(delta, body)

    def delete_namespace(self, name: str) -> None:
        self._saw("namespace", name, deleted=True)
        with self.lock:
            delta = self.compiler.delete_namespace(name)
        self._after(delta, None)

    def upsert_policy(self, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        kind = qualified_kind(group_of(body), str(body.get("kind")))
        self._saw("policy", f"{kind}/{meta.get('namespace') or ''}/{meta.get('name')}")
        with self.lock:
            delta = self.compiler.upsert_policy(body)
        self._after(delta, body)

    def delete_policy(self, kind: str, namespace: str, name: str) -> None:
        """``kind`` qualified as ``frontends.qualified_kind`` makes it (``NetworkPolicy.projectcalico.org``)."""
        self._saw("policy", f"{kind}/{namespace}/{name}", deleted=True)
        with self.lock:
            delta = self.compiler.delete_policy(kind, namespace, name)
        self._after(delta, None, (kind, namespace, name))

    def _after(self, delta: Delta, body: Mapping[str, Any] | None, gone: ObjectKey | None = None) -> None:
        nodes: set[str] = set()
        with self.lock:
            for key in delta.endpoints_changed | delta.endpoints_removed:
                nodes |= self._place(key)
        self._mark(nodes, delta.peer_sets_changed | delta.peer_sets_removed)
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

    def expect(self, listed: Mapping[str, Iterable[str]], exists: Exists) -> None:
        """The keys (per kind) that existed when the operator listed them at start: the initial
        state is complete once each has been fed, or is gone (a DELETED event, or ``recheck``
        finds it no longer exists: deleted before kopf's own listing, so never delivered)."""
        with self.lock:
            self._exists = exists
            self._unseen = {(kind, key) for kind, keys in listed.items() for key in keys
                            if key not in self._seen[kind] and key not in self._gone[kind]}
            self._expecting = True
            log.info("waiting for the initial listing: %d objects", len(self._unseen))
        self._check_ready()

    def recheck(self, limit: int = 100) -> None:
        """Forget up to ``limit`` expected keys that no longer exist (the publisher calls this
        while not ready, every few seconds)."""
        with self.lock:
            todo, exists = sorted(self._unseen)[:limit], self._exists
        gone = [(kind, key) for kind, key in todo if exists is not None and not exists(kind, key)]
        with self.lock:
            self._unseen.difference_update(gone)
        self._check_ready()

    def unseen(self) -> int:
        """How many keys listed at start have not been fed yet."""
        with self.lock:
            return len(self._unseen)

    def _saw(self, kind: str, key: str, deleted: bool = False) -> None:
        with self.lock:  # ``expect`` reads these from another thread
            if deleted:
                self._seen[kind].discard(key)
                if not self._ready.is_set():
                    self._gone[kind].add(key)
            else:
                self._seen[kind].add(key)
            self._unseen.discard((kind, key))
        if not self._ready.is_set():
            self._check_ready()

    def _check_ready(self) -> None:
        with self.lock:
            if self._ready.is_set() or not self._expecting or self._unseen:
                return
            counts = {k: len(v) for k, v in self._seen.items()}
            self._gone = {k: set() for k in self._gone}
        log.info("initial state compiled: %s", ", ".join(f"{n} {k}s" for k, n in counts.items()))
        self._ready.set()

    def ready(self) -> bool:
        return self._ready.is_set()

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def _place(self, key: str) -> set[str]:
        """Record where ``key`` lives now; the nodes whose binding it changes (old and new)."""
        er = self.compiler.endpoint_rules(key)
        old = self._node_of.get(key)
        new = (er.endpoint.node or None) if er is not None else None  # no node: no agent to bind it to
        if old is not None and old != new:
            self._on_node[old].discard(key)
            if not self._on_node[old]:
                del self._on_node[old]
        if new is None:
            self._node_of.pop(key, None)
            self._rows.pop(key, None)
        else:
            self._node_of[key] = new
            self._on_node.setdefault(new, set()).add(key)
        return {n for n in (old, new) if n}

    # Reads (from the publisher thread) ---------------------------------------------------------------

    def node_object(self, node: str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
        """The CompiledNode of ``node`` (None: no endpoints there) and the rule sets it names."""
        rows, rule_sets = [], {}
        with self.lock:
            for key in self._on_node.get(node, ()):
                er = self.compiler.endpoint_rules(key)
                if er is None:
                    continue
                row, names = self._row(key, er)
                rows.append(row)
                for rs, name in zip(_rule_sets_of(er), names, strict=True):
                    if rs is not None:
                        rule_sets[name] = self._rule_set(rs)[1]
        if not rows:
            return None, {}
        return publishing.node_object(node, rows), rule_sets

    def _row(self, key: str, er: EndpointRules) -> tuple[dict[str, Any], tuple[str, ...]]:
        cached = self._rows.get(key)
        if cached is not None and cached[0] is er:
            return cached[1], cached[2]
        names = tuple(self._rule_set(rs)[0] if rs is not None else "" for rs in _rule_sets_of(er))
        row = publishing.binding_row(er, *(n or None for n in names))
        self._rows[key] = (er, row, names)
        return row, names

    def _rule_set(self, rs: RuleSet) -> tuple[str, dict[str, Any]]:
        cached = self._rule_sets.get(rs)
        if cached is None:
            if len(self._rule_sets) >= CACHE_LIMIT:
                self._rule_sets.clear()
            obj = publishing.rule_set_object(rs)
            cached = self._rule_sets[rs] = (obj["metadata"]["name"], obj)
        return cached

    def has_endpoint(self, key: str) -> bool:
        with self.lock:
            return self.compiler.endpoint_rules(key) is not None

    def peer_set_object(self, name: str) -> dict[str, Any] | None:
        with self.lock:
            ps = self.compiler.peer_set(name)
        return None if ps is None else publishing.peer_set_object(ps)

    def all_keys(self) -> tuple[set[str], set[str]]:
        """Every node with endpoints, every peer set name."""
        with self.lock:
            snap = self.compiler.snapshot()
            for key in snap.endpoints:  # endpoints compiled before the marker was set
                if key not in self._node_of:
                    self._place(key)
            return set(self._on_node), set(snap.peer_sets)


def _rule_sets_of(er: EndpointRules) -> tuple[RuleSet | None, ...]:
    """An endpoint's rule sets in ``objects.BINDING_FIELDS`` order (enforced, then audit mode's)."""
    return er.ingress, er.egress, er.staged_ingress, er.staged_egress
