"""Raw ``struct ipt_entry`` bytes for an ``IptRule``, assembled from cached parts.

Building a rule through python-iptables costs ~150 us (ctypes structures, libxtables option
parsing for every match); a 110-pod node has ~1700 rules, so that alone took ~190 ms of the
first apply. An entry is a fixed header (``struct ipt_ip``, offsets, counters: 112 bytes), the
matches (``xt_entry_match`` header + data, each 8-aligned) and the target. ``assemble`` packs:

* the header from the rule's addresses, interfaces, protocol and goto flag;
* the comment match (``xt_comment_info``: the text in 256 bytes, one per rule: never cached; a
  longer text is cut to the 255 bytes the kernel keeps, ``iptrules.kernel_comment``, as the
  rule's text has it);
* the targets the renderer emits: standard verdicts and jumps/gotos to our chains
  (``xt_standard_target`` carrying the label; libiptc maps it at commit) and NFLOG
  (``xt_nflog_info``, packed here because python-iptables corrupts its heap parsing NFLOG
  options on a rule with matches);
* every other match (tcp/udp/sctp/multiport/set/conntrack) comes from ``match_bytes``, which
  ``dataplane`` implements by letting python-iptables parse that match ONCE per distinct text
  (per ipset generation for set matches: they carry the kernel's set index).

Pure (struct only). ``dataplane`` appends the result to its python-iptables table handle.
Kernel tests check that assembled entries equal python-iptables' own, byte for byte: for a fixed
state with every rule shape the renderer emits (``test_agent_entries``), and fuzzed
(``test_agent_entries_fuzz``: Hypothesis draws random compiled states, and for every rendered
rule the bytes must equal python-iptables' build and, once applied, ``iptables-legacy-save``
must read back exactly the rule's text; NFLOG targets, which python-iptables cannot build, are
checked by that read-back and the byte-compared verify).
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable

from picket_agent.rendering.iptrules import IptRule, Match, kernel_comment

# struct ipt_entry: ipt_ip (src dst smsk dmsk, 4 interface arrays, proto flags invflags),
# nfcache, target_offset, next_offset, comefrom, counters (pcnt, bcnt).
_HEADER = struct.Struct("=4s4s4s4s16s16s16s16sHBBIHHIQQ")
HEADER_SIZE = _HEADER.size  # 112
NFCACHE_AT = 84  # struct ipt_ip ends here; nfcache (unused) follows
TARGET_OFFSET_AT = 88  # where target_offset sits in the header (next_offset follows)
_MATCH_HEAD = struct.Struct("=H29sB")  # xt_entry_match / xt_entry_target user header (32 bytes)
_COMMENT = struct.Struct("=H29sB256s")  # + xt_comment_info
_STANDARD = struct.Struct("=H29sBi4x")  # xt_standard_target, aligned to 8 (40 bytes)
_NFLOG = struct.Struct("=H29sB IHHHH64s4x")  # xt_nflog_info revision 0, aligned to 8

IPT_F_GOTO = 0x02
IPT_INV_PROTO = 0x40
PROTOCOLS = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}

MatchBytes = Callable[[Match, str], bytes]  # (match, the rule's protocol) -> xt_entry_match bytes


def assemble(rule: IptRule, match_bytes: MatchBytes) -> bytes:
    """The whole entry (zero counters) for ``rule``."""
    body = b"".join(match_bytes(m, rule.protocol) for m in rule.matches)
    if rule.comment:
        body += comment_match(rule.comment)
    target = nflog_target(rule) if rule.target == "NFLOG" else standard_target(rule.target)
    target_offset = HEADER_SIZE + len(body)
    return header(rule, target_offset, target_offset + len(target)) + body + target


def header(rule: IptRule, target_offset: int, next_offset: int) -> bytes:
    src, smsk = _address(rule.src)
    dst, dmsk = _address(rule.dst)
    in_name, in_mask = _iface(rule.in_iface)
    out_name, out_mask = _iface(rule.out_iface)
    proto = PROTOCOLS[rule.protocol] if rule.protocol else 0
    invflags = IPT_INV_PROTO if rule.protocol and rule.not_protocol else 0
    flags = IPT_F_GOTO if rule.goto else 0
    return _HEADER.pack(src, dst, smsk, dmsk, in_name, out_name, in_mask, out_mask, proto, flags, invflags,
                        0, target_offset, next_offset, 0, 0, 0)


def comment_match(text: str) -> bytes:
    data = kernel_comment(text).encode()  # at most 255 bytes, as the rule's text has it
    return _COMMENT.pack(_COMMENT.size, b"comment", 0, data)


def standard_target(label: str) -> bytes:
    """ACCEPT/DROP/RETURN or a chain name: libiptc turns the label into a verdict or jump."""
    return _STANDARD.pack(_STANDARD.size, label.encode(), 0, 0)


def nflog_target(rule: IptRule) -> bytes:
    params = {p.option: p.values[0] for p in rule.target_params}
    prefix = params.get("nflog-prefix", "").encode()[:63]
    return _NFLOG.pack(_NFLOG.size, b"NFLOG", 0, 0, int(params.get("nflog-group", "0")), 0, 0, 0, prefix)


def matches_of(entry: bytes) -> list[bytes]:
    """Split a built entry's match area into the individual ``xt_entry_match`` blobs."""
    (target_offset,) = struct.unpack_from("=H", entry, TARGET_OFFSET_AT)
    out: list[bytes] = []
    offset = HEADER_SIZE
    while offset < target_offset:
        (size,) = struct.unpack_from("=H", entry, offset)
        out.append(entry[offset : offset + size])
        offset += size
    return out


def _address(addr: str) -> tuple[bytes, bytes]:
    if not addr:
        return b"\0" * 4, b"\0" * 4
    net = ipaddress.IPv4Network(addr, strict=False)
    return net.network_address.packed, net.netmask.packed


def _iface(name: str) -> tuple[bytes, bytes]:
    """Name and mask as iptables sets them (``eth+`` is a prefix wildcard)."""
    if not name:
        return b"", b""
    if name.endswith("+"):
        name = name[:-1]
        return name.encode(), b"\xff" * len(name)
    return name.encode(), b"\xff" * (len(name) + 1)
