"""The compiled model: what crosses from the compiler (operator) to the renderer (agent).

One vocabulary for every policy source. Kubernetes NetworkPolicy, Calico-style policy and
(later) AdminNetworkPolicy all compile into the same three things:

* ``PeerSet``: a named set of addresses (``hash:ip`` for pods, ``hash:net`` with ``nomatch``
  entries for ipBlock ``except``, ``hash:ip,port`` for egress named ports). Shared by every
  rule that uses the same selector and named by a hash of its canonical form, so a new pod
  changes one peer set, not every rule that mentions it.
* ``RuleSet``: for one endpoint and one direction, the ordered tiers that decide its traffic.
* ``EndpointRules``: an endpoint (pod or host endpoint) with its ingress and egress rule sets.

How a rule set decides a packet (``picket.evaluating`` is the executable definition):

1. ``rule_set is None``: the endpoint is not isolated in that direction; everything is allowed.
2. Tiers in order. Within a tier, policies in order; within a policy, rules in order. The first
   rule that matches with action ALLOW or DENY decides. PASS skips the rest of the tier and
   continues with the next tier. LOG records the packet and continues with the next rule.
3. A tier in which no rule decided ends with its ``default`` (DENY for a Kubernetes
   NetworkPolicy tier that selected the endpoint; PASS lets the next tier decide).
4. Falling off the last tier allows (Calico's profile / the Kubernetes default).

A connection is allowed when the sender's egress and the receiver's ingress both allow it;
replies of an allowed connection are always allowed (conntrack), which the renderer handles.

Everything here is a frozen dataclass with deterministic ``to_dict``/``from_dict``; the
serialised form carries ``SCHEMA_VERSION`` and is what ``crds/`` describes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    ICMP = "ICMP"


class Direction(StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class Action(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    PASS = "Pass"
    LOG = "Log"


class PeerSetKind(StrEnum):
    IP = "hash:ip"  # members: "10.244.1.5"
    NET = "hash:net"  # members: "10.0.0.0/8"; excepts are nomatch entries
    IP_PORT = "hash:ip,port"  # members: "10.244.1.5,tcp:8080"


class EndpointKind(StrEnum):
    POD = "Pod"
    HOST = "Host"


class ModelError(ValueError):
    """A serialised model that cannot be read (wrong version, missing or malformed field)."""


@dataclass(frozen=True, order=True)
class PortRange:
    """Inclusive destination port range; a single port has ``start == end``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 < self.start <= self.end <= 65535):
            raise ModelError(f"bad port range {self.start}-{self.end}")

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.start <= port <= self.end

    def to_str(self) -> str:
        return str(self.start) if self.start == self.end else f"{self.start}-{self.end}"

    @classmethod
    def parse(cls, text: str) -> PortRange:
        first, _, last = str(text).partition("-")
        try:
            return cls(int(first), int(last or first))
        except ValueError as exc:
            raise ModelError(f"bad port range {text!r}") from exc


@dataclass(frozen=True)
class PeerSet:
    """A named set of peer addresses, rendered as one kernel ipset."""

    name: str
    kind: PeerSetKind
    members: tuple[str, ...]
    excepts: tuple[str, ...] = ()
    description: str = ""  # the canonical selector this set was made from, for humans

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind.value, "members": list(self.members)}
        if self.excepts:
            out["excepts"] = list(self.excepts)
        if self.description:
            out["description"] = self.description
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PeerSet:
        try:
            return cls(
                name=str(data["name"]),
                kind=PeerSetKind(data["kind"]),
                members=tuple(str(m) for m in data.get("members", ())),
                excepts=tuple(str(m) for m in data.get("excepts", ())),
                description=str(data.get("description", "")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"peer set: {exc}") from exc


@dataclass(frozen=True)
class Rule:
    """One ordered rule. Empty tuples and ``None`` mean "any".

    A packet matches when all hold:
    * ``protocol`` is None or equals the packet's; ``not_protocol`` is None or differs;
    * ports: if ``ports`` and ``named_ports`` are both empty, any port; otherwise the destination
      port is in one of ``ports`` **or** (peer address, protocol, port) is a member of the
      ``named_ports`` peer set (egress named ports, resolved against destination pods);
      and the port is in none of ``not_ports``;
    * peers: ``peers`` is empty or the peer address is in one of those peer sets (OR);
      and it is in none of ``not_peers``.
    The peer is the source for ingress rules and the destination for egress rules.
    """

    action: Action = Action.ALLOW
    protocol: Protocol | None = None
    ports: tuple[PortRange, ...] = ()
    named_ports: str | None = None
    peers: tuple[str, ...] = ()
    not_protocol: Protocol | None = None
    not_ports: tuple[PortRange, ...] = ()
    not_peers: tuple[str, ...] = ()

    def peer_set_names(self) -> tuple[str, ...]:
        extra = (self.named_ports,) if self.named_ports else ()
        return (*self.peers, *self.not_peers, *extra)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action.value}
        if self.protocol is not None:
            out["protocol"] = self.protocol.value
        if self.ports:
            out["ports"] = [p.to_str() for p in self.ports]
        if self.named_ports:
            out["namedPorts"] = self.named_ports
        if self.peers:
            out["peers"] = list(self.peers)
        if self.not_protocol is not None:
            out["notProtocol"] = self.not_protocol.value
        if self.not_ports:
            out["notPorts"] = [p.to_str() for p in self.not_ports]
        if self.not_peers:
            out["notPeers"] = list(self.not_peers)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        try:
            proto = data.get("protocol")
            not_proto = data.get("notProtocol")
            return cls(
                action=Action(data.get("action", Action.ALLOW.value)),
                protocol=Protocol(proto) if proto is not None else None,
                ports=tuple(PortRange.parse(p) for p in data.get("ports", ())),
                named_ports=data.get("namedPorts"),
                peers=tuple(str(p) for p in data.get("peers", ())),
                not_protocol=Protocol(not_proto) if not_proto is not None else None,
                not_ports=tuple(PortRange.parse(p) for p in data.get("notPorts", ())),
                not_peers=tuple(str(p) for p in data.get("notPeers", ())),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            raise ModelError(f"rule: {exc}") from exc


@dataclass(frozen=True)
class PolicyRules:
    """The rules one policy contributes to one endpoint and direction, in order.

    ``policy`` names the source object for humans, counters and the drop log, e.g.
    ``"NetworkPolicy x/allow-web"`` or ``"GlobalNetworkPolicy restrict-prometheus"``.
    """

    policy: str
    rules: tuple[Rule, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "rules": [r.to_dict() for r in self.rules]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyRules:
        try:
            return cls(str(data["policy"]), tuple(Rule.from_dict(r) for r in data.get("rules", ())))
        except (KeyError, TypeError) as exc:
            raise ModelError(f"policy rules: {exc}") from exc


@dataclass(frozen=True)
class Tier:
    """An ordered group of policies with its own end-of-tier default."""

    name: str
    policies: tuple[PolicyRules, ...]
    default: Action = Action.DENY

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "default": self.default.value,
            "policies": [p.to_dict() for p in self.policies],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tier:
        try:
            return cls(
                name=str(data["name"]),
                policies=tuple(PolicyRules.from_dict(p) for p in data.get("policies", ())),
                default=Action(data.get("default", Action.DENY.value)),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"tier: {exc}") from exc


@dataclass(frozen=True)
class RuleSet:
    """Everything that decides one endpoint's traffic in one direction."""

    direction: Direction
    tiers: tuple[Tier, ...]

    def rule_count(self) -> int:
        return sum(len(p.rules) for t in self.tiers for p in t.policies)

    def peer_set_names(self) -> frozenset[str]:
        return frozenset(
            n for t in self.tiers for p in t.policies for r in p.rules for n in r.peer_set_names()
        )

    def digest(self) -> str:
        """A content hash: equal rule sets (e.g. pods of one Deployment) share it."""
        return stable_hash(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return {"direction": self.direction.value, "tiers": [t.to_dict() for t in self.tiers]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        try:
            return cls(Direction(data["direction"]), tuple(Tier.from_dict(t) for t in data.get("tiers", ())))
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"rule set: {exc}") from exc


@dataclass(frozen=True)
class Endpoint:
    """A pod or host endpoint, as the dataplane needs to know it."""

    kind: EndpointKind
    namespace: str  # "" for host endpoints
    name: str
    node: str
    ips: tuple[str, ...]
    interface: str = ""  # host endpoints: the interface (Calico's interfaceName); "" for all

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.kind is EndpointKind.POD else f"host/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind.value,
            "namespace": self.namespace,
            "name": self.name,
            "node": self.node,
            "ips": list(self.ips),
        }
        if self.interface:
            out["interface"] = self.interface
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Endpoint:
        try:
            return cls(
                kind=EndpointKind(data["kind"]),
                namespace=str(data.get("namespace", "")),
                name=str(data["name"]),
                node=str(data.get("node", "")),
                ips=tuple(str(i) for i in data.get("ips", ())),
                interface=str(data.get("interface", "")),
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(f"endpoint: {exc}") from exc


@dataclass(frozen=True)
class EndpointRules:
    """One endpoint with its rule set per direction (``None``: not isolated, all allowed).

    ``staged_ingress`` / ``staged_egress``: audit mode. Present only when a staged policy
    (``picket.dev/audit: "true"`` on a NetworkPolicy) selects the endpoint in that direction:
    the rule set as it WOULD be with the staged policies enforced too. The agent never drops
    by it; it logs and counts what it would drop. ``ingress``/``egress`` never contain staged
    policies."""

    endpoint: Endpoint
    ingress: RuleSet | None = None
    egress: RuleSet | None = None
    staged_ingress: RuleSet | None = None
    staged_egress: RuleSet | None = None

    def rule_set(self, direction: Direction, staged: bool = False) -> RuleSet | None:
        """The enforced rule set, or with ``staged`` the one audit mode evaluates (the enforced
        one where no staged policy applies)."""
        if staged:
            would = self.staged_ingress if direction is Direction.INGRESS else self.staged_egress
            if would is not None:
                return would
        return self.ingress if direction is Direction.INGRESS else self.egress

    def to_dict(self) -> dict[str, Any]:
        out = {
            "endpoint": self.endpoint.to_dict(),
            "ingress": self.ingress.to_dict() if self.ingress else None,
            "egress": self.egress.to_dict() if self.egress else None,
        }
        if self.staged_ingress is not None:
            out["stagedIngress"] = self.staged_ingress.to_dict()
        if self.staged_egress is not None:
            out["stagedEgress"] = self.staged_egress.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndpointRules:
        try:
            ing, eg = data.get("ingress"), data.get("egress")
            s_ing, s_eg = data.get("stagedIngress"), data.get("stagedEgress")
            return cls(
                Endpoint.from_dict(data["endpoint"]),
                RuleSet.from_dict(ing) if ing else None,
                RuleSet.from_dict(eg) if eg else None,
                RuleSet.from_dict(s_ing) if s_ing else None,
                RuleSet.from_dict(s_eg) if s_eg else None,
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(f"endpoint rules: {exc}") from exc


@dataclass(frozen=True)
class Problem:
    """A structured, user-facing error about one input object and one field."""

    kind: str  # "NetworkPolicy", "Namespace", "GlobalNetworkPolicy", ...
    namespace: str
    name: str
    field: str  # JSON path, e.g. "spec.ingress[0].from[1].ipBlock.cidr"
    message: str

    def __str__(self) -> str:
        obj = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.kind} {obj}: {self.field}: {self.message}"

    def to_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "field": self.field,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        return cls(*(str(data.get(k, "")) for k in ("kind", "namespace", "name", "field", "message")))


@dataclass(frozen=True)
class Compiled:
    """The whole compiled state: endpoints by key, peer sets by name, problems found."""

    endpoints: Mapping[str, EndpointRules] = field(default_factory=dict)
    peer_sets: Mapping[str, PeerSet] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def staged(self) -> Compiled:
        """Audit mode's view: every endpoint's staged rule sets in place of its enforced ones."""
        eps = {k: EndpointRules(e.endpoint, e.rule_set(Direction.INGRESS, True), e.rule_set(Direction.EGRESS, True))
               for k, e in self.endpoints.items()}
        return Compiled(eps, self.peer_sets, self.problems)

    def has_staged(self) -> bool:
        return any(e.staged_ingress is not None or e.staged_egress is not None for e in self.endpoints.values())

    def for_node(self, node: str) -> Compiled:
        """The part one node's agent needs: its endpoints and the peer sets they use."""
        eps = {k: e for k, e in self.endpoints.items() if e.endpoint.node == node}
        used: set[str] = set()
        for e in eps.values():
            for rs in (e.ingress, e.egress, e.staged_ingress, e.staged_egress):
                if rs is not None:
                    used |= rs.peer_set_names()
        return Compiled(eps, {n: s for n, s in self.peer_sets.items() if n in used}, ())

    def to_dict(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "endpoints": [self.endpoints[k].to_dict() for k in sorted(self.endpoints)],
            "peerSets": [self.peer_sets[k].to_dict() for k in sorted(self.peer_sets)],
            "problems": [p.to_dict() for p in self.problems],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Compiled:
        version = data.get("schemaVersion")
        if version != SCHEMA_VERSION:
            raise ModelError(f"unsupported schemaVersion {version!r} (this picket reads {SCHEMA_VERSION})")
        eps = [EndpointRules.from_dict(e) for e in data.get("endpoints", ())]
        sets = [PeerSet.from_dict(s) for s in data.get("peerSets", ())]
        return cls(
            {e.endpoint.key: e for e in eps},
            {s.name: s for s in sets},
            tuple(Problem.from_dict(p) for p in data.get("problems", ())),
        )


def stable_hash(value: Any, length: int = 16) -> str:
    """A short, deterministic hash of a JSON-able value (base32, lowercase, no padding)."""
    return text_hash(canonical_json(value), length)


def canonical_json(value: Any) -> str:
    """The text ``stable_hash`` hashes: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def text_hash(text: str, length: int = 16) -> str:
    """``stable_hash`` of a value whose ``canonical_json`` is ``text``."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode().rstrip("=").lower()[:length]
