"""A tiny interpreter of rendered chains: walks a NEW packet through ``Desired`` like netfilter
(FORWARD: ``forward``; INPUT, to the node's own address: ``to_node``).

Supports exactly what the renderer emits (addresses, ``-p``, tcp/udp/sctp ``--dport``,
multiport, ``set`` with src/dst/ip,port flags and hash:net nomatch, conntrack (a NEW packet
unless ``state`` says otherwise, e.g. "ESTABLISHED", or "INVALID" for neighbour discovery),
NFLOG, ``-j``/``-g``/RETURN, ICMPv6 types: ``icmp_type``, None for none of ND/MLD). An IPv6
packet walks ``desired.v6`` (no IPv6 state: nothing polices it). Used to check the renderer
against ``picket.evaluating``, and (``visited``) to count the rules a packet walks.
"""

from __future__ import annotations

import ipaddress

from picket.evaluating import in_peer_set
from picket.model import PeerSet, Protocol
from picket_agent.rendering.desired import Desired, SetSpec
from picket_agent.rendering.iptrules import IptRule, Match


def forward(
    desired: Desired, src: str, dst: str, proto: Protocol, port: int | None, trace: list[str] | None = None,
    visited: list[tuple[str, int]] | None = None, state: str = "NEW", icmp_type: int | None = None,
) -> bool:
    """True when the FORWARD hook lets the packet through (RETURN or ACCEPT), False on DROP.
    ``trace`` collects the chains the packet entered, ``visited`` every rule it was matched
    against, as (chain, index): the work a new connection's first packet costs."""
    if ":" in src:
        if desired.v6 is None:
            return True
        desired = desired.v6
    return _walk(desired, "PICKET-FORWARD", src, dst, proto, port, trace, visited, (state, icmp_type)) != "DROP"


def to_node(
    desired: Desired, src: str, dst: str, proto: Protocol, port: int | None, trace: list[str] | None = None,
    visited: list[tuple[str, int]] | None = None, state: str = "NEW", icmp_type: int | None = None,
) -> bool:
    """True when the INPUT hook lets a packet from ``src`` (e.g. a pod of the node, in over its
    veth) to the node's own address ``dst`` through, False on DROP."""
    if ":" in src:
        if desired.v6 is None:
            return True
        desired = desired.v6
    return _walk(desired, "PICKET-INPUT", src, dst, proto, port, trace, visited, (state, icmp_type)) != "DROP"


def _walk(
    d: Desired, chain: str, src: str, dst: str, proto: Protocol, port: int | None, trace: list[str] | None = None,
    visited: list[tuple[str, int]] | None = None, packet: tuple[str, int | None] = ("NEW", None),
) -> str:
    stack: list[tuple[str, int]] = []
    pos = 0
    for _ in range(100000):
        rules = d.chains[chain]
        if pos >= len(rules):
            if not stack:
                return "RETURN"
            chain, pos = stack.pop()
            continue
        rule = rules[pos]
        if visited is not None:
            visited.append((chain, pos))
        pos += 1
        if not _matches(d, rule, src, dst, proto, port, packet):
            continue
        if rule.target in ("ACCEPT", "DROP"):
            return rule.target
        if rule.target == "NFLOG":
            continue
        if rule.target == "RETURN":
            if not stack:
                return "RETURN"
            chain, pos = stack.pop()
            continue
        if not rule.goto:
            stack.append((chain, pos))
        chain, pos = rule.target, 0
        if trace is not None:
            trace.append(chain)
    raise AssertionError("loop")


def _addr_ok(want: str, ip: str) -> bool:
    full = "/128" if ":" in ip else "/32"
    return not want or ipaddress.ip_address(ip) in ipaddress.ip_network(want if "/" in want else want + full)


def _matches(
    d: Desired, r: IptRule, src: str, dst: str, proto: Protocol, port: int | None, packet: tuple[str, int | None]
) -> bool:
    if r.in_iface or r.out_iface or not _addr_ok(r.src, src) or not _addr_ok(r.dst, dst):
        return False
    name = "ipv6-icmp" if proto is Protocol.ICMP and ":" in src else proto.value.lower()
    if r.protocol and (r.protocol == name) == r.not_protocol:
        return False
    return all(_match(d, m, src, dst, proto, port, packet) for m in r.matches)


def _match(
    d: Desired, m: Match, src: str, dst: str, proto: Protocol, port: int | None, packet: tuple[str, int | None]
) -> bool:
    state, icmp_type = packet
    for p in m.params:
        if m.name == "conntrack":
            result = state in p.values[0].split(",")
        elif p.option in ("dport", "dports"):
            result = port is not None and any(_in_range(port, item) for item in p.values[0].split(","))
        elif p.option == "icmpv6-type":
            result = proto is Protocol.ICMP and icmp_type is not None and str(icmp_type) == p.values[0]
        elif p.option == "match-set":
            result = _in_set(d.sets[p.values[0]], p.values[1], src, dst, proto, port)
        else:
            raise AssertionError(f"unknown match {m}")
        if result == p.negated:
            return False
    return True


def _in_range(port: int, item: str) -> bool:
    first, _, last = item.partition(":")
    return int(first) <= port <= int(last or first)


def _in_set(spec: SetSpec, flags: str, src: str, dst: str, proto: Protocol, port: int | None) -> bool:
    ip = src if flags.split(",")[0] == "src" else dst
    as_peer = PeerSet(spec.name, spec.kind, spec.members, spec.nomatch)
    return in_peer_set(as_peer, ip, proto if "," in flags else None, port if "," in flags else None)
