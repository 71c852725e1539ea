"""Standard NetworkPolicy YAML, applied with kubectl, enforced on real packets across two nodes.

Every test compares the whole 9x9 probe matrix of the model (x, y, z; pods a, b, c; b on the
second node) with a hand-written expectation, and the offline compiled prediction with the same
expectation, polling until enforcement (no fixed sleeps).
"""

from __future__ import annotations

import ipaddress

import pytest

from picket_lab.api import Lab
from tests.e2e.harness import E2E, MODEL_PODS, expected, model_object, ns, pod

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

P = MODEL_PODS
ALL = expected(P, lambda s, d: True)


def policy(namespace: str, name: str, spec: str) -> str:
    body = "\n".join("  " + line for line in spec.strip().splitlines())
    return (f"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
            f"metadata: {{name: {name}, namespace: {namespace}}}\nspec:\n{body}\n")


DENY_INGRESS_X = policy("x", "deny-ingress", "podSelector: {}\npolicyTypes: [Ingress]")
DENY_EGRESS_X = policy("x", "deny-egress", "podSelector: {}\npolicyTypes: [Egress]")


def test_default_deny_ingress(e2e: E2E) -> None:
    e2e.expect(ALL)
    e2e.apply(DENY_INGRESS_X)
    e2e.expect(expected(P, lambda s, d: ns(d) != "x"))


def test_default_deny_egress(e2e: E2E) -> None:
    e2e.apply(DENY_EGRESS_X)
    e2e.expect(expected(P, lambda s, d: ns(s) != "x"))


def test_default_deny_both(e2e: E2E) -> None:
    e2e.apply(policy("x", "deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]"))
    e2e.expect(expected(P, lambda s, d: ns(s) != "x" and ns(d) != "x"))


def test_allow_same_namespace(e2e: E2E) -> None:
    e2e.apply(policy("x", "same-ns", "podSelector: {}\ningress:\n- from: [{podSelector: {}}]"))
    e2e.expect(expected(P, lambda s, d: ns(d) != "x" or ns(s) == "x"))


def test_namespace_selector(e2e: E2E) -> None:
    e2e.apply(policy("x", "from-y", """
podSelector: {matchLabels: {pod: a}}
ingress:
- from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]
"""))
    e2e.expect(expected(P, lambda s, d: d != "x/a" or ns(s) == "y"))


def test_pod_and_namespace_selector(e2e: E2E) -> None:
    # One peer with both selectors: pods labelled pod=b IN namespaces labelled ns=y (an AND).
    e2e.apply(policy("x", "yb-only", """
podSelector: {matchLabels: {pod: a}}
ingress:
- from: [{namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: b}}}]
"""))
    e2e.expect(expected(P, lambda s, d: d != "x/a" or s == "y/b"))


def test_match_expressions(e2e: E2E) -> None:
    e2e.apply(policy("x", "expressions", """
podSelector: {matchExpressions: [{key: pod, operator: In, values: [a, b]}]}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: [z]}]}
    podSelector: {matchExpressions: [{key: pod, operator: Exists}, {key: pod, operator: NotIn, values: [c]}]}
"""))
    e2e.expect(expected(P, lambda s, d: d not in ("x/a", "x/b") or (ns(s) != "z" and pod(s) != "c")))


def test_ip_block_with_except(lab: Lab, e2e: E2E) -> None:
    # Allow x/a from the whole pod network except the second node's pod CIDR: every b is refused.
    node2 = lab.state.nodes[1].pod_cidr
    e2e.apply(policy("x", "ipblock", f"""
podSelector: {{matchLabels: {{pod: a}}}}
ingress:
- from: [{{ipBlock: {{cidr: 10.244.0.0/16, except: [{node2}]}}}}]
"""))
    ip = {k: lab.pod_ip(ns(k), pod(k)) for k in P}
    net = ipaddress.ip_network(node2)
    e2e.expect(expected(P, lambda s, d: d != "x/a" or ipaddress.ip_address(ip[s]) not in net))
    assert any(ipaddress.ip_address(ip[k]) in net for k in P), "no pod on the excepted node: the test proves nothing"


@pytest.mark.parametrize(
    "ports, open_ports",
    [
        ("[{port: 81}]", {81}),  # numeric
        ("[{port: serve-81-tcp}]", {81}),  # named (the pod's containerPort name)
        ("[{port: 80, endPort: 81, protocol: TCP}]", {80, 81}),  # range
        ("[{port: 81, endPort: 90}]", {81}),
    ],
    ids=["numeric", "named", "range-80-81", "range-81-90"],
)
def test_ports(e2e: E2E, ports: str, open_ports: set[int]) -> None:
    e2e.apply(policy("x", "ports", f"podSelector: {{matchLabels: {{pod: a}}}}\ningress:\n- ports: {ports}"))
    for port in (80, 81):
        e2e.expect(expected(P, lambda s, d, port=port: d != "x/a" or port in open_ports), port=port)


def test_udp(e2e: E2E) -> None:
    e2e.apply(policy("x", "udp-only", """
podSelector: {matchLabels: {pod: a}}
ingress:
- ports: [{port: 80, protocol: UDP}]
"""))
    e2e.expect(expected(P, lambda s, d: True), port=80, protocol="UDP")
    e2e.expect(expected(P, lambda s, d: d != "x/a"), port=80, protocol="TCP")


def test_policy_update_and_delete(e2e: E2E) -> None:
    text = policy("x", "changing", """
podSelector: {matchLabels: {pod: a}}
ingress:
- from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]
""")
    e2e.apply(text)
    e2e.expect(expected(P, lambda s, d: d != "x/a" or ns(s) == "y"))
    e2e.apply(text.replace('ns: "y"', 'ns: "z"'))
    e2e.expect(expected(P, lambda s, d: d != "x/a" or ns(s) == "z"))
    e2e.kubectl("delete", "networkpolicy", "-n", "x", "changing")
    e2e.expect(ALL)


def test_pod_relabel(e2e: E2E) -> None:
    e2e.apply(policy("x", "clients", """
podSelector: {matchLabels: {pod: a}}
ingress:
- from: [{namespaceSelector: {}, podSelector: {matchLabels: {role: client}}}]
"""))
    e2e.expect(expected(P, lambda s, d: d != "x/a"))
    e2e.label("pod", "b", "role=client", namespace="y")
    e2e.expect(expected(P, lambda s, d: d != "x/a" or s == "y/b"))
    e2e.kubectl("label", "pod", "b", "role-", "-n", "y")
    e2e.expect(expected(P, lambda s, d: d != "x/a"))


def test_namespace_relabel(e2e: E2E) -> None:
    e2e.apply(policy("x", "blue-team", """
podSelector: {}
ingress:
- from: [{namespaceSelector: {matchLabels: {team: blue}}}]
"""))
    e2e.expect(expected(P, lambda s, d: ns(d) != "x"))
    e2e.label("namespace", "z", "team=blue")
    e2e.expect(expected(P, lambda s, d: ns(d) != "x" or ns(s) == "z"))


def late_pod(namespace: str, name: str, labels: dict[str, str], node: str) -> dict[str, object]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "server", "image": "picket/agnhost", "ports": [
            {"name": "serve-80-tcp", "containerPort": 80, "protocol": "TCP"}]}]},
    }


def test_pods_created_after_the_policy(e2e: E2E) -> None:
    e2e.apply(policy("x", "late", """
podSelector: {matchLabels: {app: late}}
ingress:
- from: [{podSelector: {matchLabels: {app: late}}}]
"""))
    e2e.expect(ALL)
    late = [late_pod("x", "d", {"app": "late"}, "node-2"), late_pod("x", "e", {"app": "late"}, "node-1")]
    new = e2e.create_pods(late)
    pods = P + new
    e2e.expect(expected(pods, lambda s, d: d not in new or s in new))


def test_pod_moving_ip(lab: Lab, e2e: E2E) -> None:
    # x/a accepts only pod=b of namespace y; y/b is deleted and recreated on the other node.
    e2e.apply(policy("x", "from-yb", """
podSelector: {matchLabels: {pod: a}}
ingress:
- from: [{namespaceSelector: {matchLabels: {ns: "y"}}, podSelector: {matchLabels: {pod: b}}}]
"""))
    e2e.expect(expected(P, lambda s, d: d != "x/a" or s == "y/b"))
    old_ip = lab.pod_ip("y", "b")
    moved = model_object("y/b")
    moved["spec"]["nodeName"] = "node-1" if moved["spec"]["nodeName"] != "node-1" else "node-2"
    e2e.kubectl("delete", "pod", "-n", "y", "b", "--wait=true")
    e2e.create_pods([moved], remove=False)  # stays: it is the model's y/b, elsewhere
    assert lab.pod_ip("y", "b") != old_ip
    e2e.expect(expected(P, lambda s, d: d != "x/a" or s == "y/b"))
