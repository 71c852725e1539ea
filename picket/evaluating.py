"""The executable meaning of the compiled model: does a compiled rule set allow a packet?

``verdict(rule_set, peer_ip, protocol, port, peer_sets)`` walks tiers, policies and rules exactly
as ``picket.model`` describes and returns a ``Verdict`` that also says *why* (which policy
decided, or which tier's default). ``connection_allowed`` combines the sender's egress with the
receiver's ingress. The offline matrix, the property tests against the spec oracle and the
dataplane tests all use this one definition, and the agent's renderer must agree with it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from picket.model import (
    Action,
    Compiled,
    Direction,
    EndpointRules,
    PeerSet,
    PeerSetKind,
    PolicyRules,
    Protocol,
    Rule,
    RuleSet,
)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    reason: str  # "not isolated", "allowed by NetworkPolicy x/p", "tier default of tier k8s", ...
    logged: tuple[str, ...] = ()


NOT_ISOLATED = Verdict(True, "not isolated")


@lru_cache(maxsize=65536)
def _net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text, strict=False)


def in_peer_set(peer_set: PeerSet, ip: str, protocol: Protocol | None = None, port: int | None = None) -> bool:
    """Membership with the kernel's semantics (``hash:net``: the most specific entry wins)."""
    if peer_set.kind is PeerSetKind.IP:
        return ip in peer_set.members
    if peer_set.kind is PeerSetKind.IP_PORT:
        if protocol is None or port is None:
            return False
        return f"{ip},{protocol.value.lower()}:{port}" in peer_set.members
    addr = ipaddress.ip_address(ip)
    best_len, best_match = -1, False
    for entries, match in ((peer_set.members, True), (peer_set.excepts, False)):
        for entry in entries:
            net = _net(entry)
            if addr.version != net.version or addr not in net:
                continue
            # The longest prefix decides; on equal prefixes a nomatch entry wins.
            if net.prefixlen > best_len or (net.prefixlen == best_len and not match):
                best_len, best_match = net.prefixlen, match
    return best_match


def rule_matches(
    rule: Rule, peer_ip: str, protocol: Protocol, port: int | None, peer_sets: Mapping[str, PeerSet]
) -> bool:
    if rule.protocol is not None and rule.protocol is not protocol:
        return False
    if rule.not_protocol is not None and rule.not_protocol is protocol:
        return False
    if rule.ports or rule.named_ports:
        in_ports = port is not None and any(port in r for r in rule.ports)
        in_named = bool(rule.named_ports) and _member(peer_sets, rule.named_ports, peer_ip, protocol, port)
        if not (in_ports or in_named):
            return False
    if port is not None and any(port in r for r in rule.not_ports):
        return False
    if rule.peers and not any(_member(peer_sets, n, peer_ip, protocol, port) for n in rule.peers):
        return False
    return not any(_member(peer_sets, n, peer_ip, protocol, port) for n in rule.not_peers)


def _member(
    peer_sets: Mapping[str, PeerSet], name: str | None, ip: str, protocol: Protocol, port: int | None
) -> bool:
    peer_set = peer_sets.get(name or "")
    # A reference to a peer set that does not exist matches nothing (the renderer creates it empty).
    return peer_set is not None and in_peer_set(peer_set, ip, protocol, port)


def verdict(
    rule_set: RuleSet | None,
    peer_ip: str,
    protocol: Protocol,
    port: int | None,
    peer_sets: Mapping[str, PeerSet],
) -> Verdict:
    """Decide one direction for one endpoint. ``peer_ip`` is the other end of the connection."""
    if rule_set is None:
        return NOT_ISOLATED
    logged: list[str] = []
    for tier in rule_set.tiers:
        decided = _tier_decision(tier.policies, peer_ip, protocol, port, peer_sets, logged)
        if decided is None:
            if tier.default is Action.PASS:
                continue
            allowed = tier.default is Action.ALLOW
            return Verdict(allowed, f"no policy of tier {tier.name} allows it", tuple(logged))
        action, policy = decided
        if action is Action.PASS:
            continue
        word = "allowed" if action is Action.ALLOW else "denied"
        return Verdict(action is Action.ALLOW, f"{word} by {policy}", tuple(logged))
    return Verdict(True, "passed every tier", tuple(logged))


def _tier_decision(
    policies: tuple[PolicyRules, ...],
    peer_ip: str,
    protocol: Protocol,
    port: int | None,
    peer_sets: Mapping[str, PeerSet],
    logged: list[str],
) -> tuple[Action, str] | None:
    for policy in policies:
        for rule in policy.rules:
            if not rule_matches(rule, peer_ip, protocol, port, peer_sets):
                continue
            if rule.action is Action.LOG:
                logged.append(policy.policy)
                continue
            return rule.action, policy.policy
    return None


def connection_allowed(
    src: EndpointRules | None,
    dst: EndpointRules | None,
    src_ip: str,
    dst_ip: str,
    protocol: Protocol,
    port: int,
    peer_sets: Mapping[str, PeerSet],
) -> tuple[bool, Verdict, Verdict]:
    """Sender's egress AND receiver's ingress. An endpoint unknown to the model is not isolated."""
    egress = verdict(src.rule_set(Direction.EGRESS) if src else None, dst_ip, protocol, port, peer_sets)
    ingress = verdict(dst.rule_set(Direction.INGRESS) if dst else None, src_ip, protocol, port, peer_sets)
    return egress.allowed and ingress.allowed, egress, ingress


def matrix(
    compiled: Compiled, keys: list[str], protocol: Protocol, port: int
) -> dict[str, dict[str, bool]]:
    """``allowed[source][destination]`` over the given endpoint keys (their first IP).

    A pod reaching itself through its own address never leaves its network namespace, so no
    policy applies to it: the diagonal is always allowed, as a live probe sees it.
    """
    out: dict[str, dict[str, bool]] = {}
    for s in keys:
        src = compiled.endpoints[s]
        row: dict[str, bool] = {}
        for d in keys:
            dst = compiled.endpoints[d]
            if s == d:
                row[d] = True
                continue
            ok, _, _ = connection_allowed(
                src, dst, src.endpoint.ips[0], dst.endpoint.ips[0], protocol, port, compiled.peer_sets
            )
            row[d] = ok
        out[s] = row
    return out
