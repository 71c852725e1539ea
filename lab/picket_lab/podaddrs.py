"""Pod IP allocation from one node's pod CIDR (host-local IPAM, in memory).

``take(uid, wanted)`` returns the pod's IP: the one it already has if ``wanted`` is free and in
range (a restarted runtime keeps addresses), else the lowest free one; ``release`` frees it.
Thread-safe; the node runtime's workers share one allocator.
"""

from __future__ import annotations

import threading

from picket_lab.topology import pod_addresses


class AddressesExhausted(RuntimeError):
    pass


class Allocator:
    def __init__(self, pod_cidr: str) -> None:
        self.cidr = pod_cidr
        self._all = pod_addresses(pod_cidr)
        self._order = {ip: i for i, ip in enumerate(self._all)}
        self._by_uid: dict[str, str] = {}
        self._used: set[str] = set()
        self._lock = threading.Lock()
        self._next = 0

    def take(self, uid: str, wanted: str | None = None) -> str:
        with self._lock:
            if uid in self._by_uid:
                return self._by_uid[uid]
            reusable = wanted is not None and wanted in self._order and wanted not in self._used
            chosen = wanted if reusable and wanted is not None else self._scan()
            self._used.add(chosen)
            self._by_uid[uid] = chosen
            return chosen

    def _scan(self) -> str:
        """Round-robin from the last allocation, so a just-freed IP is not reused at once."""
        for step in range(len(self._all)):
            candidate = self._all[(self._next + step) % len(self._all)]
            if candidate not in self._used:
                self._next = (self._order[candidate] + 1) % len(self._all)
                return candidate
        raise AddressesExhausted(f"no free pod IP left in {self.cidr}")

    def release(self, uid: str) -> None:
        with self._lock:
            ip = self._by_uid.pop(uid, None)
            if ip is not None:
                self._used.discard(ip)

    def in_use(self) -> dict[str, str]:
        with self._lock:
            return dict(self._by_uid)
