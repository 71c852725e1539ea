"""Failsafe ports: the one home of the setting both halves read, and of its defaults.

Like Calico's Felix (failsafeInboundHostPorts / failsafeOutboundHostPorts), some traffic to and
from host endpoints is always allowed, so that no policy can lock the administrator out (SSH, the
API server, etcd, BGP, DHCP, DNS). The operator frames every host rule set with a first tier named
``FAILSAFE_TIER`` holding these ports (``calico.hosts.failsafe_tier``); the agent accepts its own
list before any host policy and reports when the two differ. Both read flags
``--failsafe-inbound`` / ``--failsafe-outbound``, else ``FAILSAFE_ENV_IN`` / ``FAILSAFE_ENV_OUT``
(manifests/ sets both from one ConfigMap). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from picket.model import Direction, Protocol

FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT = "PICKET_FAILSAFE_INBOUND", "PICKET_FAILSAFE_OUTBOUND"
FAILSAFE_TIER = "failsafe"  # the name of the tier the compiler puts first in host rule sets

_TCP_FAILSAFE = (179, 2379, 2380, 5473, 6443, 6666, 6667)


@dataclass(frozen=True)
class Failsafe:
    """Failsafe (protocol, port) pairs, like Felix's failsafeInboundHostPorts/OutboundHostPorts."""

    inbound: tuple[tuple[Protocol, int], ...] = (
        (Protocol.TCP, 22), *((Protocol.TCP, p) for p in _TCP_FAILSAFE), (Protocol.UDP, 68))
    outbound: tuple[tuple[Protocol, int], ...] = (
        (Protocol.UDP, 53), (Protocol.UDP, 67), *((Protocol.TCP, p) for p in _TCP_FAILSAFE))

    def ports(self, direction: Direction) -> tuple[tuple[Protocol, int], ...]:
        return self.inbound if direction is Direction.INGRESS else self.outbound


def parse_failsafe(inbound: str | None = None, outbound: str | None = None) -> Failsafe:
    """``Failsafe`` from Felix-style lists ``"tcp:22,udp:68"`` (None: Calico's default; "": none).

    Raises ``ValueError`` naming the bad entry, for settings validation.
    """
    default = Failsafe()
    return Failsafe(
        default.inbound if inbound is None else _failsafe_ports(inbound),
        default.outbound if outbound is None else _failsafe_ports(outbound),
    )


def _failsafe_ports(text: str) -> tuple[tuple[Protocol, int], ...]:
    out: list[tuple[Protocol, int]] = []
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        proto, _, port = entry.rpartition(":")
        try:
            number = int(port)
            protocol = Protocol((proto or "tcp").upper())
        except ValueError:
            raise ValueError(f"failsafe port {entry!r}: expected PROTOCOL:PORT like tcp:22") from None
        if protocol not in (Protocol.TCP, Protocol.UDP, Protocol.SCTP) or not 0 < number <= 65535:
            raise ValueError(f"failsafe port {entry!r}: expected tcp, udp or sctp and a port 1-65535")
        out.append((protocol, number))
    return tuple(out)


def as_text(ports: tuple[tuple[Protocol, int], ...]) -> tuple[str, ...]:
    """``(("TCP", 22), ...)`` as the agent's ``"tcp:22"`` strings, in order."""
    return tuple(f"{proto.value.lower()}:{port}" for proto, port in ports)


DEFAULT_INBOUND = as_text(Failsafe().inbound)  # Calico's defaults, as "proto:port"
DEFAULT_OUTBOUND = as_text(Failsafe().outbound)
