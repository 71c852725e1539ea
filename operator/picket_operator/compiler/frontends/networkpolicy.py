"""networking.k8s.io/v1 NetworkPolicy -> ``ir.Policy``, validating every field on the way.

``translate_network_policy(obj)`` returns an ``ir.Translation``: the policy, or ``None`` and one
``Problem`` per bad field (JSON path included). A policy with any error is not applied at all,
never half-applied, and no other object is affected. Registered for (networking.k8s.io,
NetworkPolicy) in ``frontends``; the spec is quoted beside each subtle branch.

One Kubernetes rule becomes one IR rule per protocol its ``ports`` mention (IR rules carry one
protocol), all with the rule's peers; a rule without ``ports`` becomes one any-protocol rule.

Audit mode: the annotation ``picket.dev/audit: "true"`` stages the policy (``ir.Policy.staged``):
compiled into the endpoints' staged rule sets, never enforced; any other value is a problem.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from picket.model import Direction, PortRange, Problem, Protocol
from picket_operator.compiler import ir
from picket_operator.compiler.selectors import FieldError, LabelSelector, PeerSelector, parse_label_selector

KIND = "NetworkPolicy"
AUDIT_ANNOTATION = "picket.dev/audit"
PROTOCOLS = {p.value: p for p in (Protocol.TCP, Protocol.UDP, Protocol.SCTP)}
# IANA_SVC_NAME, as the API validates a named port: 1-15 lowercase letters, digits and '-',
# at least one letter, no leading, trailing or doubled '-'.
_PORT_NAME = re.compile(r"^(?!-)(?!.*--)[a-z0-9-]{1,15}(?<!-)$")


@dataclass(frozen=True)
class _PortEntry:
    protocol: Protocol
    ports: PortRange | None = None  # None with name None: every port of the protocol
    name: str | None = None
    path: str = ""


def translate_network_policy(obj: Mapping[str, Any]) -> ir.Translation:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), Mapping) else {}
    assert isinstance(meta, Mapping)
    name, namespace = meta.get("name"), meta.get("namespace", "default")
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not namespace:
        problem = Problem(KIND, str(namespace or ""), str(name or ""), "metadata", "missing name or namespace")
        return ir.Translation(None, (problem,))
    errors: list[FieldError] = []
    policy = _translate(obj.get("spec"), namespace, name, errors)
    staged = _staged(meta, errors)
    if policy is not None and staged:
        policy = replace(policy, staged=True)
    if errors:
        return ir.Translation(None, tuple(Problem(KIND, namespace, name, e.path, e.message) for e in errors))
    return ir.Translation(policy)


def _staged(meta: Mapping[str, Any], errors: list[FieldError]) -> bool:
    annotations = meta.get("annotations")
    value = annotations.get(AUDIT_ANNOTATION) if isinstance(annotations, Mapping) else None
    if value is None or value == "false":
        return False
    if value != "true":
        path = f"metadata.annotations['{AUDIT_ANNOTATION}']"
        errors.append(FieldError(path, f'must be "true" or "false", not {value!r}'))
    return bool(value == "true")


def _translate(spec: Any, namespace: str, name: str, errors: list[FieldError]) -> ir.Policy | None:
    if not isinstance(spec, Mapping):
        errors.append(FieldError("spec", "missing or not an object"))
        return None
    # "An empty podSelector selects all pods in this namespace."
    target, errs = parse_label_selector(spec.get("podSelector"), "spec.podSelector")
    errors += errs
    directions = _policy_types(spec, errors)
    named: list[tuple[Direction, str, Protocol, str]] = []
    ingress = _rules(spec.get("ingress"), "spec.ingress", "from", namespace, errors, named)
    egress = _rules(spec.get("egress"), "spec.egress", "to", namespace, errors, named)
    if errors or target is None:
        return None
    return ir.Policy(
        kind=KIND,
        namespace=namespace,
        name=name,
        applies_to=PeerSelector(target, namespace=namespace),
        directions=directions,
        # A direction not in policyTypes is not affected, whatever its rules say.
        ingress=ingress if Direction.INGRESS in directions else (),
        egress=egress if Direction.EGRESS in directions else (),
        named_port_sources=tuple(n for n in named if n[0] in directions),
    )


def _policy_types(spec: Mapping[str, Any], errors: list[FieldError]) -> frozenset[Direction]:
    raw = spec.get("policyTypes")
    if not raw:
        # "If this field is not specified, it will default based on the existence of ingress or
        # egress rules; policies that contain an egress section are assumed to affect egress, and
        # all policies (whether or not they contain an ingress section) are assumed to affect
        # ingress." The API server's defaulting tests len(spec.egress) != 0, so `egress: []`
        # without policyTypes does not make the policy affect egress.
        egress = spec.get("egress")
        has_egress = isinstance(egress, list) and len(egress) > 0
        return frozenset({Direction.INGRESS, Direction.EGRESS} if has_egress else {Direction.INGRESS})
    if not isinstance(raw, list):
        errors.append(FieldError("spec.policyTypes", "must be a list of Ingress and/or Egress"))
        return frozenset()
    out = set()
    for i, value in enumerate(raw):
        if value not in ("Ingress", "Egress"):
            errors.append(FieldError(f"spec.policyTypes[{i}]", f"{value!r} is not Ingress or Egress"))
        else:
            out.add(Direction(value))
    return frozenset(out)


def _rules(
    raw: Any, path: str, peer_field: str, namespace: str, errors: list[FieldError],
    named: list[tuple[Direction, str, Protocol, str]],
) -> tuple[ir.Rule, ...]:
    # `ingress: []` / absent: the policy allows nothing in that direction (if it affects it);
    # `ingress: [{}]`: one rule matching every peer and port.
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list of rules"))
        return ()
    out: list[ir.Rule] = []
    for i, rule in enumerate(raw):
        where = f"{path}[{i}]"
        if rule is None:
            rule = {}
        if not isinstance(rule, Mapping):
            errors.append(FieldError(where, "must be an object"))
            continue
        unknown = sorted(set(rule) - {"ports", peer_field})
        if unknown:
            errors.append(FieldError(f"{where}.{unknown[0]}", f"unknown field (expected ports, {peer_field})"))
        peers = _peers(rule.get(peer_field), f"{where}.{peer_field}", namespace, errors)
        entries = _ports(rule.get("ports"), f"{where}.ports", errors)
        direction = Direction.INGRESS if peer_field == "from" else Direction.EGRESS
        named += [(direction, e.name, e.protocol, f"{e.path}.port") for e in entries if e.name is not None]
        out += _expand(entries, peers)
    return tuple(out)


def _expand(entries: list[_PortEntry], peers: tuple[ir.Peer, ...]) -> list[ir.Rule]:
    # "If this field is empty or missing, this rule matches all ports."
    if not entries:
        return [ir.Rule(peers=peers)]
    by_protocol: dict[Protocol, list[_PortEntry]] = {}
    for entry in entries:
        by_protocol.setdefault(entry.protocol, []).append(entry)
    rules = []
    for protocol, group in by_protocol.items():
        if any(e.ports is None and e.name is None for e in group):
            # A port entry with only a protocol: every port of that protocol.
            rules.append(ir.Rule(protocol=protocol, peers=peers))
            continue
        ranges = tuple(sorted({e.ports for e in group if e.ports is not None}))
        names = tuple(sorted({e.name for e in group if e.name is not None}))
        rules.append(ir.Rule(protocol=protocol, ports=ranges, named_ports=names, peers=peers))
    return rules


def _peers(raw: Any, path: str, namespace: str, errors: list[FieldError]) -> tuple[ir.Peer, ...]:
    # "If this field is empty or missing, this rule matches all sources (destinations)." Several
    # peers are ORed.
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list of peers"))
        return ()
    out = []
    for i, peer in enumerate(raw):
        parsed = _peer(peer, f"{path}[{i}]", namespace, errors)
        if parsed is not None:
            out.append(parsed)
    return tuple(out)


def _peer(raw: Any, path: str, namespace: str, errors: list[FieldError]) -> ir.Peer | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object"))
        return None
    unknown = sorted(set(raw) - {"podSelector", "namespaceSelector", "ipBlock"})
    if unknown:
        errors.append(FieldError(f"{path}.{unknown[0]}", "unknown field"))
        return None
    has_pods, has_ns = raw.get("podSelector") is not None, raw.get("namespaceSelector") is not None
    if raw.get("ipBlock") is not None:
        if has_pods or has_ns:
            errors.append(FieldError(f"{path}.ipBlock", "cannot be combined with podSelector or namespaceSelector"))
            return None
        return _ip_block(raw["ipBlock"], f"{path}.ipBlock", errors)
    if not (has_pods or has_ns):
        errors.append(FieldError(path, "must set podSelector, namespaceSelector or ipBlock"))
        return None
    pods, pod_errors = parse_label_selector(raw.get("podSelector"), f"{path}.podSelector")
    nss, ns_errors = parse_label_selector(raw.get("namespaceSelector"), f"{path}.namespaceSelector")
    errors += pod_errors + ns_errors
    if pods is None or nss is None:
        return None
    if not has_ns:
        # "podSelector ... selects particular Pods in the same namespace as the NetworkPolicy."
        return ir.Peer(PeerSelector(pods, namespace=namespace))
    # namespaceSelector ({} = all namespaces), ANDed with podSelector when both are in one peer.
    return ir.Peer(PeerSelector(pods if has_pods else LabelSelector(), namespace_selector=nss))


def _ip_block(raw: Any, path: str, errors: list[FieldError]) -> ir.Peer | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("cidr"), str):
        errors.append(FieldError(f"{path}.cidr", "required: a CIDR such as 10.0.0.0/8"))
        return None
    try:
        cidr = ipaddress.ip_network(raw["cidr"], strict=False)
    except ValueError as exc:
        errors.append(FieldError(f"{path}.cidr", f"malformed CIDR {raw['cidr']!r}: {exc}"))
        return None
    excepts_raw = raw.get("except") or []
    if not isinstance(excepts_raw, list):
        errors.append(FieldError(f"{path}.except", "must be a list of CIDRs"))
        return None
    excepts = []
    for i, text in enumerate(excepts_raw):
        try:
            net = ipaddress.ip_network(str(text), strict=False)
        except ValueError as exc:
            errors.append(FieldError(f"{path}.except[{i}]", f"malformed CIDR {text!r}: {exc}"))
            continue
        # "Except values will be rejected if they are outside the cidr range."
        if net.version != cidr.version or not net.subnet_of(cidr):  # type: ignore[arg-type]
            errors.append(FieldError(f"{path}.except[{i}]", f"{net} is not inside cidr {cidr}"))
            continue
        excepts.append(str(net))
    return ir.Peer(nets=(str(cidr),), excepts=tuple(sorted(set(excepts))))


def _ports(raw: Any, path: str, errors: list[FieldError]) -> list[_PortEntry]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list"))
        return []
    out = []
    for i, item in enumerate(raw):
        entry = _port(item if item is not None else {}, f"{path}[{i}]", errors)
        if entry is not None:
            out.append(entry)
    return out


def _port(raw: Any, path: str, errors: list[FieldError]) -> _PortEntry | None:
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object"))
        return None
    # "The protocol (TCP, UDP, or SCTP) which traffic must match. If not specified, this field
    # defaults to TCP."
    proto_text = raw.get("protocol", "TCP")
    protocol = PROTOCOLS.get(proto_text) if isinstance(proto_text, str) else None
    if protocol is None:
        errors.append(FieldError(f"{path}.protocol", f"{proto_text!r} is not TCP, UDP or SCTP"))
        return None
    port, end = raw.get("port"), raw.get("endPort")
    if port is None:
        if end is not None:
            errors.append(FieldError(f"{path}.endPort", "requires a numeric port"))
            return None
        return _PortEntry(protocol)  # "If this field is not provided, this matches all port names and numbers."
    if isinstance(port, str):
        if not _PORT_NAME.match(port) or not re.search("[a-z]", port):
            errors.append(FieldError(f"{path}.port", f"{port!r} is neither a port number nor a valid port name"))
            return None
        if end is not None:
            # "endPort ... cannot be defined if the port field is not defined or if the port field
            # is defined as a named (string) port."
            errors.append(FieldError(f"{path}.endPort", "cannot be used with a named port"))
            return None
        return _PortEntry(protocol, name=port, path=path)
    if not _is_port_number(port):
        errors.append(FieldError(f"{path}.port", f"{port!r} is not a port number (1-65535)"))
        return None
    if end is None:
        return _PortEntry(protocol, PortRange(port, port))
    # "endPort indicates that the range of ports from port to endPort if set, inclusive, should be
    # allowed ... endPort must be equal or greater than port."
    if not _is_port_number(end) or end < port:
        errors.append(FieldError(f"{path}.endPort", f"{end!r} must be a port number >= port {port}"))
        return None
    return _PortEntry(protocol, PortRange(port, end))


def _is_port_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
