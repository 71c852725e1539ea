"""Nodes as the compiler sees them: labelled address sets, for ClusterNetworkPolicy ``nodes`` peers.

``node_view(obj)`` turns a core/v1 Node into a ``hostviews.NetworkSetView`` of kind ``Node``
(namespace "", its labels, every IP of ``status.addresses`` as a host-sized net). network-policy-api:
"Nodes ... selects the nodeIPs as the peer type by matching on the IPs present in the
node.Status.Addresses field of the node." A Node is not an endpoint (no rule sets): it is filed
with the network sets, and only selectors that pick nodes (``ir.selects_nodes``) add its
addresses to their peer sets (``planning.network_set_entries``); Calico selectors never see it.
Called by ``compiling`` and ``incremental``. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from picket.model import Problem
from picket_operator.compiler.hostviews import NetworkSetView, net_entry, object_name

NODE_KIND = "Node"


def node_view(obj: Mapping[str, Any]) -> tuple[NetworkSetView | None, tuple[Problem, ...]]:
    _, name = object_name(obj)
    if not name:
        return None, (Problem(NODE_KIND, "", "", "metadata.name", "missing name"),)
    meta = obj.get("metadata") or {}
    raw_labels = meta.get("labels") if isinstance(meta, Mapping) else None
    labels = {str(k): str(v) for k, v in raw_labels.items()} if isinstance(raw_labels, Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    nets: list[str] = []
    for entry in status.get("addresses") or []:
        text = entry.get("address") if isinstance(entry, Mapping) else None
        try:
            address = ipaddress.ip_address(str(text))
        except ValueError:
            continue  # Hostname / InternalDNS entries are not addresses
        nets.append(f"{address}/{address.max_prefixlen}")
    nets = sorted(set(nets))
    entries = tuple(dict.fromkeys(net_entry(n) for n in nets))
    return NetworkSetView(NODE_KIND, "", name, labels, tuple(nets), entries=entries), ()
