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

An egress ``nodes`` peer is checked against the lab nodes' addresses. It also checks what the
operator writes back (``status.conditions``: Accepted, and for a policy
with a ``domainNames`` peer, Accepted=False naming the field, with none of its rules applied) and
that a drop is logged and counted with the ClusterNetworkPolicy and the rule named.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from picket.evaluating import verdict
from picket.model import Protocol
from picket_lab import clusterfiles as labmodel
from picket_lab.deploy import REPO, wait_until
from picket_lab.drops import drop_counts
from picket_lab.probing import probe
from picket_operator.compiler.compiling import compile_cluster
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


@pytest.fixture
def node_listeners(e2e: E2E) -> Iterator[None]:
    """TCP 8080 served in every node's namespace (the lab's node, never the machine's)."""
    lab = e2e.lab
    spawned = [lab.spawn(f"pkt-cnp-{node}-8080", ["socat", "TCP-LISTEN:8080,fork,reuseaddr", "PIPE"], node=node)
               for node in lab.nodes]
    try:
        def listening() -> bool:
            return all(lab.exec_in_node(n, ["ss", "-Htln", "sport = :8080"], timeout=5).stdout.strip()
                       for n in lab.nodes)

        assert wait_until(listening, 10), "listeners on 8080 in the node namespaces never came up"
        yield
    finally:
        for s in spawned:
            s.stop()


def test_nodes_peer_denies_egress_to_the_selected_node(e2e: E2E, node_listeners: None) -> None:
    """Egress ``nodes`` peer (experimental): app's pods may not open the first node's address.

    Only pods on the OTHER node are probed here: traffic from a pod to its own node's address is
    delivered locally (INPUT), where the agent runs the pod's egress rules too; that path is
    probed with real packets in ``tests/kernel/test_agent_ownnode.py``."""
    pods, _ = e2e.create_cluster(EXAMPLE / "cluster.yaml")
    lab = e2e.lab
    first, second = lab.nodes[0], lab.nodes[1]
    ips = {node: lab.node_ip(node) for node in lab.nodes}
    placed = {k: e2e.kube.get(f"/api/v1/namespaces/{ns(k)}/pods/{k.split('/')[1]}")["spec"]["nodeName"] for k in pods}
    cells = [(k, node) for k in pods for node in lab.nodes if placed[k] != node]
    targets = {t.key: t for t in labmodel.targets(lab, pods)}

    def live() -> dict[tuple[str, str], bool]:
        return {(k, n): probe(targets[k], ips[n], "TCP", 8080, timeout=1.0) for k, n in cells}

    def predicted() -> dict[tuple[str, str], bool]:
        compiled = compile_cluster(labmodel.live_objects(e2e.kube))
        out = {}
        for k, n in cells:
            rule_set = compiled.endpoints[k].egress
            out[(k, n)] = rule_set is None or verdict(rule_set, ips[n], Protocol.TCP, 8080, compiled.peer_sets).allowed
        return out

    assert all(live().values()), live()
    deny = {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": "no-first-node"},
            "spec": {"tier": "Admin", "priority": 20, "subject": {"namespaces": {"matchLabels": {
                "kubernetes.io/metadata.name": "app"}}},
                     "egress": [{"name": "first-node", "action": "Deny", "to": [
                         {"nodes": {"matchLabels": {"kubernetes.io/hostname": first}}}],
                         "protocols": [{"tcp": {"destinationPort": {"number": 8080}}}]}]}}
    e2e.apply(yaml.safe_dump(deny))
    want = {(k, n): not (ns(k) == "app" and n == first) for k, n in cells}
    assert any(not v for v in want.values()), f"no app pod runs on {second}: nothing to probe"
    assert wait_until(lambda: live() == want, 30), {c: v for c, v in live().items() if want[c] != v}
    assert predicted() == want
