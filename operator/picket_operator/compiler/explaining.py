"""Why a connection is allowed or blocked: the compiled rule sets walked rule by rule, in words.

``Explainer(objects, failsafe)`` compiles a cluster once (``compiling.compile_cluster``) and keeps
the translated policies (``ir.Policy``) beside the compiled model, so that every compiled rule can
be traced back to the rule the user wrote (its index in ``spec.ingress`` / ``spec.egress``) and
rendered with the selectors as written. ``explain(src, dst, protocol, port)`` then decides each
direction exactly as ``picket.evaluating.verdict`` does (same tiers, same order, same
``rule_matches``), recording for every rule whether it matched and, if not, why not:

* not isolated: "not isolated: no policy selects x/b for Ingress";
* decided by a rule: "allowed by NetworkPolicy x/p, ingress rule 0: TCP 80 from pods with app=web
  in namespace x";
* decided by a tier's end: "isolated by NetworkPolicy x/p, NetworkPolicy x/q; no rule matches:
  NetworkPolicy x/p ingress rule 0 allows only pods with tier=api in namespace x (x/a has
  tier=web)".

A rule is named as its policy's API names it: "NetworkPolicy x/p, ingress rule 0"; a
ClusterNetworkPolicy rule with its tier, priority, index and name and its own action words
(Accept / Deny / Pass): 'denied by ClusterNetworkPolicy guard (Admin tier, priority 10), ingress
rule 1 "deny-all": all ports from all pods in all namespaces' (the rule set's entry for it,
"ClusterNetworkPolicy guard rule deny-all", stays in ``decidedBy.policy`` and the tier chain, as
the evaluator, counters and drop log name it). The words themselves are ``wording``'s.

Audit mode: when a staged policy selects the sender (egress) or the receiver (ingress), the
explanation also carries ``staged``: both directions walked again on the staged rule sets
(``EndpointRules.rule_set(direction, staged=True)``), i.e. as if the staged policies were enforced.

Property tests check that the explanation's verdict always equals the evaluator's, and the staged
verdict the evaluator's on the staged rule sets. Pure: no I/O. Used by ``picket explain``
(``commands/explain.py``) and the UI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.evaluating import in_peer_set, rule_matches
from picket.failsafe import Failsafe
from picket.model import Action, Compiled, Direction, EndpointRules, PeerSet, Protocol, Rule, RuleSet
from picket_operator.compiler import ir
from picket_operator.compiler.compiling import compile_cluster, parse_objects
from picket_operator.compiler.frontends.clusternetworkpolicy import KIND as CNP_KIND
from picket_operator.compiler.planning import PolicyPlan, _model_rule
from picket_operator.compiler.views import PodView, default_namespace
from picket_operator.compiler.wording import (
    action_word,
    describe_ir_rule,
    describe_model_rule,
    peer_words,
    ports_text,
    set_words,
)


class ExplainError(ValueError):
    """An endpoint that cannot be found (neither ``namespace/pod``, ``host/NAME`` nor an IP)."""


@dataclass(frozen=True)
class RuleTrace:
    index: int | None  # the rule's index in the policy as written (None: a rule picket adds)
    text: str  # the rule in words
    matched: bool
    why_not: str = ""  # when not matched: what the rule allows that the connection is not
    action: str = "Allow"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "rule": self.text, "action": self.action,
                               "matched": self.matched}
        if self.why_not:
            out["whyNot"] = self.why_not
        return out


@dataclass(frozen=True)
class PolicyTrace:
    policy: str
    rules: tuple[RuleTrace, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "rules": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class TierTrace:
    name: str
    default: str
    policies: tuple[PolicyTrace, ...]
    outcome: str  # "Allow by ...", "Deny (tier default)", "Pass", "not reached"

    def to_dict(self) -> dict[str, Any]:
        return {"tier": self.name, "default": self.default, "outcome": self.outcome,
                "policies": [p.to_dict() for p in self.policies]}


@dataclass(frozen=True)
class DirectionExplanation:
    direction: Direction
    endpoint: str  # the endpoint whose rule set decides (sender for egress, receiver for ingress)
    allowed: bool
    isolated: bool
    summary: str
    reasons: tuple[str, ...] = ()
    decided_by: Mapping[str, Any] | None = None  # {"tier", "policy", "rule", "text", "action"}
    tiers: tuple[TierTrace, ...] = ()
    logged: tuple[str, ...] = ()
    headline: str = ""  # the summary without the reasons

    def to_dict(self) -> dict[str, Any]:
        return {"direction": self.direction.value, "endpoint": self.endpoint, "allowed": self.allowed,
                "isolated": self.isolated, "summary": self.summary, "reasons": list(self.reasons),
                "decidedBy": dict(self.decided_by) if self.decided_by else None,
                "tiers": [t.to_dict() for t in self.tiers], "logged": list(self.logged)}


@dataclass(frozen=True)
class StagedExplanation:
    """Audit mode: the verdict as the staged rule sets decide it (staged policies enforced too)."""

    allowed: bool
    egress: DirectionExplanation
    ingress: DirectionExplanation

    def to_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "egress": self.egress.to_dict(), "ingress": self.ingress.to_dict()}


@dataclass(frozen=True)
class Explanation:
    source: str
    destination: str
    protocol: Protocol
    port: int
    allowed: bool
    egress: DirectionExplanation
    ingress: DirectionExplanation
    note: str = ""
    staged: StagedExplanation | None = None  # only when a staged policy selects SRC (egress) or DST (ingress)

    def to_dict(self) -> dict[str, Any]:
        out = {"source": self.source, "destination": self.destination, "protocol": self.protocol.value,
               "port": self.port, "allowed": self.allowed, "egress": self.egress.to_dict(),
               "ingress": self.ingress.to_dict()}
        if self.note:
            out["note"] = self.note
        if self.staged is not None:
            out["staged"] = self.staged.to_dict()
        return out

    def to_text(self) -> str:
        lines = [f"{self.source} -> {self.destination} {self.protocol.value}/{self.port}: {_verdict(self.allowed)}"]
        if self.note:
            lines.append(f"  {self.note}")
        lines += _direction_lines((self.egress, self.ingress), "  ")
        if self.staged is not None:
            verdict = f"{_verdict(self.staged.allowed)} (enforced: {_verdict(self.allowed)})"
            lines.append(f"  staged (audit mode, with the staged policies enforced too): {verdict}")
            lines += _direction_lines((self.staged.egress, self.staged.ingress), "    ")
        return "\n".join(lines)


def _verdict(allowed: bool) -> str:
    return "ALLOWED" if allowed else "BLOCKED"


def _direction_lines(directions: Iterable[DirectionExplanation], indent: str) -> list[str]:
    lines: list[str] = []
    for d in directions:
        word = "allowed" if d.allowed else "blocked"
        if len(d.reasons) > 1:
            lines.append(f"{indent}{d.direction.value.lower()} ({d.endpoint}): {word}: {d.headline}:")
            lines.extend(f"{indent}  - {r}" for r in d.reasons)
        else:
            lines.append(f"{indent}{d.direction.value.lower()} ({d.endpoint}): {word}: {d.summary}")
        if len(d.tiers) > 1 or any(t.name != ir.K8S_TIER.name for t in d.tiers):
            lines.append(f"{indent}  tiers: " + " -> ".join(f"{t.name} [{t.outcome}]" for t in d.tiers))
        if d.logged:
            lines.append(f"{indent}  logged by: " + ", ".join(d.logged))
    return lines


@dataclass(frozen=True)
class _EntryWords:
    """One rule-set entry (a policy, or one named rule of it) in the words of the policy as written."""

    who: str  # "NetworkPolicy x/p", "ClusterNetworkPolicy g (Admin tier, priority 10)"
    indices: list[int | None]  # per compiled rule: its index in the policy as written
    wheres: list[str]  # per compiled rule: "ingress rule 0", 'ingress rule 1 "deny-all"'
    texts: list[str]
    peer_texts: list[str]
    actions: list[str]  # the policy API's word for each rule's action (Allow, or Accept, ...)


@dataclass
class _Party:
    key: str  # "ns/pod", "host/NAME", or the IP for an address outside the cluster
    ip: str
    rules: EndpointRules | None
    view: PodView | None


@dataclass
class Explainer:
    """One compiled cluster, ready to explain any connection in it."""

    objects: Iterable[Mapping[str, Any]]
    failsafe: Failsafe | None = None
    compiled: Compiled = field(init=False)
    views: dict[str, PodView] = field(init=False)
    plans: dict[str, PolicyPlan] = field(init=False)
    named: dict[str, tuple[PolicyPlan, str]] = field(init=False)

    def __post_init__(self) -> None:
        objects = list(self.objects)
        self.compiled = compile_cluster(objects, self.failsafe)
        parsed = parse_objects(objects)
        self.views = {}
        for facts in parsed.pods.values():
            if facts.is_endpoint:
                ns = parsed.namespaces.get(facts.view.namespace) or default_namespace(facts.view.namespace)
                self.views[facts.view.key] = facts.joined(ns)
        self.views.update(parsed.hosts)
        self.plans = {plan.policy.display: plan for plan in parsed.plans.values()}
        # Named rules (ClusterNetworkPolicy) are entries "<policy> rule <name>" of a rule set.
        self.named = {f"{display} rule {r.name}": (plan, r.name) for display, plan in self.plans.items()
                      for d in Direction for r in plan.policy.rules(d) if r.name}

    # -- endpoints -------------------------------------------------------------------------------

    def _party(self, text: str, role: str) -> _Party:
        text = text.strip()
        if text in self.compiled.endpoints:
            rules = self.compiled.endpoints[text]
            return _Party(text, rules.endpoint.ips[0], rules, self.views.get(text))
        try:
            ip = str(ipaddress.ip_address(text))
        except ValueError:
            raise ExplainError(f"{role} {text!r}: no such endpoint (expected namespace/pod, host/NAME or an IP; "
                               "a pod needs an IP and must not be host-network or finished)") from None
        for key, rules in sorted(self.compiled.endpoints.items()):
            if ip in rules.endpoint.ips:
                return _Party(key, ip, rules, self.views.get(key))
        return _Party(ip, ip, None, None)

    # -- the walk --------------------------------------------------------------------------------

    def explain(self, source: str, destination: str, protocol: Protocol, port: int) -> Explanation:
        src, dst = self._party(source, "source"), self._party(destination, "destination")
        if src.rules is not None and src.key == dst.key:
            note = "a pod reaching itself never leaves its network namespace: no policy applies"
            same = DirectionExplanation(Direction.EGRESS, src.key, True, False, note)
            return Explanation(src.key, dst.key, protocol, port, True, same,
                               DirectionExplanation(Direction.INGRESS, dst.key, True, False, note), note)
        egress = self._direction(Direction.EGRESS, src, dst, protocol, port)
        ingress = self._direction(Direction.INGRESS, dst, src, protocol, port)
        staged = None
        if (src.rules is not None and src.rules.staged_egress is not None) or (
                dst.rules is not None and dst.rules.staged_ingress is not None):
            s_egress = self._direction(Direction.EGRESS, src, dst, protocol, port, staged=True)
            s_ingress = self._direction(Direction.INGRESS, dst, src, protocol, port, staged=True)
            staged = StagedExplanation(s_egress.allowed and s_ingress.allowed, s_egress, s_ingress)
        return Explanation(src.key, dst.key, protocol, port, egress.allowed and ingress.allowed, egress, ingress,
                           staged=staged)

    def _direction(self, direction: Direction, own: _Party, peer: _Party, protocol: Protocol,
                   port: int, staged: bool = False) -> DirectionExplanation:
        word = direction.value
        if own.rules is None:
            return DirectionExplanation(direction, own.key, True, False,
                                        f"{own.key} is not an endpoint of this cluster: picket does not "
                                        f"enforce its {word.lower()}")
        rule_set = own.rules.rule_set(direction, staged)
        if rule_set is None:
            return DirectionExplanation(direction, own.key, True, False,
                                        f"not isolated: no policy selects {own.key} for {word}")
        return self._walk(rule_set, own, peer, protocol, port)

    def _walk(self, rule_set: RuleSet, own: _Party, peer: _Party, protocol: Protocol,
              port: int) -> DirectionExplanation:
        direction = rule_set.direction
        sets = self.compiled.peer_sets
        tiers: list[TierTrace] = []
        logged: list[str] = []
        decision: tuple[bool, str, Mapping[str, Any] | None] | None = None
        misses: list[str] = []
        for tier in rule_set.tiers:
            if decision is not None:
                tiers.append(TierTrace(tier.name, tier.default.value, (), "not reached"))
                continue
            policy_traces: list[PolicyTrace] = []
            outcome: str | None = None
            tier_misses: list[str] = []
            for policy in tier.policies:
                if outcome is not None:
                    break
                words = self._written(policy.policy, direction, own.view, policy.rules)
                traces: list[RuleTrace] = []
                for i, rule in enumerate(policy.rules):
                    matched = rule_matches(rule, peer.ip, protocol, port, sets)
                    index, where, text, action = words.indices[i], words.wheres[i], words.texts[i], words.actions[i]
                    if not matched:
                        why = self._why_not(rule, words.peer_texts[i], peer, protocol, port)
                        traces.append(RuleTrace(index, text, False, why, action))
                        tier_misses.append(f"{words.who} {where} {_takes_only(action)} {why}"
                                           if rule.action is Action.ALLOW else
                                           f"{words.who} {where} ({action}) applies only to {why}")
                        continue
                    traces.append(RuleTrace(index, text, True, "", action))
                    if rule.action is Action.LOG:
                        logged.append(policy.policy)
                        continue
                    outcome = f"{action} by {policy.policy}"
                    if rule.action is not Action.PASS:
                        rule_ref: dict[str, Any] = {"tier": tier.name, "policy": policy.policy, "rule": index,
                                                    "text": text, "action": action}
                        decision = (rule.action is Action.ALLOW,
                                    f"{_decided(action)} by {words.who}, {where}: {text}", rule_ref)
                    break
                if not policy.rules:
                    tier_misses.append(f"{policy.policy} has no {direction.value.lower()} rules: it allows nothing")
                policy_traces.append(PolicyTrace(policy.policy, tuple(traces)))
            if outcome is None:
                outcome = f"{tier.default.value} (end of tier)"
                if tier.default is not Action.PASS:
                    names = [p.policy for p in tier.policies]
                    isolated_by = ", ".join(names) if names else f"tier {tier.name}"
                    if tier.default is Action.ALLOW:
                        text = f"allowed at the end of tier {tier.name}"
                    else:
                        text = f"isolated by {isolated_by}; no rule matches"
                    decision = (tier.default is Action.ALLOW, text, None)
                    misses = tier_misses
                else:
                    misses.extend(tier_misses)
            tiers.append(TierTrace(tier.name, tier.default.value, tuple(policy_traces), outcome))
        if decision is None:
            decision = (True, "allowed: no tier decided (every tier passed)", None)
        allowed, summary, decided = decision
        reasons = tuple(misses) if (not allowed and decided is None) else ()
        headline = summary
        if reasons:
            summary += ": " + "; ".join(reasons)
        return DirectionExplanation(direction, own.key, allowed, True, summary, reasons, decided, tuple(tiers),
                                    tuple(logged), headline)

    # -- words -----------------------------------------------------------------------------------

    def _written(self, entry: str, direction: Direction, view: PodView | None,
                 rules: tuple[Rule, ...]) -> _EntryWords:
        """Each compiled rule of one rule-set entry: its index in the policy as written, where it is
        ("ingress rule 0"), its rendering, its peers and its action in the policy's own words."""
        plan, name = self.plans.get(entry), ""
        if plan is None and entry in self.named:
            plan, name = self.named[entry]
        sets = self.compiled.peer_sets
        fallback = _EntryWords(
            entry, [None] * len(rules), [_rule_name(direction, None)] * len(rules),
            [describe_model_rule(r, direction, sets) for r in rules],
            [" or ".join(set_words(sets.get(n), n) for n in r.peers) or "any peer" for r in rules],
            [r.action.value for r in rules])
        if plan is None or view is None:
            return fallback
        policy = plan.policy
        positions = _written_positions(policy.rules(direction))
        indices: list[int | None] = []
        written: list[ir.Rule] = []
        for i, rule_plan in enumerate(plan.plans[direction]):
            if (not name or rule_plan.rule.name == name) and _model_rule(rule_plan, view) is not None:
                indices.append(positions[i])
                written.append(rule_plan.rule)
        if len(indices) != len(rules):  # cannot happen; keep the compiled rules' own words then
            return fallback
        cnp = policy.kind == CNP_KIND
        who = f"{policy.display} ({_tier_word(policy.tier)} tier, priority {policy.order:g})" if cnp else entry
        wheres = [_rule_name(direction, index, w.name if cnp and not w.name.startswith(direction.value.lower())
                             else "") for index, w in zip(indices, written, strict=True)]
        texts = [describe_ir_rule(w, direction, m, policy.namespace, action_prefix=not cnp)
                 for w, m in zip(written, rules, strict=True)]
        peers = [" or ".join(peer_words(p, policy.namespace) for p in w.peers) or "any peer" for w in written]
        return _EntryWords(who, indices, wheres, texts, peers, [action_word(w.action, policy.kind) for w in written])

    def _why_not(self, rule: Rule, peer_text: str, peer: _Party, protocol: Protocol, port: int) -> str:
        sets = self.compiled.peer_sets
        if rule.protocol is not None and rule.protocol is not protocol:
            return f"{rule.protocol.value} (this is {protocol.value})"
        if rule.not_protocol is not None and rule.not_protocol is protocol:
            return f"protocols other than {protocol.value}"
        if rule.ports or rule.named_ports:
            in_ports = any(port in r for r in rule.ports)
            in_named = bool(rule.named_ports) and _member(sets, rule.named_ports, peer.ip, protocol, port)
            if not (in_ports or in_named):
                return f"{ports_text(rule, sets)} (this is port {port})"
        if any(port in r for r in rule.not_ports):
            return f"ports other than {', '.join(r.to_str() for r in rule.not_ports)} (this is port {port})"
        if rule.peers and not any(_member(sets, n, peer.ip, protocol, port) for n in rule.peers):
            return f"{peer_text} ({self.describe_party(peer)})"
        hit = [n for n in rule.not_peers if _member(sets, n, peer.ip, protocol, port)]
        if hit:
            others = ", ".join(set_words(sets.get(n), n) for n in hit)
            return f"peers other than {others} ({self.describe_party(peer)})"
        return "something else"

    def describe_party(self, party: _Party) -> str:
        if party.view is None:
            return f"{party.key} is an address outside the cluster's endpoints"
        labels = _labels(party.view.labels)
        if party.view.namespace:
            ns_labels = _labels(party.view.namespace_labels)
            return f"{party.key} has {labels}; namespace {party.view.namespace} has {ns_labels}"
        return f"{party.key} has {labels}"


def _member(sets: Mapping[str, PeerSet], name: str | None, ip: str, protocol: Protocol, port: int) -> bool:
    peer_set = sets.get(name or "")
    return peer_set is not None and in_peer_set(peer_set, ip, protocol, port)


def _labels(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "no labels"


def _rule_name(direction: Direction, index: int | None, name: str = "") -> str:
    if index is None:
        return "its rule"
    where = f"{direction.value.lower()} rule {index}"
    return f'{where} "{name}"' if name else where


def _written_positions(rules: tuple[ir.Rule, ...]) -> list[int]:
    """Each IR rule's index in the policy as written. A named rule (ClusterNetworkPolicy) may become
    several IR rules (one per protocol), consecutive and of one name: they share the index."""
    if not any(r.name for r in rules):
        return list(range(len(rules)))
    out: list[int] = []
    for i, rule in enumerate(rules):
        out.append(out[-1] if i and rule.name == rules[i - 1].name else (out[-1] + 1 if out else 0))
    return out


def _tier_word(tier: ir.TierRef) -> str:
    return {ir.ADMIN_TIER.name: "Admin", ir.BASELINE_TIER.name: "Baseline"}.get(tier.name, tier.name)


def _takes_only(action: str) -> str:
    return "accepts only" if action == "Accept" else "allows only"


def _decided(action: str) -> str:
    return {"Allow": "allowed", "Accept": "accepted", "Deny": "denied"}.get(action, action.lower())
