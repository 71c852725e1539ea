"""A reference oracle for networking.k8s.io/v1 NetworkPolicy, written from the API reference alone.

It shares no code with the compiler: it reads the raw objects and answers one question,
``allowed(src, dst, port, protocol)``, the slow and obvious way (every policy, every rule, every
peer, for every question). Inputs are assumed valid (the property tests generate valid objects;
bad input has its own table-driven tests).

What it encodes, quoting the reference:
* "By default, a pod is non-isolated for ingress/egress"; a pod is isolated in a direction when
  any NetworkPolicy in its namespace selects it and has that direction in its policyTypes;
  policyTypes default to Ingress, plus Egress when the policy has (non-empty) egress rules.
* "the connection is allowed if ... the egress policy on the source pod and the ingress policy on
  the destination pod" both allow it; an isolated direction allows what some rule of some
  selecting policy allows (policies are additive).
* A rule allows when its ports match (empty or absent: all) and its peers match (empty or
  absent: all). Peers: ipBlock (cidr minus except), podSelector alone (same namespace),
  namespaceSelector alone (all pods of matching namespaces), both (AND).
* Ports: protocol defaults to TCP; no port = all ports of the protocol; a named port is looked up
  on the destination pod's container ports by name and protocol; endPort makes a range.
* Legacy: a namespace annotated net.beta.kubernetes.io/network-policy with
  {"ingress": {"isolation": "DefaultDeny"}} isolates all its pods for ingress.
* Pods without IP, hostNetwork pods and Succeeded/Failed pods are not part of the pod network
  (``pods()`` leaves them out); a pod reaching itself is always allowed.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any


def _labels_match(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and not (key in labels and labels[key] in values):
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


class Oracle:
    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.all_pods: dict[str, dict[str, Any]] = {}
        self.policies: list[dict[str, Any]] = []
        for obj in objects:
            if obj["kind"] == "Namespace":
                self.namespaces[obj["metadata"]["name"]] = obj
            elif obj["kind"] == "Pod":
                meta = obj["metadata"]
                self.all_pods[f"{meta['namespace']}/{meta['name']}"] = obj
            elif obj["kind"] == "NetworkPolicy":
                self.policies.append(obj)

    def pods(self) -> list[str]:
        out = []
        for key, pod in self.all_pods.items():
            status, spec = pod.get("status") or {}, pod.get("spec") or {}
            finished = status.get("phase") in ("Succeeded", "Failed")
            if status.get("podIP") and not spec.get("hostNetwork") and not finished:
                out.append(key)
        return sorted(out)

    def _ns_labels(self, name: str) -> dict[str, str]:
        ns = self.namespaces.get(name)
        labels = dict((ns or {}).get("metadata", {}).get("labels") or {})
        labels["kubernetes.io/metadata.name"] = name
        return labels

    def _legacy_isolated(self, name: str) -> bool:
        ns = self.namespaces.get(name)
        raw = ((ns or {}).get("metadata", {}).get("annotations") or {}).get("net.beta.kubernetes.io/network-policy")
        if raw is None:
            return False
        try:
            return json.loads(raw)["ingress"]["isolation"] == "DefaultDeny"
        except (ValueError, KeyError, TypeError):
            return False

    @staticmethod
    def _types(policy: dict[str, Any]) -> list[str]:
        spec = policy["spec"]
        if spec.get("policyTypes"):
            return list(spec["policyTypes"])
        return ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]

    def _selecting(self, pod_key: str, direction: str) -> list[dict[str, Any]]:
        pod = self.all_pods[pod_key]
        ns, labels = pod["metadata"]["namespace"], pod["metadata"].get("labels") or {}
        return [
            p for p in self.policies
            if p["metadata"]["namespace"] == ns and direction in self._types(p)
            and _labels_match(p["spec"].get("podSelector"), labels)
        ]

    def _peer_matches(self, peer: dict[str, Any], policy_ns: str, other_key: str) -> bool:
        other = self.all_pods[other_key]
        ip = ipaddress.ip_address(other["status"]["podIP"])
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            if ip not in ipaddress.ip_network(block["cidr"], strict=False):
                return False
            return not any(ip in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
        other_ns = other["metadata"]["namespace"]
        if "namespaceSelector" in peer and peer["namespaceSelector"] is not None:
            if not _labels_match(peer["namespaceSelector"], self._ns_labels(other_ns)):
                return False
        elif other_ns != policy_ns:
            return False
        return _labels_match(peer.get("podSelector"), other["metadata"].get("labels") or {})

    def _port_matches(self, entry: dict[str, Any], dst_key: str, port: int, protocol: str) -> bool:
        if entry.get("protocol", "TCP") != protocol:
            return False
        if entry.get("port") is None:
            return True
        wanted = entry["port"]
        if isinstance(wanted, str):
            containers = self.all_pods[dst_key].get("spec", {}).get("containers") or []
            numbers = [
                cp["containerPort"] for c in containers for cp in c.get("ports") or []
                if cp.get("name") == wanted and cp.get("protocol", "TCP") == protocol
            ]
            return port in numbers
        return wanted <= port <= entry.get("endPort", wanted)

    def _rule_allows(self, rule: dict[str, Any], peer_field: str, policy_ns: str, other: str, dst: str,
                     port: int, protocol: str) -> bool:
        ports = rule.get("ports") or []
        if ports and not any(self._port_matches(e, dst, port, protocol) for e in ports):
            return False
        peers = rule.get(peer_field) or []
        return not peers or any(self._peer_matches(p, policy_ns, other) for p in peers)

    def _direction_allows(self, me: str, other: str, dst: str, direction: str, port: int, protocol: str) -> bool:
        policies = self._selecting(me, direction)
        legacy = direction == "Ingress" and self._legacy_isolated(self.all_pods[me]["metadata"]["namespace"])
        if not policies and not legacy:
            return True
        field, peer_field = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
        return any(
            self._rule_allows(rule or {}, peer_field, p["metadata"]["namespace"], other, dst, port, protocol)
            for p in policies for rule in p["spec"].get(field) or []
        )

    def allowed(self, src: str, dst: str, port: int, protocol: str) -> bool:
        if src == dst:
            return True
        egress = self._direction_allows(src, dst, dst, "Egress", port, protocol)
        ingress = self._direction_allows(dst, src, dst, "Ingress", port, protocol)
        return egress and ingress
