"""The lab's addressing plan and names, as pure functions (no I/O).

A lab network namespace ``pkt-lab`` holds a bridge; each node is a namespace ``pkt-node-<i>``
whose ``eth0`` sits on that bridge at 172.30.0.(10+i) with pod CIDR 10.244.<i>.0/24. The root
namespace gets exactly one link, ``pkt-root`` at 172.30.0.1, where the API server listens.
Pods live in namespaces ``pkt-pod-<hash>`` named from namespace/name/uid. Every lab-owned
network namespace matches ``is_lab_netns`` so teardown can find leftovers of a crashed run
without touching other ``pkt-`` namespaces on the machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

LAB_NETNS = "pkt-lab"
BRIDGE = "pkt-br0"
ROOT_LINK = "pkt-root"
ROOT_PEER = "pkt-up"
LAB_NETWORK = ipaddress.ip_network("172.30.0.0/24")
API_ADDRESS = "172.30.0.1"
API_PORT = 6443
ETCD_CLIENT_PORT = 2379
ETCD_PEER_PORT = 2380
CONTROLLER_MANAGER_PORT = 10257
SCHEDULER_PORT = 10259
PODS_SUPERNET = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
FIRST_SERVICE_IP = "10.96.0.1"
POD_GATEWAY = "169.254.1.1"
HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"
MAX_NODES = 50
_LAB_NETNS_RE = re.compile(r"^(pkt-lab|pkt-node-\d+|pkt-pod-[0-9a-f]{10})$")


@dataclass(frozen=True)
class NodeSpec:
    name: str
    index: int
    ip: str
    pod_cidr: str

    @property
    def netns(self) -> str:
        return self.name

    @property
    def lab_link(self) -> str:
        """The node's veth end on the lab bridge (inside ``pkt-lab``)."""
        return f"pkt-n{self.index}"


def node_spec(index: int) -> NodeSpec:
    if not 1 <= index <= MAX_NODES:
        raise ValueError(f"node index {index} out of range 1..{MAX_NODES}")
    return NodeSpec(f"pkt-node-{index}", index, str(LAB_NETWORK[10 + index]), f"10.244.{index}.0/24")


def node_specs(count: int) -> list[NodeSpec]:
    return [node_spec(i) for i in range(1, count + 1)]


def api_url() -> str:
    return f"https://{API_ADDRESS}:{API_PORT}"


def pod_netns(namespace: str, name: str, uid: str) -> str:
    digest = hashlib.sha256(f"{namespace}/{name}/{uid}".encode()).hexdigest()
    return f"pkt-pod-{digest[:10]}"


def host_veth(netns: str) -> str:
    """The node-side end of a pod's veth: ``pkt`` + the pod netns hash (13 of 15 allowed characters)."""
    return "pkt" + netns.removeprefix("pkt-pod-")


def is_lab_netns(name: str) -> bool:
    return bool(_LAB_NETNS_RE.match(name))


def pod_addresses(pod_cidr: str) -> list[str]:
    """Assignable pod IPs of a node: the CIDR's hosts except the first (kept as the node's own)."""
    return [str(ip) for ip in list(ipaddress.ip_network(pod_cidr).hosts())[1:]]


def overlaps_lab(cidr: str) -> bool:
    net = ipaddress.ip_network(cidr, strict=False)
    return net.version == 4 and net.overlaps(LAB_NETWORK) and net.prefixlen > 0
