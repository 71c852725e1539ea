"""picket's own image enforcing NetworkPolicy on a real kind cluster: real kubelets, containers and netcat.

Pods x/a (worker), x/b (worker2), x/c (control plane), y/a (worker), y/b (worker2): every pair
crosses nodes or stays on one, both happen. Each test applies standard YAML with kubectl and
expects the whole netcat matrix; the policies are deleted after it (``policies``).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.kind.harness import Kind, expected

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]


def ns(key: str) -> str:
    return key.split("/")[0]


def policy(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def test_everything_open_without_policies(kind: Kind, pods: list[str]) -> None:
    kind.expect(expected(pods, lambda s, d: True))


def test_default_deny_ingress_isolates_a_namespace(kind: Kind, pods: list[str],
                                                   policies: list[tuple[str, str]]) -> None:
    kind.apply(policy("x", "deny-all", {"podSelector": {}, "policyTypes": ["Ingress"]}))
    policies.append(("x", "deny-all"))
    kind.expect(expected(pods, lambda s, d: ns(d) != "x"))


def test_pod_and_namespace_selectors(kind: Kind, pods: list[str], policies: list[tuple[str, str]]) -> None:
    # x/a: from pods labelled pod=b of x, or from any pod of namespaces labelled ns=y.
    kind.apply(policy("x", "a-from-b-or-y", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}},
                              {"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}],
    }))
    policies.append(("x", "a-from-b-or-y"))
    kind.expect(expected(pods, lambda s, d: d != "x/a" or s in ("x/b", "y/a", "y/b")))


def test_ip_block_with_except(kind: Kind, pods: list[str], policies: list[tuple[str, str]]) -> None:
    # y/b: from the pod network minus x/c's address.
    kind.apply(policy("y", "b-from-block", {
        "podSelector": {"matchLabels": {"pod": "b"}},
        "ingress": [{"from": [{"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{kind.ips['x/c']}/32"]}}]}],
    }))
    policies.append(("y", "b-from-block"))
    kind.expect(expected(pods, lambda s, d: d != "y/b" or s != "x/c"))


def test_named_ports_and_udp(kind: Kind, pods: list[str], policies: list[tuple[str, str]]) -> None:
    # x/b accepts only its named port 'alt' (TCP 81) and 'echo' (UDP 80): TCP 80 is closed to everyone.
    kind.apply(policy("x", "b-named-ports", {
        "podSelector": {"matchLabels": {"pod": "b"}},
        "ingress": [{"ports": [{"port": "alt"}, {"port": "echo", "protocol": "UDP"}]}],
    }))
    policies.append(("x", "b-named-ports"))
    kind.expect(expected(pods, lambda s, d: d != "x/b"), port=80, protocol="TCP")
    kind.expect(expected(pods, lambda s, d: True), port=81, protocol="TCP")
    kind.expect(expected(pods, lambda s, d: True), port=80, protocol="UDP")


def test_udp_denied_when_only_tcp_is_allowed(kind: Kind, pods: list[str], policies: list[tuple[str, str]]) -> None:
    kind.apply(policy("y", "a-tcp-only", {
        "podSelector": {"matchLabels": {"pod": "a"}},
        "ingress": [{"ports": [{"port": 80, "protocol": "TCP"}]}],
    }))
    policies.append(("y", "a-tcp-only"))
    kind.expect(expected(pods, lambda s, d: d != "y/a"), port=80, protocol="UDP")
    kind.expect(expected(pods, lambda s, d: True), port=80, protocol="TCP")


def test_egress_deny(kind: Kind, pods: list[str], policies: list[tuple[str, str]]) -> None:
    kind.apply(policy("x", "c-sends-nothing", {"podSelector": {"matchLabels": {"pod": "c"}},
                                              "policyTypes": ["Egress"]}))
    policies.append(("x", "c-sends-nothing"))
    kind.expect(expected(pods, lambda s, d: s != "x/c"))


def test_update_delete_and_relabel(kind: Kind, pods: list[str], policies: list[tuple[str, str]]) -> None:
    only_from_b = {"podSelector": {"matchLabels": {"pod": "a"}},
                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}
    kind.apply(policy("x", "a-allow", only_from_b))
    policies.append(("x", "a-allow"))
    kind.expect(expected(pods, lambda s, d: d != "x/a" or s == "x/b"))
    # update: now from pods labelled role=friend only (nobody yet)
    kind.apply(policy("x", "a-allow", {**only_from_b, "ingress": [
        {"from": [{"podSelector": {"matchLabels": {"role": "friend"}}}]}]}))
    kind.expect(expected(pods, lambda s, d: d != "x/a"))
    # relabel x/c into the allowed set, then out again
    kind.kubectl("-n", "x", "label", "pod", "c", "role=friend")
    kind.expect(expected(pods, lambda s, d: d != "x/a" or s == "x/c"))
    kind.kubectl("-n", "x", "label", "pod", "c", "role-")
    kind.expect(expected(pods, lambda s, d: d != "x/a"))
    # delete: open again
    kind.delete("networkpolicy", "a-allow", "x")
    kind.expect(expected(pods, lambda s, d: True))
