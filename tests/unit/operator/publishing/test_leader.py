"""Leader election decisions, on the local clock (client-go's rule), without an API server."""

from __future__ import annotations

from typing import Any, cast

import pytest

from picket.apiclient import ApiError
from picket_operator.publishing.leader import Elector, LeaseSettings, Observed, Step, decide, observe


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


class ScriptedClient:
    """Answers the elector's requests from a script, recording what was asked (no API server: the
    elector's request pattern is what is under test here, not the API)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []
        self.version = 0
        self.holder: str | None = None

    def request(self, method: str, path: str, body: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        self.calls.append((method, timeout))
        if method in ("POST", "PUT"):
            self.version += 1
            self.holder = body["spec"]["holderIdentity"]
            return {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.version)}}
        if self.holder is None:
            raise ApiError(404, "NotFound", "no lease")
        return {"metadata": {"resourceVersion": str(self.version)},
                "spec": {"holderIdentity": self.holder, "renewTime": f"t{self.version}", "leaseDurationSeconds": 4}}


def test_the_holder_renews_with_one_write_and_no_read() -> None:
    # Under load every round trip can take a second: a GET before each renewing PUT doubled the
    # time a renewal took and made a loaded leader step down (churn benchmark, 4 stepdowns/min).
    client = ScriptedClient()
    elector = Elector(cast(Any, client), LeaseSettings("ns", "lease", "me"))
    elector._round()  # no lease yet: read, then create
    assert elector.is_leader()
    client.calls.clear()
    elector._round()
    elector._round()
    assert [method for method, _ in client.calls] == ["PUT", "PUT"]


def test_a_renewal_may_take_all_the_time_left_before_stepping_down(monkeypatch: pytest.MonkeyPatch) -> None:
    # The holder steps down when it has not renewed for duration - renew (3 s here); a renewal
    # must not be cut off earlier than that by its own request timeout.
    clock = [100.0]
    monkeypatch.setattr("picket_operator.publishing.leader.time.monotonic", lambda: clock[0])
    client = ScriptedClient()
    elector = Elector(cast(Any, client), LeaseSettings("ns", "lease", "me", duration=4, renew=1.0))
    elector._round()  # renewed at 100.0
    client.calls.clear()
    clock[0] = 100.5
    elector._round()
    assert client.calls == [("PUT", pytest.approx(2.5))]  # 100.0 + 3 - 100.5


def test_a_conflicting_renewal_reads_the_lease_again() -> None:
    client = ScriptedClient()
    elector = Elector(cast(Any, client), LeaseSettings("ns", "lease", "me"))
    elector._round()
    client.version += 1  # someone else wrote the lease: our resourceVersion is stale
    real = client.request

    def conflict(method: str, path: str, body: Any = None, timeout: float = 10.0) -> dict[str, Any]:
        if method == "PUT" and body["metadata"]["resourceVersion"] != str(client.version):
            client.calls.append((method, timeout))
            raise ApiError(409, "Conflict", "stale")
        return real(method, path, body, timeout)

    client.request = conflict  # type: ignore[method-assign]
    client.calls.clear()
    elector._round()  # the PUT conflicts: nothing more this round
    elector._round()  # reads, then renews on the new version
    assert [m for m, _ in client.calls] == ["PUT", "GET", "PUT"]
    assert elector.is_leader()
