"""A structured iptables rule and its canonical ``iptables-save`` text.

``IptRule`` is what the renderer produces and what the dataplane turns into python-iptables
objects. ``IptRule.text()`` prints it exactly as ``iptables-legacy-save`` prints the same rule
read back from the kernel (field order ``-s -d -i -o -p``, then matches in order, then the
comment, then ``-j``/``-g``; addresses as ``a.b.c.d/32`` or ``fd00::1/128``; strings quoted unless they are plain
``[A-Za-z0-9_-]``; a comment as the kernel keeps it, ``kernel_comment``). That identity is what
makes the diff exact: desired and actual chains are compared line by line, so a no-op resync
writes nothing. Kernel tests round-trip every rule shape the renderer emits, and random states
(``test_agent_entries_fuzz``), to keep the two in step.

``parse_save`` reads ``iptables-save -c`` output of one table into chains of (counters, text).
Pure: no kernel access here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

_PLAIN = re.compile(r"^[A-Za-z0-9_-]+$")


@lru_cache(maxsize=1 << 16)
def quote(value: str) -> str:
    """Quote a string argument the way iptables-save does. Memoised, and without the per-character
    walk unless a character needs escaping: comments are quoted for every rule of every render (it
    was a fifth of an agent's sync in the 1000-pod convergence benchmark, py-spy)."""
    if _PLAIN.match(value):
        return value
    if "\\" in value or '"' in value or "'" in value:
        value = "".join("\\" + c if c in _ESCAPED else c for c in value)
    return '"' + value + '"'


_ESCAPED = frozenset("\\\"'")
COMMENT_MAX = 255  # bytes of a comment the kernel keeps (xt_comment_info: 256 with the NUL)


def kernel_comment(text: str) -> str:
    """``text`` as the kernel holds it: at most ``COMMENT_MAX`` bytes of UTF-8, cut at a character.

    A longer comment (a 253-character policy name in a rule's comment) is truncated by the
    kernel; the rule's text and its packed bytes must both be of what the kernel keeps, or
    ``iptables-save`` never reads back what was rendered."""
    if len(text) * 4 <= COMMENT_MAX:
        return text
    return text.encode()[:COMMENT_MAX].decode(errors="ignore")


@dataclass(frozen=True)
class Param:
    """One option of a match or target: ``[!] --option value...``."""

    option: str  # without the leading dashes, e.g. "dport", "match-set"
    values: tuple[str, ...]
    negated: bool = False
    string: bool = False  # a free-text value (comment, log prefix): printed quoted when needed

    def text(self) -> str:
        neg = "! " if self.negated else ""
        values = (quote(v) for v in self.values) if self.string else self.values
        return f"{neg}--{self.option} " + " ".join(values)


@dataclass(frozen=True)
class Match:
    name: str
    params: tuple[Param, ...]

    def text(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        return " ".join([f"-m {self.name}", *(p.text() for p in self.params)])


@dataclass(frozen=True)
class IptRule:
    target: str  # ACCEPT, DROP, RETURN, NFLOG or a chain name
    matches: tuple[Match, ...] = ()
    comment: str = ""
    src: str = ""
    dst: str = ""
    in_iface: str = ""
    out_iface: str = ""
    protocol: str = ""  # "tcp", "udp", "sctp", "icmp", "ipv6-icmp"
    not_protocol: bool = False
    goto: bool = False
    target_params: tuple[Param, ...] = field(default=())

    def text(self) -> str:
        return self._text

    @cached_property
    def _text(self) -> str:
        parts: list[str] = []
        if self.src:
            parts.append(f"-s {_cidr(self.src)}")
        if self.dst:
            parts.append(f"-d {_cidr(self.dst)}")
        if self.in_iface:
            parts.append(f"-i {self.in_iface}")
        if self.out_iface:
            parts.append(f"-o {self.out_iface}")
        if self.protocol:
            parts.append(("! " if self.not_protocol else "") + f"-p {self.protocol}")
        parts += [m.text() for m in self.matches]
        if self.comment:
            parts.append(f"-m comment --comment {quote(kernel_comment(self.comment))}")
        parts.append(f"{'-g' if self.goto else '-j'} {self.target}")
        parts += [p.text() for p in self.target_params]
        return " ".join(parts)

    def set_names(self) -> tuple[str, ...]:
        return self._set_names

    @cached_property
    def _set_names(self) -> tuple[str, ...]:
        return tuple(p.values[0] for m in self.matches if m.name == "set" for p in m.params)


def _cidr(addr: str) -> str:
    if "/" in addr:
        return addr
    return f"{addr}/128" if ":" in addr else f"{addr}/32"


def chain_text(chain: str, rules: Iterable[IptRule]) -> list[str]:
    return [f"-A {chain} {r.text()}" for r in rules]


@dataclass
class SavedTable:
    """One table as ``iptables-save -c`` printed it: chain order and each chain's rules."""

    chains: dict[str, list[tuple[tuple[int, int], str]]] = field(default_factory=dict)

    def rules(self, chain: str) -> list[str]:
        return [text for _, text in self.chains.get(chain, [])]


_COUNTED = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) (.*)$")


def parse_save(text: str, table: str = "filter") -> SavedTable:
    """Parse ``iptables-save -c`` output; only the given table is kept."""
    out = SavedTable()
    current = ""
    for line in text.splitlines():
        if line.startswith("*"):
            current = line[1:].strip()
            continue
        if current != table:
            continue
        if line.startswith(":"):
            out.chains.setdefault(line[1:].split(" ", 1)[0], [])
            continue
        m = _COUNTED.match(line)
        if m:
            out.chains.setdefault(m.group(3), []).append(((int(m.group(1)), int(m.group(2))), m.group(4)))
        elif line.startswith("-A "):
            chain, _, rest = line[3:].partition(" ")
            out.chains.setdefault(chain, []).append(((0, 0), rest))
    return out
