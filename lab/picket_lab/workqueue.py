"""A keyed work queue with client-go semantics: a key is never processed by two workers at once.

``add`` marks a key dirty; ``get`` hands it to one worker; a key added again while being
processed is queued once more when that worker calls ``done``. ``add_after`` retries later.
Used by the node runtime so that bursts of pod events coalesce per pod.
"""

from __future__ import annotations

import threading
from collections import deque


class WorkQueue:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[str] = deque()
        self._dirty: set[str] = set()
        self._processing: set[str] = set()

    def add(self, key: str) -> None:
        with self._cond:
            if key in self._dirty:
                return
            self._dirty.add(key)
            if key not in self._processing:
                self._queue.append(key)
                self._cond.notify()

    def add_after(self, key: str, seconds: float) -> None:
        timer = threading.Timer(seconds, self.add, (key,))
        timer.daemon = True
        timer.start()

    def get(self, timeout: float | None = None) -> str | None:
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._queue), timeout):
                return None
            key = self._queue.popleft()
            self._processing.add(key)
            self._dirty.discard(key)
            return key

    def done(self, key: str) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._queue.append(key)
                self._cond.notify()

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)
