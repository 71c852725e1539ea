"""The one place that writes compiled objects: coalesced, diff-based, bounded rate, retried.

Handlers only mark nodes and peer sets dirty (``mark``, via the feed). The ``run`` loop wakes on
a mark, waits a short coalescing window so a burst of events becomes one sync, never syncs more
often than ``min_interval``, and then, if this replica is the leader and the initial state is
compiled, plans (``ledger.plan``: only objects whose content changed) and performs the writes
with a small thread pool, in the ledger's safe order: peer sets and new CompiledRuleSets, then
CompiledNodes (server-side apply), then deletions. So a policy over a 1,000-pod namespace is one
rule-set write plus one write per node that hosts those pods, whatever the number of pods.

A failed write leaves its key dirty and is retried with its own exponential backoff (a node whose
rule set could not be written is not written either: it would name something absent). A full
resync (list what is published, recompute the ledger, diff every node) runs on becoming leader
and every ``resync_seconds``. Rule sets no node names are deleted after ``gc_grace`` seconds.
One summary log line per sync.

Migration from the previous form (one CompiledEndpoint per pod): the full sync also lists the
CompiledEndpoints. While some remain, each sync (at most every ``legacy_interval``) lists the
CompiledNodes and deletes the CompiledEndpoints of every node whose agent has reported a
CompiledNode applied (``status.appliedVersion``): until then that node's agent may still be
enforcing them. See README.md, "The operator, the agents and the compiled objects".

No status writes: the agent reports ``status.appliedVersion`` per node, and ``kubectl get pcn``
shows it beside ``spec.version``.
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
EP_PLURAL, PS_PLURAL = publishing.ENDPOINT_PLURAL, publishing.PEER_SET_PLURAL
RS_PLURAL, NODE_PLURAL = publishing.RULE_SET_PLURAL, publishing.NODE_PLURAL
CHUNK = 16  # nodes planned and written per step of a sync
Key = tuple[str, str]  # ("pcn", node), ("pps", peer set), ("prs", rule set), ("pcep", endpoint key)


@dataclass(frozen=True)
class PublisherSettings:
    coalesce: float = 0.01  # wait this long after the first mark for more events
    min_interval: float = 0.05  # at most one sync per this many seconds
    resync_seconds: float = 300.0
    workers: int = 8
    max_backoff: float = 10.0
    gc_grace: float = 30.0  # seconds a rule set no node names stays published
    legacy_interval: float = 1.0  # seconds between looks at the agents' switch to the new form


class Publisher:
    def __init__(
        self,
        client: KubeClient,
        feed: CompilerFeed,
        settings: PublisherSettings,
        is_leader: Callable[[], bool],
        after_sync: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client, self._feed, self._s = client, feed, settings
        self._is_leader = is_leader
        self._after_sync = after_sync or (lambda: None)
        self._clock = clock
        self._lock = threading.Lock()
        self._dirty_nodes: set[str] = set()
        self._dirty_pss: set[str] = set()
        self._wake = threading.Event()
        self._need_full = True
        # Failed writes retry per key with their own backoff, so one object the API refuses never
        # slows down the others: (kind, key) -> (due, delay).
        self._retry: dict[Key, tuple[float, float]] = {}
        self._legacy_checked = -1e9
        self.ledger = ledgers.Ledger()
        self.syncs = 0
        self.writes = 0
        self._pool = ThreadPoolExecutor(max(1, settings.workers), thread_name_prefix="publish")

    # Called from any thread ----------------------------------------------------------------------

    def mark(self, nodes: Iterable[str], peer_set_names: Iterable[str]) -> None:
        with self._lock:
            self._dirty_nodes.update(nodes)
            self._dirty_pss.update(peer_set_names)
        self._wake.set()

    def request_full_sync(self) -> None:
        with self._lock:
            self._need_full = True
        self._wake.set()

    # The loop -------------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff, last_sync, last_full = 0.0, 0.0, self._clock()
        while not stop.is_set():
            self._wake.wait(timeout=self._next_retry_in())
            if stop.is_set():
                break
            self._release_due_retries()
            if self._clock() - last_full > self._s.resync_seconds:
                self.request_full_sync()
            if self._housekeeping_due():
                self._wake.set()
            if not self._wake.is_set():
                continue
            if not self._is_leader() or not self._feed.ready():
                stop.wait(0.05)  # keep the marks; becoming leader also requests a full sync
                continue
            time.sleep(max(self._s.coalesce, last_sync + self._s.min_interval - self._clock()))
            self._wake.clear()
            try:
                if self.sync_once():
                    last_full = self._clock()
                backoff = 0.0
            except ApiError as exc:  # the sync as a whole failed (listing, API unreachable)
                backoff = min(self._s.max_backoff, max(0.1, backoff * 2))
                log.warning("sync failed (%s); retrying in %.1fs", exc, backoff)
                self._wake.set()
                stop.wait(backoff)
            last_sync = self._clock()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _housekeeping_due(self) -> bool:
        now = self._clock()
        if self.ledger.legacy and now - self._legacy_checked >= self._s.legacy_interval:
            return True
        return bool(ledgers.collectable(self.ledger, now, self._s.gc_grace))

    def _next_retry_in(self) -> float:
        with self._lock:
            due = min((d for d, _ in self._retry.values()), default=None)
        return 1.0 if due is None else min(1.0, max(0.0, due - self._clock()))

    def _release_due_retries(self) -> None:
        now = self._clock()
        with self._lock:
            due = [k for k, (d, _) in self._retry.items() if d <= now]
        if due:
            self.mark((k for kind, k in due if kind == "pcn"), (k for kind, k in due if kind == "pps"))

    def _schedule_retries(self, failed: set[Key]) -> None:
        now = self._clock()
        with self._lock:
            for key in failed:
                delay = min(self._s.max_backoff, 2 * self._retry.get(key, (0.0, 0.1))[1])
                self._retry[key] = (now + delay, delay)

    def sync_once(self) -> bool:
        """One sync; True when it was a full one. Failed writes are retried per key (``_retry``);
        ApiError means the sync as a whole could not run (its keys stay dirty)."""
        started = self._clock()
        with self._lock:
            full, self._need_full = self._need_full, False
            nodes, self._dirty_nodes = self._dirty_nodes, set()
            pss, self._dirty_pss = self._dirty_pss, set()
        try:
            if full:
                self.ledger = self._recover()
                all_nodes, all_pss = self._feed.all_keys()
                nodes |= all_nodes | set(self.ledger.nodes)
                pss |= all_pss | set(self.ledger.peer_sets)
            switched = self._switched_nodes()
        except ApiError:
            self.mark(nodes, pss)
            with self._lock:
                self._need_full = self._need_full or full
            raise
        failed: set[Key] = set()
        counts = self._perform(sorted(nodes), pss, failed)
        counts["pcep deleted"] = self._delete_legacy(switched, failed)
        counts["prs deleted"] = self._collect_rule_sets(failed)
        self.writes += sum(counts.values()) - len(failed)
        self.syncs += 1
        if any(counts.values()) or full or failed:
            log.info(
                "sync%s: %d dirty nodes, %d dirty peer sets -> %d pps written, %d prs written, %d pcn written, "
                "%d pcn deleted, %d pps deleted, %d prs deleted, %d pcep deleted, %d failed in %.0f ms",
                " (full)" if full else "", len(nodes), len(pss), counts["pps written"], counts["prs written"],
                counts["pcn written"], counts["pcn deleted"], counts["pps deleted"], counts["prs deleted"],
                counts["pcep deleted"], len(failed), (self._clock() - started) * 1000,
            )
        with self._lock:
            for key in [("pcn", n) for n in nodes] + [("pps", p) for p in pss]:
                if key not in failed:
                    self._retry.pop(key, None)
        self._schedule_retries({k for k in failed if k[0] in ("pcn", "pps")})
        self._after_sync()
        return full

    def _list(self, plural: str) -> list[dict[str, Any]]:
        items = self._client.get(custom_path(publishing.GROUP, publishing.VERSION, plural)).get("items", [])
        return list(items)

    def _recover(self) -> ledgers.Ledger:
        ledger, unreadable = ledgers.recover(self._list(NODE_PLURAL), self._list(RS_PLURAL), self._list(PS_PLURAL),
                                             self._list(EP_PLURAL), self._clock())
        for w in unreadable:  # ours, but from a schema nobody reads any more
            log.warning("deleting unreadable CompiledEndpoint %s/%s", w.namespace, w.name)
            self._delete(EP_PLURAL, w)
        if ledger.legacy:
            log.info("%d CompiledEndpoints of the previous form published: deleting each node's once its agent "
                     "reports the new form applied", len(ledger.legacy))
        return ledger

    def _switched_nodes(self) -> set[str]:
        """Nodes whose agent reads the new form (only looked up while old objects remain)."""
        now = self._clock()
        if not self.ledger.legacy or now - self._legacy_checked < self._s.legacy_interval:
            return set()
        self._legacy_checked = now
        return ledgers.switched_nodes(self._list(NODE_PLURAL))

    # Writes -----------------------------------------------------------------------------------------

    def _perform(self, nodes: list[str], pss: set[str], failed: set[Key]) -> dict[str, int]:
        """Peer sets, then per chunk of ``CHUNK`` nodes (planned chunk by chunk, so the first
        nodes are on the wire while the rest are still being built) the new rule sets and then
        the nodes, then node deletions, then peer-set deletions."""
        counts = dict.fromkeys(("pps written", "prs written", "pcn written", "pcn deleted", "pps deleted"), 0)
        no_node: ledgers.DesiredNode = lambda _n: (None, {})  # noqa: E731
        sets_plan = ledgers.plan(self.ledger, (), pss, no_node, self._feed.peer_set_object)
        self._run_phase([(("pps", ledgers.identity(o).name), partial(self._apply, PS_PLURAL, o))
                         for o in sets_plan.peer_set_writes], failed)
        counts["pps written"] = len(sets_plan.peer_set_writes)
        for start in range(0, len(nodes), CHUNK):
            chunk = ledgers.plan(self.ledger, nodes[start:start + CHUNK], (), self._feed.node_object, lambda _p: None)
            self._run_phase([(("prs", ledgers.identity(o).name), partial(self._apply, RS_PLURAL, o))
                             for o in chunk.rule_set_writes], failed)
            bad_sets = {k for kind, k in failed if kind == "prs"}
            for node, obj in chunk.node_writes:
                if publishing.node_refs(obj) & bad_sets:  # would name an absent rule set: retry later
                    failed.add(("pcn", node))
            self._run_phase([(("pcn", n), partial(self._apply, NODE_PLURAL, o))
                             for n, o in chunk.node_writes if ("pcn", n) not in failed]
                            + [(("pcn", n), partial(self._delete, NODE_PLURAL, w)) for n, w in chunk.node_deletes],
                            failed)
            ledgers.record(self.ledger, chunk, failed, self._clock())
            counts["prs written"] += len(chunk.rule_set_writes)
            counts["pcn written"] += len(chunk.node_writes)
            counts["pcn deleted"] += len(chunk.node_deletes)
        self._run_phase([(("pps", k), partial(self._delete, PS_PLURAL, w)) for k, w in sets_plan.peer_set_deletes],
                        failed)
        counts["pps deleted"] = len(sets_plan.peer_set_deletes)
        ledgers.record(self.ledger, sets_plan, failed, self._clock())
        return counts

    def _collect_rule_sets(self, failed: set[Key]) -> int:
        gone = ledgers.collectable(self.ledger, self._clock(), self._s.gc_grace)
        self._run_phase([(("prs", n), partial(self._delete, RS_PLURAL, w)) for n, w in gone], failed)
        for name, _ in gone:
            if ("prs", name) not in failed:
                self.ledger.rule_sets.pop(name, None)
                self.ledger.unreferenced.pop(name, None)
        return len(gone)

    def _delete_legacy(self, switched: set[str], failed: set[Key]) -> int:
        if not self.ledger.legacy:
            return 0
        gone = ledgers.legacy_deletes(self.ledger, switched, self._feed.has_endpoint)
        self._run_phase([(("pcep", k), partial(self._delete, EP_PLURAL, w)) for k, w in gone], failed)
        for key, _ in gone:
            if ("pcep", key) not in failed:
                self.ledger.legacy.pop(key, None)
        if gone and not self.ledger.legacy:
            log.info("every CompiledEndpoint of the previous form is deleted: the switch is complete")
        return len(gone)

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

    def _delete(self, plural: str, w: ledgers.Written) -> None:
        path = custom_path(publishing.GROUP, publishing.VERSION, plural, w.namespace or None, w.name)
        try:
            self._client.delete(path)
        except ApiError as exc:
            if exc.status != 404:
                raise
