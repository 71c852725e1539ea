"""The ipset side of the kernel: pyroute2's netlink IPSet plus batched messages (no ipset binary).

Used by ``applying``. A set whose contents change is never flushed and refilled in place (a
packet in between would see it half full): the new contents are built under a temporary name
(``naming.temp_set_name``), ``swap``ped with the live set in one kernel operation (rules keep
referencing the live name, which now has the new contents), and the temporary set, holding the
old contents, is destroyed. ``hash:net`` excepts are added with the ``nomatch`` flag.

Bulk work goes over one NETLINK_NETFILTER socket with messages packed by ``ipsetwire``: every
CREATE and ADD of an apply in as few ``sendmsg`` calls as fit (~64 KiB each), one ack read per
message, and LIST dumps parsed with ``struct`` (pyroute2's generic codec was ~2.5 ms per set).
pyroute2 does the rest: protocol version, type revisions, swap and destroy.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterable, Mapping, Sequence

from picket_agent.kernel import ipsetwire as wire
from picket_agent.rendering import naming
from picket_agent.rendering.desired import SetSpec
from picket_agent.rendering.diffing import ActualSet

NETLINK_NETFILTER = 12
_SEND_CHUNK = 65536


class IpsetError(RuntimeError):
    pass


class IpsetIO:
    """The ipsets of one address family: ``family`` 4 (``picket-*``, inet) or 6 (``picket-6-*``, inet6)."""

    def __init__(self, family: int = 4) -> None:
        from pyroute2 import IPSet

        self.family = family
        self._ipset = IPSet()
        self._protocol = int(self._ipset.get_proto_version()[0].get_attr("IPSET_ATTR_PROTOCOL"))
        self._revisions: dict[str, int] = {}
        self._dumps: dict[str, tuple[SetSpec, frozenset[bytes]]] = {}  # set name -> (spec, its dumped entries)
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._ipset.close()
        self._sock.close()

    def list_owned(self, expected: Mapping[str, SetSpec] | None = None) -> dict[str, ActualSet]:
        """Our sets as the kernel holds them. A set whose packed entries equal those of its
        ``expected`` spec is taken from the spec; only the others are decoded to text."""
        self._seq += 1
        self._sock.send(wire.list_message(self._protocol, self._seq))
        found: wire.RawSets = {}
        while True:
            payloads: list[bytes] = []
            for kind, _, payload in wire.messages(self._sock.recv(1 << 20)):
                if kind == wire.NLMSG_DONE:
                    wire.raw_list(payloads, found)
                    return {n: self._actual(n, k, d, (expected or {}).get(n))
                            for n, (k, d) in found.items() if naming.is_owned_set(n, self.family)}
                if kind == wire.NLMSG_ERROR and wire.error_code(payload):
                    raise IpsetError(f"ipset list: errno {wire.error_code(payload)}")
                payloads.append(payload)
            wire.raw_list(payloads, found)

    def _actual(self, name: str, kind: str, datas: list[bytes], spec: SetSpec | None) -> ActualSet:
        if spec is not None and kind == spec.kind.value and frozenset(datas) == self._packed(spec):
            return ActualSet(kind, frozenset(spec.members), frozenset(spec.nomatch))
        members: set[str] = set()
        nomatch: set[str] = set()
        for data in datas:
            text, excluded = wire.entry_text(kind, data)
            (nomatch if excluded else members).add(text)
        return ActualSet(kind, frozenset(members), frozenset(nomatch))

    def _packed(self, spec: SetSpec) -> frozenset[bytes]:
        cached = self._dumps.get(spec.name)
        if cached is None or (cached[0] is not spec and cached[0] != spec):
            kind = spec.kind.value
            packed = frozenset([*(wire.dumped_entry(kind, m, False) for m in spec.members),
                                *(wire.dumped_entry(kind, m, True) for m in spec.nomatch)])
            cached = self._dumps[spec.name] = (spec, packed)
        return cached[1]

    def create(self, specs: Sequence[SetSpec], names: Sequence[str] | None = None) -> None:
        """Create and fill sets (under ``names`` when given), all in a few batched sends."""
        batch: list[tuple[bytes, str]] = []
        for spec, name in zip(specs, names or [s.name for s in specs], strict=True):
            self._seq += 1
            maxelem = max(65536, 2 * len(spec.members))
            kind = spec.kind.value
            create = wire.create_message(self._protocol, name, kind, self._revision(kind), maxelem, self._seq,
                                         self.family)
            batch.append((create, f"create {name}"))
            data = [wire.entry_data(kind, m, nomatch=False) for m in spec.members]
            data += [wire.entry_data(kind, m, nomatch=True) for m in spec.nomatch]
            adds = wire.add_messages(self._protocol, name, data, self._seq + 1)
            self._seq += len(adds)
            batch += [(msg, f"add to {name}") for msg in adds]
        self._send_all(batch)

    def replace(self, specs: Sequence[SetSpec]) -> None:
        temps = [naming.temp_set_name(s.name) for s in specs]
        self.destroy_quietly(temps)
        self.create(specs, temps)
        for spec, temp in zip(specs, temps, strict=True):
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

    def _revision(self, kind: str) -> int:
        if kind not in self._revisions:
            self._revisions[kind] = int(self._ipset.get_supported_revisions(kind)[1])
        return self._revisions[kind]

    def _send_all(self, batch: list[tuple[bytes, str]]) -> None:
        """Send messages in chunks, then read one ack per message; the first error is raised."""
        what = {wire.messages(msg).__next__()[1]: label for msg, label in batch}
        errors: list[str] = []
        start = 0
        while start < len(batch):
            end, size = start, 0
            while end < len(batch) and (end == start or size + len(batch[end][0]) <= _SEND_CHUNK):
                size += len(batch[end][0])
                end += 1
            self._sock.send(b"".join(msg for msg, _ in batch[start:end]))
            errors += self._acks(end - start, what)
            start = end
        if errors:
            raise IpsetError("; ".join(errors))

    def _acks(self, count: int, what: dict[int, str]) -> list[str]:
        errors = []
        while count > 0:
            for kind, seq, payload in wire.messages(self._sock.recv(1 << 20)):
                if kind != wire.NLMSG_ERROR:
                    continue
                count -= 1
                code = wire.error_code(payload)
                if code:
                    errors.append(f"ipset {what.get(seq, '?')}: {errno.errorcode.get(code, code)}")
        return errors
