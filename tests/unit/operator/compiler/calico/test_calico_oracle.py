"""The Calico oracle against seed 002's documented outcomes and Calico's documented rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.operator.compiler.calico.oracle import Entity, Oracle, World, entities_of

EXAMPLES = Path(__file__).resolve().parents[5] / "examples" / "calico"
MASTER, NODE0 = "10.100.0.15", "10.100.0.16"
PROM, OTHER, CTRL = "10.244.1.5", "10.244.1.6", "10.244.2.7"
PODS = [
    Entity("prometheus", "monitoring", {"calico-prometheus-access": "true"}, (PROM,)),
    Entity("other", "monitoring", {"app": "other"}, (OTHER,)),
    Entity("kube-controllers", "calico-system", {"k8s-app": "calico-kube-controllers"}, (CTRL,)),
]
NAMESPACES = {"monitoring": {"team": "obs"}, "calico-system": {}, "default": {}}


def seed_world(approach: str) -> World:
    docs = [d for p in sorted((EXAMPLES / approach).glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    policies = [d for d in docs if d["kind"].endswith("NetworkPolicy")]
    if approach == "deny-list":  # the seed's typha file reuses the node policy's name: keep the 9091 one
        policies = [p for p in policies if "9093" not in str(p)]
    return World(PODS + entities_of(docs), NAMESPACES, policies)


DENY_LIST = [
    (PROM, MASTER, 9091, "TCP", True),
    (OTHER, MASTER, 9091, "TCP", False),
    ("172.15.0.9", NODE0, 9091, "TCP", True),  # the GlobalNetworkSet grants its CIDR
    ("192.168.1.1", NODE0, 9091, "TCP", False),  # unknown to Calico: not labelled, denied
    (OTHER, MASTER, 10250, "TCP", True),  # unrelated host traffic keeps flowing
    (OTHER, MASTER, 9091, "UDP", True),  # the deny rule is TCP only
    (MASTER, OTHER, 8080, "TCP", True),  # host egress allowed by default-host
    (OTHER, CTRL, 9094, "TCP", False),  # outside calico-system: not denied by the rule, but tier end
    (PROM, OTHER, 80, "TCP", True),  # pods no policy selects keep the default allow
]
ALLOW_LIST = [
    (PROM, MASTER, 9091, "TCP", True),
    (OTHER, MASTER, 9091, "TCP", False),
    ("172.15.0.101", NODE0, 9091, "TCP", True),
    ("172.15.0.102", NODE0, 9091, "TCP", False),
    (OTHER, MASTER, 10250, "TCP", False),  # host endpoints deny by default
    (OTHER, MASTER, 22, "TCP", True),  # failsafe inbound
    (OTHER, MASTER, 68, "UDP", True),
    (MASTER, OTHER, 8080, "TCP", False),  # no egress policy for the host: denied
    (MASTER, "10.0.0.10", 53, "UDP", True),  # failsafe outbound
    (MASTER, "10.0.0.10", 22, "TCP", False),  # 22 is inbound-only failsafe
]


@pytest.mark.parametrize(("src", "dst", "port", "proto", "ok"), DENY_LIST)
def test_seed_deny_list(src: str, dst: str, port: int, proto: str, ok: bool) -> None:
    assert Oracle(seed_world("deny-list")).allowed(src, dst, port, proto) is ok


@pytest.mark.parametrize(("src", "dst", "port", "proto", "ok"), ALLOW_LIST)
def test_seed_allow_list(src: str, dst: str, port: int, proto: str, ok: bool) -> None:
    assert Oracle(seed_world("allow-list")).allowed(src, dst, port, proto) is ok


A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"
WEB = Entity("web", "default", {"app": "web"}, (A,), ports=(("http", "TCP", 8080),))
CLIENT = Entity("client", "default", {"app": "client"}, (B,))
REMOTE = Entity("remote", "monitoring", {"app": "client"}, (C,))


def gnp(name: str, order: float | None = None, **spec: Any) -> dict[str, Any]:
    spec.setdefault("selector", "app == 'web'")
    if order is not None:
        spec["order"] = order
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
            "spec": spec}


def knp(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {"matchLabels": {"app": "web"}})
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


ALLOW, DENY, PASS, LOG = ({"action": a} for a in ("Allow", "Deny", "Pass", "Log"))


@pytest.mark.parametrize(
    ("policies", "src", "port", "ok"),
    [
        ([gnp("a", 1, ingress=[DENY]), gnp("b", 2, ingress=[ALLOW])], B, 80, False),  # lowest order first
        ([gnp("a", 2, ingress=[DENY]), gnp("b", 1, ingress=[ALLOW])], B, 80, True),
        ([gnp("a", None, ingress=[DENY]), gnp("b", 9e9, ingress=[ALLOW])], B, 80, True),  # unset order last
        ([gnp("b", 1, ingress=[DENY]), gnp("a", 1, ingress=[ALLOW])], B, 80, True),  # ties by name
        ([gnp("a", 1, ingress=[LOG]), gnp("b", 2, ingress=[ALLOW])], B, 80, True),  # Log continues
        ([gnp("a", 1, ingress=[PASS]), gnp("b", 2, ingress=[DENY])], B, 80, True),  # Pass -> profile
        ([gnp("a", 1, ingress=[{"action": "Allow", "source": {"selector": "app == 'x'"}}])], B, 80, False),
        ([gnp("a", 1, egress=[DENY])], B, 80, True),  # types defaults to Egress only
        ([gnp("a", 1, ingress=[DENY], egress=[ALLOW])], B, 80, False),
        ([gnp("a", 1)], B, 80, False),  # no rules: Ingress, selected, tier end deny
        ([gnp("a", 500, ingress=[DENY]), knp("k", ingress=[{}])], B, 80, False),  # Calico before k8s (1000)
        ([knp("k", ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "x"}}}]}]),
          gnp("z", 2000, ingress=[ALLOW])], B, 80, True),  # k8s has no per-policy deny: same tier
        ([knp("k", ingress=[{"from": [{"podSelector": {}}]}])], C, 80, False),  # other namespace
    ],
)
def test_ordering_and_actions(policies: list[dict[str, Any]], src: str, port: int, ok: bool) -> None:
    world = World([WEB, CLIENT, REMOTE], {"default": {}, "monitoring": {"team": "obs"}}, policies)
    assert Oracle(world).allowed(src, A, port, "TCP") is ok


def rule(**fields: Any) -> dict[str, Any]:
    return {"action": "Allow", **fields}


@pytest.mark.parametrize(
    ("r", "src", "port", "proto", "ok"),
    [
        (rule(protocol="TCP", destination={"ports": ["8000:9000"]}), B, 8080, "TCP", True),
        (rule(protocol="TCP", destination={"ports": ["8000:9000"]}), B, 9001, "TCP", False),
        (rule(protocol="TCP", destination={"ports": ["http"]}), B, 8080, "TCP", True),  # named port
        (rule(protocol="TCP", destination={"ports": ["http"]}), B, 8081, "TCP", False),
        (rule(protocol="TCP", destination={"notPorts": [80]}), B, 80, "TCP", False),
        (rule(protocol=6), B, 80, "TCP", True),
        (rule(notProtocol="UDP"), B, 80, "UDP", False),
        (rule(source={"nets": ["10.0.0.0/30"]}), B, 80, "TCP", True),
        (rule(source={"notNets": ["10.0.0.2/32"]}), B, 80, "TCP", False),
        (rule(source={"selector": "app == 'client'"}), C, 80, "TCP", True),  # global policy: any namespace
        (rule(source={"selector": "app == 'client'", "namespaceSelector": "team == 'obs'"}), B, 80, "TCP", False),
        (rule(source={"selector": "app == 'client'", "namespaceSelector": "team == 'obs'"}), C, 80, "TCP", True),
        (rule(source={"notSelector": "app == 'client'"}), "192.168.0.9", 80, "TCP", True),  # unknown address
        (rule(source={"namespaceSelector": "global()"}), B, 80, "TCP", False),
    ],
)
def test_rule_fields(r: dict[str, Any], src: str, port: int, proto: str, ok: bool) -> None:
    world = World([WEB, CLIENT, REMOTE], {"default": {}, "monitoring": {"team": "obs"}}, [gnp("p", 1, ingress=[r])])
    assert Oracle(world).allowed(src, A, port, proto) is ok


def test_namespaced_policy_scopes_rule_selectors_to_its_namespace() -> None:
    policy = gnp("p", 1, ingress=[rule(source={"selector": "app == 'client'"})])
    policy["kind"], policy["metadata"]["namespace"] = "NetworkPolicy", "default"
    world = World([WEB, CLIENT, REMOTE], {"default": {}, "monitoring": {}}, [policy])
    assert Oracle(world).allowed(B, A, 80)
    assert not Oracle(world).allowed(C, A, 80)


def test_global_network_set_selects_by_label_and_global_namespace_selector() -> None:
    nets = Entity("office", labels={"zone": "office"}, nets=("192.168.0.0/16",))
    r = rule(source={"selector": "zone == 'office'", "namespaceSelector": "global()"})
    world = World([WEB, nets], {"default": {}}, [gnp("p", 1, ingress=[r])])
    assert Oracle(world).allowed("192.168.3.4", A, 80)
    assert not Oracle(world).allowed("172.16.0.1", A, 80)
