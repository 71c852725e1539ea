"""Audit (staged) mode end to end on the local cluster: staged policies never drop a packet, and
the agent logs and counts every connection they WOULD drop, with the staged policy named.

Both ways of staging go through the real API server, operator and agents, with ``nc`` probes:

* the ``picket.dev/audit: "true"`` annotation on a standard NetworkPolicy (``examples/audit/
  cluster.yaml``: web would take connections from client only);
* Calico's three staged kinds (``examples/audit/calico-cluster.yaml``, the optional Calico
  component's CRDs are installed by the session): a StagedNetworkPolicy, a
  StagedGlobalNetworkPolicy and a StagedKubernetesNetworkPolicy.

Each test checks that the WHOLE port-80 matrix stays as the enforced policies decide (the offline
prediction agrees), that the agent of the node printed a ``WOULD DROP`` line naming the staged
policy for a connection the staged one blocks, and that
``picket_audit_would_drop_packets_total`` counted it while ``picket_dropped_packets_total`` for
that endpoint did not move.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from picket.apiclient import ApiError
from picket_lab.deploy import REPO, wait_until
from picket_lab.drops import drop_counts
from tests.e2e.harness import E2E, expected

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

EXAMPLE = REPO / "examples" / "audit"


def _apply_policies(e2e: E2E, policies: list[dict[str, object]]) -> None:
    e2e.apply("\n---\n".join(json.dumps(p) for p in policies))


def _would_drop_lines(e2e: E2E, node: str) -> Callable[[], list[str]]:
    log = e2e.deployment.agents[node].log
    return lambda: [ln for ln in log.read_text(errors="replace").splitlines() if ln.startswith("WOULD DROP ")]


def _counted(e2e: E2E, sample: str, endpoint: str) -> float:
    return sum(v for (_, name, labels), v in drop_counts(e2e.lab).items()
               if name == sample and f"endpoint={endpoint}" in labels.split(","))


def _staged_applied(e2e: E2E, node: str, staged: dict[str, str]) -> bool:
    """The node's agent applied a CompiledNode that binds each endpoint ``ns/name`` of ``staged``
    to a staged rule set of its direction (``stagedIngress`` / ``stagedEgress``): the audit chains
    are in its kernel, so the probes that follow are audited."""
    try:
        obj = e2e.kube.get(f"/apis/picket.dev/v1alpha1/compilednodes/{node}")
    except ApiError as exc:
        if exc.status == 404:  # not published yet
            return False
        raise
    rows = {f"{r.get('namespace')}/{r.get('name')}": r for r in obj["spec"].get("endpoints") or []}
    status = obj.get("status") or {}
    return status.get("appliedVersion") == obj["spec"].get("version") and all(
        rows.get(key, {}).get(field) for key, field in staged.items())


def _check_audit(e2e: E2E, pods: list[str], line: str, endpoint: str, staged: dict[str, str]) -> None:
    """Once the staged rule sets are applied: nothing dropped (every pair connects), the would-be
    drop logged and counted."""
    node = e2e.kube.get(f"/api/v1/namespaces/{endpoint.replace('/', '/pods/')}")["spec"]["nodeName"]
    assert wait_until(lambda: _staged_applied(e2e, node, staged), 30), f"{staged} not applied on {node}"
    dropped_before = _counted(e2e, "picket_dropped_packets_total", endpoint)
    e2e.expect(expected(pods, lambda s, d: True), namespaces=["shop"])  # probes every pair: all connect
    lines = _would_drop_lines(e2e, node)
    log = e2e.deployment.agents[node].log
    if not wait_until(lambda: any(line in ln for ln in lines()), 15):
        import subprocess
        save = subprocess.run(["ip", "netns", "exec", node, "iptables-legacy-save", "-c"], capture_output=True,
                              text=True).stdout
        nodes = e2e.kubectl("get", "compilednodes", "-o", "yaml")
        pytest.fail(f"no {line!r} in the agent's log {log}:\n" + "\n".join(
            log.read_text(errors="replace").splitlines()[-40:]) + "\n" + save + "\n" + nodes[-6000:])
    assert wait_until(lambda: _counted(e2e, "picket_audit_would_drop_packets_total", endpoint) > 0, 15), \
        "picket_audit_would_drop_packets_total did not count it"
    assert _counted(e2e, "picket_dropped_packets_total", endpoint) == dropped_before, "a staged policy dropped"


def test_the_audit_annotation_logs_and_counts_would_be_drops_and_drops_nothing(e2e: E2E) -> None:
    pods, policies = e2e.create_cluster(EXAMPLE / "cluster.yaml")
    _apply_policies(e2e, policies)
    _check_audit(e2e, pods, "WOULD DROP shop/batch -> shop/web tcp/80 ingress: no policy of tier kubernetes allows it "
                 "(staged: NetworkPolicy shop/web-from-client)", "shop/web", {"shop/web": "stagedIngress"})


def test_calico_staged_kinds_log_and_count_would_be_drops_and_drop_nothing(e2e: E2E) -> None:
    pods, policies = e2e.create_cluster(EXAMPLE / "calico-cluster.yaml")
    assert sorted(str(p["kind"]) for p in policies) == [
        "NetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy", "StagedNetworkPolicy"]
    _apply_policies(e2e, policies)
    # batch's egress: the StagedGlobalNetworkPolicy quarantines it (Calico tier "default" ends in deny)
    _check_audit(e2e, pods, "WOULD DROP shop/batch -> shop/client tcp/80 egress:", "shop/batch",
                 {"shop/batch": "stagedEgress", "shop/web": "stagedIngress", "shop/client": "stagedEgress"})
    lines = _would_drop_lines(e2e, e2e.kube.get("/api/v1/namespaces/shop/pods/batch")["spec"]["nodeName"])()
    assert any("StagedGlobalNetworkPolicy quarantine-batch" in ln for ln in lines if "shop/batch -> " in ln), lines
    # web's ingress: the StagedNetworkPolicy (order 100) denies batch before the enforced NetworkPolicy
    assert any(ln.startswith("WOULD DROP shop/batch -> shop/web tcp/80 ingress:")
               and "StagedNetworkPolicy shop/web-client-only" in ln for ln in lines), lines
    assert _counted(e2e, "picket_audit_would_drop_packets_total", "shop/web") > 0
