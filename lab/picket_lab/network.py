"""The lab network: the ``pkt-lab`` bridge namespace, node namespaces, the one root link.

``create_lab_network`` makes ``pkt-lab`` with bridge ``pkt-br0`` and the root link ``pkt-root``
(172.30.0.1/24, the API server's address; its peer is on the bridge). ``create_node`` makes a
node namespace whose ``eth0`` is on the bridge, enables forwarding inside it (a per-namespace
sysctl) and routes every other node's pod CIDR via that node. Nothing else in the root namespace
is touched: no firewall, no sysctl, no route beyond the link's own connected one.
``remove_all`` deletes every lab namespace and the root link, also after a crash.
Called by ``controlplane.up``/``down``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from picket_lab.shell import LabError, ip, ip_batch, sysctl_in
from picket_lab.topology import (
    API_ADDRESS,
    BRIDGE,
    LAB_NETNS,
    LAB_NETWORK,
    PODS_SUPERNET,
    ROOT_LINK,
    ROOT_PEER,
    NodeSpec,
    is_lab_netns,
    overlaps_lab,
)

NETNS_DIR = Path("/run/netns")


def lab_namespaces() -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if is_lab_netns(n))


def root_link_exists() -> bool:
    return ip("link", "show", "dev", ROOT_LINK, check=False).returncode == 0


def check_root_namespace_free() -> None:
    """Refuse to start if the machine already uses the lab network's addresses (ours excepted)."""
    routes = json.loads(ip("-j", "-4", "route", "show", "table", "all").stdout or "[]")
    for route in routes:
        dst = route.get("dst", "")
        if dst and dst != "default" and route.get("dev") != ROOT_LINK and _overlaps(dst):
            raise LabError(f"the lab network {LAB_NETWORK} overlaps the route '{dst} dev {route.get('dev')}' "
                           "on this machine; remove it or change picket_lab.topology.LAB_NETWORK")


def _overlaps(dst: str) -> bool:
    try:
        return overlaps_lab(dst)
    except ValueError:
        return False


def create_lab_network() -> None:
    ip("netns", "add", LAB_NETNS)
    ip_batch(["link set lo up", f"link add {BRIDGE} type bridge", f"link set {BRIDGE} up"], netns=LAB_NETNS)
    ip("link", "add", ROOT_LINK, "type", "veth", "peer", "name", ROOT_PEER, "netns", LAB_NETNS)
    ip_batch([f"link set {ROOT_PEER} master {BRIDGE}", f"link set {ROOT_PEER} up"], netns=LAB_NETNS)
    ip_batch([f"addr add {API_ADDRESS}/{LAB_NETWORK.prefixlen} dev {ROOT_LINK}", f"link set {ROOT_LINK} up"])


def create_node(node: NodeSpec, all_nodes: list[NodeSpec]) -> None:
    ip("netns", "add", node.netns)
    ip("link", "add", node.lab_link, "type", "veth", "peer", "name", "eth0", "netns", node.netns, netns=LAB_NETNS)
    ip_batch([f"link set {node.lab_link} master {BRIDGE}", f"link set {node.lab_link} up"], netns=LAB_NETNS)
    commands = ["link set lo up", f"addr add {node.ip}/{LAB_NETWORK.prefixlen} dev eth0", "link set eth0 up"]
    commands += [f"route add {other.pod_cidr} via {other.ip} dev eth0" for other in all_nodes if other != node]
    # The root namespace has no route back to pod IPs (its replies would leave the machine by its
    # default route), so pod-sourced packets to the root link are refused here, inside the node.
    commands.append(f"rule add from {PODS_SUPERNET} to {API_ADDRESS}/32 prohibit")
    ip_batch(commands, netns=node.netns)
    sysctl_in(node.netns, "net.ipv4.ip_forward", "1")


def remove_all() -> list[str]:
    """Delete every lab namespace (pods, nodes, the lab bridge) and the root link; returns what was removed."""
    removed = []
    order = sorted(lab_namespaces(), key=lambda n: (n == LAB_NETNS, n.startswith("pkt-node-"), n))
    for name in order:
        if ip("netns", "del", name, check=False).returncode == 0:
            removed.append(f"netns {name}")
    deadline = time.monotonic() + 30
    while root_link_exists():
        # Deleting pkt-lab destroys the link's peer, and the link with it, asynchronously (later on a
        # loaded machine, with many links on the bridge): it can vanish between the check and the
        # delete ("Cannot find device"). Deleted here or gone by itself, either way it is gone.
        if ip("link", "del", ROOT_LINK, check=False).returncode == 0:
            removed.append(f"link {ROOT_LINK}")
            break
        if time.monotonic() > deadline:
            ip("link", "del", ROOT_LINK)  # raises, with ip's message
        time.sleep(0.2)
    return removed
