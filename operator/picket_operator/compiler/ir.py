"""The intermediate policy representation (IR) that every policy frontend translates into.

Frontends (``k8s_frontend`` for networking.k8s.io/v1 NetworkPolicy, the Calico frontend, the
legacy converter) turn one raw API object into one ``Policy`` (or ``Problem``s). The compiler
(``compiling`` / ``incremental``) never looks at raw policy JSON: it only evaluates
``Policy.applies_to`` against endpoints, turns every ``Peer`` into a shared ``PeerSet`` named by a
hash of ``Peer.canonical()``, and lays the ``Rule``s out into tiers.

How the compiler reads a ``Policy``:

* ``applies_to`` selects endpoints (pods, later host endpoints). A policy affects an endpoint in
  direction D iff it selects the endpoint and D is in ``directions``; the endpoint is then isolated
  in D and its rule set contains every tier with at least one such policy.
* Tiers are ordered by ``TierRef.order`` (admin tier < ``K8S_TIER`` = 1000 < baseline). Within a
  tier, policies are ordered by ``(order, name)`` as Calico documents it ("Calico applies the policy
  with the lowest value first"; equal orders by name), then namespace and kind to stay total;
  Kubernetes NetworkPolicies all have ``order`` 1000 in ``K8S_TIER`` (Calico's default tier is the
  same tier, as in Calico). A pod's k8s policies share its namespace, so for them this is by name.
* A tier in which no rule decided ends with ``TierRef.default`` (DENY, or PASS for a tier whose
  policies should fall through).
* Rule matching is ``picket.model.Rule``'s: protocol / not_protocol; ports OR named ports (empty
  both: any port); not_ports; any of ``peers`` (empty: any peer) and none of ``not_peers``.
  ``named_ports`` need a ``protocol`` (a name is resolved by name AND protocol). For ingress they
  are resolved against the receiving endpoint's own declared ports into numbers; for egress they
  become a ``hash:ip,port`` peer set of destination (ip, protocol, port) pairs.
* A ``Peer`` with a ``selector`` matches the addresses of the endpoints the selector matches; with
  ``nets`` the CIDRs minus ``excepts``; with both (Calico), the matching endpoints' addresses that
  lie inside ``nets`` minus ``excepts``.

Selectors are any object with ``matches``/``canonical``/``index_hint`` (see ``Selector``): the
Kubernetes frontend uses ``selectors.PeerSelector``; the Calico frontend brings its own expression
selectors, which also match network sets (``selects_network_sets``: a class attribute
``matches_network_sets = True``); a peer set of such a selector then carries those sets' nets.
``canonical()`` must be equal exactly when two selectors always select the same endpoints,
because it names (and so shares) the peer set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from typing import Protocol as TypingProtocol

from picket.model import Action, Direction, EndpointKind, PortRange, Problem, Protocol


@dataclass(frozen=True)
class IndexHint:
    """What an endpoint must have for a selector to possibly match it (all fields are optional).

    Used only to narrow candidates in indices (the compiler still calls ``matches``), so a hint may
    promise less than the selector checks but never more. ``IndexHint()`` promises nothing.
    """

    namespace: str | None = None  # only endpoints in this namespace
    label: tuple[str, str] | None = None  # only endpoints carrying this label key=value
    namespace_label: tuple[str, str] | None = None  # only endpoints whose namespace carries key=value


class Selector(TypingProtocol):
    """An endpoint selector: anything the compiler can match endpoints against."""

    def matches(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        """True when an endpoint with these labels, in this namespace, is selected.

        Host endpoints and other cluster-scoped endpoints have namespace "" and no namespace labels.
        """
        ...

    def canonical(self) -> str:
        """A deterministic text form; equal forms must select equal endpoints (names peer sets)."""
        ...

    def index_hint(self) -> IndexHint:
        """A necessary condition for ``matches`` (``IndexHint()`` if none is known)."""
        ...


def selects_network_sets(selector: Selector) -> bool:
    """Whether peers of this selector include matching GlobalNetworkSets/NetworkSets (Calico's do)."""
    return bool(getattr(selector, "matches_network_sets", False))


def selects_nodes(selector: Selector) -> bool:
    """Whether this selector picks Nodes (their addresses): one with ``matches_node(labels)``.

    Nodes are not endpoints: they are filed with the network sets (``nodeviews``) and only such a
    selector ever matches one (ClusterNetworkPolicy ``nodes`` peers)."""
    return callable(getattr(selector, "matches_node", None))


def matches_node(selector: Selector, labels: Mapping[str, str]) -> bool:
    matcher = getattr(selector, "matches_node", None)
    return bool(matcher(labels)) if callable(matcher) else False


@dataclass(frozen=True)
class TierRef:
    """Which tier a policy belongs to, where that tier sits, and how the tier ends."""

    name: str
    order: float
    default: Action = Action.DENY


K8S_TIER = TierRef("kubernetes", 1000.0, Action.DENY)
K8S_POLICY_ORDER = 1000.0
# ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) tiers: "Admin tier, NetworkPolicy tier,
# Baseline tier"; neither isolates (a tier no rule decided passes on; past the last tier: allowed).
ADMIN_TIER = TierRef("admin", 100.0, Action.PASS)
BASELINE_TIER = TierRef("baseline", 2000.0, Action.PASS)


@dataclass(frozen=True)
class Peer:
    """One peer: endpoints picked by ``selector`` and/or CIDRs ``nets`` minus ``excepts``."""

    selector: Selector | None = None
    nets: tuple[str, ...] = ()
    excepts: tuple[str, ...] = ()

    def canonical(self) -> str:
        parts = []
        if self.selector is not None:
            parts.append(f"sel({self.selector.canonical()})")
        if self.nets:
            parts.append("nets(" + ",".join(self.nets) + ")")
        if self.excepts:
            parts.append("except(" + ",".join(self.excepts) + ")")
        return " & ".join(parts) or "any"


@dataclass(frozen=True)
class Rule:
    """One ordered rule of a policy (see the module docstring for how it matches)."""

    action: Action = Action.ALLOW
    protocol: Protocol | None = None
    ports: tuple[PortRange, ...] = ()
    named_ports: tuple[str, ...] = ()
    peers: tuple[Peer, ...] = ()
    not_protocol: Protocol | None = None
    not_ports: tuple[PortRange, ...] = ()
    not_peers: tuple[Peer, ...] = ()
    # Optional: the source rule's name. Consecutive rules with the same non-empty name become one
    # entry "<policy> rule <name>" of the rule set, so counters and the drop log name the rule.
    name: str = ""


@dataclass(frozen=True)
class Policy:
    """One source policy object, translated. ``kind``/``namespace``/``name`` identify the source."""

    kind: str  # "NetworkPolicy", "GlobalNetworkPolicy", ...
    namespace: str  # "" for cluster-scoped policies
    name: str
    applies_to: Selector
    directions: frozenset[Direction]
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    tier: TierRef = K8S_TIER
    order: float = K8S_POLICY_ORDER
    endpoint_kinds: frozenset[EndpointKind] = field(default=frozenset({EndpointKind.POD}))
    # Optional: where each named port was written, (direction, name, protocol, JSON path), so the
    # compiler can warn about a name no pod declares (it then matches nothing).
    named_port_sources: tuple[tuple[Direction, str, Protocol, str], ...] = ()
    # Audit mode: compiled into the endpoints' staged rule sets only, never enforced.
    staged: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def display(self) -> str:
        """How rule sets, counters and the drop log name this policy."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"

    def sort_key(self) -> tuple[float, str, str, str]:
        # Calico: lowest order first, ties by name; namespace and kind only make the order total.
        return (self.order, self.name, self.namespace, self.kind)

    def rules(self, direction: Direction) -> tuple[Rule, ...]:
        return self.ingress if direction is Direction.INGRESS else self.egress


@dataclass(frozen=True)
class Translation:
    """What a frontend returns for one object: a policy, or ``None`` and the reasons why not.

    A policy with any error is never half-applied: the frontend returns ``policy=None``.
    ``problems`` may also carry warnings for a policy that is applied.
    """

    policy: Policy | None
    problems: tuple[Problem, ...] = ()


# A frontend: raw policy JSON (one API object) -> Translation. Registered in ``frontends``.
Frontend = Callable[[Mapping[str, Any]], Translation]
