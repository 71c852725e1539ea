"""A three-tier reference oracle: ClusterNetworkPolicy Admin tier, NetworkPolicy tier, Baseline tier.

Written from network-policy-api v0.2.0's API reference (``apis/v1alpha2/clusternetworkpolicy_types.go``)
and shares no code with the compiler; the NetworkPolicy tier is ``oracle.Oracle``'s (from the v1
reference). It reads the raw objects and answers ``allowed(src, dst, port, protocol)`` the slow way.
Inputs are assumed valid.

What it encodes, quoting the reference:
* "Policy tiers are evaluated in the following order: Admin tier, NetworkPolicy tier, Baseline
  tier." "If Admin tier has made a final decision (Accept or Deny) on a connection, then no further
  evaluation is done." "v1.NetworkPolicy always makes a final decision for selected pods. Further
  evaluation only happens for Pods not selected by a v1.NetworkPolicy." "If a given connection
  wasn't allowed or denied by any of the tiers, the default kubernetes policy is applied, which
  says that all pods can communicate with each other."
* Within a tier: "Policies with lower priority values have higher precedence"; equal priorities
  may be applied in any order - this oracle takes them by name, the order picket documents.
  Within a policy, rules in the order written; the first matching rule's action decides.
* "Pass: Skips all further ClusterNetworkPolicy rules in the current tier for the selected
  traffic, and passes evaluation to the next tier."
* Subject / peers: ``namespaces`` (every pod of matching namespaces), ``pods`` (namespace AND pod
  selectors; empty = all); egress ``networks`` CIDRs match any address, pods' included; egress
  ``nodes`` match the addresses in the selected Nodes' ``status.addresses``. A rule
  matches when any peer matches and (``protocols`` absent) any traffic, else any protocol entry:
  ``tcp``/``udp``/``sctp`` with a port number, a range (inclusive) or no destinationPort (every
  port), or ``destinationNamedPort`` (a container port of the destination with that name, its
  number and protocol).
* Ingress is decided for the receiver, egress for the sender; both must allow.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from tests.unit.operator.compiler.oracle import Oracle, _labels_match

PROTOCOL_KEYS = {"tcp": "TCP", "udp": "UDP", "sctp": "SCTP"}


class ThreeTierOracle(Oracle):
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        super().__init__(objects)
        self.cnps = [o for o in objects if o["kind"] == "ClusterNetworkPolicy"]
        self.nodes = [o for o in objects if o["kind"] == "Node"]

    def _node_ips(self, node: dict[str, Any]) -> set[str]:
        return {a["address"] for a in node.get("status", {}).get("addresses") or [] if a.get("type") != "Hostname"}

    def _in_nodes(self, selector: dict[str, Any], ip: str) -> bool:
        return any(ip in self._node_ips(n) and _labels_match(selector, n["metadata"].get("labels") or {})
                   for n in self.nodes)

    def _in_pods(self, selector: dict[str, Any], pod_key: str, both: bool) -> bool:
        pod = self.all_pods[pod_key]
        ns = pod["metadata"]["namespace"]
        if not both:  # a `namespaces` selector
            return _labels_match(selector, self._ns_labels(ns))
        return _labels_match(selector.get("namespaceSelector"), self._ns_labels(ns)) and _labels_match(
            selector.get("podSelector"), pod["metadata"].get("labels") or {})

    def _subject(self, cnp: dict[str, Any], pod_key: str) -> bool:
        subject = cnp["spec"]["subject"]
        if "namespaces" in subject:
            return self._in_pods(subject["namespaces"], pod_key, both=False)
        return self._in_pods(subject["pods"], pod_key, both=True)

    def _peer(self, peer: dict[str, Any], other_key: str) -> bool:
        ip = ipaddress.ip_address(self.all_pods[other_key]["status"]["podIP"])
        if "networks" in peer:
            return any(ip in ipaddress.ip_network(n, strict=False) for n in peer["networks"])
        if "nodes" in peer:  # a pod's address is no node's address (host-network pods are no peers)
            return self._in_nodes(peer["nodes"], str(ip))
        if "namespaces" in peer:
            return self._in_pods(peer["namespaces"], other_key, both=False)
        return self._in_pods(peer["pods"], other_key, both=True)

    def _protocol_entry(self, entry: dict[str, Any], dst_key: str, port: int, protocol: str) -> bool:
        if "destinationNamedPort" in entry:
            containers = self.all_pods[dst_key].get("spec", {}).get("containers") or []
            return any(cp.get("name") == entry["destinationNamedPort"] and cp.get("protocol", "TCP") == protocol
                       and cp["containerPort"] == port for c in containers for cp in c.get("ports") or [])
        ((key, value),) = entry.items()
        if PROTOCOL_KEYS[key] != protocol:
            return False
        wanted = value.get("destinationPort")
        if wanted is None:
            return True
        if "number" in wanted:
            return bool(wanted["number"] == port)
        return bool(wanted["range"]["start"] <= port <= wanted["range"]["end"])

    def _rule(self, rule: dict[str, Any], peer_field: str, other: str, dst: str, port: int, protocol: str) -> bool:
        if not any(self._peer(p, other) for p in rule[peer_field]):
            return False
        protocols = rule.get("protocols")
        return protocols is None or any(self._protocol_entry(e, dst, port, protocol) for e in protocols)

    def tier_action(self, tier: str, me: str, other: str, dst: str, direction: str, port: int,
                    protocol: str) -> str | None:
        """The first matching rule's action in ``tier`` ("Accept", "Deny", "Pass"), or None."""
        field, peer_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        policies = sorted((c for c in self.cnps if c["spec"]["tier"] == tier and self._subject(c, me)),
                          key=lambda c: (c["spec"]["priority"], c["metadata"]["name"]))
        for cnp in policies:
            for rule in cnp["spec"].get(field) or []:
                if self._rule(rule, peer_field, other, dst, port, protocol):
                    return str(rule["action"])
        return None

    def _direction_allows(self, me: str, other: str, dst: str, direction: str, port: int, protocol: str) -> bool:
        admin = self.tier_action("Admin", me, other, dst, direction, port, protocol)
        if admin in ("Accept", "Deny"):
            return admin == "Accept"
        # Admin passed or did not decide: the NetworkPolicy tier, final for the pods it selects.
        legacy = direction == "Ingress" and self._legacy_isolated(self.all_pods[me]["metadata"]["namespace"])
        if self._selecting(me, direction) or legacy:
            return super()._direction_allows(me, other, dst, direction, port, protocol)
        baseline = self.tier_action("Baseline", me, other, dst, direction, port, protocol)
        return baseline != "Deny"  # Accept, Pass (to the default) or nothing: the default allows


class NodeEgressOracle(ThreeTierOracle):
    """Egress from a pod to a Node's address, for ``nodes`` peers (and ``networks``, ``ipBlock``).

    "Nodes ... selects the nodeIPs as the peer type by matching on the IPs present in the
    node.Status.Addresses field of the node"; pod peers (``namespaces``, ``pods``, v1 pod and
    namespace selectors) never match a node's address, and a named port is a pod's container port,
    so it never matches one either. Only the sender's egress is evaluated (a node has no ingress
    policy here).
    """

    def _ip_peer(self, peer: dict[str, Any], ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        if "networks" in peer:
            return any(addr in ipaddress.ip_network(n, strict=False) for n in peer["networks"])
        if "nodes" in peer:
            return self._in_nodes(peer["nodes"], ip)
        return False

    def _ip_protocols(self, protocols: list[dict[str, Any]] | None, port: int, protocol: str) -> bool:
        if protocols is None:
            return True
        for entry in protocols:
            if "destinationNamedPort" in entry:
                continue
            ((key, value),) = entry.items()
            wanted = value.get("destinationPort")
            if PROTOCOL_KEYS[key] != protocol:
                continue
            if wanted is None or wanted.get("number") == port or (
                    "range" in wanted and wanted["range"]["start"] <= port <= wanted["range"]["end"]):
                return True
        return False

    def _ip_tier(self, tier: str, src: str, ip: str, port: int, protocol: str) -> str | None:
        policies = sorted((c for c in self.cnps if c["spec"]["tier"] == tier and self._subject(c, src)),
                          key=lambda c: (c["spec"]["priority"], c["metadata"]["name"]))
        for cnp in policies:
            for rule in cnp["spec"].get("egress") or []:
                if any(self._ip_peer(p, ip) for p in rule["to"]) and self._ip_protocols(
                        rule.get("protocols"), port, protocol):
                    return str(rule["action"])
        return None

    def _np_allows_ip(self, src: str, ip: str, port: int, protocol: str) -> bool:
        addr = ipaddress.ip_address(ip)
        for policy in self._selecting(src, "Egress"):
            for rule in policy["spec"].get("egress") or []:
                rule = rule or {}
                ports = rule.get("ports") or []
                port_ok = not ports or any(
                    e.get("protocol", "TCP") == protocol and (e.get("port") is None or (
                        not isinstance(e["port"], str) and e["port"] <= port <= e.get("endPort", e["port"])))
                    for e in ports)
                peers = rule.get("to") or []
                peer_ok = not peers or any(
                    "ipBlock" in p and addr in ipaddress.ip_network(p["ipBlock"]["cidr"], strict=False)
                    and not any(addr in ipaddress.ip_network(x, strict=False) for x in p["ipBlock"].get("except") or [])
                    for p in peers)
                if port_ok and peer_ok:
                    return True
        return False

    def egress_allowed(self, src: str, ip: str, port: int, protocol: str) -> bool:
        admin = self._ip_tier("Admin", src, ip, port, protocol)
        if admin in ("Accept", "Deny"):
            return admin == "Accept"
        if self._selecting(src, "Egress"):
            return self._np_allows_ip(src, ip, port, protocol)
        return self._ip_tier("Baseline", src, ip, port, protocol) != "Deny"
