"""The drop log: reads the NFLOG group the drop chains log to and prints readable lines.

    DROP x/b -> x/a tcp/80 ingress: no policy of tier k8s allows it
    WOULD DROP x/b -> x/a tcp/80 ingress: no policy of tier k8s allows it (staged: NetworkPolicy x/deny)

With ``--log-drops`` every ``PICKET-DROP-*`` chain starts with ``-j NFLOG --nflog-prefix
picket:<id> --nflog-group G``. This module binds a raw ``NETLINK_NETFILTER`` socket to group G
(nfnetlink_log: ``NFULNL_CFG_CMD_BIND`` then copy-packet mode), and for every packet maps the
prefix's id back to the endpoint, direction and reason (``Desired.drops`` of the last sync;
audit mode's would-be drops, which always NFLOG, too) and the addresses back to endpoint keys.
Runs in its own thread in the agent's network namespace (always: audit lines need no flag).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import struct
import sys
import threading
from typing import Any, TextIO

log = logging.getLogger("picket.agent.drops")

NETLINK_NETFILTER = 12
NFNL_SUBSYS_ULOG = 4
NFULNL_MSG_PACKET, NFULNL_MSG_CONFIG = 0, 1
NFULA_CFG_CMD, NFULA_CFG_MODE = 1, 2
NFULNL_CFG_CMD_BIND = 1
NFULNL_COPY_PACKET = 2
NFULA_PAYLOAD, NFULA_PREFIX = 9, 10
NLM_F_REQUEST, NLM_F_ACK = 1, 4
PROTOS = {6: "tcp", 17: "udp", 132: "sctp", 1: "icmp", 58: "ipv6-icmp"}


def _attr(kind: int, payload: bytes) -> bytes:
    data = struct.pack("=HH", 4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _config(group: int, attrs: bytes, seq: int) -> bytes:
    body = struct.pack("=BBH", socket.AF_UNSPEC, 0, socket.htons(group)) + attrs
    msg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG
    return struct.pack("=IHHII", 16 + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK, seq, 0) + body


def parse_packet(message: bytes) -> tuple[str, bytes]:
    """(prefix, payload) of one NFULNL_MSG_PACKET message body (after the nlmsghdr)."""
    prefix, payload = "", b""
    offset = 4  # nfgenmsg
    while offset + 4 <= len(message):
        length, kind = struct.unpack_from("=HH", message, offset)
        if length < 4:
            break
        value = message[offset + 4 : offset + length]
        kind &= 0x7FFF
        if kind == NFULA_PREFIX:
            prefix = value.rstrip(b"\0").decode(errors="replace")
        elif kind == NFULA_PAYLOAD:
            payload = value
        offset += (length + 3) & ~3
    return prefix, payload


def describe_ipv4(payload: bytes) -> tuple[str, str, str]:
    """(source, destination, "proto/port") from an IPv4 or IPv6 packet (the name is historic)."""
    if len(payload) >= 40 and payload[0] >> 4 == 6:
        # IPv6: fixed 40-byte header; the next header is taken as the transport (extension
        # headers are not walked: such a packet shows its next-header number).
        proto, ihl = payload[6], 40
        src = str(ipaddress.IPv6Address(payload[8:24]))
        dst = str(ipaddress.IPv6Address(payload[24:40]))
    elif len(payload) >= 20 and payload[0] >> 4 == 4:
        ihl = (payload[0] & 0x0F) * 4
        proto = payload[9]
        src = str(ipaddress.IPv4Address(payload[12:16]))
        dst = str(ipaddress.IPv4Address(payload[16:20]))
    else:
        return "?", "?", "?"
    name = PROTOS.get(proto, str(proto))
    if proto in (6, 17, 132) and len(payload) >= ihl + 4:
        return src, dst, f"{name}/{struct.unpack_from('!H', payload, ihl + 2)[0]}"
    return src, dst, name


class DropLog:
    def __init__(self, settings: Any, loop: Any, out: TextIO = sys.stdout) -> None:
        self.group = settings.render.nflog_group
        self.loop = loop
        self.out = out

    def open(self) -> socket.socket:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        sock.bind((0, 0))
        sock.settimeout(0.5)
        sock.send(_config(self.group, _attr(NFULA_CFG_CMD, bytes([NFULNL_CFG_CMD_BIND])), 1))
        sock.send(_config(self.group, _attr(NFULA_CFG_MODE, struct.pack("!IBB", 256, NFULNL_COPY_PACKET, 0)), 2))
        return sock

    def run(self, stop: threading.Event) -> None:
        try:
            sock = self.open()
        except OSError as exc:
            log.error("drop log unavailable: cannot bind NFLOG group %d: %s", self.group, exc)
            return
        with sock:
            while not stop.is_set():
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                for line in self.lines(data):
                    print(line, file=self.out, flush=True)

    def lines(self, data: bytes) -> list[str]:
        out = []
        offset = 0
        while offset + 16 <= len(data):
            length, msg_type = struct.unpack_from("=IH", data, offset)
            if length < 16:
                break
            if msg_type == (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET:
                prefix, payload = parse_packet(data[offset + 16 : offset + length])
                out.append(self.describe(prefix, payload))
            offset += (length + 3) & ~3
        return out

    def describe(self, prefix: str, payload: bytes) -> str:
        src, dst, what = describe_ipv4(payload)
        names = self._names()
        src, dst = names.get(src, src), names.get(dst, dst)
        parts = prefix.split(":")
        desired = getattr(self.loop, "last_desired", None)
        drops = desired.all_drops() if desired is not None else {}
        if len(parts) == 2 and parts[1] in drops:
            drop = drops[parts[1]]
            if drop.audit:  # audit mode: a staged policy would have dropped it; it was not dropped
                return f"WOULD DROP {src} -> {dst} {what} {drop.direction.value.lower()}: {drop.reason}"
            return f"DROP {src} -> {dst} {what} {drop.direction.value.lower()}: {drop.reason}"
        if len(parts) == 3 and parts[1] == "log":
            return f"LOG {src} -> {dst} {what} (log rule {parts[2]})"
        return f"DROP {src} -> {dst} {what} ({prefix})"

    def _names(self) -> dict[str, str]:
        good = getattr(self.loop, "last_good", None)
        if good is None:
            return {}
        return {ip: key for key, er in good.endpoints.items() for ip in er.endpoint.ips}
