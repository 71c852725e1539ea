"""A pod's network, as a CNI plugin would make it (kindnet/Calico-style point-to-point veth).

The pod gets its own namespace ``pkt-pod-<hash>``; a veth pair joins it to the node: the pod end
is ``eth0`` with the pod IP /32 and a default route via the link-local gateway 169.254.1.1, whose
neighbour entry is pinned to the node end's fixed MAC (so no proxy ARP is needed); the node end
``pkt<hash>`` gets the route ``<pod IP>/32``. Deleting the namespace deletes the veth and with it
the route. ``in_netns`` runs a block with the calling *thread* inside another namespace (setns
through libc, as ``os.setns`` needs Python 3.12), used to open listening sockets in pods.
Called by the node runtime (which runs inside the node's namespace).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

from picket_lab.network import NETNS_DIR
from picket_lab.shell import ip, ip_batch
from picket_lab.topology import HOST_VETH_MAC, POD_GATEWAY, host_veth

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def in_netns(netns: str | None) -> Iterator[None]:
    """Run the block with this thread in ``netns`` (``None``: stay where we are)."""
    if netns is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / netns, os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def create(netns: str, pod_ip: str) -> None:
    """Namespace, veth pair, addresses and routes for one pod (replacing a stale one of the same name)."""
    if (NETNS_DIR / netns).exists():
        delete(netns)
    veth = host_veth(netns)
    ip("netns", "add", netns)
    ip_batch([f"link add {veth} address {HOST_VETH_MAC} type veth peer name eth0 netns {netns}",
              f"link set {veth} up", f"route replace {pod_ip}/32 dev {veth} scope link"])
    ip_batch(["link set lo up", f"addr add {pod_ip}/32 dev eth0", "link set eth0 up",
              f"route add {POD_GATEWAY} dev eth0 scope link",
              f"route add default via {POD_GATEWAY} dev eth0",
              f"neigh replace {POD_GATEWAY} lladdr {HOST_VETH_MAC} dev eth0 nud permanent"], netns=netns)


def delete(netns: str) -> None:
    """Remove the pod's namespace (its veth and the node's route to it go with it)."""
    ip("netns", "del", netns, check=False)
