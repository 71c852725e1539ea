"""Kubernetes Events for invalid input: a Warning on the offending object, posted by the leader.

``EventPoster.sync`` is called after every publisher sync. It compares the feed's current
problems with the ones already posted (``new_problems``, pure) and posts one core/v1 Event per
new problem on the object it is about (``involvedObject`` with its uid, so ``kubectl describe``
shows it), reason ``InvalidPolicy`` (``InvalidObject`` for non-policy kinds), message naming the
field. The log line is written by the feed when the problem first appears. A failed post is
logged and retried on the next sync; it never stops anything else. On becoming leader the
posted set starts empty, so a new leader re-announces current problems once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from picket.apiclient import ApiError, KubeClient
from picket.model import Problem
from picket_operator.publishing.intake import CompilerFeed, ObjectRef

log = logging.getLogger("picket.operator.events")

COMPONENT = "picket-operator"
Posted = tuple[ObjectRef, Problem]


def new_problems(current: Iterable[Posted], posted: set[Posted]) -> list[Posted]:
    return [item for item in current if item not in posted]


def event_body(ref: ObjectRef, problem: Problem, now: datetime, host: str) -> dict[str, Any]:
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    reason = "InvalidPolicy" if "Policy" in ref.kind else "InvalidObject"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{ref.name}.", "namespace": ref.namespace or "default"},
        "involvedObject": {
            "apiVersion": ref.api_version,
            "kind": ref.kind,
            "name": ref.name,
            "namespace": ref.namespace or None,
            "uid": ref.uid,
        },
        "type": "Warning",
        "reason": reason,
        "message": f"{problem.field}: {problem.message}"[:1024],
        "source": {"component": COMPONENT, "host": host},
        "reportingComponent": COMPONENT,
        "reportingInstance": host,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class EventPoster:
    def __init__(self, client: KubeClient, feed: CompilerFeed, identity: str) -> None:
        self._client, self._feed, self._identity = client, feed, identity
        self._posted: set[Posted] = set()
        self.posted_total = 0

    def reset(self) -> None:
        self._posted = set()

    def sync(self) -> None:
        current = self._feed.problems()
        self._posted &= set(current)  # forget fixed problems, so a reappearance is posted again
        for ref, problem in new_problems(current, self._posted):
            body = event_body(ref, problem, datetime.now(UTC), self._identity)
            ns = body["metadata"]["namespace"]
            try:
                self._client.create(f"/api/v1/namespaces/{ns}/events", body)
            except ApiError as exc:
                log.warning("could not post an Event on %s %s/%s: %s", ref.kind, ref.namespace, ref.name, exc)
                continue
            self._posted.add((ref, problem))
            self.posted_total += 1
