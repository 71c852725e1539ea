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


def test_guardrail_is_explained_with_the_policy_and_rule() -> None:
    explainer = Explainer(load_cluster_file(EXAMPLE))
    blocked = explainer.explain("app/client", "sensitive/db", Protocol.TCP, 80)
    assert not blocked.allowed
    assert "denied by ClusterNetworkPolicy sensitive-guardrail rule deny-everyone-else" in blocked.ingress.summary
    allowed = explainer.explain("monitoring/prometheus", "sensitive/db", Protocol.TCP, 80)
    assert allowed.allowed
    assert "allowed by ClusterNetworkPolicy sensitive-guardrail rule allow-monitoring" in allowed.ingress.summary
    baseline = explainer.explain("app/web", "app/client", Protocol.TCP, 80).to_text()
    assert "tiers: baseline [Deny by ClusterNetworkPolicy baseline-default-deny rule default-deny]" in baseline
