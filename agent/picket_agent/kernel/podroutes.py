"""Routes to the other nodes' podCIDRs, marked as picket's by their protocol number, made to match.

``sync(desired)`` replaces every desired route (``dst via gateway``, protocol ``PROTO``) and deletes
routes carrying ``PROTO`` that are no longer desired; routes of anyone else are never touched.
Both families (AF_INET 2 and AF_INET6 10): an IPv6 podCIDR goes via an IPv6 gateway (the other
node's global InternalIP on the shared link; the kernel resolves it by neighbour discovery). The
family of each request is given explicitly, from the destination. Addresses are compared in
canonical form (``ipaddress``; the kernel reports IPv6 compressed, as ``str(IPv6Address)`` does).
Called by ``podnetfeed.py`` in the node's network namespace (the agent runs with hostNetwork).
"""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

PROTO = 91  # an rtnetlink protocol number no routing daemon uses (FRR takes 186-192); `ip route` shows "proto 91"
FAMILIES = {4: 2, 6: 10}  # IP version -> AF_INET, AF_INET6


def sync(desired: dict[str, str]) -> tuple[int, int]:
    """Make picket's routes equal ``desired`` (podCIDR -> gateway, either family); returns (replaced, removed)."""
    wanted = {str(ipaddress.ip_network(dst, strict=False)): str(ipaddress.ip_address(gateway))
              for dst, gateway in desired.items()}
    removed = 0
    with IPRoute() as ipr:
        for family in FAMILIES.values():
            for route in ipr.get_routes(family=family, proto=PROTO):
                dst = f"{_attr(route, 'RTA_DST')}/{route['dst_len']}"
                if wanted.get(dst) != _attr(route, "RTA_GATEWAY"):
                    with contextlib.suppress(NetlinkError):
                        ipr.route("del", family=family, dst=dst, proto=PROTO)
                        removed += 1
        for dst, gateway in sorted(wanted.items()):
            family = FAMILIES[ipaddress.ip_network(dst).version]
            ipr.route("replace", family=family, dst=dst, gateway=gateway, proto=PROTO)
    return len(wanted), removed


def _attr(route: Any, name: str) -> str | None:
    value = route.get_attr(name)
    return None if value is None else str(value)
