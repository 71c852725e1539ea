"""Hypothesis strategies: small random clusters of Namespaces, Pods and NetworkPolicies."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

from tests.unit.operator.compiler.builders import make_ns, make_pod

NAMESPACES = ["x", "y", "z"]
POD_NAMES = ["p0", "p1", "p2", "p3"]
LABEL_VALUES = {"app": ["web", "db"], "tier": ["front", "back"]}
NS_LABEL_VALUES = {"team": ["a", "b"], "env": ["prod"]}
PORTS = [53, 80, 81, 8080]
PROTOCOLS = ["TCP", "UDP", "SCTP"]
CIDRS = ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16", "10.1.1.0/24"]
EXCEPTS = {"10.0.0.0/8": ["10.1.0.0/16", "10.2.3.0/24"], "10.1.0.0/16": ["10.1.1.0/24", "10.1.2.2/32"],
           "10.2.0.0/16": ["10.2.1.0/24"], "10.1.1.0/24": ["10.1.1.1/32"]}
CONTAINER_PORTS = [("http", 80, "TCP"), ("http", 8080, "TCP"), ("dns", 53, "UDP"), ("metrics", 81, "TCP"),
                   ("dns", 53, "TCP"), ("metrics", 81, "SCTP")]
LEGACY = {"net.beta.kubernetes.io/network-policy": json.dumps({"ingress": {"isolation": "DefaultDeny"}})}


def label_maps(values: dict[str, list[str]]) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(st.sampled_from(sorted(values)), st.sampled_from(sorted({v for vs in values.values()
                                                                                    for v in vs})), max_size=2)


def selectors(values: dict[str, list[str]]) -> st.SearchStrategy[dict[str, Any]]:
    keys, vals = sorted(values), sorted({v for vs in values.values() for v in vs})
    expression = st.one_of(
        st.fixed_dictionaries({"key": st.sampled_from(keys), "operator": st.sampled_from(["In", "NotIn"]),
                               "values": st.lists(st.sampled_from(vals), min_size=1, max_size=2)}),
        st.fixed_dictionaries({"key": st.sampled_from(keys),
                               "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
    )
    return st.one_of(
        st.just({}),
        st.fixed_dictionaries({"matchLabels": label_maps(values)}),
        st.fixed_dictionaries({"matchExpressions": st.lists(expression, min_size=1, max_size=2)}),
    )


@st.composite
def ip_blocks(draw: st.DrawFn) -> dict[str, Any]:
    cidr = draw(st.sampled_from(CIDRS))
    block: dict[str, Any] = {"cidr": cidr}
    excepts = draw(st.lists(st.sampled_from(EXCEPTS[cidr]), max_size=2, unique=True))
    if excepts:
        block["except"] = excepts
    return {"ipBlock": block}


peers = st.one_of(
    st.fixed_dictionaries({"podSelector": selectors(LABEL_VALUES)}),
    st.fixed_dictionaries({"namespaceSelector": selectors(NS_LABEL_VALUES)}),
    st.fixed_dictionaries({"namespaceSelector": selectors(NS_LABEL_VALUES), "podSelector": selectors(LABEL_VALUES)}),
    ip_blocks(),
)

port_entries = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"port": st.sampled_from(PORTS)}, optional={"protocol": st.sampled_from(PROTOCOLS)}),
    st.fixed_dictionaries({"port": st.sampled_from([53, 80]), "endPort": st.sampled_from([81, 8080])}),
    st.fixed_dictionaries({"protocol": st.sampled_from(PROTOCOLS)}),
    st.fixed_dictionaries({"port": st.sampled_from(["http", "dns", "metrics", "nosuch"])},
                          optional={"protocol": st.sampled_from(PROTOCOLS)}),
)


@st.composite
def rules(draw: st.DrawFn, peer_field: str) -> dict[str, Any]:
    rule: dict[str, Any] = {}
    if draw(st.booleans()):
        rule["ports"] = draw(st.lists(port_entries, max_size=2))
    if draw(st.booleans()):
        rule[peer_field] = draw(st.lists(peers, max_size=2))
    return rule


@st.composite
def policies(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": draw(selectors(LABEL_VALUES))}
    for field, peer_field in (("ingress", "from"), ("egress", "to")):
        choice = draw(st.sampled_from(["absent", "empty", "rules"]))
        if choice == "empty":
            spec[field] = []
        elif choice == "rules":
            spec[field] = draw(st.lists(rules(peer_field), min_size=1, max_size=2))
    types = draw(st.sampled_from([None, ["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    if types is not None:
        spec["policyTypes"] = types
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": draw(st.sampled_from(NAMESPACES)), "name": name or draw(st.sampled_from(
                ["np0", "np1", "np2"]))}, "spec": spec}


@st.composite
def namespaces(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    ns = name or draw(st.sampled_from(NAMESPACES))
    legacy = draw(st.sampled_from([None, None, None, LEGACY]))
    return make_ns(ns, draw(label_maps(NS_LABEL_VALUES)), legacy)


@st.composite
def pods(draw: st.DrawFn, name: str | None = None) -> dict[str, Any]:
    ns = draw(st.sampled_from(NAMESPACES))
    pod = name or draw(st.sampled_from(POD_NAMES))
    ip = draw(st.sampled_from(["10.1.1.1", "10.1.2.2", "10.2.3.3", "10.2.1.4", "10.1.1.5", "10.9.0.6", "10.1.1.7"]))
    ports = tuple(draw(st.lists(st.sampled_from(CONTAINER_PORTS), max_size=3, unique=True)))
    extra = draw(st.sampled_from([{}, {}, {}, {}, {"phase": "Succeeded"}, {"host_network": True}, {"deleting": True}]))
    no_ip = draw(st.integers(0, 9)) == 0
    return make_pod(ns, pod, None if no_ip else ip, draw(label_maps(LABEL_VALUES)), ports, **extra)


@st.composite
def clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    objects = [draw(namespaces(n)) for n in NAMESPACES]
    used_ips: set[str] = set()
    for i in range(draw(st.integers(2, 6))):
        pod = draw(pods(f"p{i}"))
        ip = pod["status"].get("podIP")
        if ip in used_ips:  # unique addresses: the oracle names pods by address
            continue
        used_ips.add(ip)
        objects.append(pod)
    objects += [draw(policies(f"np{i}")) for i in range(draw(st.integers(0, 4)))]
    return objects
