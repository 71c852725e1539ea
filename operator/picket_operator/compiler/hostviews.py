"""Calico HostEndpoints and (Global)NetworkSets as the compiler sees them.

* ``host_view(obj)``: a HostEndpoint (parsed by ``calico.hosts.parse_host_endpoint``) becomes a
  ``views.PodView`` of kind HOST: key ``host/<name>``, namespace "" and no namespace labels (how
  Calico selectors see non-namespaced resources), labels, ``expectedIPs``, node, interface and
  named ports. It is an endpoint like a pod: policies whose ``endpoint_kinds`` include HOST select
  it, and selectors that match it add its addresses to their peer sets. Its rule sets always
  exist (failsafe ports first, default deny last: ``planning.endpoint_rules``).
* ``network_set_view(obj)``: a GlobalNetworkSet / NetworkSet (``parse_network_set``) becomes a
  ``NetworkSetView``: labels and nets, joined with its namespace's labels like a pod (a
  GlobalNetworkSet has namespace ""). Only selectors that say ``matches_network_sets``
  (Calico's) ever match one; their peer set then carries the set's nets
  (``planning.network_set_entries``).

Called by ``compiling`` and ``incremental``. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from picket.model import EndpointKind, Problem, Protocol
from picket_operator.compiler.frontends.calico.hosts import parse_host_endpoint, parse_network_set
from picket_operator.compiler.views import NamedPort, NamespaceView, PodView

NETWORK_SET_KINDS = ("GlobalNetworkSet", "NetworkSet")


@dataclass(frozen=True)
class NetworkSetView:
    """A labelled list of CIDRs that rule selectors match like endpoints (it is not an endpoint)."""

    kind: str  # GlobalNetworkSet or NetworkSet
    namespace: str  # "" for a GlobalNetworkSet
    name: str
    labels: Mapping[str, str]
    nets: tuple[str, ...]
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    named_ports: tuple[NamedPort, ...] = ()  # never any: lets the indices treat it like an endpoint
    entries: tuple[str, ...] = ()  # ``nets`` as peer-set entries (``net_entry``), computed once

    @property
    def key(self) -> str:
        return network_set_key(self.kind, self.namespace, self.name)

    def joined(self, ns: NamespaceView) -> NetworkSetView:
        return replace(self, namespace_labels=ns.labels)

    def resolve(self, name: str, protocol: Protocol) -> int | None:
        return None


def net_entry(net: str) -> str:
    """A normalised CIDR as a peer-set entry: a host-sized net is the bare address (so it merges
    with an endpoint's address in the entry counts; ``planning.make_peer_set`` decides the kind)."""
    address, _, length = net.partition("/")
    return address if length == ("128" if ":" in address else "32") else net


def network_set_key(kind: str, namespace: str, name: str) -> str:
    return f"{kind}/{namespace}/{name}"


def object_name(obj: Mapping[str, Any]) -> tuple[str, str]:
    """(namespace, name) from raw metadata, whatever its shape ("" when missing)."""
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return "", ""
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def host_view(obj: Mapping[str, Any]) -> tuple[PodView | None, tuple[Problem, ...]]:
    host, problems = parse_host_endpoint(obj)
    if host is None:
        return None, problems
    ports = tuple(sorted({NamedPort(name, proto, number) for name, proto, number in host.ports}))
    ep = host.endpoint
    view = PodView(
        namespace="",
        name=ep.name,
        labels=dict(host.labels),
        ips=ep.ips,
        node=ep.node,
        named_ports=ports,
        kind=EndpointKind.HOST,
        interface=ep.interface,
        default_allow=host.default_allow,
    )
    return view, problems


def network_set_view(obj: Mapping[str, Any]) -> tuple[NetworkSetView | None, tuple[Problem, ...]]:
    """The set before joining its namespace (``joined`` adds the namespace's labels)."""
    kind = str(obj.get("kind", ""))
    parsed, problems = parse_network_set(obj)
    if parsed is None or kind not in NETWORK_SET_KINDS:
        return None, problems
    entries = tuple(dict.fromkeys(net_entry(n) for n in parsed.nets))
    view = NetworkSetView(kind, parsed.namespace, parsed.name, dict(parsed.labels), parsed.nets, entries=entries)
    return view, problems
