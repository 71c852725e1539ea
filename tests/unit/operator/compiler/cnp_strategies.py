"""Hypothesis strategies: random ClusterNetworkPolicies (Admin and Baseline) over the clusters of
``strategies`` (same namespaces, labels, ports, CIDRs), so all three tiers meet on one cluster."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from tests.unit.operator.compiler.strategies import CIDRS, LABEL_VALUES, NS_LABEL_VALUES, clusters, selectors

PRIORITIES = [0, 5, 5, 10, 1000]  # repeated: equal priorities happen
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
    return st.one_of(*choices)


@st.composite
def cnp_rules(draw: st.DrawFn, egress: bool) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": draw(st.sampled_from(ACTIONS)),
                            "to" if egress else "from": draw(st.lists(peers(egress), min_size=1, max_size=2))}
    if draw(st.booleans()):
        entries = draw(st.lists(protocol_entries, min_size=1, max_size=2))
        if egress and any("networks" in p for p in rule["to"]):
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
def three_tier_clusters(draw: st.DrawFn) -> list[dict[str, Any]]:
    objects = draw(clusters())
    return objects + [draw(cluster_network_policies(f"cnp{i}")) for i in range(draw(st.integers(1, 4)))]
