"""ipset netlink messages packed by hand: entries round-trip through the LIST parser, and the
attribute flags the kernel insists on (nested, network byte order) are set."""

from __future__ import annotations

import struct

import pytest

from picket_agent.kernel import ipsetwire as wire


def listed(kind: str, members: list[str], nomatch: list[str]) -> tuple[str, set[str], set[str]]:
    """Parse what ``add_messages`` sends as if the kernel listed it back (same ADT layout)."""
    data = [wire.entry_data(kind, m, False) for m in members] + [wire.entry_data(kind, m, True) for m in nomatch]
    payloads = []
    for i, msg in enumerate(wire.add_messages(7, "picket-x", data, 1, batch=2)):
        (_, _, payload), = wire.messages(msg)
        if i == 0:  # the kernel names the type in the first message of a set only
            payload += wire.attr(wire.A_TYPENAME, kind.encode() + b"\0")
        payloads.append(payload)
    into: wire.ListedSets = {}
    wire.parse_list(payloads, into)
    return into["picket-x"]


@pytest.mark.parametrize(
    ("kind", "members", "nomatch"),
    [
        ("hash:ip", ["10.0.0.1", "10.0.0.2", "192.168.1.255"], []),
        ("hash:net", ["10.0.0.0/8", "10.1.2.0/24", "10.9.9.9/32"], ["10.1.0.0/16"]),
        ("hash:ip,port", ["10.0.0.1,tcp:80", "10.0.0.2,udp:53", "10.0.0.3,sctp:9"], []),
    ],
)
def test_entries_round_trip(kind: str, members: list[str], nomatch: list[str]) -> None:
    assert listed(kind, members, nomatch) == (kind, set(members), set(nomatch))


def test_flags_the_kernel_requires() -> None:
    data = wire.entry_data("hash:ip,port", "10.0.0.1,tcp:80", nomatch=True)
    length, kind = struct.unpack_from("=HH", data)
    assert kind == wire.A_DATA | wire.NLA_F_NESTED and length == len(data)
    inner = {k: v for k, v in wire.attrs(data[4:])}
    raw_kinds = [struct.unpack_from("=H", data, 4 + off + 2)[0] for off in _offsets(data[4:])]
    assert wire.D_IP | wire.NLA_F_NESTED in raw_kinds
    assert wire.D_PORT | wire.NLA_F_NET_BYTEORDER in raw_kinds
    assert inner[wire.D_PORT] == struct.pack(">H", 80)
    assert struct.unpack(">I", inner[wire.D_CADT_FLAGS])[0] == wire.FLAG_NOMATCH


def test_create_is_exclusive_and_acked() -> None:
    (kind, seq, payload), = wire.messages(wire.create_message(7, "picket-x", "hash:net", 7, 65536, seq=42))
    flags = struct.unpack_from("=H", wire.create_message(7, "picket-x", "hash:net", 7, 65536, seq=42), 6)[0]
    assert kind == (wire.NFNL_SUBSYS_IPSET << 8) | wire.CMD_CREATE and seq == 42
    assert flags & wire.NLM_F_EXCL and flags & wire.NLM_F_ACK
    top = dict(wire.attrs(payload, 4))
    assert top[wire.A_SETNAME] == b"picket-x\0" and top[wire.A_TYPENAME] == b"hash:net\0"


def _offsets(data: bytes) -> list[int]:
    out, off = [], 0
    while off + 4 <= len(data):
        out.append(off)
        off += (struct.unpack_from("=H", data, off)[0] + 3) & ~3
    return out
