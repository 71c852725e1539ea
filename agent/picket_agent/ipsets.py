"""The ipset side of the kernel, through pyroute2's netlink IPSet (no ipset binary).

Used by ``applying``. A set whose contents change is never flushed and refilled in place (a
packet in between would see it half full): the new contents are built under a temporary name
(``naming.temp_set_name``), ``swap``ped with the live set in one kernel operation (rules keep
referencing the live name, which now has the new contents), and the temporary set, holding the
old contents, is destroyed. ``hash:net`` excepts are added with the ``nomatch`` flag. All
netlink calls of one operation run in one pyroute2 event-loop turn (one call per set, not per
member).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from picket.model import PeerSetKind
from picket_agent import naming
from picket_agent.desired import SetSpec
from picket_agent.diffing import ActualSet

_PROTO_NUM = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP, "sctp": 132}
_PROTO_NAME = {v: k for k, v in _PROTO_NUM.items()}


class IpsetIO:
    def __init__(self) -> None:
        from pyroute2 import IPSet

        self._ipset = IPSet()

    def close(self) -> None:
        self._ipset.close()

    def list_owned(self) -> dict[str, ActualSet]:
        found: dict[str, tuple[str, set[str], set[str]]] = {}
        for msg in self._ipset.list():
            name = msg.get_attr("IPSET_ATTR_SETNAME")
            if not name or not naming.is_owned_set(name):
                continue
            kind = msg.get_attr("IPSET_ATTR_TYPENAME")
            entry = found.setdefault(name, (kind, set(), set()))
            adt = msg.get_attr("IPSET_ATTR_ADT")
            for data in adt.get_attrs("IPSET_ATTR_DATA") if adt else ():
                text, nomatch = _entry_text(kind, data)
                (entry[2] if nomatch else entry[1]).add(text)
        return {n: ActualSet(k, frozenset(m), frozenset(x)) for n, (k, m, x) in found.items()}

    def create(self, spec: SetSpec, name: str | None = None) -> None:
        self._run(self._create_filled, name or spec.name, spec)

    def replace(self, spec: SetSpec) -> None:
        temp = naming.temp_set_name(spec.name)
        self.destroy_quietly([temp])
        self._run(self._create_filled, temp, spec)
        self._ipset.swap(spec.name, temp)
        self._ipset.destroy(temp)

    def destroy_quietly(self, names: Iterable[str]) -> list[str]:
        """Destroy sets; return the ones the kernel refused (still referenced)."""
        from pyroute2.netlink.exceptions import NetlinkError

        refused = []
        for name in names:
            try:
                self._ipset.destroy(name)
            except NetlinkError as exc:
                if exc.code != 2:  # ENOENT: already gone
                    refused.append(f"{name}: {exc}")
        return refused

    def _run(self, fn: Any, *args: Any) -> Any:
        return self._ipset._run_with_cleanup(fn, self._ipset.asyncore, *args)

    @staticmethod
    async def _create_filled(core: Any, name: str, spec: SetSpec) -> None:
        await core.create(name, stype=spec.kind.value, maxelem=max(65536, 2 * len(spec.members)))
        entries = [_data(spec.kind, m, nomatch=False) for m in spec.members]
        entries += [_data(spec.kind, m, nomatch=True) for m in spec.nomatch]
        for start in range(0, len(entries), _BATCH):
            await _add_batch(core, name, entries[start : start + _BATCH])


_BATCH = 500  # entries per netlink message (IPSET_ATTR_ADT carries many, as `ipset restore` sends them)


def _data(kind: PeerSetKind, member: str, nomatch: bool) -> list[Any]:
    """The IPSET_ATTR_DATA attributes of one entry."""
    ip, _, rest = member.partition("," if kind is PeerSetKind.IP_PORT else "/")
    attrs: list[Any] = [["IPSET_ATTR_IP_FROM", {"attrs": [["IPSET_ATTR_IPADDR_IPV4", ip]]}]]
    if kind is PeerSetKind.NET:
        attrs.append(["IPSET_ATTR_CIDR", int(rest or 32)])
    elif kind is PeerSetKind.IP_PORT:
        proto, _, port = rest.partition(":")
        attrs += [["IPSET_ATTR_PORT", int(port)], ["IPSET_ATTR_PROTO", _PROTO_NUM[proto]]]
    if nomatch:
        attrs.append(["IPSET_ATTR_CADT_FLAGS", 4])  # IPSET_FLAG_NOMATCH: `ipset add S NET nomatch`
    return ["IPSET_ATTR_DATA", {"attrs": attrs}]


async def _add_batch(core: Any, name: str, entries: list[Any]) -> None:
    from pyroute2.ipset import _nlmsg_error
    from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST
    from pyroute2.netlink.nfnetlink.ipset import IPSET_CMD_ADD, ipset_msg

    msg = ipset_msg()
    msg["attrs"] = [
        ["IPSET_ATTR_PROTOCOL", core._proto_version],
        ["IPSET_ATTR_SETNAME", name],
        ["IPSET_ATTR_LINENO", 0],
        ["IPSET_ATTR_ADT", {"attrs": entries}],
    ]
    await core.request(msg, IPSET_CMD_ADD, msg_flags=NLM_F_REQUEST | NLM_F_ACK, terminate=_nlmsg_error)


def _entry_text(kind: str, data: Any) -> tuple[str, bool]:
    ip_attr = data.get_attr("IPSET_ATTR_IP_FROM")
    ip = ip_attr.get_attr("IPSET_ATTR_IPADDR_IPV4") if ip_attr else "?"
    flags = data.get_attr("IPSET_ATTR_CADT_FLAGS") or 0
    nomatch = bool(flags & 4)  # IPSET_FLAG_NOMATCH
    if kind == PeerSetKind.NET.value:
        return f"{ip}/{data.get_attr('IPSET_ATTR_CIDR') or 32}", nomatch
    if kind == PeerSetKind.IP_PORT.value:
        proto = _PROTO_NAME.get(data.get_attr("IPSET_ATTR_PROTO"), "?")
        return f"{ip},{proto}:{data.get_attr('IPSET_ATTR_PORT_FROM')}", nomatch
    return ip, nomatch
