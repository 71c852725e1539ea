"""Calico HostEndpoint and (Global)NetworkSet objects, and the host-endpoint rule-set frame.

Pure pieces for the compiler (which owns indices and peer sets):

* ``parse_network_set(obj)``: a GlobalNetworkSet / NetworkSet as labels + validated nets. "Global
  network sets ... that have the label" are matched by rule selectors like endpoints are: a peer
  set built from a Calico selector must include the nets of every network set the selector
  matches (``ScopedSelector.matches(ns.labels, ns.namespace, namespace labels)``), so such sets
  are ``hash:net``.
* ``parse_host_endpoint(obj)``: a HostEndpoint as a ``picket.model.Endpoint`` (kind HOST, key
  ``host/<name>``) plus labels, profiles and named ports.
* ``host_rule_set(direction, policy_tiers, host, failsafe)``: how a host endpoint's rule set is
  framed. Failsafe ports come first ("Calico allows some traffic as a failsafe even after
  applying this policy"; defaults: inbound tcp 22, 179, 2379, 2380, 5473, 6443, 6666, 6667 and
  udp 68; outbound udp 53, 67 and the same tcp list without 22). Then the tiers of the policies
  that select it. Last, unless it has the ``projectcalico-default-allow`` profile, a deny tier:
  "host endpoints with no policy default to deny", and Pass at the last tier reaches the profile.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.failsafe import FAILSAFE_TIER, Failsafe
from picket.model import (
    Action,
    Direction,
    Endpoint,
    EndpointKind,
    PolicyRules,
    PortRange,
    Problem,
    Protocol,
    Rule,
    RuleSet,
    Tier,
)

DEFAULT_ALLOW_PROFILE = "projectcalico-default-allow"
@dataclass(frozen=True)
class NetworkSet:
    namespace: str  # "" for a GlobalNetworkSet
    name: str
    labels: Mapping[str, str]
    nets: tuple[str, ...]


@dataclass(frozen=True)
class HostEndpoint:
    endpoint: Endpoint
    labels: Mapping[str, str]
    profiles: tuple[str, ...] = ()
    ports: tuple[tuple[str, Protocol, int], ...] = ()  # named ports: (name, protocol, number)
    default_allow: bool = field(default=False)


def _meta(obj: Mapping[str, Any]) -> tuple[str, str, dict[str, str], Mapping[str, Any]]:
    meta = obj.get("metadata") or {}
    labels = {str(k): str(v) for k, v in (meta.get("labels") or {}).items()}
    return str(meta.get("namespace") or ""), str(meta.get("name", "")), labels, obj.get("spec") or {}


def parse_network_set(obj: Mapping[str, Any]) -> tuple[NetworkSet | None, tuple[Problem, ...]]:
    try:
        return _network_set(obj)
    except (AttributeError, TypeError) as exc:  # a field of the wrong shape
        return None, (Problem(str(obj.get("kind", "NetworkSet")), "", _name(obj), "", f"malformed: {exc}"),)


def parse_host_endpoint(obj: Mapping[str, Any]) -> tuple[HostEndpoint | None, tuple[Problem, ...]]:
    try:
        return _host_endpoint(obj)
    except (AttributeError, TypeError) as exc:
        return None, (Problem("HostEndpoint", "", _name(obj), "", f"malformed: {exc}"),)


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, Mapping) else ""


def _network_set(obj: Mapping[str, Any]) -> tuple[NetworkSet | None, tuple[Problem, ...]]:
    kind = str(obj.get("kind", ""))
    namespace, name, labels, spec = _meta(obj)
    # A NetworkSet lives in a namespace ("default" if none is given); a GlobalNetworkSet in none.
    namespace = (namespace or "default") if kind == "NetworkSet" else ""
    if not name:
        return None, (Problem(kind, namespace, "", "metadata.name", "required"),)
    nets: list[str] = []
    for i, raw in enumerate(spec.get("nets") or ()):
        try:
            nets.append(str(ipaddress.ip_network(str(raw), strict=False)))
        except ValueError:
            field_ = f"spec.nets[{i}]"
            return None, (Problem(kind, namespace, name, field_, f"expected a CIDR or an address, got {raw!r}"),)
    return NetworkSet(namespace, name, labels, tuple(nets)), ()


def _host_endpoint(obj: Mapping[str, Any]) -> tuple[HostEndpoint | None, tuple[Problem, ...]]:
    _, name, labels, spec = _meta(obj)

    def problem(field_: str, message: str) -> tuple[None, tuple[Problem, ...]]:
        return None, (Problem("HostEndpoint", "", name, field_, message),)

    if not name:
        return problem("metadata.name", "required")
    if not spec.get("node"):
        return problem("spec.node", "required: the node whose host this endpoint is")
    ips: list[str] = []
    for i, raw in enumerate(spec.get("expectedIPs") or ()):
        try:
            ips.append(str(ipaddress.ip_address(str(raw))))
        except ValueError:
            return problem(f"spec.expectedIPs[{i}]", f"expected an IP address, got {raw!r}")
    if not ips:
        return problem("spec.expectedIPs", "picket needs the host's addresses (interface discovery is not supported)")
    ports: list[tuple[str, Protocol, int]] = []
    for i, port in enumerate(spec.get("ports") or ()):
        try:
            ports.append((str(port["name"]), Protocol(str(port.get("protocol", "TCP")).upper()), int(port["port"])))
        except (KeyError, ValueError, TypeError):
            return problem(f"spec.ports[{i}]", "expected name, port and protocol TCP, UDP or SCTP")
    interface = str(spec.get("interfaceName") or "").replace("*", "")
    endpoint = Endpoint(EndpointKind.HOST, "", name, str(spec["node"]), tuple(ips), interface)
    profiles = tuple(str(p) for p in spec.get("profiles") or ())
    return HostEndpoint(endpoint, labels, profiles, tuple(ports), DEFAULT_ALLOW_PROFILE in profiles), ()


def failsafe_tier(direction: Direction, failsafe: Failsafe) -> Tier:
    """One Allow rule per protocol with all its failsafe ports; the tier passes everything else on."""
    by_protocol: dict[Protocol, set[int]] = {}
    for proto, port in failsafe.ports(direction):
        by_protocol.setdefault(proto, set()).add(port)
    rules = tuple(
        Rule(Action.ALLOW, proto, tuple(PortRange(p, p) for p in sorted(ports)))
        for proto, ports in sorted(by_protocol.items())
    )
    return Tier(FAILSAFE_TIER, (PolicyRules("failsafe ports", rules),), Action.PASS)


def host_rule_set(
    direction: Direction, policy_tiers: tuple[Tier, ...], host: HostEndpoint, failsafe: Failsafe | None = None
) -> RuleSet:
    """Failsafe first, the selecting policies' tiers, then deny unless the default-allow profile."""
    tiers = [failsafe_tier(direction, failsafe or Failsafe()), *policy_tiers]
    if not host.default_allow:
        tiers.append(Tier("host-endpoint-default", (), Action.DENY))
    return RuleSet(direction, tuple(tiers))
