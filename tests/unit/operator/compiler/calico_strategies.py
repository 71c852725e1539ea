"""Hypothesis strategies for Calico objects: policies, HostEndpoints and (Global)NetworkSets.

Sized for the incremental-vs-full property test: few names (so events replace and delete the
same objects), labels that both Calico selectors and the Kubernetes strategies' pods use, nets
that overlap pod and host addresses, and broken versions of each object (not applied, reported).
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.unit.operator.compiler.strategies import NAMESPACES

API = "projectcalico.org/v3"
SELECTORS = ["all()", "app == 'web'", "app != 'web'", "has(access)", "access == 'yes'", "!has(app)", "global()",
             "tier in {'front', 'back'}", "running == 'yes'"]
NS_SELECTORS = ["team == 'a'", "global()", "all()", "has(env)"]
NETS = ["10.1.0.0/16", "10.1.1.1/32", "10.2.0.0/16", "172.15.0.0/24", "10.100.0.0/24", "10.100.0.2/32"]
HOST_NAMES, SET_NAMES, POLICY_NAMES = ["h0", "h1"], ["s0", "s1"], ["c0", "c1", "c2"]
HOST_IPS = ["10.100.0.1", "10.100.0.2", "10.1.1.1", "10.100.0.3"]
LABELS = st.dictionaries(st.sampled_from(["app", "access", "running", "tier"]),
                         st.sampled_from(["web", "yes", "front"]), max_size=2)


@st.composite
def calico_rules(draw: st.DrawFn, direction: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": draw(st.sampled_from(["Allow", "Deny", "Pass", "Log"]))}
    if draw(st.booleans()):
        rule["protocol"] = "TCP"
        ports = draw(st.sampled_from([None, [80], ["8000:9000"], ["http"], [80, "metrics"]]))
        if ports:
            rule["destination"] = {"ports": ports}
    peer: dict[str, Any] = draw(st.fixed_dictionaries({}, optional={
        "selector": st.sampled_from(SELECTORS),
        "notSelector": st.sampled_from(SELECTORS),
        "nets": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
        "notNets": st.lists(st.sampled_from(NETS), min_size=1, max_size=1),
    }))
    if draw(st.booleans()):
        peer["namespaceSelector"] = draw(st.sampled_from(NS_SELECTORS))
    if peer:
        side = "source" if direction == "ingress" else "destination"
        rule[side] = {**rule.get(side, {}), **peer}
    return rule


@st.composite
def calico_policies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["GlobalNetworkPolicy", "NetworkPolicy"]))
    spec: dict[str, Any] = {"selector": draw(st.sampled_from(SELECTORS))}
    order = draw(st.sampled_from([None, 1, 500, 1000, 5000]))
    if order is not None:
        spec["order"] = order
    for direction in ("ingress", "egress"):
        rules = draw(st.lists(calico_rules(direction), max_size=2))
        if rules:
            spec[direction] = rules
    if draw(st.booleans()):
        spec["types"] = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if draw(st.integers(0, 9)) == 0:
        spec["selector"] = "app = 'web'"  # does not parse: not applied, reported
    meta: dict[str, Any] = {"name": draw(st.sampled_from(POLICY_NAMES))}
    if kind == "NetworkPolicy":
        meta["namespace"] = draw(st.sampled_from(NAMESPACES))
    return {"apiVersion": API, "kind": kind, "metadata": meta, "spec": spec}


@st.composite
def host_endpoints(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {"node": draw(st.sampled_from(["n1", "n2"])), "interfaceName": "eth0",
                            "expectedIPs": draw(st.lists(st.sampled_from(HOST_IPS), min_size=1, max_size=2,
                                                         unique=True))}
    if draw(st.booleans()):
        spec["ports"] = [{"name": "http", "port": draw(st.sampled_from([80, 8080])), "protocol": "TCP"}]
    if draw(st.booleans()):
        spec["profiles"] = ["projectcalico-default-allow"]
    if draw(st.integers(0, 9)) == 0:
        spec["expectedIPs"] = ["10.100.0.300"]  # broken: not applied, reported
    meta = {"name": draw(st.sampled_from(HOST_NAMES)), "labels": draw(LABELS)}
    return {"apiVersion": API, "kind": "HostEndpoint", "metadata": meta, "spec": spec}


@st.composite
def network_sets(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["GlobalNetworkSet", "NetworkSet"]))
    meta: dict[str, Any] = {"name": draw(st.sampled_from(SET_NAMES)), "labels": draw(LABELS)}
    if kind == "NetworkSet":
        meta["namespace"] = draw(st.sampled_from(NAMESPACES))
    nets = draw(st.lists(st.sampled_from(NETS), max_size=3))
    if draw(st.integers(0, 9)) == 0:
        nets = ["10.0.0.0/33"]  # broken
    return {"apiVersion": API, "kind": kind, "metadata": meta, "spec": {"nets": nets}}


def object_key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return (f"{obj['kind']}.{obj['apiVersion']}", meta.get("namespace", ""), meta["name"])
