"""The one place that writes compiled objects: coalesced, diff-based, bounded rate, retried.

Handlers only mark keys dirty (``mark``). The ``run`` loop wakes on a mark, waits a short
coalescing window so a burst of events becomes one sync, never syncs more often than
``min_interval``, and then, if this replica is the leader and the initial state is compiled,
plans (``ledger.plan``: only objects whose content changed) and performs the writes with a small
thread pool: server-side apply for CompiledPeerSets and CompiledEndpoints, DELETE for removed
ones. A failed write leaves its key dirty and the next sync comes after an exponential backoff.
A full resync (list what is published, recompute the ledger, diff every key) runs on becoming
leader and every ``resync_seconds``. One summary log line per sync.

Applied status: when a CompiledEndpoint's content changes, the publisher sets its status to
``applied: Pending`` after the sync's writes (last, off the agents' critical path), with the
resourceVersion of its own write as a precondition: if the node's agent has already reported the
new version in between, the server answers 409 and the agent's (newer, truthful) status stays.
See README.md, "The operator, the agents and the compiled objects".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from picket.apiclient import ApiError, KubeClient, custom_path
from picket_operator.publishing import ledger as ledgers
from picket_operator.publishing import objects as publishing
from picket_operator.publishing.intake import CompilerFeed

log = logging.getLogger("picket.operator.publisher")

FIELD_MANAGER = "picket-operator"
EP_PLURAL = "compiledendpoints"
PS_PLURAL = "compiledpeersets"
CHUNK = 64  # endpoints planned and written per step of a sync
Key = tuple[str, str]  # ("pcep", endpoint key) or ("pps", peer set name)


@dataclass(frozen=True)
class PublisherSettings:
    coalesce: float = 0.01  # wait this long after the first mark for more events
    min_interval: float = 0.05  # at most one sync per this many seconds
    resync_seconds: float = 300.0
    workers: int = 8
    max_backoff: float = 10.0


class Publisher:
    def __init__(
        self,
        client: KubeClient,
        feed: CompilerFeed,
        settings: PublisherSettings,
        is_leader: Callable[[], bool],
        after_sync: Callable[[], None] | None = None,
    ) -> None:
        self._client, self._feed, self._s = client, feed, settings
        self._is_leader = is_leader
        self._after_sync = after_sync or (lambda: None)
        self._lock = threading.Lock()
        self._dirty_eps: set[str] = set()
        self._dirty_pss: set[str] = set()
        self._wake = threading.Event()
        self._need_full = True
        # Failed writes retry per key with their own backoff, so one object the API refuses (e.g.
        # in a namespace being deleted) never slows down the others: (kind, key) -> (due, delay).
        self._retry: dict[tuple[str, str], tuple[float, float]] = {}
        self.ledger = ledgers.Ledger()
        self.syncs = 0
        self.writes = 0
        self._pool = ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="publish")

    # Called from any thread ----------------------------------------------------------------------

    def mark(self, endpoint_keys: Iterable[str], peer_set_names: Iterable[str]) -> None:
        with self._lock:
            self._dirty_eps.update(endpoint_keys)
            self._dirty_pss.update(peer_set_names)
        self._wake.set()

    def request_full_sync(self) -> None:
        with self._lock:
            self._need_full = True
        self._wake.set()

    # The loop -------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff, last_sync, last_full = 0.0, 0.0, time.monotonic()
        while not stop.is_set():
            self._wake.wait(timeout=self._next_retry_in())
            if stop.is_set():
                break
            self._release_due_retries()
            if time.monotonic() - last_full > self._s.resync_seconds:
                self.request_full_sync()
            if not self._wake.is_set():
                continue
            if not self._is_leader() or not self._feed.ready():
                stop.wait(0.05)  # keep the marks; becoming leader also requests a full sync
                continue
            time.sleep(max(self._s.coalesce, last_sync + self._s.min_interval - time.monotonic()))
            self._wake.clear()
            try:
                if self.sync_once():
                    last_full = time.monotonic()
                backoff = 0.0
            except ApiError as exc:  # the sync as a whole failed (listing, API unreachable)
                backoff = min(self._s.max_backoff, max(0.1, backoff * 2))
                log.warning("sync failed (%s); retrying in %.1fs", exc, backoff)
                self._wake.set()
                stop.wait(backoff)
            last_sync = time.monotonic()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _next_retry_in(self) -> float:
        with self._lock:
            due = min((d for d, _ in self._retry.values()), default=None)
        return 1.0 if due is None else min(1.0, max(0.0, due - time.monotonic()))

    def _release_due_retries(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [k for k, (d, _) in self._retry.items() if d <= now]
        if due:
            self.mark((k for kind, k in due if kind == "pcep"), (k for kind, k in due if kind == "pps"))

    def _schedule_retries(self, failed: set[tuple[str, str]]) -> None:
        now = time.monotonic()
        with self._lock:
            for key in failed:
                delay = min(self._s.max_backoff, 2 * self._retry.get(key, (0.0, 0.1))[1])
                self._retry[key] = (now + delay, delay)

    def sync_once(self) -> bool:
        """One sync; True when it was a full one. Failed writes are retried per key (``_retry``);
        ApiError means the sync as a whole could not run (its keys stay dirty)."""
        started = time.monotonic()
        with self._lock:
            full, self._need_full = self._need_full, False
            eps, self._dirty_eps = self._dirty_eps, set()
            pss, self._dirty_pss = self._dirty_pss, set()
        try:
            if full:
                self.ledger = self._recover()
                all_eps, all_pss = self._feed.all_keys()
                eps |= all_eps | set(self.ledger.endpoints)
                pss |= all_pss | set(self.ledger.peer_sets)
            sets_plan = ledgers.plan(self.ledger, (), pss, self._feed.endpoint_object, self._feed.peer_set_object)
        except ApiError:
            self.mark(eps, pss)
            with self._lock:
                self._need_full = self._need_full or full
            raise
        failed, counts = self._perform(sets_plan, sorted(eps))
        self.syncs += 1
        if any(counts.values()) or full:
            log.info(
                "sync%s: %d dirty endpoints, %d dirty peer sets -> %d pps written, %d pcep written, "
                "%d pcep deleted, %d pps deleted, %d failed in %.0f ms",
                " (full)" if full else "", len(eps), len(pss), counts["pps written"], counts["pcep written"],
                counts["pcep deleted"], counts["pps deleted"], len(failed), (time.monotonic() - started) * 1000,
            )
        with self._lock:
            for kind, key in [("pcep", k) for k in eps] + [("pps", k) for k in pss]:
                if (kind, key) not in failed:
                    self._retry.pop((kind, key), None)
        self._schedule_retries(failed)
        self._after_sync()
        return full

    def _recover(self) -> ledgers.Ledger:
        eps = self._client.get(custom_path(publishing.GROUP, publishing.VERSION, EP_PLURAL)).get("items", [])
        pss = self._client.get(custom_path(publishing.GROUP, publishing.VERSION, PS_PLURAL)).get("items", [])
        ledger, unreadable = ledgers.recover(eps, pss)
        for w in unreadable:  # ours, but from a schema this operator cannot read: replace them
            log.warning("deleting unreadable CompiledEndpoint %s/%s", w.namespace, w.name)
            self._delete(EP_PLURAL, w)
        return ledger

    # Writes -----------------------------------------------------------------------------------------

    def _perform(self, sets_plan: ledgers.Plan, endpoint_keys: list[str]) -> tuple[set[Key], dict[str, int]]:
        """Writes in the safe order (see ``ledger``): peer sets, then endpoints in chunks of
        ``CHUNK`` keys (planned chunk by chunk, so the first objects are on the wire while the
        rest are still being built), then peer set deletions. The Pending status resets come
        last, off the critical path: the agents act on the spec, the status only reports."""
        failed: set[tuple[str, str]] = set()
        written: dict[str, tuple[dict[str, Any], str]] = {}  # key -> (object, resourceVersion)
        counts = dict.fromkeys(("pps written", "pcep written", "pcep deleted", "pps deleted"), 0)

        def write_endpoint(key: str, obj: dict[str, Any]) -> None:
            reply = self._apply(EP_PLURAL, obj)
            written[key] = (obj, str((reply.get("metadata") or {}).get("resourceVersion", "")))

        self._run_phase([(("pps", ledgers.identity(o).name), partial(self._apply, PS_PLURAL, o))
                         for o in sets_plan.peer_set_writes], failed)
        counts["pps written"] = len(sets_plan.peer_set_writes)
        for start in range(0, len(endpoint_keys), CHUNK):
            chunk = ledgers.plan(self.ledger, endpoint_keys[start:start + CHUNK], (), self._feed.endpoint_object,
                                 self._feed.peer_set_object)
            self._run_phase([(("pcep", k), partial(write_endpoint, k, o)) for k, o in chunk.endpoint_writes]
                            + [(("pcep", k), partial(self._delete, EP_PLURAL, w)) for k, w in chunk.endpoint_deletes],
                            failed)
            ledgers.record(self.ledger, chunk, failed)
            counts["pcep written"] += len(chunk.endpoint_writes)
            counts["pcep deleted"] += len(chunk.endpoint_deletes)
        self._run_phase([(("pps", k), partial(self._delete, PS_PLURAL, w)) for k, w in sets_plan.peer_set_deletes],
                        failed)
        counts["pps deleted"] = len(sets_plan.peer_set_deletes)
        ledgers.record(self.ledger, sets_plan, failed)
        self.writes += sum(counts.values()) - len(failed)
        resets: list[tuple[tuple[str, str], Callable[[], Any]]] = [
            (("status", k), partial(self._reset_status, o, rv)) for k, (o, rv) in sorted(written.items())
        ]
        self._run_phase(resets, set())  # a failed reset leaves a stale status, never a wrong spec
        return failed, counts

    def _run_phase(self, phase: Sequence[tuple[Key, Callable[[], Any]]], failed: set[Key]) -> None:
        if not self._is_leader():  # lost the lease mid-sync: stop writing at once
            failed.update(key for key, _ in phase)
            return
        futures = [(key, self._pool.submit(self._if_leader, job)) for key, job in phase]
        for key, fut in futures:
            try:
                fut.result()
            except ApiError as exc:
                log.warning("write %s %s failed: %s", key[0], key[1], exc)
                failed.add(key)

    def _if_leader(self, job: Callable[[], Any]) -> None:
        if not self._is_leader():
            raise ApiError(0, "NotLeader", "lost the lease; not writing")
        job()

    def _apply(self, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        w = ledgers.identity(obj, "-")
        path = custom_path(publishing.GROUP, publishing.VERSION, plural, w.namespace or None, w.name)
        return self._client.apply(path, obj, FIELD_MANAGER)

    def _reset_status(self, obj: dict[str, Any], resource_version: str) -> None:
        spec = obj.get("spec") or {}
        node = (spec.get("summary") or {}).get("node", "")
        status = {
            "applied": "Pending",
            "message": f"version {spec.get('version', '?')} published; waiting for the agent on {node or '?'}",
        }
        w = ledgers.identity(obj, "-")
        path = custom_path(publishing.GROUP, publishing.VERSION, EP_PLURAL, w.namespace, w.name) + "/status"
        try:
            self._client.merge_patch(path, {"metadata": {"resourceVersion": resource_version}, "status": status})
        except ApiError as exc:
            if exc.status not in (404, 409):  # 409: the agent already reported this version; keep its status
                raise

    def _delete(self, plural: str, w: ledgers.Written) -> None:
        path = custom_path(publishing.GROUP, publishing.VERSION, plural, w.namespace or None, w.name)
        try:
            self._client.delete(path)
        except ApiError as exc:
            if exc.status != 404:
                raise
