"""The ipset netlink messages the agent sends in bulk, packed and parsed with ``struct``.

pyroute2's generic attribute codec costs ~2.5 ms to encode one 40-member set and ~0.8 ms to
decode one when listing, which made ipsets the largest part of a first apply (130 ms for 50
sets) and of a verifying resync (41 ms). The messages are small and fixed
(``linux/netfilter/ipset/ip_set.h``), so ``ipsets`` builds them here instead:

* ``create_message`` / ``add_messages``: CREATE (with the type's revision, family inet or inet6
  and ``maxelem``) and ADD batches (``IPSET_ATTR_ADT`` holding many ``IPSET_ATTR_DATA`` entries, as
  ``ipset restore`` sends them); ``ipsets`` sends many of them in one ``sendmsg`` and reads one
  ack each;
* ``parse_list``: the replies of a LIST dump -> {set name: (type, members, nomatch members)}.

Pure; entries are text as the renderer writes them (``10.0.0.1``, ``10.0.0.0/8``,
``10.0.0.1,tcp:80``, and the same with IPv6 addresses: ``fd00::1,tcp:80``).
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator

NFNL_SUBSYS_IPSET = 6
CMD_CREATE, CMD_LIST, CMD_ADD = 2, 7, 9
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
NFPROTO_IPV4, NFPROTO_IPV6 = 2, 10

A_PROTOCOL, A_SETNAME, A_TYPENAME, A_REVISION, A_FAMILY, A_DATA, A_ADT, A_LINENO = 1, 2, 3, 4, 5, 7, 8, 9
D_IP, D_CIDR, D_PORT, D_PROTO, D_CADT_FLAGS, D_MAXELEM = 1, 3, 4, 7, 8, 19
IPADDR_IPV4, IPADDR_IPV6 = 1, 2
FLAG_NOMATCH = 4  # IPSET_FLAG_NOMATCH: `ipset add S NET nomatch`

PROTO_NUM = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
PROTO_NAME = {v: k for k, v in PROTO_NUM.items()}
_HDR = struct.Struct("=IHHII")  # nlmsghdr
_GEN = struct.Struct("=BBH")  # nfgenmsg


def attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def message(cmd: int, flags: int, seq: int, attrs: bytes) -> bytes:
    body = _GEN.pack(NFPROTO_IPV4, 0, 0) + attrs
    return _HDR.pack(_HDR.size + len(body), (NFNL_SUBSYS_IPSET << 8) | cmd, flags, seq, 0) + body


def _header_attrs(protocol: int, name: str) -> bytes:
    return attr(A_PROTOCOL, bytes([protocol])) + attr(A_SETNAME, name.encode() + b"\0")


def create_message(
    protocol: int, name: str, kind: str, revision: int, maxelem: int, seq: int, family: int = 4
) -> bytes:
    data = attr(D_MAXELEM | NLA_F_NET_BYTEORDER, struct.pack(">I", maxelem))
    nfproto = NFPROTO_IPV6 if family == 6 else NFPROTO_IPV4
    attrs = (_header_attrs(protocol, name) + attr(A_TYPENAME, kind.encode() + b"\0")
             + attr(A_REVISION, bytes([revision])) + attr(A_FAMILY, bytes([nfproto]))
             + attr(A_DATA | NLA_F_NESTED, data))
    return message(CMD_CREATE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL, seq, attrs)


def entry_data(kind: str, member: str, nomatch: bool) -> bytes:
    """One ``IPSET_ATTR_DATA`` of an ADD: address, then cidr or proto+port, then flags."""
    ip, _, rest = member.partition("," if kind == "hash:ip,port" else "/")
    inner = attr(D_IP | NLA_F_NESTED, _address(ip))
    if kind == "hash:net":
        inner += attr(D_CIDR, bytes([int(rest or (128 if ":" in ip else 32))]))
    elif kind == "hash:ip,port":
        proto, _, port = rest.partition(":")
        inner += attr(D_PORT | NLA_F_NET_BYTEORDER, struct.pack(">H", int(port)))
        inner += attr(D_PROTO, bytes([PROTO_NUM[proto]]))
    if nomatch:
        inner += attr(D_CADT_FLAGS | NLA_F_NET_BYTEORDER, struct.pack(">I", FLAG_NOMATCH))
    return attr(A_DATA | NLA_F_NESTED, inner)


def _address(ip: str) -> bytes:
    if ":" in ip:
        return attr(IPADDR_IPV6 | NLA_F_NET_BYTEORDER, socket.inet_pton(socket.AF_INET6, ip))
    return attr(IPADDR_IPV4 | NLA_F_NET_BYTEORDER, socket.inet_aton(ip))


def dumped_entry(kind: str, member: str, nomatch: bool) -> bytes:
    """An entry's ``IPSET_ATTR_DATA`` payload as a LIST dump returns it: what ``entry_data`` sends,
    except that the kernel leaves the byte-order flag off the address."""
    payload = entry_data(kind, member, nomatch)[4:]
    if ":" in member.split(",", 1)[0]:
        flagged = struct.pack("=HH", 20, IPADDR_IPV6 | NLA_F_NET_BYTEORDER)
        return payload.replace(flagged, struct.pack("=HH", 20, IPADDR_IPV6), 1)
    flagged = struct.pack("=HH", 8, IPADDR_IPV4 | NLA_F_NET_BYTEORDER)
    return payload.replace(flagged, struct.pack("=HH", 8, IPADDR_IPV4), 1)


def add_messages(protocol: int, name: str, entries: list[bytes], first_seq: int, batch: int = 500) -> list[bytes]:
    """ADD messages of up to ``batch`` entries each (``IPSET_ATTR_LINENO`` is required with ADT)."""
    out: list[bytes] = []
    for start in range(0, len(entries), batch):
        adt = attr(A_ADT | NLA_F_NESTED, b"".join(entries[start : start + batch]))
        attrs = _header_attrs(protocol, name) + attr(A_LINENO, struct.pack("=I", 0)) + adt
        out.append(message(CMD_ADD, NLM_F_REQUEST | NLM_F_ACK, first_seq + len(out), attrs))
    return out


def list_message(protocol: int, seq: int) -> bytes:
    return message(CMD_LIST, NLM_F_REQUEST | NLM_F_DUMP, seq, attr(A_PROTOCOL, bytes([protocol])))


def messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(type, seq, payload after nlmsghdr) of every netlink message in a received buffer."""
    offset = 0
    while offset + _HDR.size <= len(data):
        length, kind, _, seq, _ = _HDR.unpack_from(data, offset)
        if length < _HDR.size:
            break
        yield kind, seq, data[offset + _HDR.size : offset + length]
        offset += (length + 3) & ~3


def error_code(payload: bytes) -> int:
    """The (positive) errno of an NLMSG_ERROR payload; 0 is an ack."""
    return -int(struct.unpack_from("=i", payload)[0])


def attrs(data: bytes, offset: int = 0) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        yield kind & 0x3FFF, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3


ListedSets = dict[str, tuple[str, set[str], set[str]]]  # name -> (type, members, nomatch)
RawSets = dict[str, tuple[str, list[bytes]]]  # name -> (type, the entries' IPSET_ATTR_DATA payloads)


def raw_list(payloads: Iterable[bytes], into: RawSets) -> None:
    """Collect the sets of LIST reply payloads (nfgenmsg + attributes), entries still packed."""
    for payload in payloads:
        top = dict(attrs(payload, _GEN.size))
        name = top.get(A_SETNAME, b"").rstrip(b"\0").decode()
        if not name:
            continue
        kind = top.get(A_TYPENAME, b"").rstrip(b"\0").decode()
        entry = into.setdefault(name, (kind, []))  # a big set spans messages: TYPENAME only in the first
        entry[1].extend(data for _, data in attrs(top.get(A_ADT, b"")))


def parse_list(payloads: Iterable[bytes], into: ListedSets) -> None:
    """Add the sets of LIST reply payloads to ``into``, entries as text."""
    raw: RawSets = {}
    raw_list(payloads, raw)
    for name, (kind, datas) in raw.items():
        entry = into.setdefault(name, (kind, set(), set()))
        for data in datas:
            text, nomatch = entry_text(entry[0], data)
            (entry[2] if nomatch else entry[1]).add(text)


def entry_text(kind: str, packed: bytes) -> tuple[str, bool]:
    """(entry as text, nomatch) of one ``IPSET_ATTR_DATA`` payload of a LIST dump."""
    data = dict(attrs(packed))
    ip_attrs = dict(attrs(data.get(D_IP, b"")))
    if IPADDR_IPV4 in ip_attrs:
        ip = socket.inet_ntoa(ip_attrs[IPADDR_IPV4])
    elif IPADDR_IPV6 in ip_attrs:
        ip = socket.inet_ntop(socket.AF_INET6, ip_attrs[IPADDR_IPV6])
    else:
        ip = "?"
    flags = struct.unpack(">I", data[D_CADT_FLAGS])[0] if D_CADT_FLAGS in data else 0
    nomatch = bool(flags & FLAG_NOMATCH)
    if kind == "hash:net":
        full = 128 if IPADDR_IPV6 in ip_attrs else 32
        return f"{ip}/{data[D_CIDR][0] if D_CIDR in data else full}", nomatch
    if kind == "hash:ip,port":
        proto = PROTO_NAME.get(data[D_PROTO][0], "?") if D_PROTO in data else "?"
        port = struct.unpack(">H", data[D_PORT])[0] if D_PORT in data else 0
        return f"{ip},{proto}:{port}", nomatch
    return ip, nomatch
