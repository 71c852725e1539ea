"""ClusterNetworkPolicy (network-policy-api v0.2.0) on the local cluster, with real packets.

The CRD comes from the release through the Go module proxy (``picket_lab.netpolapi``), installed
by the session's ``deployed`` fixture before the operator starts. The README's guardrail
(``examples/clusternetworkpolicy/``) is applied step by step; after each step the WHOLE port-80
matrix of its pods must equal a hand-written expectation and the offline prediction
(``compile_cluster`` over the live objects, ClusterNetworkPolicies included):

1. the Admin guardrail: nobody reaches ``sensitive`` but ``monitoring``;
2. + the Baseline default deny: every pod closed (``sensitive`` still open to ``monitoring``: the
   Admin tier decides first);
3. + a NetworkPolicy in ``app``: ``app/web`` open again (the NetworkPolicy tier comes before the
   Baseline tier), ``sensitive`` unchanged (the Admin tier comes before both).

It also checks what the operator writes back (``status.conditions``: Accepted, and for a policy
with a ``domainNames`` peer, Accepted=False naming the field, with none of its rules applied) and
that a drop is logged and counted with the ClusterNetworkPolicy and the rule named.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from picket_lab.deploy import REPO, wait_until
from picket_lab.drops import drop_counts
from tests.e2e.harness import E2E, expected, ns

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

EXAMPLE = REPO / "examples" / "clusternetworkpolicy"
NAMESPACES = ["app", "monitoring", "sensitive"]
CNP_PATH = "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies"
GUARD_RULE = "ClusterNetworkPolicy sensitive-guardrail rule deny-everyone-else"


def guardrail(s: str, d: str) -> bool:
    return ns(d) != "sensitive" or ns(s) == "monitoring"


def with_baseline(s: str, d: str) -> bool:
    return ns(d) == "sensitive" and ns(s) == "monitoring"


def with_allow_web(s: str, d: str) -> bool:
    return with_baseline(s, d) or d == "app/web"


def accepted(e2e: E2E, name: str) -> dict[str, Any] | None:
    obj = e2e.kube.get(f"{CNP_PATH}/{name}")
    for condition in (obj.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Accepted" and condition.get("observedGeneration") == obj["metadata"].get(
                "generation"):
            return dict(condition)
    return None


def test_guardrail_admin_baseline_and_networkpolicy_tiers(e2e: E2E) -> None:
    pods, policies = e2e.create_cluster(EXAMPLE / "cluster.yaml")
    assert sorted(p["kind"] for p in policies) == ["ClusterNetworkPolicy", "ClusterNetworkPolicy", "NetworkPolicy"]
    e2e.expect(expected(pods, lambda s, d: True), namespaces=NAMESPACES)

    e2e.apply((EXAMPLE / "guardrail.yaml").read_text())
    e2e.expect(expected(pods, guardrail), namespaces=NAMESPACES)
    assert wait_until(lambda: accepted(e2e, "sensitive-guardrail") is not None, 30), "no Accepted condition"
    condition = accepted(e2e, "sensitive-guardrail")
    assert condition is not None and (condition["status"], condition["reason"]) == ("True", "Accepted")

    e2e.apply((EXAMPLE / "baseline-default-deny.yaml").read_text())
    e2e.expect(expected(pods, with_baseline), namespaces=NAMESPACES)

    e2e.apply((EXAMPLE / "allow-web.yaml").read_text())
    e2e.expect(expected(pods, with_allow_web), namespaces=NAMESPACES)


def test_drops_are_logged_and_counted_with_the_policy_and_rule_named(e2e: E2E) -> None:
    pods, _ = e2e.create_cluster(EXAMPLE / "cluster.yaml")
    e2e.apply((EXAMPLE / "guardrail.yaml").read_text())
    e2e.expect(expected(pods, guardrail), namespaces=NAMESPACES)  # probes app/* -> sensitive/db: dropped
    db = e2e.kube.get("/api/v1/namespaces/sensitive/pods/db")
    client_ip = e2e.kube.get("/api/v1/namespaces/app/pods/client")["status"]["podIP"]
    log = e2e.deployment.agents[db["spec"]["nodeName"]].log
    # The agent names addresses of its own node's endpoints; others (client may run on the other
    # node) stay addresses: "DROP 10.244.2.3 -> sensitive/db tcp/80 ingress: denied by ...".
    sources = (f"app/client -> sensitive/db tcp/80 ingress: denied by {GUARD_RULE}",
               f"{client_ip} -> sensitive/db tcp/80 ingress: denied by {GUARD_RULE}")

    def lines() -> list[str]:
        return [line for line in log.read_text(errors="replace").splitlines() if line.startswith("DROP ")]

    assert wait_until(lambda: any(s in line for line in lines() for s in sources), 10), \
        f"no drop line {sources} in {log}: {lines()[-10:]}"
    counts = drop_counts(e2e.lab)
    named = [v for (_, sample, labels), v in counts.items()
             if sample == "picket_dropped_packets_total" and "endpoint=sensitive/db" in labels and GUARD_RULE in labels]
    assert named and named[0] > 0, json.dumps({str(k): v for k, v in counts.items()})


def test_unsupported_field_is_reported_on_the_object_and_nothing_of_it_applied(e2e: E2E) -> None:
    pods, _ = e2e.create_cluster(EXAMPLE / "cluster.yaml")
    half = {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "half-applied-never"},
            "spec": {"tier": "Admin", "priority": 5, "subject": {"namespaces": {"matchLabels": {
                "kubernetes.io/metadata.name": "app"}}},
                     "ingress": [{"name": "deny-all", "action": "Deny", "from": [{"namespaces": {}}]}],
                     "egress": [{"name": "dns", "action": "Accept", "to": [{"domainNames": ["*.example.com"]}]}]}}
    e2e.apply(yaml.safe_dump(half))
    assert wait_until(lambda: accepted(e2e, "half-applied-never") is not None, 30), "no Accepted condition"
    condition = accepted(e2e, "half-applied-never")
    assert condition is not None and (condition["status"], condition["reason"]) == ("False", "NotSupported")
    assert "spec.egress[0].to[0].domainNames" in condition["message"]
    # Its Deny rule is not applied either: once the guardrail applied after it is enforced (events
    # are compiled in order), app is still open.
    e2e.apply((EXAMPLE / "guardrail.yaml").read_text())
    e2e.expect(expected(pods, guardrail), namespaces=NAMESPACES)
