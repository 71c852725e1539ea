"""policy.networking.k8s.io/v1alpha2 ClusterNetworkPolicy -> ``ir.Policy``, validating every field.

``translate_cluster_network_policy(obj)`` is an ``ir.Frontend`` (registered in ``registry``):
the policy, or ``None`` and one ``Problem`` per bad field (JSON path included). A policy with any
error is not applied at all, never half-applied; no other object is affected. The API reference is
network-policy-api v0.2.0 (``apis/v1alpha2/clusternetworkpolicy_types.go``), quoted beside each
subtle branch.

How it maps:

* ``tier: Admin`` -> ``ir.ADMIN_TIER`` (before the NetworkPolicy tier), ``Baseline`` ->
  ``ir.BASELINE_TIER`` (after it). Both end in PASS: "there will not be any implicit isolation
  effects for the Pods selected by the ClusterNetworkPolicy"; past the last tier is allowed.
* ``priority`` is the policy's order in its tier (lower first), ties by name (see ``_priority``).
* ``subject`` selects pods (``namespaces``: every pod of matching namespaces; ``pods``: namespace
  AND pod selectors); host endpoints never.
* Rules keep their order; actions Accept / Deny / Pass -> ALLOW / DENY / PASS. A direction with no
  rules is not affected. Each IR rule carries the rule's ``name`` (``ingress[3]`` when unnamed),
  so rule sets, counters and the drop log name "ClusterNetworkPolicy <name> rule <rule>".
* Peers: ``namespaces`` / ``pods`` (as the subject), ``networks`` (egress CIDRs; they match pod
  addresses too), ``nodes`` (egress; the selected Nodes' addresses, ``NodeSelector``).
  ``domainNames`` (experimental) is rejected: not supported.
* ``protocols``: one IR rule per protocol, its ports (numbers, ranges) OR its named ports;
  ``destinationNamedPort`` matches a container port of that name whatever its protocol, so it
  joins the TCP, UDP and SCTP rules (each resolved by name AND protocol, as for NetworkPolicy).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from picket.model import Action, Direction, Problem
from picket_operator.compiler import ir
from picket_operator.compiler.frontends.cnp_protocols import MAX_ITEMS, PortsByProtocol, protocols
from picket_operator.compiler.ir import IndexHint
from picket_operator.compiler.selectors import FieldError, LabelSelector, PeerSelector, parse_label_selector

KIND = "ClusterNetworkPolicy"
GROUP = "policy.networking.k8s.io"
TIERS = {"Admin": ir.ADMIN_TIER, "Baseline": ir.BASELINE_TIER}
ACTIONS = {"Accept": Action.ALLOW, "Deny": Action.DENY, "Pass": Action.PASS}
MAX_RULES = 25  # "A maximum of 25 rules is allowed in this block."
MAX_RULE_NAME = 100  # "may be no more than 100 characters in length"
SPEC_FIELDS = {"tier", "priority", "subject", "ingress", "egress"}
PEER_FIELDS = {Direction.INGRESS: ("namespaces", "pods"),
               Direction.EGRESS: ("namespaces", "pods", "nodes", "networks", "domainNames")}
UNSUPPORTED_PEERS = {
    "domainNames": "domainNames peers (experimental) are not supported by picket (no DNS-aware dataplane); "
                   "the policy is not applied",
}


def translate_cluster_network_policy(obj: Mapping[str, Any]) -> ir.Translation:
    raw_meta = obj.get("metadata")
    meta: Mapping[str, Any] = raw_meta if isinstance(raw_meta, Mapping) else {}
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return ir.Translation(None, (Problem(KIND, "", str(name or ""), "metadata.name", "missing name"),))
    errors: list[FieldError] = []
    warnings: list[FieldError] = []
    policy = _policy(obj.get("spec"), name, errors, warnings)
    if errors or policy is None:
        return ir.Translation(None, tuple(Problem(KIND, "", name, e.path, e.message) for e in errors))
    return ir.Translation(policy, tuple(Problem(KIND, "", name, w.path, w.message) for w in warnings))


def _policy(spec: Any, name: str, errors: list[FieldError], warnings: list[FieldError]) -> ir.Policy | None:
    if not isinstance(spec, Mapping):
        errors.append(FieldError("spec", "required: an object with tier, priority, subject"))
        return None
    for key in sorted(set(spec) - SPEC_FIELDS):
        errors.append(FieldError(f"spec.{key}", f"unknown field (expected {', '.join(sorted(SPEC_FIELDS))})"))
    tier = _tier(spec.get("tier"), errors)
    priority = _priority(spec.get("priority"), errors)
    subject = _subject(spec.get("subject"), errors)
    ingress = _rules(spec.get("ingress"), Direction.INGRESS, errors, warnings)
    egress = _rules(spec.get("egress"), Direction.EGRESS, errors, warnings)
    if errors or tier is None or priority is None or subject is None:
        return None
    # "CNPs with no ingress rules do not affect ingress traffic." (and the same for egress)
    directions = {d for d, key in ((Direction.INGRESS, "ingress"), (Direction.EGRESS, "egress")) if spec.get(key)}
    return ir.Policy(kind=KIND, namespace="", name=name, applies_to=subject, directions=frozenset(directions),
                     ingress=ingress, egress=egress, tier=tier, order=priority)


def _tier(raw: Any, errors: list[FieldError]) -> ir.TierRef | None:
    # "ClusterNetworkPolicy can use 2 of these tiers: Admin and Baseline." (+kubebuilder Enum)
    if raw not in TIERS:
        errors.append(FieldError("spec.tier", f"{raw!r} is not Admin or Baseline" if raw is not None
                                 else "required: Admin or Baseline"))
        return None
    return TIERS[raw]


def _priority(raw: Any, errors: list[FieldError]) -> float | None:
    # "Priority is a value from 0 to 1000 indicating the precedence of the policy within its tier.
    # Policies with lower priority values have higher precedence". Ties: "If two (or more) policies
    # in the same tier with the same priority could match a connection, then the implementation can
    # apply any of the matching policies to the connection" - picket applies them by name
    # (``ir.Policy.sort_key``), so the choice is deterministic and the same on every node.
    if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= 1000:
        message = "required: an integer from 0 to 1000" if raw is None else f"{raw!r} is not an integer from 0 to 1000"
        errors.append(FieldError("spec.priority", message))
        return None
    return float(raw)


def _subject(raw: Any, errors: list[FieldError]) -> PeerSelector | None:
    # "Subject defines the pods to which this ClusterNetworkPolicy applies. Exactly one field must
    # be set. Note that host-networked pods are not included in subject selection."
    return _selector_pair(raw, "spec.subject", ("namespaces", "pods"), errors)


def _selector_pair(raw: Any, path: str, fields: tuple[str, ...], errors: list[FieldError]) -> PeerSelector | None:
    """A subject or a namespaces/pods peer: exactly one of ``fields`` set."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, f"required: an object with exactly one of {', '.join(fields)}"))
        return None
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        errors.append(FieldError(f"{path}.{unknown[0]}", f"unknown field (expected one of {', '.join(fields)})"))
        return None
    present = [f for f in fields if raw.get(f) is not None]
    if len(present) != 1:
        errors.append(FieldError(path, f"exactly one of {', '.join(fields)} must be set (got {len(present)})"))
        return None
    if present[0] == "namespaces":
        return _namespaces(raw["namespaces"], f"{path}.namespaces", errors)
    return _pods(raw["pods"], f"{path}.pods", errors)


def _namespaces(raw: Any, path: str, errors: list[FieldError]) -> PeerSelector | None:
    # "Namespaces is used to select pods via namespace selectors" / "select all pods within a set
    # of Namespaces"; an empty selector selects every namespace.
    selector, errs = parse_label_selector(raw, path)
    errors += errs
    return None if selector is None else PeerSelector(LabelSelector(), namespace_selector=selector)


def _pods(raw: Any, path: str, errors: list[FieldError]) -> PeerSelector | None:
    # NamespacedPod: "NamespaceSelector follows standard label selector semantics; if empty, it
    # selects all Namespaces." "PodSelector is used to explicitly select pods within a namespace;
    # if empty, it selects all Pods." (+required)
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object with namespaceSelector and podSelector"))
        return None
    unknown = sorted(set(raw) - {"namespaceSelector", "podSelector"})
    if unknown:
        errors.append(FieldError(f"{path}.{unknown[0]}", "unknown field (expected namespaceSelector, podSelector)"))
        return None
    if "podSelector" not in raw:
        errors.append(FieldError(f"{path}.podSelector", "required ({} selects all pods)"))
        return None
    pods, pod_errs = parse_label_selector(raw.get("podSelector"), f"{path}.podSelector")
    nss, ns_errs = parse_label_selector(raw.get("namespaceSelector"), f"{path}.namespaceSelector")
    errors += pod_errs + ns_errs
    if pods is None or nss is None:
        return None
    return PeerSelector(pods, namespace_selector=nss)


def _rules(raw: Any, direction: Direction, errors: list[FieldError],
           warnings: list[FieldError]) -> tuple[ir.Rule, ...]:
    path = f"spec.{direction.value.lower()}"
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.append(FieldError(path, "must be a list of rules"))
        return ()
    if len(raw) > MAX_RULES:
        errors.append(FieldError(path, f"{len(raw)} rules: a maximum of {MAX_RULES} rules is allowed"))
        return ()
    out: list[ir.Rule] = []
    for i, rule in enumerate(raw):
        # "The relative precedence of ingress rules within a single CNP object (all of which share
        # the priority) will be determined by the order in which the rule is written."
        out += _rule(rule, f"{path}[{i}]", direction, errors, warnings)
    return tuple(out)


def _rule(raw: Any, path: str, direction: Direction, errors: list[FieldError],
          warnings: list[FieldError]) -> list[ir.Rule]:
    peer_field = "from" if direction is Direction.INGRESS else "to"
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object"))
        return []
    for key in sorted(set(raw) - {"name", "action", peer_field, "protocols"}):
        errors.append(FieldError(f"{path}.{key}", f"unknown field (expected name, action, {peer_field}, protocols)"))
    name = raw.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_RULE_NAME:
        errors.append(FieldError(f"{path}.name", f"must be a string of at most {MAX_RULE_NAME} characters"))
        name = ""
    action = ACTIONS.get(str(raw.get("action")))
    if action is None:
        errors.append(FieldError(f"{path}.action", f"{raw.get('action')!r} is not Accept, Deny or Pass"))
    peers, fail_closed, has_nets = _peers(raw.get(peer_field), f"{path}.{peer_field}", direction, errors, warnings)
    ports = protocols(raw.get("protocols"), f"{path}.protocols", errors)
    if ports and has_nets and any(names for _, names in ports.values()):
        # "networks/nodes/domainNames peer cannot be set with namedPorts since there are no
        # namedPorts for networks/nodes/domainNames" (the CRD's validation rule)
        errors.append(FieldError(f"{path}.protocols", "destinationNamedPort cannot be used with a networks or nodes "
                                 "peer"))
    if action is None:
        return []
    label = name or path.removeprefix("spec.")
    if fail_closed and action is not Action.ALLOW:
        # A peer with no field this version knows: "For "Deny" and "Pass" rules, "fail closed" means:
        # "treat the rule as a 'Deny all' rule"."
        return [ir.Rule(action=Action.DENY, name=label)]
    if not peers:
        # "For "Accept" rules, "fail closed" means: "treat the rule as matching no traffic"."
        return []
    return _expand(action, ports, peers, label)


def _expand(action: Action, ports: PortsByProtocol, peers: tuple[ir.Peer, ...], label: str) -> list[ir.Rule]:
    # "Protocols ... If unspecified, protocol-specific attributes will not be used to match traffic."
    if not ports:
        return [ir.Rule(action=action, peers=peers, name=label)]
    return [ir.Rule(action=action, protocol=protocol, ports=ranges, named_ports=names, peers=peers, name=label)
            for protocol, (ranges, names) in ports.items()]


def _peers(raw: Any, path: str, direction: Direction, errors: list[FieldError],
           warnings: list[FieldError]) -> tuple[tuple[ir.Peer, ...], bool, bool]:
    """The rule's peers (ORed: "If any element matches ... then the specified action is applied"),
    whether one of them must fail closed, and whether any is a ``networks`` peer."""
    # "This field must be defined and contain at least one item." (MinItems=1, MaxItems=25)
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ITEMS:
        errors.append(FieldError(path, f"required: a list of 1 to {MAX_ITEMS} peers"))
        return (), False, False
    known = PEER_FIELDS[direction]
    out: list[ir.Peer] = []
    fail_closed = has_nets = False
    for i, peer in enumerate(raw):
        where = f"{path}[{i}]"
        if not isinstance(peer, Mapping):
            errors.append(FieldError(where, "must be an object"))
            continue
        wrong_side = sorted(set(peer) & set(PEER_FIELDS[Direction.EGRESS]) - set(known))
        if wrong_side:  # e.g. networks in an ingress peer: not a newer CRD's field, a mistake
            errors.append(FieldError(f"{where}.{wrong_side[0]}", f"unknown field in an ingress peer (expected one "
                                     f"of {', '.join(known)})"))
            continue
        present = [k for k in known if peer.get(k) is not None]
        if not present:
            # "If an implementation sees no fields are set then it can infer that the deployed CRD
            # is of an incompatible version with an unknown field. In that case it should fail
            # closed." The rest of the policy applies; the warning names the peer.
            fields = ", ".join(sorted(peer)) or "none"
            warnings.append(FieldError(where, f"no peer field picket knows (set: {fields}; expected one of "
                                       f"{', '.join(known)}): the peer fails closed as the API says"))
            fail_closed = True
            continue
        unknown = sorted(set(peer) - set(known))
        if unknown:
            errors.append(FieldError(f"{where}.{unknown[0]}", f"unknown field (expected one of {', '.join(known)})"))
            continue
        if len(present) > 1:
            got = ", ".join(present)
            errors.append(FieldError(where, f"exactly one of {', '.join(known)} must be set (got {got})"))
            continue
        field = present[0]
        if field in UNSUPPORTED_PEERS:
            errors.append(FieldError(f"{where}.{field}", UNSUPPORTED_PEERS[field]))
            continue
        if field == "networks":
            has_nets = True
            nets = _networks(peer[field], f"{where}.networks", errors)
            if nets:
                out.append(ir.Peer(nets=nets))
            continue
        if field == "nodes":
            # "Nodes defines a way to select a set of nodes in the cluster (based on the node's
            # labels). It selects the nodeIPs ... present in the node.Status.Addresses field of
            # the node. This field follows standard label selector semantics; if present but
            # empty, it selects all Nodes."
            has_nets = True
            nodes, errs = parse_label_selector(peer[field], f"{where}.nodes")
            errors += errs
            if nodes is not None:
                out.append(ir.Peer(NodeSelector(nodes)))
            continue
        selector = _namespaces(peer[field], f"{where}.{field}", errors) if field == "namespaces" else \
            _pods(peer[field], f"{where}.{field}", errors)
        if selector is not None:
            out.append(ir.Peer(selector))
    return tuple(out), fail_closed, has_nets


@dataclass(frozen=True)
class NodeSelector:
    """An ``ir.Selector`` for a ``nodes`` peer: Nodes by label (``ir.selects_nodes``), never an
    endpoint, so pods and host endpoints never match; its peer set holds the nodes' addresses."""

    labels: LabelSelector

    def matches(self, labels: Mapping[str, str], namespace: str, namespace_labels: Mapping[str, str]) -> bool:
        return False

    def matches_node(self, labels: Mapping[str, str]) -> bool:
        return self.labels.matches(labels)

    def canonical(self) -> str:
        return f"nodes:[{self.labels.canonical()}]"

    def index_hint(self) -> IndexHint:
        return IndexHint(namespace="", label=self.labels.required_label())


def _networks(raw: Any, path: str, errors: list[FieldError]) -> tuple[str, ...]:
    # "Each item in Networks should be provided in the CIDR format and should be IPv4 or IPv6, for
    # example "10.0.0.0/8" or "fd00::/8"." "Networks can have up to 25 CIDRs specified." They match
    # pod addresses too: "cluster-internal traffic will be checked against the rule as well".
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ITEMS:
        errors.append(FieldError(path, f"must be a list of 1 to {MAX_ITEMS} CIDRs"))
        return ()
    out: list[str] = []
    for i, text in enumerate(raw):
        if not isinstance(text, str) or "/" not in text:
            errors.append(FieldError(f"{path}[{i}]", f"{text!r} is not in CIDR format (such as 10.0.0.0/8)"))
            continue
        try:
            out.append(str(ipaddress.ip_network(text, strict=False)))
        except ValueError as exc:
            errors.append(FieldError(f"{path}[{i}]", f"malformed CIDR {text!r}: {exc}"))
    return tuple(sorted(set(out)))
