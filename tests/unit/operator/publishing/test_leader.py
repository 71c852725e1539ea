"""Leader election decisions, on the local clock (client-go's rule), without an API server."""

from __future__ import annotations

from typing import Any

import pytest

from picket_operator.publishing.leader import Observed, Step, decide, observe


def lease(holder: str | None, renew: str = "t0", duration: int = 4) -> dict[str, Any]:
    return {"spec": {"holderIdentity": holder, "renewTime": renew, "leaseDurationSeconds": duration}}


CASES = {
    "no lease: create": (None, "me", 0.0, Step.CREATE),
    "we hold it: renew": (Observed("me", "t0", 4, 0.0), "me", 100.0, Step.RENEW),
    "other holds a live lease": (Observed("other", "t0", 4, 10.0), "me", 13.9, Step.FOLLOW),
    "other's lease expired": (Observed("other", "t0", 4, 10.0), "me", 14.0, Step.TAKE_OVER),
    "released lease": (Observed("", "t0", 1, 10.0), "me", 10.0, Step.TAKE_OVER),
}


@pytest.mark.parametrize("observed, me, now, step", CASES.values(), ids=CASES.keys())
def test_decide(observed: Observed | None, me: str, now: float, step: Step) -> None:
    assert decide(observed, me, now) is step


def test_expiry_counts_from_when_the_record_last_changed_here() -> None:
    first = observe(None, lease("other", "t0"), now=10.0)
    same = observe(first, lease("other", "t0"), now=13.0)  # unchanged record: the clock keeps running
    assert same.changed_at == 10.0
    assert decide(same, "me", 14.5) is Step.TAKE_OVER
    renewed = observe(same, lease("other", "t1"), now=14.0)  # the holder renewed: start over
    assert renewed.changed_at == 14.0
    assert decide(renewed, "me", 14.5) is Step.FOLLOW
