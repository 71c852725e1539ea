"""Denormalised views of Namespaces and Pods, built once at the edge from raw JSON.

The compiler never chases a Namespace object: a ``PodView`` (any endpoint) carries its namespace's labels and
the legacy isolation flag. ``parse_namespace`` and ``parse_pod`` validate raw objects and return a
view plus ``Problem``s; ``PodFacts.view(namespace_view)`` joins a pod with its namespace (redone
for every pod of a namespace when the namespace changes). Called by ``compiling`` (full compile)
and ``incremental`` (events).

Which pods are endpoints (policy targets and peer-set members) -- ``PodFacts.is_endpoint``:

* no IP yet (``status.podIP`` / ``podIPs`` empty): not yet; it becomes one when its IP is set;
* ``spec.hostNetwork: true``: never; it shares the node's address, and the API reference leaves
  host-network pods out of NetworkPolicy (kube-network-policies and Calico ignore them too); an
  ``ipBlock`` covering the node address still matches that traffic;
* ``status.phase`` Succeeded or Failed: no longer; the pod's IP is released and may be reused
  (as Calico and kube-network-policies drop completed pods);
* terminating (``metadata.deletionTimestamp`` set) but still running: still an endpoint, enforced
  until the pod is gone, because its containers keep serving during graceful shutdown.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from picket.model import Endpoint, EndpointKind, Problem, Protocol
from picket_operator.compiler.frontends.legacy import legacy_isolation

NAME_LABEL = "kubernetes.io/metadata.name"
PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)


@dataclass(frozen=True)
class NamespaceView:
    name: str
    labels: Mapping[str, str]
    legacy_ingress_isolation: bool = False  # net.beta.kubernetes.io/network-policy DefaultDeny


def default_namespace(name: str) -> NamespaceView:
    """A namespace known only by name: the API server always sets ``kubernetes.io/metadata.name``."""
    return NamespaceView(name, {NAME_LABEL: name})


@dataclass(frozen=True, order=True)
class NamedPort:
    name: str
    protocol: Protocol
    port: int


@dataclass(frozen=True)
class PodView:
    """An endpoint as the compiler sees it: everything needed, namespace included.

    Mostly pods; a Calico HostEndpoint is one too (``kind`` HOST, namespace "", no namespace
    labels, key ``host/<name>``; built by ``hostviews``), so indices, selection and peer sets treat
    both alike. ``default_allow``: a host endpoint with the ``projectcalico-default-allow`` profile.
    """

    namespace: str
    name: str
    labels: Mapping[str, str]
    ips: tuple[str, ...]
    node: str
    named_ports: tuple[NamedPort, ...]
    namespace_labels: Mapping[str, str] = field(default_factory=dict)
    legacy_ingress_isolation: bool = False
    kind: EndpointKind = EndpointKind.POD
    interface: str = ""
    default_allow: bool = False

    @property
    def key(self) -> str:
        return f"host/{self.name}" if self.kind is EndpointKind.HOST else f"{self.namespace}/{self.name}"

    def endpoint(self) -> Endpoint:
        return Endpoint(self.kind, self.namespace, self.name, self.node, self.ips, self.interface)

    def resolve(self, name: str, protocol: Protocol) -> int | None:
        """The (lowest) number of this pod's container port ``name`` with ``protocol`` (None: no such port)."""
        numbers = self.resolve_all(name, protocol)
        return numbers[0] if numbers else None

    def resolve_all(self, name: str, protocol: Protocol) -> tuple[int, ...]:
        """Every number this pod declares as container port ``name`` with ``protocol``: a name is
        unique within a container, but two containers may both declare it."""
        return tuple(p.port for p in self.named_ports if p.name == name and p.protocol is protocol)


@dataclass(frozen=True)
class PodFacts:
    """What a Pod object says, before joining its namespace."""

    view: PodView  # with empty namespace labels
    is_endpoint: bool

    def joined(self, ns: NamespaceView) -> PodView:
        return replace(self.view, namespace_labels=ns.labels, legacy_ingress_isolation=ns.legacy_ingress_isolation)


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, Mapping) else {}


def _string_map(raw: Any, where: str, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: must be a map of strings")
        return {}
    out = {}
    for k, v in raw.items():
        if isinstance(k, str) and isinstance(v, str):
            out[k] = v
        else:
            problems.append(f"{where}.{k}: {v!r} must be a string")
    return out


def parse_namespace(obj: Mapping[str, Any]) -> tuple[NamespaceView | None, tuple[Problem, ...]]:
    meta = _meta(obj)
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        return None, (Problem("Namespace", "", str(name or ""), "metadata.name", "missing or not a string"),)
    errors: list[str] = []
    labels = _string_map(meta.get("labels"), "metadata.labels", errors)
    labels[NAME_LABEL] = name  # set (and kept) by the API server
    problems = [Problem("Namespace", "", name, e.split(": ", 1)[0], e.split(": ", 1)[1]) for e in errors]
    isolation, problem = legacy_isolation(obj)  # seed 003's DefaultDeny annotation; malformed: ignored
    if problem is not None:
        problems.append(problem)
    return NamespaceView(name, labels, isolation), tuple(problems)


def parse_pod(obj: Mapping[str, Any]) -> tuple[PodFacts | None, tuple[Problem, ...]]:
    meta = _meta(obj)
    name, namespace = meta.get("name"), meta.get("namespace", "default")
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not namespace:
        return None, (Problem("Pod", str(namespace or ""), str(name or ""), "metadata", "missing name or namespace"),)
    errors: list[str] = []
    labels = _string_map(meta.get("labels"), "metadata.labels", errors)
    spec = obj.get("spec") if isinstance(obj.get("spec"), Mapping) else {}
    status = obj.get("status") if isinstance(obj.get("status"), Mapping) else {}
    assert isinstance(spec, Mapping) and isinstance(status, Mapping)
    ips = _pod_ips(status, errors)
    ports = _named_ports(spec, errors)
    node = spec.get("nodeName") if isinstance(spec.get("nodeName"), str) else ""
    problems = tuple(Problem("Pod", namespace, name, e.split(": ", 1)[0], e.split(": ", 1)[1]) for e in errors)
    view = PodView(namespace, name, labels, ips, str(node), ports)
    finished = status.get("phase") in ("Succeeded", "Failed")
    is_endpoint = bool(ips) and not spec.get("hostNetwork") and not finished
    return PodFacts(view, is_endpoint), problems


def _pod_ips(status: Mapping[str, Any], errors: list[str]) -> tuple[str, ...]:
    found: list[str] = []
    raw_ips = status.get("podIPs")
    if isinstance(raw_ips, list):
        found += [str(entry.get("ip")) for entry in raw_ips if isinstance(entry, Mapping) and entry.get("ip")]
    if isinstance(status.get("podIP"), str) and status["podIP"] and status["podIP"] not in found:
        found.insert(0, status["podIP"])
    ips = []
    for ip in found:
        try:
            ips.append(str(ipaddress.ip_address(ip)))
        except ValueError:
            errors.append(f"status.podIPs: {ip!r} is not an IP address")
    return tuple(ips)


def _named_ports(spec: Mapping[str, Any], errors: list[str]) -> tuple[NamedPort, ...]:
    out: set[NamedPort] = set()
    containers = spec.get("containers")
    for ci, container in enumerate(containers if isinstance(containers, list) else []):
        ports = container.get("ports") if isinstance(container, Mapping) else None
        for pi, port in enumerate(ports if isinstance(ports, list) else []):
            where = f"spec.containers[{ci}].ports[{pi}]"
            if not isinstance(port, Mapping) or not port.get("name"):
                continue  # unnamed ports cannot be referred to by name
            number, proto = port.get("containerPort"), port.get("protocol", "TCP")
            if not isinstance(number, int) or isinstance(number, bool) or not 0 < number <= 65535:
                errors.append(f"{where}.containerPort: {number!r} is not a port number")
            elif proto not in PORT_PROTOCOLS:
                errors.append(f"{where}.protocol: {proto!r} is not TCP, UDP or SCTP")
            else:
                out.add(NamedPort(str(port["name"]), Protocol(proto), number))
    return tuple(sorted(out))
