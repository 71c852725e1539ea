"""The pod network picket can provide where no CNI does (kind with ``disableDefaultCNI: true``): pure parts.

A kind node needs two things from a CNI: a configuration in /etc/cni/net.d that gives each pod a
veth and an address from the node's podCIDR (here: the reference ``ptp`` plugin with ``host-local``
IPAM, and ``portmap`` for hostPorts), and routes to the other nodes' podCIDRs via those nodes'
InternalIPs (they share one L2 network). ``conflist`` and ``desired_routes`` compute both from Node
objects; ``podnetfeed.py`` polls the Nodes, writes the file and has ``kernel/podroutes.py`` make the
routes match. With ``--pod-network auto`` (the manifests' setting) nothing is written on a node that
already has another CNI's configuration, so picket never competes with a real CNI.

Dual stack (kind's ``ipFamily: dual``, ``manifests/kind/kind-config-dual.yaml``): a node then has
one podCIDR and one InternalIP per family. Each podCIDR becomes a host-local range set of its own,
so every pod gets one address of each family, with a default route per family present; another
node's podCIDR of a family is routed via that node's InternalIP of the SAME family (an IPv6 prefix
cannot go via an IPv4 next hop), and not at all while the node has no InternalIP of that family.
A single-stack IPv4 node gives exactly what it gave before dual stack existed. Pods of another node
are only reachable when the node forwards that family (``FORWARDING``). picket sets neither sysctl:
kind v0.33 runs its node containers with ``--sysctl=net.ipv6.conf.all.forwarding=1`` when the
cluster has IPv6 (``providers/docker/provision.go``), and the entrypoint of picket's kind node
image sets ``net.ipv4.ip_forward=1``. The agent warns about a family that is not forwarded
(``forwarding_sysctls``, ``podnetfeed.unforwarded``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

CONF_NAME = "10-picket.conflist"
NETWORK_NAME = "picket"
CNI_VERSION = "0.4.0"
FORWARDING = {4: "net.ipv4.ip_forward", 6: "net.ipv6.conf.all.forwarding"}  # IP version -> sysctl


def pod_cidrs(node: Mapping[str, Any]) -> list[str]:
    """The node's podCIDRs of both families, in ``spec.podCIDRs`` order (else the legacy ``spec.podCIDR``)."""
    spec = node.get("spec") or {}
    cidrs = list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))
    return [c for c in cidrs if _version(c) in (4, 6)]


def internal_ip(node: Mapping[str, Any], version: int = 4) -> str | None:
    """The node's first InternalIP of that IP version (in canonical form), or None."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if addr.get("type") != "InternalIP":
            continue
        try:
            ip = ipaddress.ip_address(addr.get("address", ""))
        except ValueError:
            continue
        if ip.version == version:
            return str(ip)
    return None


def conflist(cidrs: list[str]) -> dict[str, Any]:
    """ptp veths with an address from each of this node's podCIDRs (one range set per CIDR, so one address per
    family) and a default route per family present; the node routes each pod's /32 and /128 to its veth."""
    defaults = {4: "0.0.0.0/0", 6: "::/0"}
    families = list(dict.fromkeys(_version(c) for c in cidrs))
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
                    "routes": [{"dst": defaults[f]} for f in families] or [{"dst": defaults[4]}],
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def forwarding_sysctls(cidrs: list[str]) -> list[str]:
    """The forwarding sysctls the node needs set to 1 for pods of these podCIDRs' families."""
    return [FORWARDING[v] for v in sorted({_version(c) for c in cidrs}) if v in FORWARDING]


def desired_routes(nodes: Iterable[Mapping[str, Any]], self_name: str) -> dict[str, str]:
    """Every other node's podCIDR -> that node's InternalIP of the same family (none while it has no such IP)."""
    routes: dict[str, str] = {}
    for node in nodes:
        if (node.get("metadata") or {}).get("name") == self_name:
            continue
        for cidr in pod_cidrs(node):
            network = ipaddress.ip_network(cidr, strict=False)
            gateway = internal_ip(node, network.version)
            if gateway is not None:
                routes[str(network)] = gateway
    return routes


def _version(cidr: str) -> int:
    try:
        return ipaddress.ip_network(cidr, strict=False).version
    except ValueError:
        return 0


def foreign_configs(names: Iterable[str]) -> list[str]:
    """Other CNI configurations in the directory (what containerd would pick instead of, or before, ours)."""
    return sorted(n for n in names if n != CONF_NAME and n.endswith((".conf", ".conflist", ".json")))
