"""ClusterNetworkPolicy ``protocols`` (network-policy-api v0.2.0): validated into ports per protocol.

``protocols(raw, path, errors)`` returns protocol -> (port ranges, port names) for one rule, or
``{}`` for "any protocol and port"; ``clusternetworkpolicy`` turns each entry into one IR rule.
Entries are ORed. ``destinationNamedPort`` matches a container port of that name whatever its
protocol, so its name joins the TCP, UDP and SCTP entries. Pure; errors name the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from picket.model import PortRange, Protocol
from picket_operator.compiler.selectors import FieldError

PROTOCOL_FIELDS = {"tcp": Protocol.TCP, "udp": Protocol.UDP, "sctp": Protocol.SCTP}
MAX_ITEMS = 25  # from/to, protocols, networks: "+kubebuilder:validation:MaxItems=25"
# IANA_SVC_NAME (a container port's name): 1-15 lowercase letters, digits and '-', at least one
# letter, no leading, trailing or doubled '-'.
_PORT_NAME = re.compile(r"^(?!-)(?!.*--)(?=.*[a-z])[a-z0-9-]{1,15}(?<!-)$")

PortsByProtocol = dict[Protocol | None, tuple[tuple[PortRange, ...], tuple[str, ...]]]


def protocols(raw: Any, path: str, errors: list[FieldError]) -> PortsByProtocol:
    """Protocol -> (port ranges, port names); empty: any protocol and port. Entries are ORed."""
    if raw is None:
        return {}
    if not isinstance(raw, list) or not raw or len(raw) > MAX_ITEMS:
        errors.append(FieldError(path, f"must be a list of 1 to {MAX_ITEMS} protocols"))
        return {}
    ranges: dict[Protocol, set[PortRange]] = {}
    every: set[Protocol] = set()
    names: set[str] = set()
    for i, entry in enumerate(raw):
        where = f"{path}[{i}]"
        # "ClusterNetworkPolicyProtocol describes additional protocol-specific match rules. Exactly
        # one field must be set."
        if not isinstance(entry, Mapping) or len(entry) != 1:
            errors.append(FieldError(where, "exactly one of tcp, udp, sctp, destinationNamedPort must be set"))
            continue
        ((key, value),) = entry.items()
        if key == "destinationNamedPort":
            # "DestinationNamedPort selects a destination port on a pod based on the ContainerPort
            # name." Any protocol: the container port's own.
            if not isinstance(value, str) or not _PORT_NAME.match(value):
                errors.append(FieldError(f"{where}.destinationNamedPort", f"{value!r} is not a valid port name"))
            else:
                names.add(value)
        elif key in PROTOCOL_FIELDS:
            protocol = PROTOCOL_FIELDS[key]
            port = _destination_port(value, f"{where}.{key}", errors)
            if port == "any":
                every.add(protocol)
            elif isinstance(port, PortRange):
                ranges.setdefault(protocol, set()).add(port)
        else:
            errors.append(FieldError(f"{where}.{key}", "unknown field (expected tcp, udp, sctp, destinationNamedPort)"))
    out: PortsByProtocol = {}
    for protocol in (Protocol.TCP, Protocol.UDP, Protocol.SCTP):
        if protocol in every:
            out[protocol] = ((), ())  # every port of the protocol
        elif protocol in ranges or names:
            out[protocol] = (tuple(sorted(ranges.get(protocol, ()))), tuple(sorted(names)))
    return out


def _destination_port(raw: Any, path: str, errors: list[FieldError]) -> PortRange | str | None:
    """A ``PortRange``, ``"any"`` (no destinationPort: "all ports for the specified protocol
    match"), or None after an error."""
    if not isinstance(raw, Mapping):
        errors.append(FieldError(path, "must be an object with destinationPort"))
        return None
    unknown = sorted(set(raw) - {"destinationPort"})
    if unknown:
        errors.append(FieldError(f"{path}.{unknown[0]}", "unknown field (expected destinationPort)"))
        return None
    if raw.get("destinationPort") is None:
        # The types say MinProperties=1 here, yet the API overview: "If DestinationPort is omitted,
        # all ports for the specified protocol match." picket follows the overview.
        return "any"
    port, where = raw["destinationPort"], f"{path}.destinationPort"
    # "Port matches on port number. You must specify either Port or Range."
    if not isinstance(port, Mapping) or len(port) != 1 or next(iter(port)) not in ("number", "range"):
        errors.append(FieldError(where, "exactly one of number, range must be set"))
        return None
    if "number" in port:
        if not _is_port(port["number"]):
            errors.append(FieldError(f"{where}.number", f"{port['number']!r} is not a port number (1-65535)"))
            return None
        return PortRange(port["number"], port["number"])
    rng = port["range"]
    start, end = (rng.get("start"), rng.get("end")) if isinstance(rng, Mapping) else (None, None)
    if not isinstance(start, int) or not isinstance(end, int) or not _is_port(start) or not _is_port(end):
        errors.append(FieldError(f"{where}.range", "start and end must be port numbers (1-65535)"))
        return None
    # "Start port must be less than End port" (the CRD's validation rule: self.start < self.end)
    if not start < end:
        errors.append(FieldError(f"{where}.range", f"start {start} must be less than end {end}"))
        return None
    return PortRange(start, end)


def _is_port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535
