"""Calico frontend: raw projectcalico.org/v3 policies -> IR, and clear rejections."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from picket.model import Action, Direction, EndpointKind, PortRange, Protocol
from picket_operator.compiler.frontends.calico.frontend import translate
from picket_operator.compiler.frontends.calico.scoped import ScopedSelector

EXAMPLES = Path(__file__).resolve().parents[5] / "examples" / "calico"


def gnp(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "GlobalNetworkPolicy", "metadata": {"name": "p"},
            "spec": spec}


def cnp(ns: str = "team", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "projectcalico.org/v3", "kind": "NetworkPolicy",
            "metadata": {"name": "p", "namespace": ns}, "spec": spec}


def policy_docs() -> list[dict[str, Any]]:
    docs = [d for p in sorted(EXAMPLES.glob("*/*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    return [d for d in docs if d["kind"].endswith("NetworkPolicy")]


@pytest.mark.parametrize("doc", policy_docs(), ids=lambda d: d["metadata"]["name"])
def test_seed_policies_translate_without_problems(doc: dict[str, Any]) -> None:
    t = translate(doc)
    assert t.problems == ()
    assert t.policy is not None


def test_seed_deny_rule() -> None:
    doc = next(d for d in policy_docs() if d["spec"].get("ingress", [{}])[0].get("action") == "Deny")
    policy = translate(doc).policy
    assert policy is not None
    assert policy.order == 500
    assert policy.directions == {Direction.INGRESS}
    assert policy.endpoint_kinds == {EndpointKind.POD, EndpointKind.HOST}
    (rule,) = policy.ingress
    assert (rule.action, rule.protocol, rule.ports) == (Action.DENY, Protocol.TCP, (PortRange(9091, 9091),))
    assert rule.peers == ()
    (neg,) = rule.not_peers
    assert isinstance(neg.selector, ScopedSelector)
    assert neg.selector.matches({"calico-prometheus-access": "true"}, "monitoring", {})
    assert not neg.selector.matches({}, "", {})


@pytest.mark.parametrize(
    ("spec", "directions"),
    [
        ({}, {Direction.INGRESS}),
        ({"ingress": [{"action": "Allow"}]}, {Direction.INGRESS}),
        ({"egress": [{"action": "Allow"}]}, {Direction.EGRESS}),
        ({"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}, {Direction.INGRESS, Direction.EGRESS}),
        ({"types": ["Egress"], "ingress": [{"action": "Allow"}]}, {Direction.EGRESS}),
    ],
)
def test_types_default_as_calico_documents(spec: dict[str, Any], directions: set[Direction]) -> None:
    policy = translate(gnp(**spec)).policy
    assert policy is not None
    assert policy.directions == directions


def test_unset_order_sorts_last() -> None:
    policy = translate(gnp()).policy
    assert policy is not None
    assert policy.order == math.inf


def test_namespaced_policy_is_scoped_to_its_namespace() -> None:
    rule = {"action": "Allow", "source": {"selector": "all()"}}
    policy = translate(cnp(selector="app == 'x'", ingress=[rule])).policy
    assert policy is not None
    assert policy.applies_to.matches({"app": "x"}, "team", {})
    assert not policy.applies_to.matches({"app": "x"}, "other", {})
    assert policy.endpoint_kinds == {EndpointKind.POD}
    peer = policy.ingress[0].peers[0].selector
    assert peer is not None
    assert peer.matches({}, "team", {}) and not peer.matches({}, "other", {})


def test_rule_fields_map_to_ir() -> None:
    rule = {
        "action": "Pass", "protocol": "udp", "notProtocol": None,
        "source": {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"], "selector": "a == 'b'",
                   "namespaceSelector": "global()"},
        "destination": {"ports": [53, "8000:9000", "dns"], "notPorts": ["8080"]},
    }
    policy = translate(gnp(ingress=[rule])).policy
    assert policy is not None
    (r,) = policy.ingress
    assert r.action is Action.PASS and r.protocol is Protocol.UDP
    assert r.ports == (PortRange(53, 53), PortRange(8000, 9000)) and r.named_ports == ("dns",)
    assert r.not_ports == (PortRange(8080, 8080),)
    (peer,) = r.peers
    assert peer.nets == ("10.0.0.0/8",)
    assert peer.selector is not None and peer.selector.matches({"a": "b"}, "", {})
    assert not peer.selector.matches({"a": "b"}, "ns", {})  # global(): non-namespaced only
    assert [p.nets for p in r.not_peers] == [("10.1.0.0/16",)]


@pytest.mark.parametrize(
    ("doc", "field", "words"),
    [
        (gnp(selector='a = "b"'), "spec.selector", "position 2: expected '=='"),
        (gnp(ingress=[{"action": "Allow", "source": {"selector": "has(x"}}]), "spec.ingress[0].source.selector",
         "position 5: expected ')'"),
        (gnp(preDNAT=True), "spec.preDNAT", "not supported by picket"),
        (gnp(doNotTrack=True), "spec.doNotTrack", "not supported by picket"),
        (gnp(tier="security"), "spec.tier", "default tier"),
        (gnp(ingress=[{"action": "Block"}]), "spec.ingress[0].action", "Allow, Deny, Pass or Log"),
        (gnp(ingress=[{"action": "Allow", "destination": {"ports": [80]}}]), "spec.ingress[0].destination.ports",
         "need protocol"),
        (gnp(ingress=[{"action": "Allow", "protocol": "ICMPv6"}]), "spec.ingress[0].protocol", "not supported"),
        (gnp(egress=[{"action": "Allow", "destination": {"nets": ["10.0.0.300/8"]}}]),
         "spec.egress[0].destination.nets[0]", "CIDR"),
        (gnp(ingress=[{"action": "Allow", "protocol": "TCP", "source": {"ports": [1]}}]),
         "spec.ingress[0].source.ports", "source ports"),
        (gnp(order="first"), "spec.order", "number"),
    ],
)
def test_rejections_name_the_field(doc: dict[str, Any], field: str, words: str) -> None:
    t = translate(doc)
    assert t.policy is None
    (problem,) = t.problems
    assert problem.field == field
    assert words in problem.message


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000)
    | st.sampled_from(["Allow", "TCP", "a == 'b'", "80", "1:2", "x(", "10.0.0.0/8"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["action", "protocol", "source", "destination", "ports", "notPorts", "selector", "nets",
                         "notSelector", "namespaceSelector", "notNets", "notProtocol"]), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300)
@given(st.dictionaries(st.sampled_from(["selector", "order", "types", "ingress", "egress", "namespaceSelector"]), JSON))
def test_any_spec_translates_or_is_reported_never_crashes(spec: dict[str, Any]) -> None:
    t = translate(gnp(**spec))
    assert (t.policy is None) == bool(t.problems)


@pytest.mark.parametrize("key", ["applyOnForward", "preDNAT", "doNotTrack"])
def test_host_forwarding_options_are_rejected_with_a_reason(key: str) -> None:
    translation = translate(gnp(**{key: True}))
    assert translation.policy is None
    (problem,) = translation.problems
    assert problem.field == f"spec.{key}" and "not supported by picket (" in problem.message
    assert problem.message.endswith("the policy is not applied")
    assert translate(gnp(**{key: False})).policy is not None  # false is the default: fine
