"""Render one endpoint's rule set in one direction: a chain per tier, drop and log chains.

Called by ``rendering`` once per endpoint and direction. The meaning follows
``picket.evaluating.verdict`` rule for rule:

* tiers in order; in a tier, policies in order and their rules in order;
* ALLOW -> ``RETURN`` (back to ``PICKET-FORWARD``, which goes on to the other direction);
* DENY -> goto ``PICKET-DROP-<h>``: NFLOG with the drop id (``--log-drops``) then a DROP whose
  counter is the per endpoint/direction/policy drop count;
* PASS -> goto the next tier's chain, or RETURN after the last tier ("passed every tier");
* LOG -> NFLOG and continue with the next rule; a LOG rule that expands to several iptables
  rules goes through a ``PICKET-RULE-*`` sub-chain whose alternatives goto one
  ``PICKET-LOG-*`` chain, so the packet is logged once;
* the tier's default at its end: DENY -> the tier's drop chain, ALLOW -> RETURN, PASS -> next.

With ``audit`` (a staged rule set, audit mode) a drop chain never drops: it always NFLOGs (the
drop log shows ``WOULD DROP``) and ends in a counted ``RETURN``; LOG rules are left out (the
enforced rule set logs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from picket.model import Action, Direction, PortRange, Rule, RuleSet, Tier
from picket_agent.rendering import naming
from picket_agent.rendering.desired import DropReason, RenderSettings
from picket_agent.rendering.expanding import Alternative, SetLookup, expand
from picket_agent.rendering.iptrules import IptRule, Param

ChainMap = dict[str, tuple[IptRule, ...]]


class TierRenderer:
    def __init__(
        self, key: str, direction: Direction, settings: RenderSettings, lookup: SetLookup, family: int = 4,
        audit: bool = False, staged: tuple[str, ...] = (), endpoint: str = "",
        expander: Callable[[Rule, Direction], list[Alternative]] | None = None,
    ) -> None:
        # ``expander``: ``expand`` with this lookup, or the renderer's memo of it (same result)
        self.expand = expander or (lambda rule, direction: expand(rule, direction, lookup))
        self.endpoint = endpoint or key  # the endpoint's own key (``key`` names an audit rule set's chains)
        self.family = family
        self.audit = audit
        self.staged = staged  # audit: the staged policies in this rule set, named in every would-be drop
        self.key = key
        self.direction = direction
        self.settings = settings
        self.lookup = lookup
        self.drops: list[DropReason] = []
        self.chains: ChainMap = {}

    def render(self, rule_set: RuleSet) -> ChainMap:
        count = len(rule_set.tiers)
        for index, tier in enumerate(rule_set.tiers):
            self.chains[self._tier(index)] = tuple(self._tier_rules(index, tier, count))
        return self.chains

    def _tier(self, index: int) -> str:
        return naming.tier_chain(self.key, self.direction.value, index)

    def _next(self, index: int, count: int) -> IptRule:
        """Where PASS goes: the next tier, or back (allowed) after the last one."""
        if index + 1 < count:
            return IptRule(self._tier(index + 1), goto=True)
        return IptRule("RETURN")

    def _tier_rules(self, index: int, tier: Tier, count: int) -> list[IptRule]:
        out: list[IptRule] = []
        for policy, position, rule, merged in merge_allow_runs(tier):
            comment = f"{policy} rule {position}" + (f" (+{merged} merged)" if merged else "")
            alternatives = self.expand(rule, self.direction)
            if rule.action is Action.LOG and self.audit:
                continue
            if rule.action is Action.LOG:
                out += self._log_rules(index, f"{policy}#{position}", alternatives, comment)
                continue
            target = self._target(rule.action, index, count, policy)
            out += [_with(target, alt, comment, self.family) for alt in alternatives]
        end = f"{self.key} {self.direction.value.lower()}: end of tier {tier.name}"
        if tier.default is Action.DENY:
            drop = self._drop(f"tier {tier.name} default", f"no policy of tier {tier.name} allows it")
            out.append(_with(drop, Alternative(), end))
        elif tier.default is Action.ALLOW:
            out.append(IptRule("RETURN", comment=end))
        else:
            out.append(_with(self._next(index, count), Alternative(), end))
        return out

    def _target(self, action: Action, index: int, count: int, policy: str) -> IptRule:
        if action is Action.ALLOW:
            return IptRule("RETURN")
        if action is Action.DENY:
            return self._drop(policy, f"denied by {policy}")
        return self._next(index, count)  # PASS

    def _drop(self, policy: str, reason: str) -> IptRule:
        chain = naming.drop_chain(self.key, self.direction.value, policy)
        if self.audit and self.staged:
            reason += f" (staged: {', '.join(self.staged)})"
        if chain not in self.chains:
            drop = DropReason(chain, self.endpoint, self.direction, policy, reason, self.audit)
            self.drops.append(drop)
            rules: list[IptRule] = []
            if self.settings.log_drops or self.audit:
                rules.append(self._nflog(f"picket:{drop.id}"))
            if self.audit:
                rules.append(IptRule("RETURN", comment=f"{self.endpoint} {self.direction.value.lower()}: would drop, "
                                     f"{reason} (audit: not enforced)"))
            else:
                rules.append(IptRule("DROP", comment=f"{self.key} {self.direction.value.lower()}: {reason}"))
            self.chains[chain] = tuple(rules)
        return IptRule(chain, goto=True)

    def _nflog(self, prefix: str) -> IptRule:
        group = self.settings.nflog_group  # group 0 is the kernel's default: iptables-save prints none
        params = (Param("nflog-prefix", (prefix,), string=True),
                  *((Param("nflog-group", (str(group),)),) if group else ()))
        return IptRule("NFLOG", target_params=params)

    def _log_rules(self, index: int, position: str, alternatives: list[Alternative], comment: str) -> list[IptRule]:
        log_chain = naming.log_chain(self.key, self.direction.value, index, position)
        log = self._nflog(f"picket:log:{naming.drop_id(log_chain)}")
        if len(alternatives) <= 1:
            return [_with(log, alt, comment, self.family) for alt in alternatives]
        sub = naming.rule_chain(self.key, self.direction.value, index, position)
        self.chains[log_chain] = (IptRule(log.target, comment=comment, target_params=log.target_params),)
        self.chains[sub] = tuple(_with(IptRule(log_chain, goto=True), alt, comment, self.family)
                                 for alt in alternatives)
        return [IptRule(sub, comment=comment)]


def _with(target: IptRule, alt: Alternative, comment: str, family: int = 4) -> IptRule:
    # The model's ICMP is the family's own: ``-p icmp`` in iptables, ``-p ipv6-icmp`` in ip6tables.
    protocol = "ipv6-icmp" if family == 6 and alt.protocol == "icmp" else alt.protocol
    return IptRule(
        target.target,
        alt.matches,
        comment,
        protocol=protocol,
        not_protocol=alt.not_protocol,
        goto=target.goto,
        target_params=target.target_params,
    )



@dataclass
class _Merged:
    policy: str  # the first rule's policy and position name the merged rule
    position: int
    first: Rule  # the first rule as it was: kept unchanged when nothing merges into it
    ports: set[PortRange] | None  # None: any port
    merged: int = 0


def merge_allow_runs(tier: Tier) -> list[tuple[str, int, Rule, int]]:
    """The tier's rules in order as (policy, position, rule, how many other rules were merged
    into it). Within a run of consecutive ALLOW rules (across policies; every rule of a
    Kubernetes tier) the order does not matter: each one RETURNs, so the run allows the union of
    what its rules match. Rules of a run that differ only in their destination ports become one
    rule with the union of the ports (a rule without ports allows any port and absorbs the
    others), and equal rules become one. 500 policies letting a pod's peers in on a few ports
    each become one rule per peer set (``agent_bench`` 250x500). A rule of any other action, or
    with a named-port set, is kept as it is and ends the run."""
    out: list[tuple[str, int, Rule, int]] = []
    run: dict[tuple[object, ...], _Merged] = {}

    def flush() -> None:
        for m in run.values():
            rule = m.first if not m.merged else replace(m.first, ports=_union(m.ports) if m.ports is not None else ())
            out.append((m.policy, m.position, rule, m.merged))
        run.clear()

    for policy in tier.policies:
        for position, rule in enumerate(policy.rules):
            if rule.action is not Action.ALLOW or rule.named_ports:
                flush()
                out.append((policy.policy, position, rule, 0))
                continue
            # everything but the ports (a plain tuple: dataclasses.replace per rule cost 1.3 s of
            # a 2.2 s render at 250x500)
            shared = (rule.protocol, rule.peers, rule.not_protocol, rule.not_ports, rule.not_peers)
            ports = set(rule.ports) if rule.ports else None
            m = run.get(shared)
            if m is None:
                run[shared] = _Merged(policy.policy, position, rule, ports)
                continue
            m.merged += 1
            m.ports = None if m.ports is None or ports is None else m.ports | ports
    flush()
    return out


def _union(ports: set[PortRange]) -> tuple[PortRange, ...]:
    """Overlapping and adjacent ranges joined, in order (fewer multiport slots)."""
    out: list[PortRange] = []
    for p in sorted(ports, key=lambda r: (r.start, r.end)):
        if out and p.start <= out[-1].end + 1:
            if p.end > out[-1].end:
                out[-1] = PortRange(out[-1].start, p.end)
        else:
            out.append(p)
    return tuple(out)
