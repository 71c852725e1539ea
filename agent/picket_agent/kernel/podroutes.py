"""Routes to the other nodes' podCIDRs, marked as picket's by their protocol number, made to match.

``sync(desired)`` replaces every desired route (``dst via gateway``, protocol ``PROTO``) and deletes
routes carrying ``PROTO`` that are no longer desired; routes of anyone else are never touched.
Called by ``podnetfeed.py`` in the node's network namespace (the agent runs with hostNetwork).
"""

from __future__ import annotations

import contextlib
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

PROTO = 91  # an rtnetlink protocol number no routing daemon uses (FRR takes 186-192); `ip route` shows "proto 91"


def sync(desired: dict[str, str]) -> tuple[int, int]:
    """Make picket's routes equal ``desired`` (podCIDR -> gateway); returns (replaced, removed)."""
    removed = 0
    with IPRoute() as ipr:
        for route in ipr.get_routes(family=2, proto=PROTO):
            dst = f"{_attr(route, 'RTA_DST')}/{route['dst_len']}"
            if desired.get(dst) != _attr(route, "RTA_GATEWAY"):
                with contextlib.suppress(NetlinkError):
                    ipr.route("del", dst=dst, proto=PROTO)
                    removed += 1
        for dst, gateway in sorted(desired.items()):
            ipr.route("replace", dst=dst, gateway=gateway, proto=PROTO)
    return len(desired), removed


def _attr(route: Any, name: str) -> str | None:
    value = route.get_attr(name)
    return None if value is None else str(value)
