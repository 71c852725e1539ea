"""Expand one compiled ``Rule`` into the iptables match lists that together mean it.

A compiled rule is a conjunction of disjunctions ("protocol P, port in one of these ranges or
the named-port set, peer in one of these sets, none of those"); an iptables rule is a single
conjunction. So a rule becomes the product of its alternatives, each alternative one iptables
rule with the same target:

* protocol: the rule's protocol; with ports but no protocol, each of TCP, UDP and SCTP (a port
  means nothing without one); ``notProtocol`` as ``! -p`` or by leaving that protocol out;
* ports: one ``-m tcp --dport a[:b]`` or ``-m multiport --dports`` (15 slots per match,
  a range takes two) and, as a further alternative, the named-port ``hash:ip,port`` set
  (``--match-set S dst,dst`` for egress: destination address and port);
* peers: one alternative per peer set (``--match-set S src`` for ingress, ``dst`` for egress);
* ``notPorts``/``notPeers``: negated matches added to every alternative (AND of NOTs).

Pure; called by ``rendering`` for every rule of every tier.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from picket.model import Direction, PeerSetKind, PortRange, Protocol, Rule
from picket_agent.rendering.iptrules import Match, Param

PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
MULTIPORT_SLOTS = 15


@dataclass(frozen=True)
class Alternative:
    """One iptables rule's worth of matching: protocol plus match modules."""

    protocol: str = ""
    not_protocol: bool = False
    matches: tuple[Match, ...] = ()


# Resolves a peer set name to its ipset name and kind (the renderer creates missing ones empty).
SetLookup = Callable[[str, PeerSetKind], tuple[str, PeerSetKind]]


def expand(rule: Rule, direction: Direction, lookup: SetLookup) -> list[Alternative]:
    """All alternatives of ``rule``; an empty list means it can never match."""
    if rule.protocol is not None and rule.not_protocol is rule.protocol:
        return []  # "protocol P and not P": never matches
    peer_dir = "src" if direction is Direction.INGRESS else "dst"
    peer_alts = _peer_alternatives(rule, peer_dir, lookup)
    negations = tuple(_set_match(lookup(n, PeerSetKind.NET), peer_dir, negated=True) for n in rule.not_peers)
    out: list[Alternative] = []
    for proto, not_proto, port_matches in _protocol_port_alternatives(rule, peer_dir, lookup):
        for peer in peer_alts:
            out.append(Alternative(proto, not_proto, (*port_matches, *peer, *negations)))
    return out


def _peer_alternatives(rule: Rule, peer_dir: str, lookup: SetLookup) -> list[tuple[Match, ...]]:
    if not rule.peers:
        return [()]
    return [(_set_match(lookup(name, PeerSetKind.NET), peer_dir),) for name in rule.peers]


def _set_match(resolved: tuple[str, PeerSetKind], peer_dir: str, negated: bool = False) -> Match:
    name, kind = resolved
    flags = f"{peer_dir},dst" if kind is PeerSetKind.IP_PORT else peer_dir
    return Match("set", (Param("match-set", (name, flags), negated),))


class RenderError(ValueError):
    """A compiled rule the kernel cannot express; the endpoint is reported and skipped."""


def _protocols(rule: Rule) -> list[tuple[str, bool]]:
    """(protocol, negated) choices; empty when the rule can never match."""
    needs_port = bool(rule.ports or rule.named_ports)
    if rule.not_ports and rule.protocol not in PORT_PROTOCOLS:
        # Calico requires a TCP/UDP/SCTP protocol with notPorts; so do we.
        raise RenderError("notPorts needs protocol TCP, UDP or SCTP")
    if rule.protocol is not None:
        if rule.not_protocol is rule.protocol:
            return []
        if needs_port and rule.protocol not in PORT_PROTOCOLS:
            # An ICMP packet has no port: a port condition cannot hold (evaluating: port None).
            return [] if (rule.ports or rule.named_ports) else [(rule.protocol.value.lower(), False)]
        return [(rule.protocol.value.lower(), False)]
    if needs_port:
        return [(p.value.lower(), False) for p in PORT_PROTOCOLS if p is not rule.not_protocol]
    if rule.not_protocol is not None:
        return [(rule.not_protocol.value.lower(), True)]
    return [("", False)]


def _protocol_port_alternatives(
    rule: Rule, peer_dir: str, lookup: SetLookup
) -> list[tuple[str, bool, tuple[Match, ...]]]:
    out: list[tuple[str, bool, tuple[Match, ...]]] = []
    for proto, negated in _protocols(rule):
        not_ports = _not_port_matches(rule.not_ports)
        if rule.ports or rule.named_ports:
            for m in _port_matches(proto, rule.ports):
                out.append((proto, False, (m, *not_ports)))
        else:
            out.append((proto, negated, not_ports))
    if rule.named_ports:
        # The hash:ip,port entries carry the protocol ("10.0.0.5,tcp:8080"), so one rule covers all.
        named = _set_match(lookup(rule.named_ports, PeerSetKind.IP_PORT), peer_dir)
        proto = rule.protocol.value.lower() if rule.protocol in PORT_PROTOCOLS else ""
        if proto:
            out.append((proto, False, (named, *_not_port_matches(rule.not_ports))))
        elif rule.protocol is None and rule.not_protocol is not None:
            out.append((rule.not_protocol.value.lower(), True, (named,)))
        elif rule.protocol is None:
            out.append(("", False, (named,)))
    return out


def _port_matches(proto: str, ports: tuple[PortRange, ...]) -> list[Match]:
    if not ports:
        return []
    if len(ports) == 1:
        return [Match(proto, (Param("dport", (_range(ports[0]),)),))]
    return [Match("multiport", (Param("dports", (",".join(_range(p) for p in chunk),)),)) for chunk in _chunks(ports)]


def _not_port_matches(ports: tuple[PortRange, ...]) -> tuple[Match, ...]:
    return tuple(
        Match("multiport", (Param("dports", (",".join(_range(p) for p in chunk),), negated=True),))
        for chunk in _chunks(ports)
    )


def _chunks(ports: tuple[PortRange, ...]) -> list[tuple[PortRange, ...]]:
    chunks: list[tuple[PortRange, ...]] = []
    current: list[PortRange] = []
    used = 0
    for p in sorted(set(ports)):
        cost = 1 if p.start == p.end else 2
        if used + cost > MULTIPORT_SLOTS:
            chunks.append(tuple(current))
            current, used = [], 0
        current.append(p)
        used += cost
    if current:
        chunks.append(tuple(current))
    return chunks


def _range(p: PortRange) -> str:
    return str(p.start) if p.start == p.end else f"{p.start}:{p.end}"
