"""A list-then-watch loop for one resource collection that survives API server outages.

``Reflector.run`` lists the collection (optionally with a label selector), hands the full set to
``on_sync``, then watches from the list's resourceVersion and hands each change to
``on_event``. Bookmarks move the resourceVersion forward; a 410 Gone (history compacted) or any
broken stream leads to a fresh list after a backoff (0.2 s doubling to 5 s). The callbacks are
never called with an empty list because of an error: an unreachable API server only delays
updates, so a consumer that keeps its last state keeps enforcing it.

Used by the agent's API feed and by the convergence benchmark's floor watcher.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from picket.apiclient import ApiError, KubeClient

log = logging.getLogger("picket.watch")

Obj = dict[str, Any]


class Reflector:
    def __init__(
        self,
        client: KubeClient,
        path: str,
        on_sync: Callable[[list[Obj]], None],
        on_event: Callable[[str, Obj], None],
        label_selector: str | None = None,
        name: str = "",
    ) -> None:
        self._client, self._path = client, path
        self._on_sync, self._on_event = on_sync, on_event
        self._selector = label_selector
        self.name = name or path
        self.synced = threading.Event()
        self.relists = 0

    def run(self, stop: threading.Event) -> None:
        backoff = 0.0
        while not stop.is_set():
            try:
                rv = self._list()
                backoff = 0.0
                self._watch(rv, stop)
            except ApiError as exc:
                if exc.status != 410:
                    backoff = min(5.0, max(0.2, backoff * 2))
                    log.warning("%s: %s; retrying in %.1fs (keeping the last state)", self.name, exc, backoff)
                    stop.wait(backoff)
            except Exception:  # a broken stream or a bad payload must not end the loop
                backoff = min(5.0, max(0.2, backoff * 2))
                log.exception("%s: unexpected error; retrying in %.1fs", self.name, backoff)
                stop.wait(backoff)

    def _list(self) -> str:
        listing = self._client.request("GET", self._path, query={"labelSelector": self._selector}, timeout=30)
        self._on_sync(list(listing.get("items") or []))
        self.relists += 1
        self.synced.set()
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    def _watch(self, rv: str, stop: threading.Event) -> None:
        while not stop.is_set():
            for event in self._client.watch(self._path, rv, timeout_seconds=240, labelSelector=self._selector):
                obj = event.get("object") or {}
                rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
                if event.get("type") != "BOOKMARK":
                    self._on_event(str(event.get("type")), obj)
                if stop.is_set():
                    return
