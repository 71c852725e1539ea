"""``picket explain`` with ClusterNetworkPolicies: its verdicts equal the evaluator's on random
three-tier clusters (the check is ``test_explain_property``'s), and the guardrail example is
explained with the tier, the ClusterNetworkPolicy and its rule named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings

from picket.model import Protocol
from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.compiler.explaining import Explainer
from tests.unit.operator.compiler.cnp_strategies import three_tier_clusters
from tests.unit.operator.compiler.strategies import PORTS, PROTOCOLS
from tests.unit.operator.test_explain_property import _check

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "clusternetworkpolicy" / "cluster.yaml"


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(three_tier_clusters())
def test_explained_verdict_equals_the_evaluator_with_three_tiers(objects: list[dict[str, Any]]) -> None:
    explainer = Explainer(objects)
    keys = sorted(explainer.compiled.endpoints)
    for src in keys:
        for dst in keys:
            if src != dst:
                for port in PORTS[:2]:
                    for protocol in PROTOCOLS:
                        _check(explainer, src, dst, Protocol(protocol), port)


def test_guardrail_is_explained_with_the_policy_tier_priority_and_rule() -> None:
    explainer = Explainer(load_cluster_file(EXAMPLE))
    blocked = explainer.explain("app/client", "sensitive/db", Protocol.TCP, 80)
    assert not blocked.allowed
    assert blocked.ingress.summary == (
        'denied by ClusterNetworkPolicy sensitive-guardrail (Admin tier, priority 10), ingress rule 1 '
        '"deny-everyone-else": all ports from all pods in all namespaces')
    assert blocked.ingress.decided_by == {
        "tier": "admin", "policy": "ClusterNetworkPolicy sensitive-guardrail rule deny-everyone-else", "rule": 1,
        "text": "all ports from all pods in all namespaces", "action": "Deny"}
    allowed = explainer.explain("monitoring/prometheus", "sensitive/db", Protocol.TCP, 80)
    assert allowed.allowed
    assert allowed.ingress.summary == (
        'accepted by ClusterNetworkPolicy sensitive-guardrail (Admin tier, priority 10), ingress rule 0 '
        '"allow-monitoring": all ports from all pods in namespaces with kubernetes.io/metadata.name=monitoring')
    admin = allowed.ingress.tiers[0]
    assert admin.outcome == "Accept by ClusterNetworkPolicy sensitive-guardrail rule allow-monitoring"
    assert admin.policies[0].rules[0].to_dict() == {
        "index": 0, "rule": "all ports from all pods in namespaces with kubernetes.io/metadata.name=monitoring",
        "action": "Accept", "matched": True}
    baseline = explainer.explain("app/web", "app/client", Protocol.TCP, 80).to_text()
    assert "tiers: baseline [Deny by ClusterNetworkPolicy baseline-default-deny rule default-deny]" in baseline
    assert ('ingress (app/client): blocked: denied by ClusterNetworkPolicy baseline-default-deny (Baseline tier, '
            'priority 1000), ingress rule 0 "default-deny": all ports from all pods in all namespaces') in baseline


PASS_THEN_ACCEPT = {
    "apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
    "metadata": {"name": "web-ports"},
    "spec": {"tier": "Admin", "priority": 5,
             "subject": {"namespaces": {"matchLabels": {"kubernetes.io/metadata.name": "app"}}},
             "ingress": [
                 {"action": "Pass", "from": [{"pods": {"namespaceSelector": {}, "podSelector": {
                     "matchLabels": {"app": "prometheus"}}}}]},
                 {"name": "dns-and-web", "action": "Accept", "from": [{"namespaces": {}}],
                  "protocols": [{"tcp": {"destinationPort": {"number": 8080}}},
                                {"udp": {"destinationPort": {"number": 53}}}]}]}}


def test_unnamed_rules_rules_of_several_protocols_and_misses_are_worded_as_written() -> None:
    """An unnamed rule is "ingress rule 0" (no name); a rule over TCP and UDP is one written rule
    (index 1 for both of its compiled rules); the actions are the ClusterNetworkPolicy's words."""
    explainer = Explainer([*load_cluster_file(EXAMPLE), PASS_THEN_ACCEPT])
    udp = explainer.explain("app/client", "app/web", Protocol.UDP, 53)
    assert udp.ingress.summary == ('accepted by ClusterNetworkPolicy web-ports (Admin tier, priority 5), ingress '
                                   'rule 1 "dns-and-web": UDP 53 from all pods in all namespaces')
    traces = udp.ingress.tiers[0].policies
    assert [p.policy for p in traces] == ["ClusterNetworkPolicy web-ports rule ingress[0]",
                                          "ClusterNetworkPolicy web-ports rule dns-and-web"]
    assert [(r.index, r.action, r.matched) for p in traces for r in p.rules] == [
        (0, "Pass", False), (1, "Accept", False), (1, "Accept", True)]
    passed = explainer.explain("monitoring/prometheus", "app/web", Protocol.TCP, 80)
    assert passed.ingress.tiers[0].outcome == "Pass by ClusterNetworkPolicy web-ports rule ingress[0]"
    assert passed.ingress.summary == "allowed by NetworkPolicy app/allow-web, ingress rule 0: TCP 80 from anywhere"
    # TCP 80 on app/client (no NetworkPolicy selects it): the Admin tier passes it on, the Baseline tier denies.
    missed = explainer.explain("app/web", "app/client", Protocol.TCP, 80)
    admin = missed.ingress.tiers[0]
    assert admin.outcome == "Pass (end of tier)"
    assert [r.why_not for p in admin.policies for r in p.rules][1:] == [
        "port 8080/TCP (this is port 80)", "UDP (this is TCP)"]
    # Blocked at the end of the NetworkPolicy tier: the reasons are that tier's (the Admin tier passed).
    blocked = explainer.explain("app/client", "app/web", Protocol.TCP, 81)
    assert list(blocked.ingress.reasons) == [
        "NetworkPolicy app/allow-web ingress rule 0 allows only port 80/TCP (this is port 81)"]
