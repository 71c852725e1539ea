"""The pod network picket can provide where no CNI does (kind with ``disableDefaultCNI: true``): pure parts.

A kind node needs two things from a CNI: a configuration in /etc/cni/net.d that gives each pod a
veth and an address from the node's podCIDR (here: the reference ``ptp`` plugin with ``host-local``
IPAM, and ``portmap`` for hostPorts), and routes to the other nodes' podCIDRs via those nodes'
InternalIPs (they share one L2 network). ``conflist`` and ``desired_routes`` compute both from Node
objects; ``podnetfeed.py`` polls the Nodes, writes the file and has ``kernel/podroutes.py`` make the
routes match. With ``--pod-network auto`` (the manifests' setting) nothing is written on a node that
already has another CNI's configuration, so picket never competes with a real CNI.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

CONF_NAME = "10-picket.conflist"
NETWORK_NAME = "picket"
CNI_VERSION = "0.4.0"


def pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    return [c for c in cidrs if ipaddress.ip_network(c, strict=False).version == 4]


def internal_ip(node: Mapping[str, Any]) -> str | None:
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") == "InternalIP" and ipaddress.ip_address(addr.get("address", "0.0.0.0")).version == 4:
            return str(addr["address"])
    return None


def conflist(cidrs: list[str]) -> dict[str, Any]:
    """ptp veths with addresses from this node's podCIDR(s); the node routes each pod's /32 to its veth."""
    return {
        "cniVersion": CNI_VERSION,
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "ptp",
                "ipMasq": False,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": c}] for c in cidrs],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def desired_routes(nodes: Iterable[Mapping[str, Any]], self_name: str) -> dict[str, str]:
    """Every other node's podCIDR -> that node's InternalIP."""
    routes: dict[str, str] = {}
    for node in nodes:
        if (node.get("metadata") or {}).get("name") == self_name:
            continue
        gateway = internal_ip(node)
        if gateway is None:
            continue
        for cidr in pod_cidrs(node):
            routes[str(ipaddress.ip_network(cidr, strict=False))] = gateway
    return routes


def foreign_configs(names: Iterable[str]) -> list[str]:
    """Other CNI configurations in the directory (what containerd would pick instead of, or before, ours)."""
    return sorted(n for n in names if n != CONF_NAME and n.endswith((".conf", ".conflist", ".json")))
