"""Hypothesis strategies: random ClusterNetworkPolicies (Admin and Baseline) over the clusters of
``strategies`` (same namespaces, labels, ports, CIDRs), so all three tiers meet on one cluster."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.unit.operator.compiler.strategies import (
    CIDRS,
    LABEL_VALUES,
    NS_LABEL_VALUES,
    clusters,
    label_maps,
    selectors,
)

PRIORITIES = [0, 5, 5, 10, 1000]  # repeated: equal priorities happen
NODE_LABEL_VALUES = {"pool": ["a", "b"], "role": ["cp"]}
NODE_IPS = ["10.1.1.200", "10.2.0.200", "172.18.0.2"]  # inside and outside the generated CIDRS
ACTIONS = ["Accept", "Deny", "Pass"]

namespaced_pods = st.fixed_dictionaries(
    {"podSelector": selectors(LABEL_VALUES)}, optional={"namespaceSelector": selectors(NS_LABEL_VALUES)})
subjects = st.one_of(st.fixed_dictionaries({"namespaces": selectors(NS_LABEL_VALUES)}),
                     st.fixed_dictionaries({"pods": namespaced_pods}))
destination_ports = st.one_of(
    st.fixed_dictionaries({"number": st.sampled_from([53, 80, 81, 8080])}),
    st.fixed_dictionaries({"range": st.sampled_from([{"start": 53, "end": 80}, {"start": 80, "end": 81},
                                                     {"start": 81, "end": 9000}])}),
)
protocol_entries = st.one_of(
    st.builds(lambda key, port: {key: {"destinationPort": port}}, st.sampled_from(["tcp", "udp", "sctp"]),
              destination_ports),
    st.fixed_dictionaries({"destinationNamedPort": st.sampled_from(["http", "dns", "metrics", "nosuch"])}),
)


def peers(egress: bool) -> st.SearchStrategy[dict[str, Any]]:
    choices = [st.fixed_dictionaries({"namespaces": selectors(NS_LABEL_VALUES)}),
               st.fixed_dictionaries({"pods": namespaced_pods})]
    if egress:
        choices.append(st.fixed_dictionaries({"networks": st.lists(st.sampled_from(CIDRS), min_size=1, max_size=2,
                                                                    unique=True)}))
        choices.append(st.fixed_dictionaries({"nodes": selectors(NODE_LABEL_VALUES)}))
    return st.one_of(*choices)


@st.composite
def cnp_rules(draw: st.DrawFn, egress: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": draw(st.sampled_from(ACTIONS)),
                            "to" if egress else "from": draw(st.lists(peers(egress), min_size=1, max_size=2))}
    if draw(st.booleans()):
        entries = draw(st.lists(protocol_entries, min_size=1, max_size=2))
        if egress and any("networks" in p or "nodes" in p for p in rule["to"]):
            # the CRD forbids named ports next to a networks peer
            entries = [e for e in entries if "destinationNamedPort" not in e] or [{"tcp": {"destinationPort":
                                                                                           {"number": 80}}}]
        rule["protocols"] = entries
    if draw(st.booleans()):
        rule["name"] = draw(st.sampled_from(["r1", "r2", "allow-dns"]))
    return rule


@st.composite
def cluster_network_policies(draw: st.DrawFn, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"tier": draw(st.sampled_from(["Admin", "Baseline"])),
                            "priority": draw(st.sampled_from(PRIORITIES)), "subject": draw(subjects)}
    for field, egress in (("ingress", False), ("egress", True)):
        if draw(st.booleans()):
            spec[field] = draw(st.lists(cnp_rules(egress), min_size=1, max_size=3))
    return {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": name}, "spec": spec}


@st.composite
def nodes(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [{"apiVersion": "v1", "kind": "Node",
             "metadata": {"name": f"node-{i}", "labels": draw(label_maps(NODE_LABEL_VALUES))},
             "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname",
                                                                               "address": f"node-{i}"}]}}
            for i, ip in enumerate(NODE_IPS)]


def unique_port_names(obj: dict[str, Any]) -> dict[str, Any]:
    """A pod whose container ports have unique (name, protocol) pairs, as the API validates them
    ("Duplicate value"); ``strategies.clusters`` may draw two TCP ports named http."""
    if obj["kind"] != "Pod":
        return obj
    seen: set[tuple[str, str]] = set()
    for container in obj["spec"]["containers"]:
        ports = []
        for p in container.get("ports") or []:
            if (p["name"], p["protocol"]) not in seen:
                seen.add((p["name"], p["protocol"]))
                ports.append(p)
        container["ports"] = ports
    return obj


@st.composite
def three_tier_clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    objects = [unique_port_names(o) for o in draw(clusters())] + draw(nodes())
    return objects + [draw(cluster_network_policies(f"cnp{i}")) for i in range(draw(st.integers(1, 4)))]
