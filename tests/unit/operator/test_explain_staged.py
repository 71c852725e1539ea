"""``picket explain`` in audit mode: when a staged policy selects the sender (egress) or the receiver
(ingress), the explanation gains a staged section, decided on the staged rule sets exactly as
``picket.evaluating`` decides them (property, on random clusters with random policies staged), in
text and in JSON (``staged``); without one, the section is absent."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picket.evaluating import connection_allowed
from picket.model import Protocol
from picket_operator.commands import explain as explain_command
from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.compiler.explaining import Explainer
from tests.unit.operator.compiler.strategies import PORTS, PROTOCOLS, clusters
from tests.unit.operator.test_explain_property import _agrees

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "audit"
CALICO = EXAMPLES / "calico-cluster.yaml"


def test_the_staged_section_explains_each_direction_with_the_staged_policy_and_rule() -> None:
    got = Explainer(load_cluster_file(CALICO)).explain("shop/batch", "shop/web", Protocol.TCP, 80)
    assert got.allowed and got.staged is not None and not got.staged.allowed
    assert got.ingress.summary == ("allowed by NetworkPolicy shop/web-from-shop, ingress rule 0: all ports from all "
                                   "pods in namespace shop")
    assert got.to_text().splitlines()[3:] == [
        "  staged (audit mode, with the staged policies enforced too): BLOCKED (enforced: ALLOWED)",
        "    egress (shop/batch): blocked: denied by StagedGlobalNetworkPolicy quarantine-batch, egress rule 0: "
        "Deny: all ports to anywhere",
        "    ingress (shop/web): blocked: denied by StagedNetworkPolicy shop/web-client-only, ingress rule 1: "
        "Deny: all ports from anywhere",
    ]
    staged = got.to_dict()["staged"]
    assert staged["allowed"] is False
    policy = "StagedNetworkPolicy shop/web-client-only"
    assert staged["ingress"]["decidedBy"] == {"tier": "kubernetes", "policy": policy, "rule": 1,
                                              "text": "Deny: all ports from anywhere", "action": "Deny"}
    assert [p["policy"] for p in staged["ingress"]["tiers"][0]["policies"]] == [policy]
    assert staged["egress"]["summary"].startswith("denied by StagedGlobalNetworkPolicy quarantine-batch")


def test_a_staged_kubernetes_policy_that_isolates_says_why_no_rule_matches() -> None:
    got = Explainer(load_cluster_file(CALICO)).explain("shop/client", "shop/batch", Protocol.TCP, 80)
    assert got.allowed and got.staged is not None and not got.staged.allowed
    assert got.staged.egress.summary == (
        "isolated by StagedKubernetesNetworkPolicy shop/client-to-web-only; no rule matches: "
        "StagedKubernetesNetworkPolicy shop/client-to-web-only egress rule 0 allows only pods with app=web in "
        "namespace shop (shop/batch has app=batch; namespace shop has kubernetes.io/metadata.name=shop)")
    assert got.staged.ingress.summary == "not isolated: no policy selects shop/batch for Ingress"


def test_no_staged_section_when_no_staged_policy_selects_either_end(capsys: Any) -> None:
    got = Explainer(load_cluster_file(CALICO)).explain("shop/web", "shop/client", Protocol.TCP, 80)
    assert got.staged is None and "staged" not in got.to_dict() and "staged" not in got.to_text()
    assert explain_command.main(["shop/web", "shop/client", "--port", "80", "--cluster", str(CALICO),
                                 "--format", "json"]) == 0
    assert "staged" not in json.loads(capsys.readouterr().out)


def test_the_command_prints_the_staged_section_for_an_annotated_networkpolicy(capsys: Any) -> None:
    cluster = str(EXAMPLES / "cluster.yaml")
    assert explain_command.main(["shop/batch", "shop/web", "--port", "80", "--cluster", cluster]) == 0
    text = capsys.readouterr().out
    assert "shop/batch -> shop/web TCP/80: ALLOWED" in text
    assert "staged (audit mode, with the staged policies enforced too): BLOCKED (enforced: ALLOWED)" in text
    assert ("    ingress (shop/web): blocked: isolated by NetworkPolicy shop/web-from-client; no rule matches: "
            "NetworkPolicy shop/web-from-client ingress rule 0 allows only pods with app=client in namespace "
            "shop") in text
    assert explain_command.main(["shop/batch", "shop/web", "--port", "80", "--cluster", cluster,
                                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["allowed"] is True and data["staged"]["allowed"] is False


@st.composite
def staged_clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A random Kubernetes cluster with a random subset of its NetworkPolicies in audit mode."""
    objects = copy.deepcopy(draw(clusters()))
    for obj in objects:
        if obj["kind"] == "NetworkPolicy" and draw(st.booleans()):
            obj["metadata"]["annotations"] = {"picket.dev/audit": "true"}
    return objects


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(staged_clusters())
def test_staged_verdict_equals_the_evaluator_on_the_staged_rule_sets(objects: list[dict[str, Any]]) -> None:
    explainer = Explainer(objects)
    staged = explainer.compiled.staged()
    keys = sorted(explainer.compiled.endpoints)
    for src in keys:
        for dst in keys:
            if src == dst:
                continue
            for port in PORTS[:3]:
                for protocol in PROTOCOLS:
                    got = explainer.explain(src, dst, Protocol(protocol), port)
                    s, d = staged.endpoints[src], staged.endpoints[dst]
                    ok, egress, ingress = connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0],
                                                             Protocol(protocol), port, staged.peer_sets)
                    if got.staged is None:  # no staged policy at either end: the enforced verdict holds
                        assert got.allowed == ok, got.to_text()
                        continue
                    assert got.staged.allowed == ok, got.to_text()
                    _agrees(got.staged.egress, egress)
                    _agrees(got.staged.ingress, ingress)
