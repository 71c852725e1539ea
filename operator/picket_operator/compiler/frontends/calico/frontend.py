"""Calico frontend: projectcalico.org/v3 GlobalNetworkPolicy / NetworkPolicy -> ``ir.Policy``.

``translate(obj) -> ir.Translation`` is an ``ir.Frontend``: one raw object in, one policy (or
``None`` and the reasons) out. Any error rejects the whole policy - never half-applied - and
each error is a ``Problem`` naming the field, e.g. ``spec.ingress[0].source.selector: cannot
parse 'a = "b"': position 2: expected '==', ...``.

Meaning (Calico reference): ``order`` lowest first, unset after every ordered policy (``inf``),
in the same tier as Kubernetes NetworkPolicies (order 1000); ``selector`` defaults to ``all()``;
``types`` defaults to Ingress, Egress if only egress rules are present, both if both; a
NetworkPolicy applies to pods of its namespace, a GlobalNetworkPolicy to pods of any namespace
(``namespaceSelector`` narrows) and to host endpoints. Rule peers: the source of ingress rules,
the destination of egress rules; ``selector``/``namespaceSelector``/``nets`` are ANDed into one
positive ``ir.Peer``; ``notSelector`` and ``notNets`` become ``not_peers``. In a namespaced policy
any selector field scopes the positive selector to the policy's namespace unless a
``namespaceSelector`` is given (Calico does the same). Ports are the destination's.

Rejected as not supported by picket: ``preDNAT``, ``doNotTrack``, ``applyOnForward``, tiers other
than ``default``, ``source.ports``, selectors/nets on the policy's own side of a rule, ``icmp``,
``http``, service-account and service matches, protocols other than TCP/UDP/SCTP/ICMP.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from picket.model import Action, Direction, EndpointKind, PortRange, Problem, Protocol
from picket_operator.compiler.frontends.calico.scoped import ScopedSelector
from picket_operator.compiler.frontends.calico.selector import SelectorError, parse
from picket_operator.compiler.frontends.calico.selector_ast import Selector
from picket_operator.compiler.ir import K8S_TIER, Peer, Policy, Rule, Translation

API_VERSION = "projectcalico.org/v3"
KINDS = ("GlobalNetworkPolicy", "NetworkPolicy")
PROTOCOL_NAMES = {"TCP": Protocol.TCP, "UDP": Protocol.UDP, "SCTP": Protocol.SCTP, "ICMP": Protocol.ICMP,
                  "6": Protocol.TCP, "17": Protocol.UDP, "132": Protocol.SCTP, "1": Protocol.ICMP}
UNSUPPORTED_SPEC = {
    "preDNAT": "not supported by picket (host endpoint policy sees traffic after DNAT)",
    "doNotTrack": "not supported by picket (every rule is connection-tracked)",
    # Forwarded traffic through a host interface is pod traffic here: pods' own rule sets police it.
    "applyOnForward": "not supported by picket (host endpoint policy applies to traffic to and from the host "
                      "only, not to traffic it forwards)",
}
UNSUPPORTED_RULE = ("icmp", "notICMP", "http")
UNSUPPORTED_SIDE = ("serviceAccounts", "services")


class Invalid(Exception):
    """One problem found while translating; carries the field path."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field, self.message = field, message


def translate(obj: Mapping[str, Any]) -> Translation:
    raw_meta = obj.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    kind, name = str(obj.get("kind", "")), str(meta.get("name", ""))
    namespace = str(meta.get("namespace") or "default") if kind == "NetworkPolicy" else ""
    try:
        return Translation(_policy(kind, namespace, name, _mapping(obj.get("spec"), "spec")))
    except Invalid as bad:
        return Translation(None, (Problem(kind, namespace, name, bad.field, bad.message),))


def _policy(kind: str, namespace: str, name: str, spec: Mapping[str, Any]) -> Policy:
    if kind not in KINDS:
        raise Invalid("kind", f"expected one of {', '.join(KINDS)}")
    for key in UNSUPPORTED_SPEC:
        if spec.get(key):
            raise Invalid(f"spec.{key}", UNSUPPORTED_SPEC[key] + "; the policy is not applied")
    if spec.get("tier", "default") != "default":
        raise Invalid("spec.tier", "only the default tier is supported by picket")
    if spec.get("serviceAccountSelector"):
        raise Invalid("spec.serviceAccountSelector", "not supported by picket")
    expr = _selector(spec.get("selector") or "all()", "spec.selector")
    if kind == "NetworkPolicy":
        applies_to = ScopedSelector(expr, namespace=namespace)
        kinds = frozenset({EndpointKind.POD})
    else:
        ns_text = spec.get("namespaceSelector")
        ns_expr = _selector(ns_text, "spec.namespaceSelector") if ns_text else None
        applies_to = ScopedSelector(expr, namespace_expr=ns_expr)
        kinds = frozenset({EndpointKind.POD, EndpointKind.HOST})
    scope = namespace or None
    ingress = tuple(_rule(r, f"spec.ingress[{i}]", Direction.INGRESS, scope)
                    for i, r in enumerate(_list(spec, "ingress")))
    egress = tuple(_rule(r, f"spec.egress[{i}]", Direction.EGRESS, scope)
                   for i, r in enumerate(_list(spec, "egress")))
    return Policy(
        kind=kind, namespace=namespace, name=name, applies_to=applies_to,
        directions=_types(spec), ingress=ingress, egress=egress, tier=K8S_TIER,
        order=_order(spec.get("order")), endpoint_kinds=kinds,
    )


def _list(spec: Mapping[str, Any], key: str) -> list[Any]:
    return _seq(spec.get(key), f"spec.{key}")


def _seq(value: Any, field: str) -> list[Any]:
    if not value:
        return []
    if not isinstance(value, list):
        raise Invalid(field, "expected a list")
    return value


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(field, "expected an object")
    return value


def _order(value: Any) -> float:
    """"Calico applies the policy with the lowest value first"; unset orders last."""
    if value is None:
        return math.inf
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Invalid("spec.order", f"expected a number, got {value!r}") from None


def _types(spec: Mapping[str, Any]) -> frozenset[Direction]:
    """Explicit ``types``; else Ingress, Egress for egress rules only, both when both are present."""
    types = spec.get("types")
    if types:
        try:
            return frozenset(Direction(t) for t in _seq(types, "spec.types"))
        except (ValueError, TypeError):
            raise Invalid("spec.types", f"expected Ingress and/or Egress, got {types!r}") from None
    if spec.get("egress") and not spec.get("ingress"):
        return frozenset({Direction.EGRESS})
    return frozenset({Direction.INGRESS, Direction.EGRESS} if spec.get("egress") else {Direction.INGRESS})


def _selector(text: Any, field: str) -> Selector:
    if not isinstance(text, str):
        raise Invalid(field, "expected a selector string")
    try:
        return parse(text)
    except SelectorError as exc:
        raise Invalid(field, f"cannot parse {text!r}: {exc}") from None


def _protocol(value: Any, field: str) -> Protocol | None:
    if value is None:
        return None
    proto = PROTOCOL_NAMES.get(str(value).upper()) if isinstance(value, str | int) else None
    if proto is None:
        raise Invalid(field, f"protocol {value!r} is not supported by picket (TCP, UDP, SCTP, ICMP)")
    return proto


def _rule(raw: Any, field: str, direction: Direction, scope: str | None) -> Rule:
    if not isinstance(raw, dict):
        raise Invalid(field, "expected a rule object")
    try:
        action = Action(str(raw.get("action")))
    except ValueError:
        raise Invalid(f"{field}.action", "expected Allow, Deny, Pass or Log") from None
    for key in UNSUPPORTED_RULE:
        if raw.get(key):
            raise Invalid(f"{field}.{key}", "not supported by picket")
    protocol = _protocol(raw.get("protocol"), f"{field}.protocol")
    not_protocol = _protocol(raw.get("notProtocol"), f"{field}.notProtocol")
    source = _mapping(raw.get("source"), f"{field}.source")
    destination = _mapping(raw.get("destination"), f"{field}.destination")
    peer_key = "source" if direction is Direction.INGRESS else "destination"
    own_key = "destination" if direction is Direction.INGRESS else "source"
    own = destination if direction is Direction.INGRESS else source
    for key in ("nets", "notNets", "selector", "notSelector", "namespaceSelector", *UNSUPPORTED_SIDE):
        if own.get(key):
            raise Invalid(f"{field}.{own_key}.{key}", "matching the policy's own endpoint is not supported by picket")
    for key in UNSUPPORTED_SIDE:
        if (source if peer_key == "source" else destination).get(key):
            raise Invalid(f"{field}.{peer_key}.{key}", "not supported by picket")
    if source.get("ports") or source.get("notPorts"):
        raise Invalid(f"{field}.source.ports", "source ports are not supported by picket")
    ports, named = _ports(destination.get("ports"), f"{field}.destination.ports", protocol)
    not_ports, not_named = _ports(destination.get("notPorts"), f"{field}.destination.notPorts", protocol)
    if not_named:
        raise Invalid(f"{field}.destination.notPorts", "named ports in notPorts are not supported by picket")
    peers, not_peers = _peers(source if peer_key == "source" else destination, f"{field}.{peer_key}", scope)
    return Rule(action=action, protocol=protocol, ports=ports, named_ports=named, peers=peers,
                not_protocol=not_protocol, not_ports=not_ports, not_peers=not_peers)


def _ports(raw: Any, field: str, protocol: Protocol | None) -> tuple[tuple[PortRange, ...], tuple[str, ...]]:
    """Numbers, "start:end" ranges and named ports; Calico requires a TCP/UDP/SCTP protocol."""
    raw = _seq(raw, field)
    if not raw:
        return (), ()
    if protocol not in (Protocol.TCP, Protocol.UDP, Protocol.SCTP):
        raise Invalid(field, "ports need protocol TCP, UDP or SCTP")
    ranges: list[PortRange] = []
    named: list[str] = []
    for i, item in enumerate(raw):
        text = str(item)
        try:
            if text.isdigit():
                ranges.append(PortRange(int(text), int(text)))
            elif ":" in text:
                low, high = text.split(":", 1)
                ranges.append(PortRange(int(low), int(high)))
            elif text:
                named.append(text)
            else:
                raise ValueError(text)
        except ValueError:
            expected = f'expected a port, a range "start:end" or a port name, got {item!r}'
            raise Invalid(f"{field}[{i}]", expected) from None
    return tuple(ranges), tuple(named)


def _peers(side: Mapping[str, Any], field: str, scope: str | None) -> tuple[tuple[Peer, ...], tuple[Peer, ...]]:
    nets = _nets(side.get("nets"), f"{field}.nets")
    not_nets = _nets(side.get("notNets"), f"{field}.notNets")
    sel_text, not_text, ns_text = side.get("selector"), side.get("notSelector"), side.get("namespaceSelector")
    positive: ScopedSelector | None = None
    # "If the rule's namespaceSelector is not specified and the policy is namespaced, the rule's
    # selector only matches endpoints in the policy's namespace" - Calico applies this scope to
    # the positive selector, which it adds when only notSelector is given.
    if sel_text or ns_text or (scope is not None and not_text):
        expr = _selector(sel_text or "all()", f"{field}.selector")
        ns_expr = _selector(ns_text, f"{field}.namespaceSelector") if ns_text else None
        positive = ScopedSelector(expr, namespace=None if ns_expr else scope, namespace_expr=ns_expr)
    peers = (Peer(selector=positive, nets=nets),) if positive is not None or nets else ()
    not_peers: list[Peer] = []
    if not_text:
        not_peers.append(Peer(selector=ScopedSelector(_selector(not_text, f"{field}.notSelector"))))
    if not_nets:
        not_peers.append(Peer(nets=not_nets))
    return peers, tuple(not_peers)


def _nets(raw: Any, field: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(_seq(raw, field)):
        try:
            out.append(str(ipaddress.ip_network(str(item), strict=False)))
        except ValueError:
            raise Invalid(f"{field}[{i}]", f"expected a CIDR or an address, got {item!r}") from None
    return tuple(out)
