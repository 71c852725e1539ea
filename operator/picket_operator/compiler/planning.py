"""From IR policies to model rule sets and peer sets: the pieces both compilers assemble.

* ``plan_policy(policy)`` is done once per policy version: it names every peer set the policy
  uses (``peer_set_name``: a hash of the canonical peer, so equal selectors share one set) and
  pre-builds the policy's ``PolicyRules`` where they do not depend on the endpoint.
* ``endpoint_rules(view, plans, failsafe)`` builds one endpoint's ``EndpointRules`` from the plans
  of the policies that select it (any direction). A host endpoint always gets both rule sets,
  framed by ``calico.hosts.host_rule_set``: failsafe ports first, its policies' tiers, then deny
  (unless it has the default-allow profile), whether or not any policy selects it.
* ``peer_entries(definition, view)`` is what one endpoint contributes to one peer set,
  ``network_set_entries(definition, set_view)`` what one network set contributes (its nets, for
  Calico selectors that match it), and ``make_peer_set`` builds the set from all contributions:
  ``hash:ip`` while every entry is an address, ``hash:net`` (addresses as /32 or /128) as soon as
  a network set brings a wider CIDR. A host-sized net is entered as the address, so the entries
  determine the set exactly (``incremental`` relies on that to report exact deltas).

Used by ``compiling.compile_cluster`` (everything at once) and ``incremental`` (what an event
touches). Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from picket.failsafe import Failsafe
from picket.model import (
    Direction,
    EndpointKind,
    EndpointRules,
    PeerSet,
    PeerSetKind,
    PolicyRules,
    PortRange,
    Problem,
    Protocol,
    Rule,
    RuleSet,
    Tier,
    stable_hash,
)
from picket_operator.compiler import ir
from picket_operator.compiler.frontends.calico.hosts import HostEndpoint, host_rule_set
from picket_operator.compiler.frontends.legacy import ANNOTATION as LEGACY_ANNOTATION
from picket_operator.compiler.hostviews import NetworkSetView, net_entry
from picket_operator.compiler.nodeviews import NODE_KIND
from picket_operator.compiler.views import PodView


@dataclass(frozen=True)
class NamedPortPeers:
    """Egress named ports: every endpoint's (ip, protocol, port) for a port named in ``names``."""

    protocol: Protocol
    names: tuple[str, ...]

    def canonical(self) -> str:
        return f"named-ports:{self.protocol.value.lower()}:{','.join(self.names)}"


PeerDefinition = ir.Peer | NamedPortPeers


def peer_set_name(definition: PeerDefinition) -> str:
    if isinstance(definition, NamedPortPeers):
        return "nport-" + stable_hash(definition.canonical())
    prefix = "nets-" if definition.selector is None else "nodes-" if ir.selects_nodes(definition.selector) else "pods-"
    return prefix + stable_hash(definition.canonical())


@dataclass(frozen=True)
class RulePlan:
    rule: ir.Rule
    peers: tuple[str, ...]
    not_peers: tuple[str, ...]
    named_set: str | None  # egress named ports


class PolicyPlan:
    """One policy, with its peer sets named and its endpoint-independent rules pre-built."""

    def __init__(self, policy: ir.Policy) -> None:
        self.policy = policy
        self.order = (policy.tier.order, policy.tier.name, *policy.sort_key())  # where it goes in a rule set
        self.peer_definitions: dict[str, PeerDefinition] = {}
        self.plans = {d: tuple(self._plan(r, d) for r in policy.rules(d)) for d in Direction}
        self._static: dict[Direction, tuple[PolicyRules, ...]] = {}
        self._by_ports: dict[tuple[object, ...], tuple[PolicyRules, ...]] = {}
        for d in Direction:
            if d is Direction.EGRESS or not any(p.rule.named_ports for p in self.plans[d]):
                self._static[d] = self._build(d, None)

    def _name(self, definition: PeerDefinition) -> str:
        name = peer_set_name(definition)
        self.peer_definitions[name] = definition
        return name

    def _plan(self, rule: ir.Rule, direction: Direction) -> RulePlan:
        named = None
        if rule.named_ports and rule.protocol is not None and direction is Direction.EGRESS:
            named = self._name(NamedPortPeers(rule.protocol, tuple(sorted(set(rule.named_ports)))))
        peers = tuple(dict.fromkeys(self._name(p) for p in rule.peers))
        not_peers = tuple(dict.fromkeys(self._name(p) for p in rule.not_peers))
        return RulePlan(rule, peers, not_peers, named)

    def policy_rules(self, direction: Direction, view: PodView) -> tuple[PolicyRules, ...]:
        """The policy's entries in a rule set: one, or one per named rule (see ``ir.Rule.name``)."""
        static = self._static.get(direction)
        if static is not None:
            return static
        cached = self._by_ports.get(view.named_ports)
        if cached is None:
            cached = self._build(direction, view)
            self._by_ports[view.named_ports] = cached
        return cached

    def _build(self, direction: Direction, view: PodView | None) -> tuple[PolicyRules, ...]:
        built = [(p.rule.name, _model_rule(p, view)) for p in self.plans[direction]]
        display = self.policy.display
        if not any(name for name, _ in built):
            return (PolicyRules(display, tuple(r for _, r in built if r is not None)),)
        # Named rules (ClusterNetworkPolicy): consecutive rules of one name form one entry, in order,
        # which evaluates the same (entries of a tier are read in order) and names the rule in
        # counters and drops. A rule that resolves to nothing (an unknown named port) is left out.
        groups: list[tuple[str, list[Rule]]] = []
        for name, rule in built:
            if not groups or groups[-1][0] != name:
                groups.append((name, []))
            if rule is not None:
                groups[-1][1].append(rule)
        return tuple(PolicyRules(f"{display} rule {name}" if name else display, tuple(rules))
                     for name, rules in groups if rules)


def _model_rule(plan: RulePlan, view: PodView | None) -> Rule | None:
    rule, ports = plan.rule, plan.rule.ports
    if rule.named_ports and plan.named_set is None:
        # Ingress: "a named port ... is resolved against the selected (receiving) pod" by name AND
        # protocol. A name the pod does not declare matches nothing.
        if view is not None and rule.protocol is not None:
            numbers = {n for name in rule.named_ports for n in view.resolve_all(name, rule.protocol)}
            ports = tuple(sorted(set(ports) | {PortRange(n, n) for n in numbers}))
        if not ports:
            return None
    return Rule(
        action=rule.action,
        protocol=rule.protocol,
        ports=ports,
        named_ports=plan.named_set,
        peers=plan.peers,
        not_protocol=rule.not_protocol,
        not_ports=rule.not_ports,
        not_peers=plan.not_peers,
    )


def selects(plan: PolicyPlan, view: PodView) -> bool:
    policy = plan.policy
    return view.kind in policy.endpoint_kinds and policy.applies_to.matches(
        view.labels, view.namespace, view.namespace_labels
    )


def legacy_policy_name(namespace: str) -> str:
    return f"Namespace {namespace} ({LEGACY_ANNOTATION}: DefaultDeny)"


def rule_set(direction: Direction, view: PodView, plans: Iterable[PolicyPlan]) -> RuleSet | None:
    """A pod is isolated in a direction iff some selecting policy affects that direction."""
    tiers = policy_tiers(direction, view, plans)
    if not tiers:
        return None  # "By default, a pod is non-isolated": everything is allowed.
    return RuleSet(direction, tiers)


def policy_tiers(direction: Direction, view: PodView, plans: Iterable[PolicyPlan]) -> tuple[Tier, ...]:
    """The tiers of the selecting policies that affect ``direction``, in order (may be empty)."""
    affecting = [p for p in plans if direction in p.policy.directions]
    legacy = direction is Direction.INGRESS and view.legacy_ingress_isolation
    if not affecting and not legacy:
        return ()
    affecting.sort(key=lambda p: p.order)
    tiers: dict[ir.TierRef, list[PolicyRules]] = {}
    for plan in affecting:
        tiers.setdefault(plan.policy.tier, []).extend(plan.policy_rules(direction, view))
    if legacy:
        tiers.setdefault(ir.K8S_TIER, []).append(PolicyRules(legacy_policy_name(view.namespace), ()))
    ordered = sorted(tiers.items(), key=lambda item: (item[0].order, item[0].name))
    return tuple(Tier(t.name, tuple(prs), t.default) for t, prs in ordered)


def endpoint_rules(view: PodView, plans: Iterable[PolicyPlan], failsafe: Failsafe | None = None) -> EndpointRules:
    """Enforced rule sets from the plans that are not staged; when a staged one (audit mode)
    selects the endpoint, also the rule sets as they would be with it (``staged_*``, only for
    a direction it changes)."""
    selecting = list(plans)
    enforced = [p for p in selecting if not p.policy.staged]
    er = _endpoint_rules(view, enforced, failsafe)
    if len(enforced) == len(selecting):
        return er
    would = _endpoint_rules(view, selecting, failsafe)
    return EndpointRules(er.endpoint, er.ingress, er.egress,
                         would.ingress if would.ingress != er.ingress else None,
                         would.egress if would.egress != er.egress else None)


def _endpoint_rules(view: PodView, selecting: list[PolicyPlan], failsafe: Failsafe | None) -> EndpointRules:
    if view.kind is EndpointKind.HOST:
        host = HostEndpoint(view.endpoint(), view.labels, default_allow=view.default_allow)
        return EndpointRules(
            view.endpoint(),
            host_rule_set(Direction.INGRESS, policy_tiers(Direction.INGRESS, view, selecting), host, failsafe),
            host_rule_set(Direction.EGRESS, policy_tiers(Direction.EGRESS, view, selecting), host, failsafe),
        )
    return EndpointRules(
        view.endpoint(),
        rule_set(Direction.INGRESS, view, selecting),
        rule_set(Direction.EGRESS, view, selecting),
    )


def peer_entries(definition: PeerDefinition, view: PodView) -> tuple[str, ...]:
    """The members one endpoint contributes to a peer set (empty when it does not belong)."""
    if isinstance(definition, NamedPortPeers):
        proto = definition.protocol.value.lower()
        return tuple(
            f"{ip},{proto}:{p.port}"
            for p in view.named_ports
            if p.protocol is definition.protocol and p.name in definition.names
            for ip in view.ips
        )
    selector = definition.selector
    if selector is None or not selector.matches(view.labels, view.namespace, view.namespace_labels):
        return ()
    if not definition.nets:
        return view.ips
    return tuple(ip for ip in view.ips if _in_nets(ip, definition.nets, definition.excepts))


def network_set_entries(definition: PeerDefinition, view: NetworkSetView) -> tuple[str, ...]:
    """The nets a network set contributes to a peer set: all of them when the peer's (Calico)
    selector matches the set, cut down to the peer's own ``nets`` when it has some (ANDed)."""
    if isinstance(definition, NamedPortPeers) or definition.selector is None:
        return ()
    selector = definition.selector
    if view.kind == NODE_KIND:  # a Node: only node selectors (ClusterNetworkPolicy ``nodes``) match it
        return view.entries if ir.matches_node(selector, view.labels) else ()
    if not ir.selects_network_sets(selector) or not selector.matches(
        view.labels, view.namespace, view.namespace_labels
    ):
        return ()
    if not definition.nets:
        return view.entries
    own = [_network(m) for m in definition.nets]
    overlaps = (c for n in view.nets for m in own if (c := _overlap(_network(n), m)) is not None)
    return tuple(dict.fromkeys(net_entry(str(c)) for c in overlaps))


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _network(text: str) -> Network:
    return ipaddress.ip_network(text, strict=False)


def _overlap(a: Network, b: Network) -> Network | None:
    """Two CIDRs overlap only by one containing the other: the smaller one is the overlap."""
    if a.version != b.version:
        return None
    if a.subnet_of(b):  # type: ignore[arg-type]
        return a
    return b if b.subnet_of(a) else None  # type: ignore[arg-type]


def _host_net(entry: str) -> str:
    if "/" in entry:
        return entry
    return f"{entry}/{32 if ipaddress.ip_address(entry).version == 4 else 128}"


def _in_nets(ip: str, nets: tuple[str, ...], excepts: tuple[str, ...]) -> bool:
    addr = ipaddress.ip_address(ip)

    def inside(cidrs: tuple[str, ...]) -> bool:
        return any(addr in ipaddress.ip_network(c, strict=False) for c in cidrs)

    return inside(nets) and not inside(excepts)


def make_peer_set(name: str, definition: PeerDefinition, entries: Iterable[str]) -> PeerSet:
    description = definition.canonical()
    if isinstance(definition, NamedPortPeers):
        return PeerSet(name, PeerSetKind.IP_PORT, tuple(sorted(set(entries))), (), description)
    if definition.selector is None:
        return PeerSet(name, PeerSetKind.NET, definition.nets, definition.excepts, description)
    unique = set(entries)
    if any("/" in e for e in unique):  # a network set brought a CIDR: one hash:net set for all
        members = tuple(sorted({_host_net(e) for e in unique}))
        return PeerSet(name, PeerSetKind.NET, members, definition.excepts, description)
    return PeerSet(name, PeerSetKind.IP, tuple(sorted(unique)), (), description)


def named_port_warnings(
    policy: ir.Policy, selected: Iterable[PodView], declared: Callable[[str, Protocol], bool]
) -> tuple[Problem, ...]:
    """Named ports that currently resolve nowhere (they match nothing; the policy still applies).

    Ingress names are looked up on the pods the policy selects; egress names on every pod
    (``declared``). Recomputed from the current state whenever problems are read.
    """
    if not policy.named_port_sources:
        return ()
    views = list(selected)
    out = []
    for direction, name, protocol, path in policy.named_port_sources:
        if direction is Direction.INGRESS:
            if any(v.resolve(name, protocol) is not None for v in views):
                continue
            where = "no pod this policy selects"
        elif declared(name, protocol):
            continue
        else:
            where = "no pod"
        message = f"named port {name!r} ({protocol.value}) is declared by {where}; it matches nothing"
        out.append(Problem(policy.kind, policy.namespace, policy.name, path, message))
    return tuple(out)
