"""Property test: compiling Calico (and Kubernetes) policies agrees with the Calico oracle.

Random small worlds (pods in two namespaces, two HostEndpoints with random labels and profiles,
GlobalNetworkSets / NetworkSets with random labels and nets, Calico GlobalNetworkPolicy /
NetworkPolicy and Kubernetes NetworkPolicy) are compiled by ``compile_cluster`` and evaluated with
``picket.evaluating.connection_allowed``; the oracle decides the same connections from the raw
objects. Checked: every pair of pods and hosts, and sources outside the cluster (inside and
outside the network sets) to every pod and host, on TCP ports (failsafe 22 and 179 included) and
UDP 53 and 68 (failsafe outbound / inbound).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picket.evaluating import connection_allowed
from picket.model import Compiled, EndpointRules, Protocol
from picket_operator.compiler.compiling import compile_cluster
from tests.unit.operator.compiler.calico.oracle import Entity, Oracle, World, entities_of

NAMESPACES = {"a": {"team": "x"}, "b": {"team": "y"}}
PODS = [("a", "p0", "10.0.0.10"), ("a", "p1", "10.0.0.11"), ("b", "p2", "10.0.1.12"), ("b", "p3", "10.0.1.13")]
SELECTORS = ["all()", "role == 'web'", "role != 'web'", "has(role)", "!has(role)", "role in {'web', 'db'}",
             "role starts with 'w' || tier == 'x'", "global()"]
NS_SELECTORS = ["team == 'x'", "all()", "global()", "has(team)"]
NETS = ["10.0.0.0/24", "10.0.1.12/32", "10.0.0.0/16"]
PORTS = [80, 8080, 443]
HOSTS = [("h0", "10.100.0.1"), ("h1", "10.100.0.2")]
SET_NETS = ["172.15.0.0/24", "10.0.0.0/24", "10.0.1.12/32", "10.100.0.0/24", "172.15.0.7/32"]
OUTSIDE = ["172.15.0.7", "192.168.9.9", "10.0.0.99"]  # addresses of no endpoint
CHECKED = [*((Protocol.TCP, p) for p in (*PORTS, 22, 179)), (Protocol.UDP, 53), (Protocol.UDP, 68)]

labels = st.dictionaries(st.sampled_from(["role", "tier"]), st.sampled_from(["web", "db", "x"]), max_size=2)

entity_rule = st.fixed_dictionaries(
    {},
    optional={
        "selector": st.sampled_from(SELECTORS),
        "notSelector": st.sampled_from(SELECTORS),
        "namespaceSelector": st.sampled_from(NS_SELECTORS),
        "nets": st.lists(st.sampled_from(NETS), min_size=1, max_size=2),
        "notNets": st.lists(st.sampled_from(NETS), min_size=1, max_size=1),
    },
)


@st.composite
def calico_rule(draw: st.DrawFn) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": draw(st.sampled_from(["Allow", "Deny", "Pass", "Log"]))}
    if draw(st.booleans()):
        rule["protocol"] = "TCP"
        dst: dict[str, Any] = {}
        choice = draw(st.sampled_from(["ports", "notPorts", "range", "none"]))
        if choice == "ports":
            dst["ports"] = [draw(st.sampled_from(PORTS))]
        elif choice == "notPorts":
            dst["notPorts"] = [draw(st.sampled_from(PORTS))]
        elif choice == "range":
            dst["ports"] = ["8000:9000"]
        if dst:
            rule["destination"] = dst
    peer = draw(entity_rule)
    if peer:
        rule["peer"] = peer
    return rule


def _place(rule: dict[str, Any], direction: str) -> dict[str, Any]:
    out = dict(rule)
    peer = out.pop("peer", None)
    if peer:
        key = "source" if direction == "ingress" else "destination"
        out[key] = {**out.get(key, {}), **peer}
    return out


@st.composite
def policy(draw: st.DrawFn, index: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["GlobalNetworkPolicy", "NetworkPolicy", "k8s"]))
    name = f"pol{index}"
    if kind == "k8s":
        spec: dict[str, Any] = {"podSelector": {"matchLabels": draw(labels)}}
        spec["ingress"] = [{"from": [{"podSelector": {"matchLabels": draw(labels)}}]}] if draw(st.booleans()) else []
        return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": draw(st.sampled_from(sorted(NAMESPACES)))}, "spec": spec}
    spec = {"selector": draw(st.sampled_from(SELECTORS))}
    order = draw(st.sampled_from([None, 1, 2, 500, 2000]))
    if order is not None:
        spec["order"] = order
    for direction in ("ingress", "egress"):
        rules = draw(st.lists(calico_rule(), max_size=3))
        if rules:
            spec[direction] = [_place(r, direction) for r in rules]
    if draw(st.booleans()):
        spec["types"] = draw(st.sampled_from([["Ingress"], ["Egress"], ["Ingress", "Egress"]]))
    meta: dict[str, Any] = {"name": name}
    if kind == "NetworkPolicy":
        meta["namespace"] = draw(st.sampled_from(sorted(NAMESPACES)))
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}


@st.composite
def host_endpoint(draw: st.DrawFn, name: str, ip: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"node": "n1", "interfaceName": "eth0", "expectedIPs": [ip]}
    if draw(st.integers(0, 3)) == 0:
        spec["profiles"] = ["projectcalico-default-allow"]
    return {"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
            "metadata": {"name": name, "labels": draw(labels)}, "spec": spec}


@st.composite
def network_set(draw: st.DrawFn, index: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": f"set{index}", "labels": draw(labels)}
    kind = draw(st.sampled_from(["GlobalNetworkSet", "NetworkSet"]))
    if kind == "NetworkSet":
        meta["namespace"] = draw(st.sampled_from(sorted(NAMESPACES)))
    nets = draw(st.lists(st.sampled_from(SET_NETS), min_size=1, max_size=2, unique=True))
    return {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": {"nets": nets}}


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[dict[str, Any]], World]:
    pod_labels = [draw(labels) for _ in PODS]
    count = draw(st.integers(min_value=1, max_value=3))
    policies = [draw(policy(i)) for i in range(count)]
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": lab}}
        for n, lab in NAMESPACES.items()
    ]
    for (ns, name, ip), lab in zip(PODS, pod_labels, strict=True):
        objects.append({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": lab},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}, "status": {"podIP": ip, "phase": "Running"},
        })
    calico = [draw(host_endpoint(name, ip)) for name, ip in HOSTS]
    calico += [draw(network_set(i)) for i in range(draw(st.integers(0, 2)))]
    entities = [Entity(name, ns, lab, (ip,)) for (ns, name, ip), lab in zip(PODS, pod_labels, strict=True)]
    entities += entities_of(calico)
    k8s_ns_labels = {n: {**lab, "kubernetes.io/metadata.name": n} for n, lab in NAMESPACES.items()}
    return objects + calico + policies, World(entities, k8s_ns_labels, policies)


def _endpoint(compiled: Compiled, ip: str) -> EndpointRules | None:
    return next((e for e in compiled.endpoints.values() if e.endpoint.ips[0] == ip), None)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds())
def test_compiled_calico_policies_agree_with_the_oracle(world: tuple[list[dict[str, Any]], World]) -> None:
    objects, w = world
    compiled = compile_cluster(objects)
    assert compiled.problems == (), compiled.problems
    oracle = Oracle(w)
    endpoints = [ip for _, _, ip in PODS] + [ip for _, ip in HOSTS]
    pairs = [(s, d) for s in endpoints + OUTSIDE for d in endpoints if s != d]
    for src_ip, dst_ip in pairs:
        src, dst = _endpoint(compiled, src_ip), _endpoint(compiled, dst_ip)
        assert dst is not None and (src is not None or src_ip in OUTSIDE)
        for protocol, port in CHECKED:
            got, _, _ = connection_allowed(src, dst, src_ip, dst_ip, protocol, port, compiled.peer_sets)
            want = oracle.allowed(src_ip, dst_ip, port, protocol.value)
            assert got == want, (src_ip, dst_ip, protocol, port)
