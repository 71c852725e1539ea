"""The pure renderer: one node's compiled rule sets -> the desired chains and ipsets.

``render(compiled, settings)`` returns a ``Desired``: ordered ``PICKET-*`` chains of ``IptRule``,
the hook rule per built-in chain, the ``picket-*`` ipsets, the drop reasons behind each drop
chain, and the version of every endpoint it rendered. ``Desired.save_text()`` is its
``iptables-save``/``ipset save`` form (the golden tests). No kernel, no I/O.

Chain layout (filter table; README.md's agent section draws it):

* ``FORWARD -> PICKET-FORWARD``: replies (ESTABLISHED,RELATED) accepted, INVALID dropped, then
  ``-j PICKET-POD-EGRESS`` (by source IP) and ``-j PICKET-POD-INGRESS`` (by destination IP).
  Both run in the same traversal, so a packet between two pods of this node must pass the
  sender's egress *and* the receiver's ingress: an allow RETURNs, it never ACCEPTs early.
* Dispatch rules ``-g`` (goto) the endpoint's first tier chain; tiers chain to each other by
  goto, so a RETURN anywhere (Allow, an allowing tier default, falling off the last tier) goes
  straight back to ``PICKET-FORWARD``, which moves on to the other direction.
* In a tier chain: Allow -> RETURN; Deny -> goto a ``PICKET-DROP-*`` chain (optional NFLOG,
  then a counted DROP); Pass -> goto the next tier (RETURN after the last); Log -> NFLOG and
  continue; the tier's default at its end.
* Audit mode: an endpoint's staged rule sets (``EndpointRules.staged_*``) get their own tier
  chains (named by ``naming.audit_key``), dispatched from ``PICKET-AUDIT-EGRESS`` /
  ``-INGRESS``, which ``PICKET-FORWARD`` jumps to (``-j``) before the enforcing dispatch; their
  drop chains NFLOG and RETURN, so a staged policy is evaluated on every new connection and
  never decides it (``tiers``: ``audit``).
* ``INPUT -> PICKET-INPUT`` / ``OUTPUT -> PICKET-OUTPUT``: host endpoints (loopback exempt,
  conntrack first, failsafe ports accepted before any host policy), matched by interface and by
  the endpoint's expected IPs (so connections between a host and its own pods are policed too).
  With ``host_apply_on_forward`` their chains also see forwarded traffic on their interface.
* A local pod's connection to its own node is delivered locally, never forwarded: in
  ``PICKET-INPUT`` packets that are no reply ``-j PICKET-POD-EGRESS`` (and the audit egress
  dispatch), after loopback, ND/MLD and the host conntrack rules and before the failsafe ports
  and host endpoints, so the pod's egress and then the host's ingress must allow
  (``_pods_to_node``). Node -> pod is never policed (the NetworkPolicy spec allows it).
* IPv6: neighbour discovery and MLD are never policed and RETURN before the INVALID drop
  (conntrack calls them INVALID). They sit in ``<hook chain>-ICMPV6``, which the hook chain's
  ``-p ipv6-icmp -g`` enters ahead of its other rules (a copy of them follows the ND rules
  there), so only ICMPv6 packets walk them (``_with_nd``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache

from picket.model import (
    Compiled,
    Direction,
    EndpointKind,
    EndpointRules,
    PeerSet,
    PeerSetKind,
    Rule,
    RuleSet,
    canonical_json,
    text_hash,
)
from picket_agent.rendering import dispatch, naming
from picket_agent.rendering.desired import (
    Desired,
    DropReason,
    RenderSettings,
    SetSpec,
    failsafe_mismatch,
)
from picket_agent.rendering.expanding import Alternative, expand
from picket_agent.rendering.iptrules import IptRule, Match, Param
from picket_agent.rendering.tiers import TierRenderer

__all__ = ["Desired", "DropReason", "RenderSettings", "SetSpec", "render"]

def endpoint_version(er: EndpointRules) -> str:
    """``stable_hash(er.to_dict())``: what the agent reports applied, compared with the version an
    operator published (a CompiledEndpoint's ``spec.version``, the per-pod form) and with the
    CompiledNode's rows, so it must stay exactly that hash.

    Computed without serialising every rule again: each distinct rule set's canonical JSON is made
    once (published rule sets are content-addressed and shared by every endpoint bound to them,
    ``published``, so a policy over a 1,000-pod namespace costs one), and the endpoint's JSON is
    assembled around them in ``canonical_json``'s key order."""
    fields = {"egress": er.egress, "ingress": er.ingress}
    if er.staged_egress is not None:
        fields["stagedEgress"] = er.staged_egress
    if er.staged_ingress is not None:
        fields["stagedIngress"] = er.staged_ingress
    parts = {name: _rule_set_json(rule_set) for name, rule_set in fields.items()}
    parts["endpoint"] = canonical_json(er.endpoint.to_dict())
    return text_hash("{" + ",".join(f'"{name}":{parts[name]}' for name in sorted(parts)) + "}")


@lru_cache(maxsize=8192)
def _rule_set_json(rule_set: RuleSet | None) -> str:
    return "null" if rule_set is None else canonical_json(rule_set.to_dict())


DEFAULT_SETTINGS = RenderSettings()

# What rendering one endpoint produced, and the peer-set lookups it made (name, use, kind).
_Lookup = tuple[str, PeerSetKind, PeerSetKind]
_Rendered = tuple[dict[str, tuple[IptRule, ...]], list[DropReason], list[tuple[str, IptRule]], list[_Lookup]]


class RenderCache:
    """Memo of per-endpoint output across syncs: an unchanged endpoint is not rendered again.

    A hit needs the same ``EndpointRules``, the same settings and the same kinds for the peer
    sets it referenced (their members may change freely: sets are built fresh every time).
    """

    def __init__(self) -> None:
        self.entries: dict[str, tuple[EndpointRules, RenderSettings, _Rendered, str]] = {}
        self.v6: RenderCache | None = None  # the IPv6 family's memo


def render(
    compiled: Compiled, settings: RenderSettings = DEFAULT_SETTINGS, cache: RenderCache | None = None
) -> Desired:
    """The IPv4 state, with the IPv6 state in ``.v6`` when any endpoint has an IPv6 address.

    Both families render the same rule sets into the same chain names (``iptables`` and
    ``ip6tables`` are separate tables); they differ in the addresses dispatched on, in the
    ipsets (each family's members of a peer set: ``picket-*`` inet, ``picket-6-*`` inet6), in
    ICMP (``icmp`` / ``ipv6-icmp``) and in IPv6's neighbour discovery rules (``_top_chains``)."""
    v4 = _render_family(compiled, settings, cache, 4)
    if not any(":" in ip for er in compiled.endpoints.values() for ip in er.endpoint.ips):
        if cache is not None:
            cache.v6 = None
        return v4
    if cache is not None and cache.v6 is None:
        cache.v6 = RenderCache()
    v6 = _render_family(compiled, settings, cache.v6 if cache is not None else None, 6)
    return replace(
        v4,
        versions={**v6.versions, **v4.versions},
        problems=tuple(dict.fromkeys((*v4.problems, *v6.problems))),
        failed=v4.failed | v6.failed,
        v6=v6,
    )


def _render_family(compiled: Compiled, settings: RenderSettings, cache: RenderCache | None, family: int) -> Desired:
    builder = _Builder(compiled.peer_sets, settings, cache, family)
    for key in sorted(compiled.endpoints):
        builder.add_endpoint(key, compiled.endpoints[key])
    if cache is not None:
        for key in set(cache.entries) - set(compiled.endpoints):
            del cache.entries[key]
    return builder.finish()


class _Builder:
    def __init__(
        self, peer_sets: Mapping[str, PeerSet], settings: RenderSettings, cache: RenderCache | None, family: int = 4
    ) -> None:
        self.family = family
        self.peer_sets = peer_sets
        self.settings = settings
        self.cache = cache
        self.lookups: list[_Lookup] = []
        self.sets: dict[str, SetSpec] = {}
        self.chains: dict[str, tuple[IptRule, ...]] = {}
        self.pod_egress: list[IptRule] = []
        self.pod_ingress: list[IptRule] = []
        self.host_in: list[IptRule] = []
        self.host_out: list[IptRule] = []
        self.host_fwd: list[IptRule] = []
        self.audit_in: list[IptRule] = []
        self.audit_out: list[IptRule] = []
        self.drops: dict[str, DropReason] = {}
        self.versions: dict[str, str] = {}
        self.problems: list[str] = []
        self.failed: set[str] = set()
        self._resolved: dict[tuple[str, PeerSetKind], tuple[str, PeerSetKind]] = {}  # lookups made this render
        # Each distinct (rule, direction) is expanded once per render, with the lookups it made
        # (replayed into ``lookups`` on a hit, so the render cache still knows what an endpoint
        # read): endpoints share rules (one policy selecting many pods), and so do policies.
        self._expanded: dict[tuple[Rule, Direction], tuple[list[Alternative], list[_Lookup]]] = {}

    def add_endpoint(self, key: str, er: EndpointRules) -> None:
        if not self._in_family(er) and (self.family == 6 or er.endpoint.ips):
            return  # e.g. an IPv4-only pod has no IPv6 traffic to police (and an IPv6-only one no IPv4)
        self.lookups = []
        rendered = self._cached(key, er)
        if rendered is None:
            sets_before = dict(self.sets)
            self.lookups = []
            try:
                chains, drops, dispatch = self._endpoint(key, er)
            except ValueError as exc:
                self.sets = sets_before
                self._resolved.clear()  # it may name sets just dropped again
                self._expanded.clear()  # likewise
                self.problems.append(f"endpoint {key}: {exc}; skipped (its last good rules stay enforced)")
                self.failed.add(key)
                return
            rendered = (chains, drops, dispatch, list(dict.fromkeys(self.lookups)))
            version = endpoint_version(er)
            if self.cache is not None:
                self.cache.entries[key] = (er, self.settings, rendered, version)
        else:
            version = self.cache.entries[key][3] if self.cache is not None else endpoint_version(er)
        chains, drops, dispatch, _ = rendered
        self.chains.update(chains)
        self.drops.update({d.id: d for d in drops})
        targets = self._targets()
        for target, rule in dispatch:
            targets[target].append(rule)
        self.versions[key] = version

    def _cached(self, key: str, er: EndpointRules) -> _Rendered | None:
        hit = self.cache.entries.get(key) if self.cache is not None else None
        if hit is None or hit[0] != er or hit[1] != self.settings:
            return None
        for name, use, kind in hit[2][3]:
            if self._lookup(name, use)[1] is not kind:  # the set name follows from (name, kind)
                return None
        return hit[2]

    def _in_family(self, er: EndpointRules) -> bool:
        ep = er.endpoint
        return any((":" in ip) == (self.family == 6) for ip in ep.ips) or (
            ep.kind is EndpointKind.HOST and bool(ep.interface))

    def _targets(self) -> dict[str, list[IptRule]]:
        return {"pod_in": self.pod_ingress, "pod_out": self.pod_egress, "host_in": self.host_in,
                "host_out": self.host_out, "host_fwd": self.host_fwd, "audit_in": self.audit_in,
                "audit_out": self.audit_out}

    def _endpoint(
        self, key: str, er: EndpointRules
    ) -> tuple[dict[str, tuple[IptRule, ...]], list[DropReason], list[tuple[str, IptRule]]]:
        ep = er.endpoint
        chains: dict[str, tuple[IptRule, ...]] = {}
        drops: list[DropReason] = []
        dispatch: list[tuple[str, IptRule]] = []
        for direction in (Direction.INGRESS, Direction.EGRESS):
            rule_set = er.rule_set(direction)
            if rule_set is None or not rule_set.tiers:
                continue  # not isolated in this direction (or no tier: falls through to allow)
            if ep.kind is EndpointKind.HOST:
                s = self.settings
                ours = s.failsafe_inbound if direction is Direction.INGRESS else s.failsafe_outbound
                mismatch = failsafe_mismatch(rule_set, ours)
                if mismatch:
                    self.problems.append(f"endpoint {key} {direction.value.lower()}: {mismatch}")
            tiers = TierRenderer(key, direction, self.settings, self._lookup, self.family, expander=self._expand)
            chains.update(tiers.render(rule_set))
            drops += tiers.drops
            first = naming.tier_chain(key, direction.value, 0)
            comment = f"{key} {direction.value.lower()}"
            dispatch += self._dispatch(ep.kind, ep.ips, ep.interface, direction, first, comment)
        for direction in (Direction.INGRESS, Direction.EGRESS):
            staged = er.staged_ingress if direction is Direction.INGRESS else er.staged_egress
            if staged is not None and staged.tiers and ep.kind is EndpointKind.POD:
                enforced = er.rule_set(direction)
                names = {p.policy for t in enforced.tiers for p in t.policies} if enforced is not None else set()
                new = tuple(dict.fromkeys(p.policy for t in staged.tiers for p in t.policies if p.policy not in names))
                audit = TierRenderer(naming.audit_key(key), direction, self.settings, self._lookup, self.family,
                                     True, new, key, expander=self._expand)
                chains.update(audit.render(staged))
                drops += audit.drops
                first = naming.tier_chain(naming.audit_key(key), direction.value, 0)
                comment = f"{key} {direction.value.lower()} (staged)"
                ingress = direction is Direction.INGRESS
                dispatch += [("audit_in" if ingress else "audit_out", _by_address(first, ip, ingress, comment))
                             for ip in (_address(i, self.family) for i in ep.ips) if ip is not None]
        return chains, drops, dispatch

    def _dispatch(
        self, kind: EndpointKind, ips: tuple[str, ...], iface: str, direction: Direction, first: str, comment: str
    ) -> list[tuple[str, IptRule]]:
        ingress = direction is Direction.INGRESS
        v4 = [a for a in (_address(ip, self.family) for ip in ips) if a is not None]  # this family's
        if kind is EndpointKind.POD:
            if not ips:
                raise ValueError("a pod endpoint needs an IP address")
            target = "pod_in" if ingress else "pod_out"
            return [(target, _by_address(first, ip, ingress, comment)) for ip in v4]
        target = "host_in" if ingress else "host_out"
        # The interface, and the host's own addresses too: traffic between a host and its own pods
        # uses the pods' veths, not the interface, and the compiled model (README.md, Calico-style policies) polices
        # every connection to and from the host's addresses, its own pods' included.
        out = [(target, _by_iface(first, iface, ingress, comment, goto=True))] if iface else []
        out += [(target, _by_address(first, ip, ingress, comment)) for ip in v4]
        if iface and self.settings.host_apply_on_forward:
            out.append(("host_fwd", _by_iface(first, iface, ingress, comment + " (forwarded)", goto=False)))
        return out or [(target, IptRule(first, goto=True, comment=comment))]

    def _expand(self, rule: Rule, direction: Direction) -> list[Alternative]:
        memo = self._expanded.get((rule, direction))
        if memo is None:
            start = len(self.lookups)
            alternatives = expand(rule, direction, self._lookup)
            memo = self._expanded[(rule, direction)] = (alternatives, self.lookups[start:])
        else:
            self.lookups += memo[1]
        return memo[0]

    def _lookup(self, peer_set: str, use: PeerSetKind) -> tuple[str, PeerSetKind]:
        resolved = self._resolved.get((peer_set, use))
        if resolved is None:
            ps = self.peer_sets.get(peer_set)
            kind = ps.kind if ps is not None else use
            name = naming.set_name(peer_set, kind.value, self.family)
            if name not in self.sets:
                self.sets[name] = _set_spec(name, ps, kind, peer_set, self.problems, self.family)
            resolved = self._resolved[(peer_set, use)] = (name, kind)
        self.lookups.append((peer_set, use, resolved[1]))
        return resolved

    def finish(self) -> Desired:
        top = _top_chains(self)
        chains = {**top, **self.chains}
        hooks = {hook: IptRule(chain, comment=f"picket: {hook.lower()} policy") for hook, chain in naming.HOOKS.items()}
        return Desired(
            chains,
            hooks,
            dict(sorted(self.sets.items())),
            self.drops,
            self.versions,
            tuple(self.problems),
            frozenset(self.failed),
        )


def _top_chains(b: _Builder) -> dict[str, tuple[IptRule, ...]]:
    s = b.settings
    audit = [IptRule(naming.AUDIT_EGRESS_CHAIN, comment="picket: audit mode, staged egress of the sender"),
             IptRule(naming.AUDIT_INGRESS_CHAIN, comment="picket: audit mode, staged ingress of the receiver")]
    forward = [
        *_conntrack("picket"),
        *(audit if b.audit_in or b.audit_out else []),
        IptRule(naming.POD_EGRESS_CHAIN, comment="picket: egress of the sender"),
        IptRule(naming.POD_INGRESS_CHAIN, comment="picket: ingress of the receiver"),
        *b.host_fwd,
    ]
    host_in: list[IptRule] = []
    host_out: list[IptRule] = []
    lo_in: list[IptRule] = []
    lo_out: list[IptRule] = []
    to_node = _pods_to_node(b)
    if b.host_in:
        lo_in = [IptRule("RETURN", in_iface="lo", comment=_LOOPBACK)]
        host_in = [*_conntrack("picket host"), *to_node, *_failsafe(s.failsafe_inbound, "inbound"), *b.host_in]
    elif to_node:
        lo_in, host_in = [IptRule("RETURN", in_iface="lo", comment=_LOOPBACK)], to_node
    if b.host_out:
        lo_out = [IptRule("RETURN", out_iface="lo", comment=_LOOPBACK)]
        host_out = [*_conntrack("picket host"), *_failsafe(s.failsafe_outbound, "outbound"), *b.host_out]
    audit_chains = {naming.AUDIT_EGRESS_CHAIN: tuple(b.audit_out), naming.AUDIT_INGRESS_CHAIN: tuple(b.audit_in)}
    return {
        **_with_nd(naming.FORWARD_CHAIN, [], forward, b.family),
        **(audit_chains if b.audit_in or b.audit_out else {}),
        **dispatch.tree(naming.POD_EGRESS_CHAIN, b.pod_egress, ingress=False),
        **dispatch.tree(naming.POD_INGRESS_CHAIN, b.pod_ingress, ingress=True),
        **_with_nd(naming.INPUT_CHAIN, lo_in, host_in, b.family),
        **_with_nd(naming.OUTPUT_CHAIN, lo_out, host_out, b.family),
    }


def _with_nd(chain: str, head: list[IptRule], rest: list[IptRule], family: int) -> dict[str, tuple[IptRule, ...]]:
    """``chain``: ``head`` (the loopback exemption) then ``rest``, with IPv6's ND/MLD exemption
    between them when ``rest`` is not empty.

    The eight ND/MLD rules are not in ``chain`` itself, where every packet of the hook (an
    established connection's too) would walk them: one ``-p ipv6-icmp -g <chain>-ICMPV6``
    sends ICMPv6 only to a chain holding the eight RETURNs and then a copy of ``rest``.
    Equivalent to ``head + nd + rest``: the copy's ``-j`` jumps come back to the copy and go on
    with the same rules, its gotos and a fall off its end return to the hook, like ``chain``'s,
    and a RETURN there too (the ICMPv6 chain is entered by goto)."""
    if family != 6 or not rest:
        return {chain: (*head, *rest)}
    sub = naming.icmpv6_chain(chain)
    jump = IptRule(sub, protocol="ipv6-icmp", goto=True, comment="picket: ICMPv6, neighbour discovery first")
    return {chain: (*head, jump, *rest), sub: (*_neighbour_discovery(), *rest)}


def _pods_to_node(b: _Builder) -> list[IptRule]:
    """INPUT's jumps to the pod egress dispatch: a local pod's connection to its own node.

    Such a packet is delivered locally (INPUT), never forwarded, so without these a pod's
    egress rules (a Deny of its node's address, a default deny) did not apply to it. It walks
    the same ``PICKET-POD-EGRESS`` (by source IP) as in FORWARD; a RETURN (allowed, or not a
    policed pod) comes back here and goes on to the host endpoints, if any: both must allow,
    as between two pods. Only packets that are no reply: picket accepts no host traffic where
    no host endpoint asks it to (replies of node -> pod connections, e.g. kubelet probes, go on
    through INPUT as before); with a host endpoint its conntrack ACCEPT came first anyway."""
    new = _ctstate("RELATED,ESTABLISHED", negated=True)
    audit = [IptRule(naming.AUDIT_EGRESS_CHAIN, new, "picket: audit mode, staged egress of a local pod to this node")]
    egress = [IptRule(naming.POD_EGRESS_CHAIN, new, "picket: egress of a local pod to this node")]
    return [*(audit if b.audit_out else []), *(egress if b.pod_egress else [])]


_LOOPBACK = "picket: loopback is never policed"
# ICMPv6 that IPv6 itself needs (RFC 4890 4.4.1): MLD (130-132, 143) and neighbour discovery
# (133-136). Never policed, and before the INVALID drop: conntrack does not track them, so
# their ctstate is INVALID and an isolated pod (or host) would lose its neighbours.
_ICMPV6_NEEDED = (130, 131, 132, 133, 134, 135, 136, 143)


def _neighbour_discovery() -> list[IptRule]:
    return [
        IptRule("RETURN", (Match("icmp6", (Param("icmpv6-type", (str(t),)),)),),
                "picket: IPv6 neighbour discovery and MLD are never policed", protocol="ipv6-icmp")
        for t in _ICMPV6_NEEDED
    ]


def _by_address(first: str, ip: str, ingress: bool, comment: str) -> IptRule:
    if ingress:
        return IptRule(first, dst=ip, goto=True, comment=comment)
    return IptRule(first, src=ip, goto=True, comment=comment)


def _by_iface(first: str, iface: str, ingress: bool, comment: str, goto: bool) -> IptRule:
    if ingress:
        return IptRule(first, in_iface=iface, goto=goto, comment=comment)
    return IptRule(first, out_iface=iface, goto=goto, comment=comment)


def _ctstate(state: str, negated: bool = False) -> tuple[Match, ...]:
    return (Match("conntrack", (Param("ctstate", (state,), negated),)),)


def _conntrack(who: str) -> list[IptRule]:
    return [
        IptRule("ACCEPT", _ctstate("RELATED,ESTABLISHED"), f"{who}: replies of allowed connections"),
        IptRule("DROP", _ctstate("INVALID"), f"{who}: invalid packets"),
    ]


def _failsafe(ports: tuple[str, ...], which: str) -> list[IptRule]:
    by_proto: dict[str, list[str]] = {}
    for entry in ports:
        proto, _, port = entry.partition(":")
        by_proto.setdefault(proto.lower(), []).append(port)
    return [
        IptRule("ACCEPT", (Match("multiport", (Param("dports", (",".join(nums),)),)),),
                f"picket: failsafe {which} {proto}", protocol=proto)
        for proto, nums in sorted(by_proto.items())
    ]


def _address(ip: str, family: int) -> str | None:
    """``ip`` in canonical form if it is of ``family``, else None; ValueError if it is no address."""
    if family == 4 and ":" not in ip:
        try:
            if socket.inet_ntoa(socket.inet_aton(ip)) == ip:
                return ip  # already a canonical dotted quad (the common case: 4x faster than ipaddress)
        except OSError:
            pass
    addr = ipaddress.ip_address(ip)  # ValueError names the bad address
    return str(addr) if addr.version == family else None


def _set_spec(
    name: str, ps: PeerSet | None, kind: PeerSetKind, source: str, problems: list[str], family: int = 4
) -> SetSpec:
    spec, found = _set_spec_cached(name, ps, kind, source, family)
    problems += found
    return spec


@lru_cache(maxsize=4096)
def _set_spec_cached(
    name: str, ps: PeerSet | None, kind: PeerSetKind, source: str, family: int
) -> tuple[SetSpec, tuple[str, ...]]:
    problems: list[str] = []
    return _build_set_spec(name, ps, kind, source, problems, family), tuple(problems)


def _build_set_spec(
    name: str, ps: PeerSet | None, kind: PeerSetKind, source: str, problems: list[str], family: int
) -> SetSpec:
    if ps is None:
        # evaluating: a reference to a missing peer set matches nothing; it is created empty.
        return SetSpec(name, kind, (), (), source, family)
    members = _valid(ps.members, kind, source, problems, family)
    nomatch = _valid(ps.excepts, kind, source, problems, family) if kind is PeerSetKind.NET else ()
    return SetSpec(name, kind, members, nomatch, source, family)


def _valid(
    entries: tuple[str, ...], kind: PeerSetKind, source: str, problems: list[str], family: int
) -> tuple[str, ...]:
    """This family's members, canonical; the other family's go to the other family's set."""
    out: list[str] = []
    for entry in entries:
        try:
            normal = _normal(entry, kind, family)
        except ValueError as exc:
            if family == 4:  # reported once, by the IPv4 rendering (which always runs)
                problems.append(f"peer set {source}: member {entry!r}: {exc}; left out")
            continue
        if normal is not None:
            out.extend(_halves(normal) if kind is PeerSetKind.NET else (normal,))
    return tuple(sorted(set(out)))


def _halves(net: str) -> tuple[str, ...]:
    """A block of every address as its two /1 halves (same addresses): hash:net refuses a /0
    (the kernel answers IPSET_ERR_INVALID_CIDR), and one refused set fails the node's whole sync."""
    block = ipaddress.ip_network(net)
    return tuple(str(h) for h in block.subnets()) if block.prefixlen == 0 else (net,)


def _normal(entry: str, kind: PeerSetKind, family: int) -> str | None:
    if kind is PeerSetKind.IP:
        return _address(entry, family)
    if kind is PeerSetKind.NET:
        net = ipaddress.ip_network(entry, strict=False)
        return str(net) if net.version == family else None
    ip, _, proto_port = entry.partition(",")
    proto, _, port = proto_port.partition(":")
    if proto not in ("tcp", "udp", "sctp") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected ip,proto:port")
    address = _address(ip, family)
    return f"{address},{proto}:{int(port)}" if address is not None else None
