"""``SyncLoop``: the one thread that owns the dataplane.

Feeds (``--rules`` file watcher, ``apifeed``) call ``submit(compiled)`` from any thread; the
latest submission wins and bursts coalesce into one sync. ``run(stop)`` syncs at most once per
``min_sync_interval``, re-reads the kernel every ``resync_seconds`` anyway (drift repair), and
after a failure retries with exponential backoff up to ``max_backoff``. Each sync logs one
summary line (counts, what was written, elapsed) plus one line per drift repair. A failed
sync leaves the kernel as it was (the last good state stays enforced). ``on_applied`` is
called with ``{endpoint key: version}`` after every successful sync (status reporting).

Bad input for one endpoint (see ``feed``) or an endpoint the renderer cannot express is
replaced by its last good rules, or skipped if it never had any.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from picket.model import Compiled
from picket_agent.kernel.applier import ApplyReport
from picket_agent.kernel.families import NodeDataplane
from picket_agent.rendering.desired import Desired
from picket_agent.rendering.renderer import RenderCache, render
from picket_agent.rulesfile import Feed, merge_last_good
from picket_agent.settings import AgentSettings

log = logging.getLogger("picket.agent")

AppliedCallback = Callable[[dict[str, str]], None]


@dataclass(frozen=True)
class SyncResult:
    ok: bool
    skipped: bool = False  # nothing changed and no resync due: the kernel was not even read
    report: ApplyReport | None = None
    error: str = ""
    elapsed: float = 0.0


class SyncLoop:
    def __init__(
        self,
        settings: AgentSettings,
        dataplane: NodeDataplane,
        on_applied: AppliedCallback | None = None,
        observer: object | None = None,
    ) -> None:
        self.settings = settings
        self.dataplane = dataplane
        self.on_applied = on_applied
        self.observer = observer  # metrics.Metrics, or None
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._pending: Feed | None = None
        self._current: Feed | None = None
        self.last_desired: Desired | None = None
        self.last_good: Compiled | None = None
        self._merged: Compiled | None = None
        self._cache = RenderCache()
        self._rendered: tuple[Feed, Desired] | None = None  # the last submission rendered, when reusable

    def submit(self, compiled: Compiled | Feed) -> None:
        """Thread-safe; the latest submission wins."""
        feed = compiled if isinstance(compiled, Feed) else Feed(compiled)
        if self.settings.node:
            feed = Feed(feed.compiled.for_node(self.settings.node), feed.broken_endpoints, feed.broken_sets,
                        feed.problems)
        with self._lock:
            self._pending = feed
        self._wake.set()

    def wake(self) -> None:
        """Make ``run`` look at its stop event (and any submission) now."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        s = self.settings
        next_resync = time.monotonic() + s.resync_seconds
        backoff = 0.0
        last_end = 0.0
        while not stop.is_set():
            now = time.monotonic()
            due = next_resync if backoff == 0 else min(next_resync, last_end + backoff)
            self._wake.wait(max(0.0, due - now))
            if stop.is_set():
                break
            self._wake.clear()
            wait = s.min_sync_interval - (time.monotonic() - last_end)
            if wait > 0 and stop.wait(wait):
                break
            force = time.monotonic() >= next_resync or backoff > 0
            result = self.sync(force_read=force)
            last_end = time.monotonic()
            if result.ok:
                backoff = 0.0
                if force or not result.skipped:
                    next_resync = last_end + s.resync_seconds
            else:
                backoff = min(s.max_backoff, max(0.5, backoff * 2))
                log.warning("sync failed (%s); retrying in %.1fs, the last good state stays enforced",
                            result.error, backoff)

    def sync(self, force_read: bool = True) -> SyncResult:
        """One sync now (``--once`` and tests call this directly)."""
        start = time.perf_counter()
        with self._lock:
            if self._pending is not None:
                self._current, self._pending = self._pending, None
        feed = self._current
        if feed is None:
            return SyncResult(True, skipped=True)
        for problem in feed.problems:
            log.error("bad rule set input: %s", problem)
        desired = self._render(feed)
        if not force_read and desired == self.last_desired:
            return SyncResult(True, skipped=True, elapsed=time.perf_counter() - start)
        try:
            report = self.dataplane.apply(desired, self.last_desired, verify=force_read)
        except Exception as exc:  # the kernel said no: keep the last good state, retry later
            log.exception("sync failed")
            self._observe(None, time.perf_counter() - start, desired)
            return SyncResult(False, error=f"{type(exc).__name__}: {exc}", elapsed=time.perf_counter() - start)
        self.last_desired = desired
        self.last_good = self._merged
        elapsed = time.perf_counter() - start
        self._log(desired, report, elapsed)
        self._observe(report, elapsed, desired)
        if self.on_applied is not None:
            self.on_applied(dict(desired.versions))
        return SyncResult(True, report=report, elapsed=elapsed)

    def _render(self, feed: Feed) -> Desired:
        last = self._rendered
        if last is not None and last[0] is feed:
            return last[1]  # the same submission, independent of last_good: the same desired state
        self._merged = merge_last_good(feed, self.last_good)
        desired = render(self._merged, self.settings.render, self._cache)
        if desired.failed:
            for problem in desired.problems:
                log.error("%s", problem)
            self._merged = merge_last_good(feed, self.last_good, desired.failed)
            desired = render(self._merged, self.settings.render, self._cache)
        independent = not (feed.broken_endpoints or feed.broken_sets or desired.failed)
        self._rendered = (feed, desired) if independent else None
        return desired

    def _log(self, desired: Desired, report: ApplyReport, elapsed: float) -> None:
        for repair in report.repairs:
            log.warning("repaired drift: %s", repair)
        for problem in (*desired.problems, *report.problems):
            log.error("%s", problem)
        log.info(
            "sync: %d endpoints (%d skipped), %d chains, %d rules, %d ipsets; %s; %.1f ms",
            len(desired.versions), len(desired.failed), len(desired.chains), desired.rule_count(),
            len(desired.sets), report.summary() if report.wrote else "nothing to write", elapsed * 1000,
        )

    def _observe(self, report: ApplyReport | None, elapsed: float, desired: Desired) -> None:
        record = getattr(self.observer, "record_sync", None)
        if record is not None:
            record(report, elapsed, desired)
