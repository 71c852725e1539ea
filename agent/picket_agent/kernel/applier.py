"""Make the kernel match a ``Desired`` state: ipsets first, one iptables commit, then cleanup.

``Applier.apply(desired, previous)`` is called by the sync loop (and ``picket agent --once``):

1. ipsets: missing sets are created and filled; changed ones are rebuilt under a temp name and
   swapped (never flushed in place);
2. under ``/run/xtables.lock``: read the filter table, plan per chain (``diffing``), and if
   anything differs write it in ONE python-iptables commit; an unchanged table is not written
   at all, so counters and the kernel's rule generation stay as they were;
3. on an nft node, legacy chains an earlier picket left are removed (``migration``), still
   under the lock and after the new rules are in, so nothing is unenforced in between;
4. ipsets that no rule needs any more are destroyed (after the commits dropped their users).

A failure raises; nothing already enforced is removed first, so the last good state stays.
The kernel I/O lives in ``dataplane`` (iptables) and ``ipsets``; this module only orders it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from picket_agent.rendering.desired import Desired, SetSpec
from picket_agent.rendering.diffing import ActualSet, TablePlan, plan_sets, plan_table, saved_from
from picket_agent.rendering.iptrules import IptRule, SavedTable


class TableIO(Protocol):
    def locked(self) -> object: ...
    def read(self) -> SavedTable: ...
    def read_if_holding(
        self, chains: Mapping[str, tuple[IptRule, ...]], hooks: Mapping[str, IptRule]
    ) -> SavedTable | None: ...
    def write(self, plan: TablePlan, saved: SavedTable) -> None: ...
    def forget_sets(self, names: set[str]) -> None: ...


class Leftovers(Protocol):
    def present(self) -> bool: ...
    def remove(self) -> int: ...


class SetIO(Protocol):
    def list_owned(self, expected: Mapping[str, SetSpec] | None = None) -> dict[str, ActualSet]: ...
    def create(self, specs: Sequence[SetSpec]) -> None: ...
    def replace(self, specs: Sequence[SetSpec]) -> None: ...
    def destroy_quietly(self, names: list[str] | tuple[str, ...]) -> list[str]: ...


@dataclass(frozen=True)
class ApplyReport:
    chains_written: int = 0
    chains_deleted: int = 0
    hooks_fixed: int = 0
    sets_created: int = 0
    sets_swapped: int = 0
    sets_destroyed: int = 0
    legacy_chains_removed: int = 0  # migration: chains an earlier legacy-writing picket left
    repairs: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()
    elapsed: float = 0.0

    @property
    def wrote(self) -> bool:
        return any((self.chains_written, self.chains_deleted, self.hooks_fixed, self.sets_created,
                    self.sets_swapped, self.sets_destroyed, self.legacy_chains_removed))

    def summary(self) -> str:
        migrated = f"; legacy chains removed={self.legacy_chains_removed}" if self.legacy_chains_removed else ""
        return (f"chains written={self.chains_written} deleted={self.chains_deleted} hooks fixed={self.hooks_fixed}; "
                f"ipsets created={self.sets_created} swapped={self.sets_swapped} destroyed={self.sets_destroyed}"
                + migrated)

    def __add__(self, other: ApplyReport) -> ApplyReport:
        return ApplyReport(
            self.chains_written + other.chains_written, self.chains_deleted + other.chains_deleted,
            self.hooks_fixed + other.hooks_fixed, self.sets_created + other.sets_created,
            self.sets_swapped + other.sets_swapped, self.sets_destroyed + other.sets_destroyed,
            self.legacy_chains_removed + other.legacy_chains_removed, self.repairs + other.repairs,
            self.problems + other.problems, self.elapsed + other.elapsed)


class Applier:
    def __init__(self, tables: TableIO, sets: SetIO, leftovers: Leftovers | None = None) -> None:
        self.tables = tables
        self.sets = sets
        self.leftovers = leftovers
        self._sets: dict[str, ActualSet] | None = None  # what the last apply left in the kernel

    def apply(self, desired: Desired, previous: Desired | None = None, verify: bool = True) -> ApplyReport:
        """``verify=False`` trusts that the kernel still holds ``previous`` (a quick update between
        resyncs, like kube-proxy's partial syncs); the periodic resync verifies and repairs."""
        start = time.perf_counter()
        trusted = not verify and previous is not None and self._sets is not None
        expected = previous.sets if previous is not None else desired.sets  # speeds the comparison up only
        actual_sets = self._sets if trusted and self._sets is not None else self.sets.list_owned(expected)
        set_plan = plan_sets(desired, actual_sets, report=previous is not None)
        if set_plan.create:
            self.sets.create(set_plan.create)
        self.tables.forget_sets({s.name for s in set_plan.create})
        if set_plan.replace:
            self.sets.replace(set_plan.replace)
        self._sets = None  # unknown until this apply has finished
        with self.tables.locked():  # type: ignore[attr-defined]
            saved = saved_from(previous) if trusted and previous is not None else self._read(previous or desired)
            plan = plan_table(desired, saved, None if trusted else previous)
            if not plan.empty:
                self.tables.write(plan, saved)
            retired = self.leftovers.remove() if self.leftovers is not None and not trusted and \
                self.leftovers.present() else 0
        refused = self.sets.destroy_quietly(set_plan.destroy)
        self._sets = {n: ActualSet(s.kind.value, frozenset(s.members), frozenset(s.nomatch))
                      for n, s in desired.sets.items()}
        return ApplyReport(
            chains_written=len(plan.rewrite),
            chains_deleted=len(plan.delete),
            hooks_fixed=len(plan.hook_inserts) + sum(len(p) for p in plan.hook_removals.values()),
            sets_created=len(set_plan.create),
            sets_swapped=len(set_plan.replace),
            sets_destroyed=len(set_plan.destroy) - len(refused),
            legacy_chains_removed=retired,
            repairs=plan.repairs + set_plan.repairs,
            problems=tuple(f"ipset not destroyed: {r}" for r in refused),
            elapsed=time.perf_counter() - start,
        )

    def _read(self, expected: Desired) -> SavedTable:
        """The kernel's table: compared as entry bytes against what we expect it to hold (the last
        apply, or at start the desired state), and only when that differs read as exact text."""
        quick = self.tables.read_if_holding(expected.chains, expected.hooks)
        return quick if quick is not None else self.tables.read()
