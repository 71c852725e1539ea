"""Read the filter table as the kernel holds it, in one ``getsockopt``, and key each rule by bytes.

The quick verify of a resync (``dataplane.IptablesIO.read_if_holding``) must tell whether the
kernel still holds exactly what the last apply wrote, without ``iptables-legacy-save`` (a
process that loads every extension and prints 1700 rules: ~20 ms). So the table is fetched like
libiptc does (``IPT_SO_GET_INFO`` then ``IPT_SO_GET_ENTRIES``), into a ZEROED buffer: the kernel
writes a match's name only up to its NUL and some matches' data only up to their ``usersize``,
so with libiptc's unzeroed buffer the same rule read twice could differ in the bytes after.

``parse`` walks the blob (``linux/netfilter_ipv4/ip_tables.h``): built-in chains start at
``hook_entry`` and end with their policy at ``underflow``; a user chain starts with an ``ERROR``
entry naming it and ends with an implicit RETURN; a standard target's verdict is negative for
ACCEPT/DROP/RETURN and otherwise the offset of the first rule of the chain it jumps to.
``rule_key`` is what must be equal for two rules to mean the same: ``struct ipt_ip``, the
offsets, the matches, and the target by label (standard) or by bytes (NFLOG); counters and
kernel bookkeeping (``nfcache``, ``comefrom``) left out. ``entries`` builds the same key for the
rules we would write.

Fuzzed against the kernel (``tests/kernel/test_agent_entries_fuzz.py``): for random compiled
states, after an apply (with foreign rules in FORWARD and counted packets) the quick verify must
read the same owned rules and counters as ``iptables-legacy-save``, and after one random change
made with ``iptables-legacy`` in a picket chain (a rule inserted, deleted, or replaced by a copy
differing in one field: a port, the comment, an address, the interface, the protocol, the
verdict, goto/jump) it must give up.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from dataclasses import dataclass, field

from picket_agent.kernel import entries

SOL_IP = 0
IPT_SO_GET_INFO, IPT_SO_GET_ENTRIES = 64, 65
HOOKS = {1: "INPUT", 2: "FORWARD", 3: "OUTPUT"}  # NF_INET_LOCAL_IN, FORWARD, LOCAL_OUT in filter
_INFO = struct.Struct("=32sI5I5III")  # struct ipt_getinfo
_GET = struct.Struct("=32sI4x")  # struct ipt_get_entries head, entrytable 8-aligned
_VERDICTS = {-2: "ACCEPT", -1: "DROP", -5: "RETURN"}  # -NF_ACCEPT-1, -NF_DROP-1, XT_RETURN
_STANDARD_SIZE = 40


@dataclass
class KernelTable:
    """Chain -> [(counters, rule key, standard target label or None)] in order (chain heads,
    tails and policies left out)."""

    chains: dict[str, list[tuple[tuple[int, int], bytes, str | None]]] = field(default_factory=dict)


def read_blob(table: str = "filter") -> tuple[bytes, tuple[int, ...], tuple[int, ...]]:
    """(entries blob, hook_entry, underflow) of a table of the current network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW) as sock:
        info = ctypes.create_string_buffer(_INFO.pack(table.encode(), 0, *([0] * 10), 0, 0), _INFO.size)
        fields = _INFO.unpack(_getsockopt(sock.fileno(), IPT_SO_GET_INFO, info, f"IPT_SO_GET_INFO {table}"))
        hook_entry, underflow, blob_size = fields[2:7], fields[7:12], fields[13]
        buf = ctypes.create_string_buffer(_GET.size + blob_size)  # zeroed
        ctypes.memmove(buf, _GET.pack(table.encode(), blob_size), _GET.size)
        raw = _getsockopt(sock.fileno(), IPT_SO_GET_ENTRIES, buf, f"IPT_SO_GET_ENTRIES {table} (changed meanwhile?)")
        return raw[_GET.size :], tuple(hook_entry), tuple(underflow)


_LIBC = ctypes.CDLL(None, use_errno=True)


def _getsockopt(fd: int, option: int, buf: ctypes.Array[ctypes.c_char], what: str) -> bytes:
    size = ctypes.c_uint(len(buf))
    if _LIBC.getsockopt(fd, SOL_IP, option, buf, ctypes.byref(size)) != 0:
        raise OSError(ctypes.get_errno(), what)
    return buf.raw


_OFFSETS = struct.Struct("=HH")
_COUNTS = struct.Struct("=QQ")


def parse(blob: bytes, hook_entry: tuple[int, ...], underflow: tuple[int, ...]) -> KernelTable:
    starts = {hook_entry[h]: name for h, name in HOOKS.items()}
    policies = {underflow[h] for h in HOOKS}
    spans: list[tuple[int, int, int]] = []  # (offset, target_offset, next_offset) of every entry
    offset = 0
    while offset < len(blob):
        target_offset, next_offset = _OFFSETS.unpack_from(blob, offset + entries.TARGET_OFFSET_AT)
        spans.append((offset, target_offset, next_offset))
        offset += next_offset
    heads = [_error_name(blob, o, t) for o, t, _ in spans]
    labels = {o + n: name for (o, _, n), name in zip(spans, heads, strict=True) if name}  # jump offset -> chain
    out = KernelTable()
    current: list[tuple[tuple[int, int], bytes, str | None]] | None = None
    last = len(spans) - 1
    for index, (offset, target_offset, next_offset) in enumerate(spans):
        if heads[index] is not None:  # a user chain starts (the table ends with a bare ERROR entry)
            current = out.chains.setdefault(heads[index] or "", []) if index < last else None
            continue
        if offset in starts:
            current = out.chains.setdefault(starts[offset], [])
        if current is None or offset in policies or (index < last and heads[index + 1] is not None):
            continue  # a built-in policy, or a user chain's implicit RETURN
        raw = blob[offset : offset + next_offset]
        label = _label(raw, target_offset, labels)
        current.append((_COUNTS.unpack_from(raw, 96), rule_key(raw, label), label))
    return out


def rule_key(raw: bytes, label: str | None) -> bytes:
    """The bytes that must match; ``label`` is a standard target's verdict/chain (None: other)."""
    (target_offset,) = struct.unpack_from("=H", raw, entries.TARGET_OFFSET_AT)
    fixed = raw[: entries.NFCACHE_AT] + raw[entries.TARGET_OFFSET_AT : entries.TARGET_OFFSET_AT + 4]
    target = label.encode() if label is not None else raw[target_offset:]
    return fixed + raw[entries.HEADER_SIZE : target_offset] + b"\0->" + target


def _error_name(blob: bytes, offset: int, target_offset: int) -> str | None:
    """The chain an ERROR entry starts (None for any other entry)."""
    at = offset + target_offset
    if blob[at + 2 : at + 8] != b"ERROR\0":
        return None
    return blob[at + 32 : at + 62].split(b"\0", 1)[0].decode()


def _label(raw: bytes, target_offset: int, labels: dict[int, str]) -> str | None:
    name = raw[target_offset + 2 : target_offset + 31].split(b"\0", 1)[0]
    if name or len(raw) - target_offset != _STANDARD_SIZE:
        return None
    (verdict,) = struct.unpack_from("=i", raw, target_offset + 32)
    return _VERDICTS.get(verdict) if verdict < 0 else labels.get(verdict, f"@{verdict}")
