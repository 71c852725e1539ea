"""Tiny builders over picket.model for agent tests (unit, kernel and benchmarks share them)."""

from __future__ import annotations

from picket.model import (
    Action,
    Compiled,
    Direction,
    Endpoint,
    EndpointKind,
    EndpointRules,
    PeerSet,
    PeerSetKind,
    PolicyRules,
    PortRange,
    Protocol,
    Rule,
    RuleSet,
    Tier,
)

NODE = "node-1"


def pod(key: str, ip: str, node: str = NODE, *more_ips: str) -> Endpoint:
    """A pod; ``more_ips`` make it dual-stack (``pod("x/a", "10.0.0.1", "n1", "fd00::1")``)."""
    ns, name = key.split("/")
    return Endpoint(EndpointKind.POD, ns, name, node, (ip, *more_ips))


def host(name: str, node: str = NODE, ips: tuple[str, ...] = (), interface: str = "") -> Endpoint:
    return Endpoint(EndpointKind.HOST, "", name, node, ips, interface)


def ports(*specs: str) -> tuple[PortRange, ...]:
    return tuple(PortRange.parse(s) for s in specs)


def rule(
    action: Action = Action.ALLOW,
    *,
    proto: Protocol | None = None,
    port: tuple[str, ...] = (),
    named: str | None = None,
    peers: tuple[str, ...] = (),
    not_peers: tuple[str, ...] = (),
    not_ports: tuple[str, ...] = (),
    not_proto: Protocol | None = None,
) -> Rule:
    return Rule(action, proto, ports(*port), named, peers, not_proto, ports(*not_ports), not_peers)


def k8s(direction: Direction, *policies: tuple[str, tuple[Rule, ...]]) -> RuleSet:
    """A Kubernetes NetworkPolicy rule set: one tier that ends in deny."""
    return RuleSet(direction, (Tier("k8s", tuple(PolicyRules(p, rs) for p, rs in policies), Action.DENY),))


def tiers(direction: Direction, *tier_list: Tier) -> RuleSet:
    return RuleSet(direction, tier_list)


def tier(name: str, default: Action, *policies: tuple[str, tuple[Rule, ...]]) -> Tier:
    return Tier(name, tuple(PolicyRules(p, rs) for p, rs in policies), default)


def ip_set(name: str, *members: str) -> PeerSet:
    return PeerSet(name, PeerSetKind.IP, members)


def net_set(name: str, members: tuple[str, ...], excepts: tuple[str, ...] = ()) -> PeerSet:
    return PeerSet(name, PeerSetKind.NET, members, excepts)


def port_set(name: str, *members: str) -> PeerSet:
    return PeerSet(name, PeerSetKind.IP_PORT, members)


def compiled(endpoints: list[EndpointRules], peer_sets: list[PeerSet] = ()) -> Compiled:  # type: ignore[assignment]
    return Compiled({e.endpoint.key: e for e in endpoints}, {s.name: s for s in peer_sets})


def ep(endpoint: Endpoint, ingress: RuleSet | None = None, egress: RuleSet | None = None) -> EndpointRules:
    return EndpointRules(endpoint, ingress, egress)
