"""The desired state the renderer produces and the applier enforces (plain frozen data).

``Desired`` holds the ``PICKET-*`` chains in order, the hook rule per built-in chain, the
``picket-*`` ipsets, what each drop chain means (for metrics and the drop log) and the version
of every endpoint rendered. ``save_text()`` is its ``iptables-save`` + ``ipset save`` form, used
by the golden tests and ``picket agent --print``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from picket.failsafe import DEFAULT_INBOUND, DEFAULT_OUTBOUND, FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT, FAILSAFE_TIER
from picket.model import Direction, PeerSetKind, RuleSet
from picket_agent.rendering import naming
from picket_agent.rendering.iptrules import IptRule, chain_text


def failsafe_mismatch(rule_set: RuleSet, ours: tuple[str, ...]) -> str | None:
    """How a compiled host rule set's failsafe tier differs from this agent's ports, or None.

    The compiler puts the operator's failsafe ports in a first tier named "failsafe"; the agent
    accepts its own before that. Different lists mean the two were configured apart."""
    if not rule_set.tiers or rule_set.tiers[0].name != FAILSAFE_TIER:
        return None
    compiled = {
        f"{rule.protocol.value.lower()}:{port}"
        for policy in rule_set.tiers[0].policies for rule in policy.rules if rule.protocol is not None
        for r in rule.ports for port in range(r.start, r.end + 1)
    }
    if compiled == set(ours):
        return None
    extra, missing = sorted(compiled - set(ours)), sorted(set(ours) - compiled)
    return (f"failsafe ports differ between the operator and this agent (set both from {FAILSAFE_ENV_IN} / "
            f"{FAILSAFE_ENV_OUT}): only the operator's: {','.join(extra) or '-'}; "
            f"only this agent's: {','.join(missing) or '-'}")


@dataclass(frozen=True)
class RenderSettings:
    nflog_group: int = 100
    log_drops: bool = False
    failsafe_inbound: tuple[str, ...] = DEFAULT_INBOUND  # "proto:port"
    failsafe_outbound: tuple[str, ...] = DEFAULT_OUTBOUND
    host_apply_on_forward: bool = False


@dataclass(frozen=True)
class SetSpec:
    name: str
    kind: PeerSetKind
    members: tuple[str, ...]
    nomatch: tuple[str, ...] = ()
    source: str = ""  # the compiled peer set's name
    family: int = 4  # 4: family inet, 6: family inet6 (``naming.set_name``: picket-6-*)


@dataclass(frozen=True)
class DropReason:
    chain: str
    endpoint: str  # "ns/pod" or "host/name"
    direction: Direction
    policy: str  # the denying policy, or "tier <name> default"
    reason: str  # "no policy of tier k8s allows it", "denied by GlobalNetworkPolicy x"
    audit: bool = False  # a would-be drop of a staged rule set: logged and counted, never dropped

    @property
    def id(self) -> str:
        return naming.drop_id(self.chain)


@dataclass(frozen=True)
class Desired:
    chains: Mapping[str, tuple[IptRule, ...]]
    hooks: Mapping[str, IptRule]  # built-in chain -> our hook rule in it
    sets: Mapping[str, SetSpec]
    drops: Mapping[str, DropReason] = field(default_factory=dict)  # by drop id
    versions: Mapping[str, str] = field(default_factory=dict)  # endpoint key -> version rendered
    problems: tuple[str, ...] = ()
    failed: frozenset[str] = frozenset()  # endpoint keys skipped because their input was bad
    v6: Desired | None = None  # the IPv6 table and sets; None when no endpoint has an IPv6 address

    def rule_count(self) -> int:
        return sum(len(r) for r in self.chains.values()) + (self.v6.rule_count() if self.v6 is not None else 0)

    def all_drops(self) -> dict[str, DropReason]:
        return {**(self.v6.drops if self.v6 is not None else {}), **self.drops}

    def save_text(self) -> str:
        text = self._family_text()
        if self.v6 is not None:
            text += "# IPv6 (ip6tables-save, ipset family inet6)\n" + self.v6._family_text()
        return text

    def _family_text(self) -> str:
        lines = ["*filter"]
        lines += [f":{name} - [0:0]" for name in self.chains]
        lines += [f"-A {hook} {rule.text()}" for hook, rule in self.hooks.items()]
        for name, rules in self.chains.items():
            lines += chain_text(name, rules)
        lines.append("COMMIT")
        for s in self.sets.values():
            lines.append(f"# {s.name}: peer set {s.source}")
            lines.append(f"create {s.name} {s.kind.value} family {'inet6' if s.family == 6 else 'inet'}")
            lines += [f"add {s.name} {m}" for m in s.members]
            lines += [f"add {s.name} {m} nomatch" for m in s.nomatch]
        return "\n".join(lines) + "\n"


