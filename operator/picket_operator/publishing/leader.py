"""Leader election on a coordination.k8s.io/v1 Lease: two replicas, one writes, fast failover.

Every replica watches and compiles (a hot standby); only the lease holder publishes. Why a Lease
and not kopf's peering: kopf peering pauses the standby's watches (it starts cold) and its
default lifetime is a minute; a Lease with a 4 s duration renewed every second hands over in
about 4 s after a crash (about 1 s after a clean shutdown, which releases the lease), to a
replica whose compiled state is already current.

How it decides (``decide`` is pure, ``Elector`` does the I/O), following client-go's
leaderelection: expiry is judged on the *local* monotonic clock from the moment this replica
last saw the lease record change, never by comparing the holder's timestamps with ours (clocks
of two machines differ). The holder steps down by itself when it could not renew for the lease
duration minus one renew period, before anyone else may take over. Writes use the record's
resourceVersion, so two candidates cannot both win.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from picket.apiclient import ApiError, KubeClient

log = logging.getLogger("picket.operator.leader")


class Step(StrEnum):
    CREATE = "create"  # no lease yet
    RENEW = "renew"  # we hold it
    TAKE_OVER = "take-over"  # free or expired
    FOLLOW = "follow"  # someone else holds a live lease


@dataclass(frozen=True)
class Observed:
    """The lease as this replica last saw it, and when (local monotonic seconds) it last changed."""

    holder: str
    renew_time: str
    duration: float
    changed_at: float


def decide(observed: Observed | None, me: str, now: float) -> Step:
    if observed is None:
        return Step.CREATE
    if observed.holder == me:
        return Step.RENEW
    if not observed.holder or now >= observed.changed_at + observed.duration:
        return Step.TAKE_OVER
    return Step.FOLLOW


def observe(previous: Observed | None, lease: dict[str, Any], now: float) -> Observed:
    spec = lease.get("spec") or {}
    holder = str(spec.get("holderIdentity") or "")
    renew = str(spec.get("renewTime") or "")
    duration = float(spec.get("leaseDurationSeconds") or 0)
    if previous is not None and (previous.holder, previous.renew_time) == (holder, renew):
        return previous
    return Observed(holder, renew, duration, now)


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str
    duration: int = 4
    renew: float = 1.0


class Elector:
    """Keeps trying to hold the lease; ``is_leader()`` is safe to call from any thread."""

    def __init__(
        self, client: KubeClient, settings: LeaseSettings, on_change: Callable[[bool], None] | None = None
    ) -> None:
        self._client, self._s = client, settings
        self._on_change = on_change
        self._leader = threading.Event()
        self._observed: Observed | None = None
        self._lease: dict[str, Any] | None = None
        self._last_renew = 0.0
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{settings.namespace}/leases"
        # A request must not outlive the lease: time out well before the others may take over.
        self._timeout = max(0.5, (settings.duration - settings.renew) / 2)

    def is_leader(self) -> bool:
        return self._leader.is_set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._round()
            except ApiError as exc:
                log.warning("lease %s/%s: %s", self._s.namespace, self._s.name, exc)
            self._check_expiry()
            stop.wait(self._s.renew)
        self.release()

    def _round(self) -> None:
        if self.is_leader() and self._lease is not None:
            # The holder renews on the record it wrote last, without reading it first (client-go's
            # fast path): one round trip, not two. A conflict means someone else wrote the lease:
            # ``_write`` forgets the record and the next round reads it.
            self._write(Step.RENEW)
            return
        now = time.monotonic()
        try:
            self._lease = self._client.request("GET", f"{self._path}/{self._s.name}", timeout=self._timeout)
            self._observed = observe(self._observed, self._lease, now)
        except ApiError as exc:
            if exc.status != 404:
                raise
            self._lease, self._observed = None, None
        step = decide(self._observed, self._s.identity, now)
        if step is Step.FOLLOW:
            self._set_leader(False)
            return
        self._write(step)

    def _write(self, step: Step) -> None:
        stamp = _micro_time()
        spec: dict[str, Any] = {
            "holderIdentity": self._s.identity,
            "leaseDurationSeconds": self._s.duration,
            "renewTime": stamp,
        }
        old_spec = (self._lease or {}).get("spec") or {}
        if step is Step.RENEW:
            spec["acquireTime"] = old_spec.get("acquireTime") or stamp
            spec["leaseTransitions"] = old_spec.get("leaseTransitions", 0)
        else:
            spec["acquireTime"] = stamp
            spec["leaseTransitions"] = int(old_spec.get("leaseTransitions", -1)) + 1
        meta: dict[str, Any] = {"name": self._s.name, "namespace": self._s.namespace}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}
        timeout = self._request_timeout()
        try:
            if step is Step.CREATE:
                self._lease = self._client.request("POST", self._path, body, timeout=timeout)
            else:
                meta["resourceVersion"] = (self._lease or {}).get("metadata", {}).get("resourceVersion")
                self._lease = self._client.request("PUT", f"{self._path}/{self._s.name}", body, timeout=timeout)
        except ApiError as exc:
            if exc.status in (409, 404):  # someone else wrote first: read it again next round
                self._lease = None
                return
            raise
        self._last_renew = time.monotonic()
        self._observed = observe(self._observed, self._lease, self._last_renew)
        if step is not Step.RENEW:
            log.info("lease %s/%s acquired by %s", self._s.namespace, self._s.name, self._s.identity)
        self._set_leader(True)

    def _request_timeout(self) -> float:
        """The holder's renewal may take all the time left before it would step down (a loaded API
        server answers slowly, not wrongly); a candidate's requests time out well within a lease."""
        if not self.is_leader():
            return self._timeout
        left = self._last_renew + self._s.duration - self._s.renew - time.monotonic()
        return max(0.5, left)

    def _check_expiry(self) -> None:
        # Step down before the lease can expire for the others (duration minus one renew period).
        if self.is_leader() and time.monotonic() - self._last_renew > self._s.duration - self._s.renew:
            log.warning("lease %s/%s not renewed in time: stepping down", self._s.namespace, self._s.name)
            self._set_leader(False)

    def _set_leader(self, leader: bool) -> None:
        if leader == self.is_leader():
            return
        if leader:
            self._leader.set()
        else:
            self._leader.clear()
        log.info("%s is %s", self._s.identity, "the leader" if leader else "a follower")
        if self._on_change is not None:
            self._on_change(leader)

    def release(self) -> None:
        """On a clean shutdown: hand the lease over at once (holder cleared, 1 s duration)."""
        if not self.is_leader() or self._lease is None:
            return
        self._set_leader(False)
        body = dict(self._lease)
        body["spec"] = {**(self._lease.get("spec") or {}), "holderIdentity": None, "leaseDurationSeconds": 1}
        try:
            self._client.replace(f"{self._path}/{self._s.name}", body)
            log.info("lease %s/%s released", self._s.namespace, self._s.name)
        except ApiError as exc:
            log.warning("lease release failed: %s", exc)
