"""Property: ``picket explain``'s verdict always equals the evaluator's, per direction and overall.

Random Kubernetes clusters (``strategies.clusters``) and random Calico worlds (tiers, Deny / Pass /
Log, HostEndpoints with failsafe ports, network sets; ``calico.test_calico_vs_oracle.worlds``) are
compiled once; every pair of endpoints (and, for Calico worlds, addresses outside the cluster as
sources) on several ports and protocols is explained, and the explanation's ``allowed`` per
direction must equal ``picket.evaluating.verdict`` on the same compiled rule set, its overall
``allowed`` must equal ``connection_allowed``, and a decided rule must name the policy the
evaluator names.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from picket.evaluating import Verdict, connection_allowed
from picket.model import Protocol
from picket_operator.compiler.explaining import DirectionExplanation, Explainer
from tests.unit.operator.compiler.calico.test_calico_vs_oracle import CHECKED, OUTSIDE, worlds
from tests.unit.operator.compiler.strategies import PORTS, PROTOCOLS, clusters


def _agrees(explained: DirectionExplanation, verdict: Verdict) -> None:
    assert explained.allowed == verdict.allowed, (explained.summary, verdict.reason)
    if explained.decided_by is not None:
        word = "allowed" if verdict.allowed else "denied"
        assert verdict.reason == f"{word} by {explained.decided_by['policy']}", (explained.summary, verdict.reason)
    if verdict.reason == "not isolated":
        assert not explained.isolated


def _check(explainer: Explainer, src: str, dst: str, protocol: Protocol, port: int) -> None:
    compiled = explainer.compiled
    got = explainer.explain(src, dst, protocol, port)
    s = compiled.endpoints.get(got.source)
    d = compiled.endpoints[got.destination]
    src_ip = s.endpoint.ips[0] if s else src
    ok, egress, ingress = connection_allowed(s, d, src_ip, d.endpoint.ips[0], protocol, port, compiled.peer_sets)
    assert got.allowed == ok, got.to_text()
    _agrees(got.egress, egress)
    _agrees(got.ingress, ingress)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters())
def test_explained_verdict_equals_the_evaluator_on_kubernetes_clusters(objects: list[dict[str, Any]]) -> None:
    explainer = Explainer(objects)
    keys = sorted(explainer.compiled.endpoints)
    for src in keys:
        for dst in keys:
            if src == dst:
                assert explainer.explain(src, dst, Protocol.TCP, 80).allowed
                continue
            for port in PORTS:
                for protocol in PROTOCOLS:
                    _check(explainer, src, dst, Protocol(protocol), port)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_explained_verdict_equals_the_evaluator_on_calico_worlds(world: tuple[list[dict[str, Any]], Any]) -> None:
    objects, _ = world
    explainer = Explainer(objects)
    keys = sorted(explainer.compiled.endpoints)
    for src in keys + OUTSIDE:
        for dst in keys:
            if src == dst:
                continue
            for protocol, port in CHECKED:
                _check(explainer, src, dst, protocol, port)
