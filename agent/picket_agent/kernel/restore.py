"""The restore-based table writer: ``ip[6]tables-{nft,legacy}-save`` to read, ``-restore --noflush`` to write.

The maintained path for every table python-iptables cannot write: iptables-nft (IPv4 and IPv6)
and ip6tables-legacy. ``RestoreTables(family, mode)`` implements the applier's ``TableIO``:

* ``read()``: ``<save> -c -t filter`` parsed into chains with counters (the same text the
  renderer prints: ``iptrules.IptRule.text``; a kernel test checks both backends and families).
  A legacy table that does not exist in this namespace (not in ``/proc/net/ip[6]_tables_names``)
  reads as empty without running ``-save``: reading it would create it, and a created filter
  table hooks FORWARD, INPUT and OUTPUT, so every packet of the node would walk its (empty)
  chains from then on, e.g. on an nft node after ``picket agent --cleanup``;
* ``write(plan, saved)``: one restore script per plan, fed to ``<restore> --noflush --counters``,
  which commits the filter table in ONE transaction (nft: one netlink batch; legacy: one
  ``IPT_SO_SET_REPLACE``). In the script a chain declaration ``:C - [0:0]`` creates ``C`` or,
  under ``--noflush``, flushes it; its rules follow as ``[p:b] -A C ...`` with the counters of
  the same rule text in ``saved`` carried over; stale hook rules go by number (``-D FORWARD n``,
  highest first), missing ones are inserted at the top; chains no longer desired are flushed,
  then deleted, after every rule that jumped to them is gone;
* ``read_if_holding``: the quick verify of a resync. nftables numbers every committed
  transaction (the ruleset generation, ``NFT_MSG_GETGEN``, read through pyroute2): when it has
  moved since our last read or write of this table only by our own commits (``Generations``
  records each of them, IPv4 and IPv6 tables alike, as before -> after), nobody else changed
  anything and the table is what we left, so no ``-save`` is run. Legacy tables have no such
  number: None (read the text).

The caller (``Applier``) holds ``/run/xtables.lock`` around read-plan-write; the legacy restore
binary would wait for that same lock, so it is pointed at a private lock file instead
(``XTABLES_LOCKFILE``); iptables-nft takes no lock (nftables transactions are atomic).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from picket_agent.kernel.iptables import LOCK_PATH, DataplaneError, xtables_lock
from picket_agent.rendering.diffing import TablePlan, plan_removal
from picket_agent.rendering.iptrules import IptRule, SavedTable, parse_save

INNER_LOCK = "/run/picket-xtables-inner.lock"
LEGACY_NAMES = {4: "/proc/net/ip_tables_names", 6: "/proc/net/ip6_tables_names"}  # the legacy tables that exist
TOOLS = {  # (mode, family) -> the iptables binary prefix
    ("legacy", 4): "iptables-legacy",
    ("legacy", 6): "ip6tables-legacy",
    ("nft", 4): "iptables-nft",
    ("nft", 6): "ip6tables-nft",
}


def restore_script(plan: TablePlan, saved: SavedTable) -> str:
    """The ``--noflush --counters`` script that carries out ``plan`` on a table read as ``saved``."""
    lines = ["*filter"]
    lines += [f":{chain} - [0:0]" for chain in dict.fromkeys([*plan.create, *plan.rewrite])]
    for builtin, positions in plan.hook_removals.items():
        lines += [f"-D {builtin} {pos + 1}" for pos in sorted(positions, reverse=True)]
    for builtin, rule in plan.hook_inserts.items():
        lines.append(f"-I {builtin} 1 {rule.text()}")
    for chain, rules in plan.rewrite.items():
        carried = _counters_by_text(saved.chains.get(chain, []))
        for rule in rules:
            text = rule.text()
            counts = carried.get(text)
            packets, octets = counts.pop(0) if counts else (0, 0)
            lines.append(f"[{packets}:{octets}] -A {chain} {text}")
    lines += [f"-F {chain}" for chain in plan.delete]
    lines += [f"-X {chain}" for chain in plan.delete]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class Generations:
    """The nftables ruleset generation, and the steps of it our own commits made."""

    def __init__(self) -> None:
        self._sock: Any = None
        self._ours: dict[int, int] = {}  # generation before one of our commits -> after it

    def current(self) -> int | None:
        try:
            return self._read()
        except Exception:  # no generation (old kernel, no nf_tables): every verify reads the text
            return None

    def ours(self, before: int | None, after: int | None) -> None:
        if before is not None and after is not None and after == before + 1:
            self._ours[before] = after
            if len(self._ours) > 4096:
                self._ours.pop(next(iter(self._ours)))

    def unchanged_but_by_us(self, seen: int, now: int) -> bool:
        for _ in range(len(self._ours) + 1):
            if seen == now:
                return True
            step = self._ours.get(seen)
            if step is None:
                return False
            seen = step
        return False

    def _read(self) -> int:
        from pyroute2.netlink import NLM_F_REQUEST
        from pyroute2.netlink.nfnetlink.nftsocket import NFT_MSG_GETGEN, NFTSocket, nfgen_msg

        if self._sock is None:
            self._sock = NFTSocket()
        (reply,) = self._sock.request_get(nfgen_msg(), NFT_MSG_GETGEN, NLM_F_REQUEST)
        return int(reply.get_attr("NFTA_GEN_ID"))


class RestoreTables:
    def __init__(self, family: int = 4, mode: str = "nft", lock_path: str = LOCK_PATH,
                 generations: Generations | None = None, legacy_names: str | None = None) -> None:
        self.family = family
        self.legacy_names = legacy_names or LEGACY_NAMES[family]
        self.mode = mode
        self.tool = TOOLS[(mode, family)]
        self.lock_path = lock_path
        self._env = {**os.environ, "XTABLES_LOCKFILE": INNER_LOCK}
        self._generations = (generations or Generations()) if mode == "nft" else None
        self._seen: int | None = None  # the nft ruleset generation at our last read/write of this table

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return xtables_lock(self.lock_path)

    def read(self) -> SavedTable:
        if self.mode == "legacy" and not self._legacy_table_exists():
            return SavedTable()  # reading it would create it (and hook it into every packet's path)
        before = self._generation()
        proc = self._run(f"{self.tool}-save", "-c", "-t", "filter")
        self._seen = before if before is not None and before == self._generation() else None
        if proc.returncode != 0:
            if "does not exist" in proc.stderr or "Table does not exist" in proc.stderr:
                return SavedTable()  # nothing was ever written to this table
            raise DataplaneError(f"{self.tool}-save failed: {proc.stderr.strip()}")
        return parse_save(proc.stdout)

    def write(self, plan: TablePlan, saved: SavedTable) -> None:
        script = restore_script(plan, saved)
        before = self._generation()
        proc = self._run(f"{self.tool}-restore", "--noflush", "--counters", input=script)
        after = self._generation()
        known = before is not None and self._seen_before(before)
        self._seen = None
        if proc.returncode != 0:
            raise DataplaneError(f"{self.tool}-restore failed: {proc.stderr.strip()}")
        if known and self._generations is not None:
            self._generations.ours(before, after)
            self._seen = after

    def read_if_holding(
        self, chains: Mapping[str, tuple[IptRule, ...]], hooks: Mapping[str, IptRule]
    ) -> SavedTable | None:
        """None unless the nftables generation proves the table unchanged since we last saw it;
        then the table as our last apply left it (counters not read: only a write needs them,
        and a write follows only a change, which moves the generation)."""
        now = self._generation()
        if self._generations is None or self._seen is None or now is None:
            return None
        if not self._generations.unchanged_but_by_us(self._seen, now):
            return None
        self._seen = now
        from picket_agent.rendering.desired import Desired
        from picket_agent.rendering.diffing import saved_from

        return saved_from(Desired(chains, hooks, {}))

    def forget_sets(self, names: set[str]) -> None:
        """Rules name sets by name in the restore text: nothing cached to forget."""

    def remove_everything(self) -> int:
        """Remove our hooks and every PICKET-* chain of this table."""
        with self.locked():
            saved = self.read()
            plan = plan_removal(saved)
            if not plan.empty:
                self.write(plan, saved)
            return len(plan.delete)

    def _legacy_table_exists(self) -> bool:
        try:
            with open(self.legacy_names) as names:
                return "filter" in names.read().split()
        except OSError:
            return False  # no ip[6]_tables module loaded: no legacy table at all

    def _run(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(list(argv), input=input, capture_output=True, text=True, env=self._env,
                                  timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise DataplaneError(f"{argv[0]}: {exc}") from exc

    def _generation(self) -> int | None:
        return self._generations.current() if self._generations is not None else None

    def _seen_before(self, before: int) -> bool:
        """Was the table, just before our write, what we had read (changed only by our commits)?"""
        return (self._generations is not None and self._seen is not None
                and self._generations.unchanged_but_by_us(self._seen, before))


def _counters_by_text(rules: list[tuple[tuple[int, int], str]]) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for counters, text in rules:
        out.setdefault(text, []).append(counters)
    return out
