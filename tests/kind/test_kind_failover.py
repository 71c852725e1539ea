"""Operator failover and agent restarts under continuous probes: no allowed connection refused, no denied one accepted.

Policy: x/a admits only x/b. Three probers run all along: x/b -> x/a (allowed), x/c -> x/a (denied,
across nodes), y/a -> y/b (no policy). Then (1) the operator replica holding the Lease is deleted;
the standby must take the Lease and publish a new policy (y/b admits nobody), which must be
enforced; (2) the agent of x/a's node is deleted; its replacement converges without a gap
(rules stay in the kernel while no agent runs). A probe whose kubectl itself failed is not counted
either way (the probe never ran).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from tests.kind.harness import Kind, expected

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]


class Prober:
    """Probes each pair in a loop; ``pairs`` maps a pair to what it must give (None: either, in transition)."""

    def __init__(self, kind: Kind, pairs: dict[tuple[str, str], bool | None]) -> None:
        self.kind, self.pairs = kind, pairs
        self.results: list[tuple[float, str, str, bool | None, bool | None]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(s, d), daemon=True) for s, d in pairs]

    def _run(self, src: str, dst: str) -> None:
        while not self.stop.is_set():
            want = self.pairs[(src, dst)]
            got = self.kind.probe_or_none(src, self.kind.ips[dst])
            if want == self.pairs[(src, dst)]:  # the expectation did not change while this probe ran
                self.results.append((time.monotonic(), src, dst, got, want))

    def violations(self) -> list[str]:
        return [f"{s} -> {d}: {'accepted' if got else 'refused'} at {t:.1f}"
                for t, s, d, got, want in self.results if got is not None and want is not None and got != want]

    def __enter__(self) -> Prober:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


def holder(kind: Kind) -> str:
    lease = json.loads(kind.kubectl("-n", "picket-system", "get", "lease", "picket-operator", "-o", "json"))
    return str(lease["spec"].get("holderIdentity") or "")


def wait(what: str, condition: object, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture
def a_from_b(kind: Kind, pods: list[str]) -> Iterator[None]:
    kind.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "a-from-b", "namespace": "x"},
                "spec": {"podSelector": {"matchLabels": {"pod": "a"}},
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}})
    kind.expect(expected(pods, lambda s, d: d != "x/a" or s == "x/b"))
    yield
    kind.delete("networkpolicy", "a-from-b", "x")
    kind.delete("networkpolicy", "b-from-nobody", "y")


def test_operator_failover_and_agent_restart_under_probes(kind: Kind, pods: list[str], a_from_b: None) -> None:
    pairs: dict[tuple[str, str], bool | None] = {("x/b", "x/a"): True, ("x/c", "x/a"): False, ("y/a", "y/b"): True}
    with Prober(kind, pairs) as prober:
        time.sleep(3)
        leader = holder(kind)
        assert leader.startswith("picket-operator-"), leader
        kind.kubectl("-n", "picket-system", "delete", "pod", leader, "--wait=false")
        wait("the standby to take the Lease", lambda: holder(kind) not in ("", leader))
        pairs[("y/a", "y/b")] = None  # in transition while the new leader publishes
        kind.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "b-from-nobody", "namespace": "y"},
                    "spec": {"podSelector": {"matchLabels": {"pod": "b"}}, "policyTypes": ["Ingress"]}})
        wait("the new leader's policy to be enforced", lambda: kind.probe("y/a", kind.ips["y/b"]) is False, 60)
        pairs[("y/a", "y/b")] = False  # from here on denied

        agents = json.loads(kind.kubectl("-n", "picket-system", "get", "pods", "-l",
                                         "app.kubernetes.io/name=picket-agent", "-o", "json"))
        on_worker = next(p["metadata"]["name"] for p in agents["items"] if p["spec"]["nodeName"] == "picket-worker")
        kind.kubectl("-n", "picket-system", "delete", "pod", on_worker, "--wait=true")
        kind.kubectl("-n", "picket-system", "rollout", "status", "daemonset/picket-agent", "--timeout=180s")
        time.sleep(5)
    ran = [r for r in prober.results if r[3] is not None]
    assert len(ran) > 30, f"too few probes ran: {len(ran)} of {len(prober.results)}"
    assert prober.violations() == []
