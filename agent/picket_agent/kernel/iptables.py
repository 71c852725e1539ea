"""The iptables side of the kernel: read with iptables-legacy-save, write with python-iptables.

Only this module and ``ipsets`` touch the kernel. ``IptablesIO`` is used by ``applying``:

* ``locked()``: holds ``/run/xtables.lock`` (``flock``, as ``iptables -w`` does) for the whole
  read-plan-write, so another writer's edits (kube-proxy) are never lost in between;
* ``read()``: ``iptables-legacy-save -c -t filter`` parsed into chains with counters;
* ``write(plan, saved)``: python-iptables with autocommit off: create, rewrite (flush + append),
  delete chains and fix hook rules on one libiptc handle, then ONE ``commit`` (the kernel swaps
  the whole table atomically). Rules whose text is unchanged carry their old counters over.

Entries are assembled by ``entries`` from cached parts (python-iptables parses each distinct
match once) and cached per distinct (rule text, set generation): building a rule through
python-iptables is ~150 us, assembling one ~10 us, appending a cached entry ~2.
"""

from __future__ import annotations

import contextlib
import ctypes as ct
import fcntl
import os
import subprocess
import time
from collections.abc import Iterator, Mapping
from typing import Any

from picket_agent.kernel import entries, tableblob
from picket_agent.rendering import naming
from picket_agent.rendering.diffing import TablePlan
from picket_agent.rendering.iptrules import IptRule, Match, SavedTable, kernel_comment, parse_save

LOCK_PATH = "/run/xtables.lock"
SAVE = "iptables-legacy-save"


class DataplaneError(RuntimeError):
    pass


@contextlib.contextmanager
def xtables_lock(path: str = LOCK_PATH, timeout: float = 10.0) -> Iterator[None]:
    """Exclusive flock on the xtables lock file, waiting up to ``timeout`` like ``iptables -w``."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DataplaneError(f"could not take {path} within {timeout}s") from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class IptablesIO:
    def __init__(self, lock_path: str = LOCK_PATH) -> None:
        import iptc  # imported here so that `picket agent --help` works without libiptc

        self._iptc = iptc
        self.lock_path = lock_path
        self._table = iptc.Table(iptc.Table.FILTER, autocommit=False)
        self._cache: dict[tuple[str, tuple[int, ...]], bytes] = {}  # rule text (+ set generations) -> entry
        self._matches: dict[tuple[str, tuple[int, ...]], bytes] = {}  # match text (+ set generations) -> bytes
        self._keys: dict[tuple[str, tuple[int, ...]], bytes] = {}  # rule text (+ set generations) -> tableblob key
        self._chain_keys: dict[str, tuple[tuple[IptRule, ...], int, bytes]] = {}  # chain -> (rules, epoch, keys)
        self._set_epoch = 0  # bumped whenever a set is (re)created
        self.set_generation: dict[str, int] = {}

    def locked(self) -> contextlib.AbstractContextManager[None]:
        return xtables_lock(self.lock_path)

    def read(self) -> SavedTable:
        proc = subprocess.run([SAVE, "-c", "-t", "filter"], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DataplaneError(f"{SAVE} failed: {proc.stderr.strip()}")
        return parse_save(proc.stdout)

    def write(self, plan: TablePlan, saved: SavedTable) -> None:
        t = self._table
        t.refresh()
        for chain in plan.create:
            t.create_chain(chain)
        for chain, rules in plan.rewrite.items():
            if not t.is_chain(chain):
                t.create_chain(chain)
            t.flush_entries(chain)
            counters = _counters_by_text(saved.chains.get(chain, []))
            for rule in rules:
                t.append_entry(chain, self._entry(rule, counters))
        for builtin, positions in plan.hook_removals.items():
            for pos in sorted(positions, reverse=True):
                if t._iptc.iptc_delete_num_entry(builtin.encode(), pos, t._handle) != 1:
                    raise DataplaneError(f"cannot delete rule {pos} of {builtin}: {t.strerror()}")
        for builtin, rule in plan.hook_inserts.items():
            t.insert_entry(builtin, self._entry(rule, {}), 0)
        for chain in plan.delete:
            t.flush_entries(chain)
        for chain in plan.delete:
            t.delete_chain(chain)
        t.commit()

    def read_if_holding(
        self, chains: Mapping[str, tuple[IptRule, ...]], hooks: Mapping[str, IptRule]
    ) -> SavedTable | None:
        """The quick verify: if the kernel's owned chains are exactly ``chains`` (compared as entry
        bytes, ``tableblob``; no ``iptables-save``), the table as ``read`` would parse it (foreign
        rules of the built-in chains as placeholders, counters from the kernel); else None and the
        caller reads the exact text (drift is rare; its account needs the text)."""
        try:
            table = tableblob.parse(*tableblob.read_blob())
        except OSError:  # e.g. a writer that ignores the lock changed the table between the two calls
            return None
        if {c for c in table.chains if naming.is_owned_chain(c)} != set(chains):
            return None
        saved = SavedTable()
        for builtin in ("INPUT", "FORWARD", "OUTPUT"):
            hook = hooks.get(builtin)
            want = self._key(hook) if hook is not None else None
            saved.chains[builtin] = [
                (counts, hook.text() if hook is not None and key == want else _placeholder(label))
                for counts, key, label in table.chains.get(builtin, [])
            ]
        for chain, rules in chains.items():
            have = table.chains[chain]
            if len(have) != len(rules) or b"".join(key for _, key, _ in have) != self._chain_key(chain, rules):
                return None
            saved.chains[chain] = [(counts, r.text()) for (counts, _, _), r in zip(have, rules, strict=True)]
        return saved

    def _chain_key(self, chain: str, rules: tuple[IptRule, ...]) -> bytes:
        """The keys of a chain's rules, joined; kept while the rules object and the sets stay the same."""
        cached = self._chain_keys.get(chain)
        if cached is not None and cached[0] is rules and cached[1] == self._set_epoch:
            return cached[2]
        key = b"".join(self._key(r) for r in rules)
        self._chain_keys[chain] = (rules, self._set_epoch, key)
        return key

    def _key(self, rule: IptRule) -> bytes:
        names = rule.set_names()
        cache_key = (rule.text(), tuple(self.set_generation.get(s, 0) for s in names) if names else ())
        key = self._keys.get(cache_key)
        if key is None:
            key = tableblob.rule_key(self._raw(rule), None if rule.target == "NFLOG" else rule.target)
            self._keys[cache_key] = key
        return key

    def _raw(self, rule: IptRule) -> bytes:
        key = (rule.text(), tuple(self.set_generation.get(s, 0) for s in rule.set_names()))
        raw = self._cache.get(key)
        if raw is None:
            raw = entries.assemble(rule, self._match_bytes)
            self._cache[key] = raw
        return raw

    def _entry(self, rule: IptRule, counters: Mapping[str, list[tuple[int, int]]]) -> ct.Array[ct.c_ubyte]:
        raw = self._raw(rule)
        buf = (ct.c_ubyte * len(raw)).from_buffer_copy(raw)
        carried = counters.get(rule.text())
        if carried:
            entry = self._iptc.ip4tc.ipt_entry.from_buffer(buf)
            entry.counters.pcnt, entry.counters.bcnt = carried.pop(0)
        return buf

    def _match_bytes(self, match: Match, protocol: str) -> bytes:
        """One match's ``xt_entry_match`` bytes, parsed by python-iptables once per distinct text."""
        sets = tuple(p.values[0] for p in match.params) if match.name == "set" else ()
        key = (match.text(), tuple(self.set_generation.get(s, 0) for s in sets))
        raw = self._matches.get(key)
        if raw is None:
            built = bytes(self._build(IptRule("ACCEPT", (match,), protocol=protocol)).rule)
            (raw,) = entries.matches_of(built)
            self._matches[key] = raw
        return raw

    def _build(self, spec: IptRule) -> Any:
        """A rule through python-iptables itself (the reference ``entries`` is tested against)."""
        iptc = self._iptc
        rule = iptc.Rule()
        # The target goes first (python-iptables' option parsing of a target can clobber matches).
        target = iptc.Target(rule, spec.target, goto=spec.goto)
        for p in spec.target_params:
            target.parse(p.option, list(p.values))
        rule.target = target
        if spec.src:
            rule.src = spec.src
        if spec.dst:
            rule.dst = spec.dst
        if spec.in_iface:
            rule.in_interface = spec.in_iface
        if spec.out_iface:
            rule.out_interface = spec.out_iface
        if spec.protocol:
            rule.protocol = ("!" if spec.not_protocol else "") + spec.protocol
        for m in spec.matches:
            match = rule.create_match(m.name)
            for p in m.params:
                match.parse(p.option, (["!"] if p.negated else []) + list(p.values))
        if spec.comment:
            rule.create_match("comment").comment = kernel_comment(spec.comment)
        return rule

    def forget_sets(self, names: set[str]) -> None:
        """A set was (re)created: its kernel index may differ, so cached rules using it are stale."""
        for name in names:
            self.set_generation[name] = self.set_generation.get(name, 0) + 1
        self._set_epoch += bool(names)

    def remove_everything(self) -> int:
        """Remove our hooks and every PICKET-* chain (``picket agent --cleanup``)."""
        from picket_agent.rendering.diffing import plan_removal

        with self.locked():
            saved = self.read()
            plan = plan_removal(saved)
            if not plan.empty:
                self.write(plan, saved)
            return len(plan.delete)


def _placeholder(label: str | None) -> str:
    """A foreign rule of a built-in chain: ``plan_hooks`` only asks whether it jumps into ours."""
    return f"-j {label}" if label is not None and naming.is_owned_chain(label) else "(foreign rule)"


def _counters_by_text(rules: list[tuple[tuple[int, int], str]]) -> dict[str, list[tuple[int, int]]]:
    out: dict[str, list[tuple[int, int]]] = {}
    for counters, text in rules:
        out.setdefault(text, []).append(counters)
    return out
