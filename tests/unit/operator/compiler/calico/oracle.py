"""A Calico-semantics reference oracle, written straight from Calico's documentation.

``Oracle(world).allowed(src_ip, dst_ip, port, protocol)`` decides one TCP/UDP/SCTP connection by
walking raw policy JSON, with no compilation, no peer sets and no shared code with the frontend
other than the selector language (tested on its own). Property tests compare the compiler with it.

What it follows (quotes from Calico's reference):
* "Calico applies the policy with the lowest value first"; unset ``order`` goes after every
  ordered policy; ties by name. Kubernetes NetworkPolicies join the same (default) tier as
  order-1000 policies with Allow rules.
* Allow and Deny decide; Log "continues"; Pass "skips to the next tier" - with one tier, to the
  endpoint's profile. An endpoint some policy selected in a direction, where no rule decided,
  is denied at the end of the tier.
* Profiles: a pod's namespace profile allows everything; a host endpoint allows only with the
  ``projectcalico-default-allow`` profile, otherwise "host endpoints with no policy default to
  deny", except the failsafe ports.
* ``types`` absent: Ingress, unless there are egress rules and no ingress rules (Egress), or both.
* Rule source/destination: ``nets`` (any), ``notNets`` (none), ``selector``/``notSelector`` over
  endpoints and network sets holding the address, ``namespaceSelector`` (``global()``: non-
  namespaced); in a namespaced policy, any selector field scopes the positive selector to the
  policy's namespace unless ``namespaceSelector`` is given. ``ports``/``notPorts``: numbers,
  "a:b" ranges, named ports of the destination endpoint. ``protocol``/``notProtocol``.
* Host endpoints: policies apply to traffic to and from the host's IPs; pods' traffic to a host
  IP is pod egress then host ingress.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from picket_operator.compiler.frontends.calico.selector import parse
from picket_operator.compiler.frontends.calico.selector_ast import NAMESPACE_LABEL

FAILSAFE_IN = {("TCP", p) for p in (22, 179, 2379, 2380, 5473, 6443, 6666, 6667)} | {("UDP", 68)}
FAILSAFE_OUT = {("TCP", p) for p in (179, 2379, 2380, 5473, 6443, 6666, 6667)} | {("UDP", 53), ("UDP", 67)}
PROTO_NUMBERS = {"1": "ICMP", "6": "TCP", "17": "UDP", "132": "SCTP"}


@dataclass(frozen=True)
class Entity:
    """A pod (namespace set), a host endpoint (``host=True``) or a network set (``nets`` set)."""

    name: str
    namespace: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    ips: tuple[str, ...] = ()
    ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, number)
    host: bool = False
    profiles: tuple[str, ...] = ()
    nets: tuple[str, ...] = ()


@dataclass
class World:
    entities: list[Entity]
    namespaces: Mapping[str, Mapping[str, str]]  # namespace name -> labels
    policies: list[Mapping[str, Any]]  # raw GlobalNetworkPolicy / NetworkPolicy (Calico or k8s)


def _in(ip: str, cidr: str) -> bool:
    addr, net = ipaddress.ip_address(ip), ipaddress.ip_network(cidr, strict=False)
    return addr.version == net.version and addr in net


def _proto(value: Any) -> str:
    text = str(value).upper()
    return PROTO_NUMBERS.get(text, text)


class Oracle:
    def __init__(self, world: World) -> None:
        self.world = world
        self.by_ip = {ip: e for e in world.entities if not e.nets for ip in e.ips}

    # -- selectors -------------------------------------------------------------------------
    def _calico_labels(self, e: Entity) -> dict[str, str]:
        return {**e.labels, NAMESPACE_LABEL: e.namespace} if e.namespace else dict(e.labels)

    def _ns_view(self, e: Entity) -> dict[str, str]:
        if not e.namespace:
            return {}
        labels = self.world.namespaces.get(e.namespace, {})
        return {**labels, "projectcalico.org/name": e.namespace, NAMESPACE_LABEL: e.namespace}

    def _holders(self, ip: str) -> list[Entity]:
        """Everything a rule selector can match for this address: its endpoint and network sets."""
        found = [self.by_ip[ip]] if ip in self.by_ip else []
        return found + [e for e in self.world.entities if e.nets and any(_in(ip, n) for n in e.nets)]

    # -- policies --------------------------------------------------------------------------
    def _ordered(self) -> list[Mapping[str, Any]]:
        def key(p: Mapping[str, Any]) -> tuple[float, str]:
            if p["apiVersion"] == "networking.k8s.io/v1":
                return (1000.0, p["metadata"]["name"])
            order = p["spec"].get("order")
            return (math.inf if order is None else float(order), p["metadata"]["name"])

        return sorted(self.world.policies, key=key)

    def _types(self, p: Mapping[str, Any]) -> set[str]:
        spec = p["spec"]
        if p["apiVersion"] == "networking.k8s.io/v1":
            return set(spec.get("policyTypes") or (["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]))
        if spec.get("types"):
            return set(spec["types"])
        if spec.get("egress") and not spec.get("ingress"):
            return {"Egress"}
        return {"Ingress", "Egress"} if spec.get("egress") else {"Ingress"}

    def _selects(self, p: Mapping[str, Any], e: Entity) -> bool:
        spec, ns = p["spec"], p["metadata"].get("namespace", "")
        if p["apiVersion"] == "networking.k8s.io/v1":
            return not e.host and e.namespace == ns and k8s_match(spec.get("podSelector") or {}, e.labels)
        if p["kind"] == "NetworkPolicy" and (e.host or e.namespace != ns):
            return False
        if spec.get("namespaceSelector") and not parse(spec["namespaceSelector"]).matches(self._ns_view(e)):
            return False
        return parse(spec.get("selector") or "all()").matches(self._calico_labels(e))

    def _direction(self, e: Entity, direction: str, peer_ip: str, proto: str, port: int, dst: Entity | None) -> str:
        """'allow' / 'deny' for one endpoint and direction."""
        selected = False
        for p in self._ordered():
            if direction not in self._types(p) or not self._selects(p, e):
                continue
            selected = True
            action = self._policy_action(p, direction, peer_ip, proto, port, dst)
            if action == "Pass":
                break
            if action is not None:
                return "allow" if action == "Allow" else "deny"
        else:
            if selected:
                return "deny"  # end of tier
        if e.host:
            return "allow" if "projectcalico-default-allow" in e.profiles else "deny"
        return "allow"  # the namespace profile

    def _policy_action(
        self, p: Mapping[str, Any], direction: str, peer_ip: str, proto: str, port: int, dst: Entity | None
    ) -> str | None:
        key = direction.lower()
        if p["apiVersion"] == "networking.k8s.io/v1":
            rules = p["spec"].get(key) or []
            matched = any(self._k8s_rule(p, r, direction, peer_ip, proto, port, dst) for r in rules)
            return "Allow" if matched else None
        for rule in p["spec"].get(key) or []:
            if rule["action"] != "Log" and self._calico_rule(p, rule, direction, peer_ip, proto, port, dst):
                return str(rule["action"])
        return None

    def _calico_rule(
        self, p: Mapping[str, Any], rule: Mapping[str, Any], direction: str, peer_ip: str, proto: str, port: int,
        dst: Entity | None,
    ) -> bool:
        if "protocol" in rule and _proto(rule["protocol"]) != proto:
            return False
        if "notProtocol" in rule and _proto(rule["notProtocol"]) == proto:
            return False
        peer_side = rule.get("source" if direction == "Ingress" else "destination") or {}
        dst_side = rule.get("destination") or {}
        if dst_side.get("ports") and not any(self._port_in(x, proto, port, dst) for x in dst_side["ports"]):
            return False
        if any(self._port_in(x, proto, port, dst) for x in dst_side.get("notPorts") or []):
            return False
        return self._entity_rule(p, peer_side, peer_ip)

    def _port_in(self, item: Any, proto: str, port: int, dst: Entity | None) -> bool:
        text = str(item)
        if text.isdigit():
            return int(text) == port
        if ":" in text:
            low, high = text.split(":")
            return int(low) <= port <= int(high)
        return dst is not None and (text, proto, port) in dst.ports

    def _entity_rule(self, p: Mapping[str, Any], side: Mapping[str, Any], ip: str) -> bool:
        if side.get("nets") and not any(_in(ip, n) for n in side["nets"]):
            return False
        if any(_in(ip, n) for n in side.get("notNets") or []):
            return False
        holders = self._holders(ip)
        policy_ns = p["metadata"].get("namespace", "") if p["kind"] == "NetworkPolicy" else ""
        ns_sel = side.get("namespaceSelector")
        # Calico scopes the rule to a namespace (or to namespaceSelector) only through the positive
        # selector; a GlobalNetworkPolicy's notSelector alone matches addresses unknown to it too.
        if side.get("selector") or ns_sel or (policy_ns and side.get("notSelector")):
            sel = parse(side.get("selector") or "all()")
            if not any(self._in_scope(h, policy_ns, ns_sel) and sel.matches(self._calico_labels(h)) for h in holders):
                return False
        if side.get("notSelector"):
            neg = parse(side["notSelector"])
            if any(neg.matches(self._calico_labels(h)) for h in holders):
                return False
        return True

    def _in_scope(self, h: Entity, policy_ns: str, ns_sel: str | None) -> bool:
        if ns_sel:
            return parse(ns_sel).matches(self._ns_view(h))
        return h.namespace == policy_ns if policy_ns else True

    def _k8s_rule(
        self, p: Mapping[str, Any], rule: Mapping[str, Any], direction: str, peer_ip: str, proto: str, port: int,
        dst: Entity | None,
    ) -> bool:
        ports = rule.get("ports") or []
        if ports and not any(self._k8s_port(x, proto, port, dst) for x in ports):
            return False
        peers = rule.get("from" if direction == "Ingress" else "to") or []
        return not peers or any(self._k8s_peer(p, x, peer_ip) for x in peers)

    def _k8s_port(self, item: Mapping[str, Any], proto: str, port: int, dst: Entity | None) -> bool:
        if item.get("protocol", "TCP") != proto:
            return False
        if "port" not in item:
            return True
        wanted = f"{item['port']}:{item['endPort']}" if "endPort" in item else item["port"]
        return self._port_in(wanted, proto, port, dst)

    def _k8s_peer(self, p: Mapping[str, Any], peer: Mapping[str, Any], ip: str) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            return _in(ip, block["cidr"]) and not any(_in(ip, x) for x in block.get("except") or [])
        e = self.by_ip.get(ip)
        if e is None or e.host:
            return False
        if "namespaceSelector" in peer:
            ns_ok = k8s_match(peer["namespaceSelector"], self.world.namespaces.get(e.namespace, {}))
        else:
            ns_ok = e.namespace == p["metadata"]["namespace"]
        return ns_ok and k8s_match(peer.get("podSelector") or {}, e.labels)

    # -- the question ----------------------------------------------------------------------
    def allowed(self, src_ip: str, dst_ip: str, port: int, protocol: str = "TCP") -> bool:
        src, dst = self.by_ip.get(src_ip), self.by_ip.get(dst_ip)
        if src is not None and not (src.host and (protocol, port) in FAILSAFE_OUT):
            egress = self._direction(src, "Egress", dst_ip, protocol, port, dst)
            if egress != "allow":
                return False
        if dst is not None and not (dst.host and (protocol, port) in FAILSAFE_IN):
            return self._direction(dst, "Ingress", src_ip, protocol, port, dst) == "allow"
        return True


def k8s_match(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector (matchLabels AND matchExpressions; empty selects everything)."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def entities_of(docs: Sequence[Mapping[str, Any]]) -> list[Entity]:
    """Host endpoints and network sets from raw projectcalico.org/v3 documents."""
    out = []
    for d in docs:
        meta, spec = d["metadata"], d.get("spec") or {}
        labels = meta.get("labels") or {}
        if d["kind"] == "HostEndpoint":
            ports = tuple((x["name"], _proto(x.get("protocol", "TCP")), int(x["port"])) for x in spec.get("ports", []))
            out.append(Entity(meta["name"], "", labels, tuple(spec.get("expectedIPs") or ()), ports, True,
                              tuple(spec.get("profiles") or ())))
        elif d["kind"] in ("GlobalNetworkSet", "NetworkSet"):
            out.append(Entity(meta["name"], meta.get("namespace", ""), labels, nets=tuple(spec.get("nets") or ())))
    return out
