"""The agent's API feed: compiled objects for this node in, ``Compiled`` out, applied versions back.

Reflectors (``picket.watching``) keep local copies of
* this node's ``CompiledNode`` (label ``picket.dev/node=<node>``: an agent never receives another
  node's bindings), which binds the node's endpoints to rule-set names;
* the ``CompiledRuleSet``\\ s and ``CompiledPeerSet``\\ s (cluster-scoped, shared, content-
  addressed or small; all of them, then ``Compiled.for_node`` keeps the ones this node's rules
  use; watching them by name would need a watch per object);
* this node's ``CompiledEndpoint``\\ s of the previous form (label selector), read while a cluster
  switches (``published.resolve``: as long as there is no CompiledNode).
Every change marks the node's ``Compiled`` dirty; a builder thread rebuilds it from the local
copies (parsing is cached per object version) at most once per few milliseconds of a burst and
submits it to the SyncLoop, which coalesces again (latest wins). Nothing is submitted until every
initial list has arrived, so the dataplane never sees endpoints whose rule or peer sets are still
unknown; an endpoint whose rule set arrives later keeps its previous rules meanwhile (exact
versions, see ``published``). If the API server goes away, the reflectors retry with backoff and
the dataplane keeps the last state it applied: nothing is ever flushed because of the API.

Status, one write per node: the SyncLoop calls ``applied(version_by_key)`` after each successful
apply; once every endpoint of the CompiledNode is enforced at that node's ``spec.version``, a
reporter thread patches the CompiledNode's ``status`` (appliedVersion, applied "True",
appliedAt), off the dataplane's thread. While the node has no CompiledNode (a cluster published
by the previous version), each CompiledEndpoint's status is reported as before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from picket.apiclient import ApiError, KubeClient, custom_path
from picket.model import Compiled, EndpointRules, ModelError
from picket.watching import Reflector
from picket_agent.published import (
    ENDPOINTS,
    GROUP,
    NODE_LABEL,
    NODES,
    PEER_SETS,
    RULE_SETS,
    VERSION,
    NodeBinding,
    Parsed,
    Resolution,
    binding_applied,
    parse_endpoint,
    parse_node,
    parse_peer_set,
    parse_rule_set,
    resolve,
)
from picket_agent.rendering.renderer import endpoint_version

log = logging.getLogger("picket.agent.apifeed")

COALESCE = 0.005  # seconds to gather a burst of watch events into one snapshot
REPORT_QUIET, REPORT_MAX_DELAY = 0.2, 2.0  # per-endpoint reports (previous form): let a burst settle first
KINDS = ("endpoints", "nodes", "rule sets", "peer sets")

Obj = dict[str, Any]


class _Store:
    """Parsed objects by (namespace, name), updated from list and watch events.

    Only labels and spec count as content: status-only changes (the agent's own reports) update
    ``status`` but do not make the node's rules change.
    """

    def __init__(self, parse: Callable[[Mapping[str, Any]], Any], what: str) -> None:
        self._parse, self._what = parse, what
        self.items: dict[tuple[str, str], tuple[str, Any]] = {}  # key -> (content stamp, parsed)
        self.status: dict[tuple[str, str], tuple[str, Mapping[str, Any]]] = {}  # key -> (resourceVersion, status)

    def replace(self, objs: list[Obj]) -> bool:
        old, self.items, self.status = self.items, {}, {}
        for obj in objs:
            self._put(obj, old)
        return True

    def event(self, kind: str, obj: Obj) -> bool:
        """Apply one watch event; True when the content changed."""
        if kind == "DELETED":
            self.status.pop(_key(obj), None)
            return self.items.pop(_key(obj), None) is not None
        return self._put(obj, self.items)

    def _put(self, obj: Obj, previous: dict[tuple[str, str], tuple[str, Any]]) -> bool:
        key = _key(obj)
        meta = obj.get("metadata") or {}
        self.status[key] = (str(meta.get("resourceVersion", "")), obj.get("status") or {})
        stamp = repr(meta.get("labels")) + repr(obj.get("spec"))
        known = previous.get(key)
        if known is not None and known[0] == stamp:
            self.items[key] = known
            return False
        try:
            self.items[key] = (stamp, self._parse(obj))
            return True
        except (KeyError, TypeError, ValueError, ModelError) as exc:
            # Keep the last good version of this object (if any); report the bad one.
            log.error("%s %s/%s: unreadable, keeping the last good version: %s", self._what, *key, exc)
            if known is not None:
                self.items[key] = known
            return False


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name"))


class ApiFeed:
    def __init__(self, client: KubeClient, node: str, submit: Callable[[Compiled], None]) -> None:
        self._client, self._node, self._submit = client, node, submit
        self._lock = threading.Lock()
        self._stores = {
            "endpoints": _Store(parse_endpoint, "CompiledEndpoint"),
            "nodes": _Store(parse_node, "CompiledNode"),
            "rule sets": _Store(parse_rule_set, "CompiledRuleSet"),
            "peer sets": _Store(parse_peer_set, "CompiledPeerSet"),
        }
        self._endpoints = self._stores["endpoints"]
        self._resolution = Resolution({})
        self._applied: dict[str, str] = {}  # endpoint key -> version the dataplane enforces (last apply)
        self._versions: dict[str, tuple[EndpointRules, str]] = {}  # endpoint key -> (rules, their version)
        self._reported: dict[tuple[str, str], tuple[str, str]] = {}  # object -> (version, resourceVersion)
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="status")
        self._listed: set[str] = set()
        self._dirty = threading.Event()
        self._pending: dict[tuple[str, str], tuple[Parsed, str]] = {}  # per-endpoint reports not yet sent
        self._node_report: tuple[str, str] | None = None  # (version, resourceVersion) last reported
        self._last_pending = 0.0
        self._report_wake = threading.Event()
        self.submitted = 0
        selector = f"{NODE_LABEL}={node}"
        self.reflectors = [
            self._reflector("endpoints", ENDPOINTS, selector),
            self._reflector("nodes", NODES, selector),
            self._reflector("rule sets", RULE_SETS, None),
            self._reflector("peer sets", PEER_SETS, None),
        ]

    def _reflector(self, kind: str, plural: str, selector: str | None) -> Reflector:
        return Reflector(self._client, custom_path(GROUP, VERSION, plural), lambda objs: self._sync(kind, objs),
                         lambda ev, obj: self._event(kind, ev, obj), selector, plural)

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=r.run, args=(stop,), name=r.name, daemon=True) for r in self.reflectors]
        threads.append(threading.Thread(target=self._build, args=(stop,), name="apifeed-build", daemon=True))
        threads.append(threading.Thread(target=self._reporter, args=(stop,), name="apifeed-status", daemon=True))
        for t in threads:
            t.start()
        stop.wait()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Reflector callbacks (each reflector calls from its own thread) ---------------------------------

    def _sync(self, kind: str, objs: list[Obj]) -> None:
        with self._lock:
            self._stores[kind].replace(objs)
            self._listed.add(kind)
        self._changed()
        if kind == "endpoints":
            self._check_status([_key(o) for o in objs])
        elif kind == "nodes":
            self._check_node()

    def _event(self, kind: str, ev: str, obj: Obj) -> None:
        with self._lock:
            changed = self._stores[kind].event(ev, obj)
        if changed:
            self._changed()
        if kind == "endpoints" and ev != "DELETED":
            self._check_status([_key(obj)])
        elif kind == "nodes":
            self._check_node()

    def _changed(self) -> None:
        with self._lock:
            if len(self._listed) < len(KINDS):  # every initial list first: no endpoint without its sets
                return
        self._dirty.set()

    def _build(self, stop: threading.Event) -> None:
        """Coalesce bursts of events into few snapshots."""
        while not stop.is_set():
            if not self._dirty.wait(timeout=1.0):
                continue
            time.sleep(COALESCE)
            self._dirty.clear()
            self._submit(self.snapshot())
            self.submitted += 1
            # A new CompiledNode version whose rules the kernel already enforces (the switch from
            # the previous form, a no-op change) makes no apply and so no ``applied`` call.
            self._check_node()

    def snapshot(self) -> Compiled:
        with self._lock:
            nodes = [b for _, b in self._stores["nodes"].items.values()]
            binding: NodeBinding | None = nodes[0] if nodes else None
            rule_sets = {name: rs for (_, name), (_, rs) in self._stores["rule sets"].items.items()}
            sets = {ps.name: ps for _, ps in self._stores["peer sets"].items.values()}
            legacy = {p.rules.endpoint.key: p.rules for _, p in self._endpoints.items.values()}
            resolution = resolve(binding, rule_sets, legacy, self._resolution.endpoints)
            if resolution.pending and resolution.pending != self._resolution.pending:
                log.info("CompiledNode %s version %s: %d endpoints wait for their rule sets (they keep their "
                         "previous rules)", self._node, resolution.binding, len(resolution.pending))
            self._resolution = resolution
            if len(self._versions) > 2 * len(resolution.current) + 64:
                self._versions = {k: v for k, v in self._versions.items() if k in resolution.current}
        return Compiled(resolution.endpoints, sets, ()).for_node(self._node)

    # Status -----------------------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        """spec.version of every CompiledEndpoint (previous form) this agent holds, by endpoint key."""
        with self._lock:
            return {p.rules.endpoint.key: p.version for _, p in self._endpoints.items.values()}

    def applied(self, version_by_key: Mapping[str, str]) -> None:
        """Called by the SyncLoop after an apply; never blocks it (patches run in a pool)."""
        with self._lock:
            self._applied = dict(version_by_key)  # the whole node's state in the kernel now
            legacy_mode = self._resolution.binding is None
            keys = [k for k, (_, p) in self._endpoints.items.items() if p.rules.endpoint.key in version_by_key]
        if legacy_mode:
            self._check_status(keys)
        else:
            self._check_node()

    def _check_node(self) -> None:
        """Report the CompiledNode applied when the dataplane enforces all of its version."""
        with self._lock:
            res = self._resolution
            if res.binding is None or not binding_applied(res, self._applied, self._version_of):
                return
            stored = [(b, self._stores["nodes"].status.get(k, ("", {}))) for k, (_, b) in
                      self._stores["nodes"].items.items()]
            if not stored or stored[0][0].version != res.binding:
                return  # the object changed since the snapshot: the next snapshot decides
            rv, status = stored[0][1]
            if status.get("appliedVersion") == res.binding and status.get("applied") == "True":
                return  # already truthful
            if self._node_report == (res.binding, rv):
                return  # already reported for this state of the object (a recreated one is new)
            self._node_report = (res.binding, rv)
        self._pool.submit(self._report_node, res.binding, rv)

    def _version_of(self, er: EndpointRules) -> str:
        """The renderer's version of ``er``, computed once per rules object (under ``_lock``)."""
        known = self._versions.get(er.endpoint.key)
        if known is not None and known[0] is er:
            return known[1]
        version = endpoint_version(er)
        self._versions[er.endpoint.key] = (er, version)
        return version

    def _report_node(self, version: str, rv: str) -> None:
        status = {
            "appliedVersion": version,
            "applied": "True",
            "appliedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": f"applied by the agent on {self._node}",
        }
        path = custom_path(GROUP, VERSION, NODES, None, self._node) + "/status"
        try:
            self._client.merge_patch(path, {"status": status})
        except ApiError as exc:
            if exc.status != 404:  # 404: deleted meanwhile
                log.warning("status of CompiledNode %s: %s", self._node, exc)
            with self._lock:
                if self._node_report == (version, rv):
                    self._node_report = None

    def _check_status(self, keys: list[tuple[str, str]]) -> None:
        """Previous form: report every CompiledEndpoint whose status does not yet say its current
        version is applied (only while the node has no CompiledNode)."""
        todo: list[tuple[Parsed, str]] = []
        with self._lock:
            if self._stores["nodes"].items:
                return
            for key in keys:
                entry, seen = self._endpoints.items.get(key), self._endpoints.status.get(key)
                if entry is None or seen is None:
                    continue
                parsed: Parsed = entry[1]
                rv, status = seen
                if self._applied.get(parsed.rules.endpoint.key) != parsed.version:
                    continue  # not applied yet (or an older version): the status stays as it is
                if status.get("applied") == "True" and status.get("appliedVersion") == parsed.version:
                    continue  # already truthful
                if self._reported.get(key) == (parsed.version, rv):
                    continue  # already reported for this state of the object
                self._reported[key] = (parsed.version, rv)
                todo.append((parsed, parsed.version))
        if todo:
            with self._lock:
                for parsed, version in todo:
                    self._pending[(parsed.namespace, parsed.name)] = (parsed, version)
                self._last_pending = time.monotonic()
            self._report_wake.set()

    def _reporter(self, stop: threading.Event) -> None:
        """Per-endpoint reports wait for a burst to settle (0.2 s without new ones, at most 2 s)."""
        while not stop.is_set():
            if not self._report_wake.wait(timeout=1.0):
                continue
            self._report_wake.clear()
            first = time.monotonic()
            while time.monotonic() - self._last_pending < REPORT_QUIET and time.monotonic() - first < REPORT_MAX_DELAY:
                time.sleep(0.05)
            self.flush_reports()

    def flush_reports(self) -> None:
        with self._lock:
            todo, self._pending = list(self._pending.values()), {}
        for parsed, version in todo:
            self._pool.submit(self._report, parsed, version)

    def _report(self, parsed: Parsed, version: str) -> None:
        status = {
            "appliedVersion": version,
            "applied": "True",
            "appliedAt": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "message": f"applied by the agent on {self._node}",
        }
        path = custom_path(GROUP, VERSION, ENDPOINTS, parsed.namespace, parsed.name) + "/status"
        try:
            self._client.merge_patch(path, {"status": status})
        except ApiError as exc:
            if exc.status != 404:  # 404: deleted meanwhile
                log.warning("status of %s/%s: %s", parsed.namespace, parsed.name, exc)
                with self._lock:
                    self._reported.pop((parsed.namespace, parsed.name), None)


def run(settings: Any, loop: Any, stop: threading.Event) -> None:
    """API mode of ``picket agent`` (called by ``main``): feed ``loop`` from the API server.

    ``settings.kubeconfig`` empty means in-cluster credentials (the DaemonSet's ServiceAccount).
    """
    from pathlib import Path

    if not settings.node:
        log.error("API mode needs the node name (--node or NODE_NAME); not watching anything")
        return
    client = KubeClient(Path(settings.kubeconfig) if settings.kubeconfig else None,
                        user_agent=f"picket-agent/{settings.node}")
    feed = ApiFeed(client, settings.node, loop.submit)
    loop.on_applied = feed.applied
    log.info("watching the CompiledNode and CompiledEndpoints labelled %s=%s, CompiledRuleSets and "
             "CompiledPeerSets at %s", NODE_LABEL, settings.node, client.credentials.server)
    feed.run(stop)
