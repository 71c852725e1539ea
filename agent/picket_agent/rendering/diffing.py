"""Desired vs actual: the smallest set of changes, and a readable account of any drift.

Pure; called by ``applying`` with the ``Desired`` state, the table as ``iptables-legacy-save``
printed it, the live ipsets, and the state applied last time (to tell drift, which someone else
caused, from an update, which we asked for).

* Chains are compared line by line in canonical text; only chains that differ are rewritten
  (so untouched chains keep their counters), owned chains no longer desired are deleted, and
  a table that already matches yields an empty plan: nothing is written.
* Hooks: each built-in chain must hold our hook rule exactly once (anywhere: kube-proxy and
  others insert at the top too). Missing -> insert at the top; duplicates or stale rules that
  jump into ``PICKET-*`` chains -> deleted. Nothing else in a built-in chain is ours to touch.
* Sets: new -> create and fill; changed -> build a temp set and swap; gone -> destroy (after
  the table commit, once no rule references them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from picket_agent.rendering import naming
from picket_agent.rendering.desired import Desired, SetSpec
from picket_agent.rendering.iptrules import IptRule, SavedTable

_JUMPS_TO_OURS = re.compile(r"(^| )-[jg] " + re.escape(naming.CHAIN_PREFIX))


@dataclass(frozen=True)
class TablePlan:
    create: tuple[str, ...] = ()
    rewrite: Mapping[str, tuple[IptRule, ...]] = field(default_factory=dict)
    delete: tuple[str, ...] = ()
    hook_inserts: Mapping[str, IptRule] = field(default_factory=dict)
    hook_removals: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # rule positions, 0-based
    repairs: tuple[str, ...] = ()  # drift found and repaired, for the log

    @property
    def empty(self) -> bool:
        return not (self.create or self.rewrite or self.delete or self.hook_inserts or self.hook_removals)


@dataclass(frozen=True)
class ActualSet:
    kind: str
    members: frozenset[str]
    nomatch: frozenset[str] = frozenset()


@dataclass(frozen=True)
class SetPlan:
    create: tuple[SetSpec, ...] = ()
    replace: tuple[SetSpec, ...] = ()  # build under a temp name, then swap
    destroy: tuple[str, ...] = ()
    repairs: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.create or self.replace or self.destroy)


def plan_table(desired: Desired, actual: SavedTable, previous: Desired | None = None) -> TablePlan:
    create: list[str] = []
    rewrite: dict[str, tuple[IptRule, ...]] = {}
    repairs: list[str] = []
    for chain, rules in desired.chains.items():
        want = [r.text() for r in rules]
        if chain not in actual.chains:
            create.append(chain)
            rewrite[chain] = rules
            if _was_applied(previous, chain, rules):
                repairs.append(f"chain {chain} was deleted; recreated with {len(rules)} rules")
            continue
        have = actual.rules(chain)
        if have != want:
            rewrite[chain] = rules
            if _was_applied(previous, chain, rules):
                repairs.append(f"chain {chain} was changed ({_describe(have, want)}); rewritten")
    delete = tuple(c for c in actual.chains if naming.is_owned_chain(c) and c not in desired.chains)
    inserts, removals = _plan_hooks(desired, actual, previous is not None, repairs)
    return TablePlan(tuple(create), rewrite, delete, inserts, removals, tuple(repairs))


def saved_from(previous: Desired) -> SavedTable:
    """The table as our last successful apply left it (no counters): a quick sync diffs against it."""
    table = SavedTable()
    for builtin in ("INPUT", "FORWARD", "OUTPUT"):
        hook = previous.hooks.get(builtin)
        table.chains[builtin] = [((0, 0), hook.text())] if hook else []
    for chain, rules in previous.chains.items():
        table.chains[chain] = [((0, 0), r.text()) for r in rules]
    return table


def plan_removal(actual: SavedTable) -> TablePlan:
    """Everything of ours goes: hooks and all PICKET-* chains."""
    empty = Desired({}, {}, {})
    inserts, removals = _plan_hooks(empty, actual, False, [])
    delete = tuple(c for c in actual.chains if naming.is_owned_chain(c))
    return TablePlan((), {}, delete, inserts, removals)


def _was_applied(previous: Desired | None, chain: str, rules: tuple[IptRule, ...]) -> bool:
    return previous is not None and previous.chains.get(chain) == rules


def _describe(have: list[str], want: list[str]) -> str:
    foreign = [r for r in have if r not in want]
    missing = [r for r in want if r not in have]
    parts = []
    if foreign:
        parts.append(f"{len(foreign)} foreign rule(s), first: {foreign[0]!r}")
    if missing:
        parts.append(f"{len(missing)} rule(s) missing")
    return "; ".join(parts) or "rules reordered"


def _plan_hooks(
    desired: Desired, actual: SavedTable, report: bool, repairs: list[str]
) -> tuple[dict[str, IptRule], dict[str, tuple[int, ...]]]:
    inserts: dict[str, IptRule] = {}
    removals: dict[str, tuple[int, ...]] = {}
    for builtin in ("INPUT", "FORWARD", "OUTPUT"):
        hook = desired.hooks.get(builtin)
        want = hook.text() if hook else None
        have = actual.rules(builtin)
        keep_first = True
        stale: list[int] = []
        for pos, text in enumerate(have):
            if text == want and keep_first:
                keep_first = False
            elif text == want or _JUMPS_TO_OURS.search(text):
                stale.append(pos)
        if hook is not None and keep_first:
            inserts[builtin] = hook
            if report:
                repairs.append(f"hook rule in {builtin} was missing; inserted")
        if stale:
            removals[builtin] = tuple(stale)
    return inserts, removals


def plan_sets(desired: Desired, actual: Mapping[str, ActualSet], report: bool = False) -> SetPlan:
    create: list[SetSpec] = []
    replace: list[SetSpec] = []
    repairs: list[str] = []
    for name, spec in desired.sets.items():
        have = actual.get(name)
        if have is None:
            create.append(spec)
            if report:
                repairs.append(f"ipset {name} was missing; recreated")
        elif have.kind != spec.kind.value or have.members != frozenset(spec.members) or have.nomatch != frozenset(
            spec.nomatch
        ):
            replace.append(spec)
    destroy = tuple(n for n in actual if naming.is_owned_set(n) and n not in desired.sets)
    return SetPlan(tuple(create), tuple(replace), destroy, tuple(repairs))
