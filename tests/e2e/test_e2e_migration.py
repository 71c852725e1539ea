"""Upgrading a cluster published by the previous version (one CompiledEndpoint per pod): no gap.

The previous form is recreated exactly as the previous publisher wrote it (its builder,
``objects.endpoint_object``, from the rules currently published), the operator is stopped and the
current form removed, so the agents enforce the CompiledEndpoints alone. Then this version's
operator starts. While it publishes CompiledNodes, the agents switch and the old objects are
deleted, probes run continuously from inside pods: a pair the policy blocks must never connect,
a pair it allows must never fail. A watch records that each node's CompiledEndpoints were deleted
only after that node's agent reported its CompiledNode applied.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from picket.apiclient import ApiError, KubeClient
from picket_agent import published
from picket_lab.deploy import wait_until
from picket_operator.publishing import objects as publishing
from tests.e2e.harness import E2E, MODEL_PODS, expected, ns

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

P = MODEL_PODS
DENY_X = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""
API = "/apis/picket.dev/v1alpha1"

PROBER = r"""
import os, socket, sys, time
ip, port, timeout, stop = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ok = fail = 0
print("ready", flush=True)
while not os.path.exists(stop):
    s = socket.socket(); s.settimeout(timeout)
    try:
        s.connect((ip, port)); ok += 1
    except OSError:
        fail += 1
    finally:
        s.close()
    time.sleep(0.01)
print(ok, fail, flush=True)
"""


class Prober:
    """Connects from ``src`` to ``dst``:80 again and again until stopped; counts what happened."""

    def __init__(self, e2e: E2E, src: str, dst: str, timeout: float, stop: Path) -> None:
        lab = e2e.lab
        sns, sname = src.split("/")
        dns, dname = dst.split("/")
        self.proc = subprocess.Popen(["ip", "netns", "exec", lab.pod_netns(sns, sname), sys.executable, "-c", PROBER,
                                      lab.pod_ip(dns, dname), "80", str(timeout), str(stop)],
                                     stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"

    def result(self) -> tuple[int, int]:
        assert self.proc.stdout is not None
        ok, fail = self.proc.stdout.readline().split()
        self.proc.wait(timeout=10)
        return int(ok), int(fail)


class Recorder:
    """When each CompiledEndpoint was deleted, and when each node's CompiledNode was reported applied."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.deleted: dict[str, tuple[float, str]] = {}  # endpoint key -> (when, node)
        self.applied: dict[str, float] = {}  # node -> first time its status said applied
        for plural, record in (("compiledendpoints", self._endpoint), ("compilednodes", self._node)):
            threading.Thread(target=self._watch, args=(f"{API}/{plural}", record), daemon=True).start()

    def _watch(self, path: str, record: Any) -> None:
        rv = str(self.kube.get(path)["metadata"]["resourceVersion"])
        try:
            for ev in self.kube.watch(path, rv, timeout_seconds=300):
                record(str(ev.get("type")), ev.get("object") or {}, time.monotonic())
        except ApiError:  # the lab went down after the test: nothing left to record
            pass

    def _endpoint(self, kind: str, obj: dict[str, Any], when: float) -> None:
        if kind == "DELETED":
            meta = obj["metadata"]
            self.deleted[f"{meta['namespace']}/{meta['name']}"] = (when, meta["labels"][publishing.NODE_LABEL])

    def _node(self, kind: str, obj: dict[str, Any], when: float) -> None:
        if (obj.get("status") or {}).get("appliedVersion") and kind != "DELETED":
            self.applied.setdefault(obj["metadata"]["name"], when)


def published_rules(e2e: E2E) -> dict[str, Any]:
    """The endpoint rules currently published (read as the agent reads them)."""
    rule_sets = {o["metadata"]["name"]: published.parse_rule_set(o)
                 for o in e2e.kube.get(f"{API}/compiledrulesets")["items"]}
    out: dict[str, Any] = {}
    for obj in e2e.kube.get(f"{API}/compilednodes")["items"]:
        resolution = published.resolve(published.parse_node(obj), rule_sets, {}, {})
        assert not resolution.pending
        out.update(resolution.endpoints)
    return out


def previous_form_applied(e2e: E2E, keys: set[str]) -> bool:
    items = e2e.kube.get(f"{API}/compiledendpoints")["items"]
    return {f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in items} >= keys and all(
        (o.get("status") or {}).get("appliedVersion") == o["spec"]["version"] for o in items)


def test_upgrade_from_compiled_endpoints_leaves_no_enforcement_gap(e2e: E2E, tmp_path: Path) -> None:
    d = e2e.deployment
    e2e.apply(DENY_X)
    e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))
    rules = published_rules(e2e)
    assert set(rules) >= set(P)
    for spawned in d.operators.values():
        spawned.stop()
    d.operators.clear()
    stop = tmp_path / "stop"
    blocked = Prober(e2e, "y/a", "x/a", 0.2, stop)  # x admits nothing
    allowed = Prober(e2e, "x/b", "y/b", 2.0, stop)  # y admits everything
    try:
        # The cluster as the previous version published it: CompiledEndpoints only.
        for er in rules.values():
            obj = publishing.endpoint_object(er)
            meta = obj["metadata"]
            e2e.kube.apply(f"{API}/namespaces/{meta['namespace']}/compiledendpoints/{meta['name']}", obj,
                           "picket-operator")
        for plural in ("compilednodes", "compiledrulesets"):
            for obj in e2e.kube.get(f"{API}/{plural}")["items"]:
                e2e.kube.delete(f"{API}/{plural}/{obj['metadata']['name']}")
        assert wait_until(lambda: previous_form_applied(e2e, set(P)), 30), \
            "the agents never reported the CompiledEndpoints applied"
        e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))

        recorder = Recorder(e2e.kube)
        time.sleep(0.5)  # the watches are established
        started = time.monotonic()
        d.start_operator("picket-operator-0")

        def switched() -> bool:
            nodes = e2e.kube.get(f"{API}/compilednodes")["items"]
            return not e2e.kube.get(f"{API}/compiledendpoints")["items"] and bool(nodes) and all(
                (o.get("status") or {}).get("appliedVersion") == o["spec"]["version"] for o in nodes)

        assert wait_until(switched, 60), "the CompiledEndpoints were not replaced by applied CompiledNodes"
        took = time.monotonic() - started
        e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))
    finally:
        stop.touch()
        blocked_result, allowed_result = blocked.result(), allowed.result()
    print(f"\nswitch: {took:.1f}s from operator start; probes during it: blocked pair {blocked_result} "
          f"(connected, refused), allowed pair {allowed_result}")
    assert blocked_result[0] == 0, f"the blocked pair connected {blocked_result[0]} times: an enforcement gap"
    assert allowed_result[1] == 0, f"the allowed pair failed {allowed_result[1]} times"
    assert set(recorder.deleted) >= set(P)
    for key, (when, node) in recorder.deleted.items():
        assert node in recorder.applied and recorder.applied[node] <= when, \
            f"{key} was deleted before the agent on {node} reported its CompiledNode applied"
