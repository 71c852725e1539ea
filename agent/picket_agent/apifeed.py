"""The agent's API feed: compiled objects for this node in, ``Compiled`` out, applied versions back.

Two reflectors (``picket.watching``) keep local copies of
* the CompiledEndpoints labelled ``picket.dev/node=<node>`` (server-side label selector: an agent
  never receives another node's endpoints), and
* the CompiledPeerSets (cluster-scoped; all of them, then ``Compiled.for_node`` keeps the ones
  this node's rules reference; they are small and shared, and watching them by name would need
  a watch per set).
Every change marks the node's ``Compiled`` dirty; a builder thread rebuilds it from the local
copies (parsing is cached per object version) at most once per few milliseconds of a burst and
submits it to the SyncLoop, which coalesces again (latest wins). Nothing is submitted
until both initial lists have arrived, so the dataplane never sees endpoints whose peer sets are
still unknown. If the API server goes away, the reflectors retry with backoff and the dataplane
keeps the last state it applied: nothing is ever flushed because of the API.

Status: the SyncLoop calls ``applied(version_by_key)`` after each successful apply; a reporter
thread patches ``status`` (appliedVersion = the spec.version that was applied, applied = "True")
of the endpoints whose reported version changed, in parallel and off the dataplane's thread,
once a burst has settled (the spec writes of a big change go first).
The agent never imports the operator: objects are read with ``picket.model`` directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from picket.apiclient import ApiError, KubeClient, custom_path
from picket.model import Compiled, EndpointRules, ModelError, PeerSet
from picket.watching import Reflector

log = logging.getLogger("picket.agent.apifeed")

GROUP, VERSION = "picket.dev", "v1alpha1"
NODE_LABEL = "picket.dev/node"
COALESCE = 0.005  # seconds to gather a burst of watch events into one snapshot
REPORT_QUIET, REPORT_MAX_DELAY = 0.2, 2.0  # status reports: wait for a burst to settle, but not longer

Obj = dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    """One endpoint object as the agent keeps it: where it lives, its version, its rules."""

    namespace: str
    name: str
    version: str
    rules: EndpointRules


def parse_endpoint(obj: Mapping[str, Any]) -> Parsed:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    rules = EndpointRules.from_dict({"endpoint": spec["endpoint"], "ingress": spec.get("ingress"),
                                     "egress": spec.get("egress")})
    return Parsed(str(meta.get("namespace", "")), str(meta["name"]), str(spec.get("version", "")), rules)


def parse_peer_set(obj: Mapping[str, Any]) -> PeerSet:
    return PeerSet.from_dict({**(obj.get("spec") or {}), "name": (obj.get("metadata") or {})["name"]})


class _Store:
    """Parsed objects by (namespace, name), updated from list and watch events.

    Only labels and spec count as content: status-only changes (the agent's own reports, the
    operator's Pending reset) update ``status`` but do not make the node's rules change.
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
        except (KeyError, TypeError, ModelError) as exc:
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
        self._endpoints = _Store(parse_endpoint, "CompiledEndpoint")
        self._peer_sets = _Store(parse_peer_set, "CompiledPeerSet")
        self._applied: dict[str, str] = {}  # endpoint key -> spec.version the dataplane applied
        self._reported: dict[tuple[str, str], tuple[str, str]] = {}  # object -> (version, resourceVersion)
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="status")
        self._listed: set[str] = set()
        self._dirty = threading.Event()
        self._pending: dict[tuple[str, str], tuple[Parsed, str]] = {}  # status reports not yet sent
        self._last_pending = 0.0
        self._report_wake = threading.Event()
        self.submitted = 0
        ep_path = custom_path(GROUP, VERSION, "compiledendpoints")
        ps_path = custom_path(GROUP, VERSION, "compiledpeersets")
        self.reflectors = [
            Reflector(client, ep_path, self._sync_eps, self._event_eps, f"{NODE_LABEL}={node}", "compiledendpoints"),
            Reflector(client, ps_path, self._sync_pss, self._event_pss, None, "compiledpeersets"),
        ]

    def run(self, stop: threading.Event) -> None:
        threads = [threading.Thread(target=r.run, args=(stop,), name=r.name, daemon=True) for r in self.reflectors]
        threads.append(threading.Thread(target=self._build, args=(stop,), name="apifeed-build", daemon=True))
        threads.append(threading.Thread(target=self._reporter, args=(stop,), name="apifeed-status", daemon=True))
        for t in threads:
            t.start()
        stop.wait()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # Reflector callbacks (each reflector calls from its own thread) ---------------------------------

    def _sync_eps(self, objs: list[Obj]) -> None:
        with self._lock:
            self._endpoints.replace(objs)
            self._listed.add("endpoints")
        self._changed()
        self._check_status([_key(o) for o in objs])

    def _event_eps(self, kind: str, obj: Obj) -> None:
        with self._lock:
            changed = self._endpoints.event(kind, obj)
        if changed:
            self._changed()
        if kind != "DELETED":
            self._check_status([_key(obj)])

    def _sync_pss(self, objs: list[Obj]) -> None:
        with self._lock:
            self._peer_sets.replace(objs)
            self._listed.add("peer sets")
        self._changed()

    def _event_pss(self, kind: str, obj: Obj) -> None:
        with self._lock:
            changed = self._peer_sets.event(kind, obj)
        if changed:
            self._changed()

    def _changed(self) -> None:
        with self._lock:
            if len(self._listed) < 2:  # both initial lists first: no endpoint without its peer sets
                return
        self._dirty.set()

    def _build(self, stop: threading.Event) -> None:
        """Coalesce bursts of events (a policy over 1000 pods is 1000 events) into few snapshots."""
        while not stop.is_set():
            if not self._dirty.wait(timeout=1.0):
                continue
            time.sleep(COALESCE)
            self._dirty.clear()
            self._submit(self.snapshot())
            self.submitted += 1

    def snapshot(self) -> Compiled:
        with self._lock:
            eps = {p.rules.endpoint.key: p.rules for _, p in self._endpoints.items.values()}
            sets = {ps.name: ps for _, ps in self._peer_sets.items.values()}
        return Compiled(eps, sets, ()).for_node(self._node)

    # Status -----------------------------------------------------------------------------------------

    def versions(self) -> dict[str, str]:
        """spec.version of every endpoint this agent currently holds, by endpoint key."""
        with self._lock:
            return {p.rules.endpoint.key: p.version for _, p in self._endpoints.items.values()}

    def applied(self, version_by_key: Mapping[str, str]) -> None:
        """Called by the SyncLoop after an apply; never blocks it (patches run in a pool)."""
        with self._lock:
            self._applied.update(version_by_key)
            keys = [k for k, (_, p) in self._endpoints.items.items() if p.rules.endpoint.key in version_by_key]
        self._check_status(keys)

    def _check_status(self, keys: list[tuple[str, str]]) -> None:
        """Report every endpoint whose status does not yet say its current version is applied."""
        todo: list[tuple[Parsed, str]] = []
        with self._lock:
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
        """Status reports wait for a burst to settle (0.2 s without new ones, at most 2 s), so that
        during a policy change over many pods the API server serves the spec writes first."""
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
        path = custom_path(GROUP, VERSION, "compiledendpoints", parsed.namespace, parsed.name) + "/status"
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
    log.info("watching CompiledEndpoints labelled %s=%s and CompiledPeerSets at %s",
             NODE_LABEL, settings.node, client.credentials.server)
    feed.run(stop)
