"""The published form of the compiled state: pure builders of picket.dev/v1alpha1 objects.

* ``CompiledEndpoint`` (namespaced; shortName ``pcep``): one per endpoint, in the pod's namespace
  under the pod's name (host endpoints: namespace ``picket-system``, name ``host-<name>``),
  labelled ``picket.dev/node=<node>`` so each agent watches only its node. ``spec.version`` is a
  digest of the content; ``spec.summary`` feeds the printer columns.
* ``CompiledPeerSet`` (cluster-scoped; shortName ``pps``): one per peer set, named by it;
  ``spec.size`` counts members for the printer column.

``endpoint_object``/``peer_set_object`` build them; ``endpoint_from_object``/
``peer_set_from_object`` read them back (the agent's API feed). The schemas live in ``crds/``
and a test validates these builders against them. No I/O here; the operator's publisher writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from picket.model import SCHEMA_VERSION, EndpointKind, EndpointRules, ModelError, PeerSet, stable_hash

GROUP = "picket.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
ENDPOINT_KIND, ENDPOINT_PLURAL, ENDPOINT_SHORT = "CompiledEndpoint", "compiledendpoints", "pcep"
PEER_SET_KIND, PEER_SET_PLURAL, PEER_SET_SHORT = "CompiledPeerSet", "compiledpeersets", "pps"
NODE_LABEL = "picket.dev/node"
HOST_NAMESPACE = "picket-system"


def endpoint_object_name(er: EndpointRules) -> tuple[str, str]:
    """(namespace, name) of the CompiledEndpoint for this endpoint."""
    ep = er.endpoint
    if ep.kind is EndpointKind.HOST:
        return HOST_NAMESPACE, f"host-{ep.name}"
    return ep.namespace, ep.name


def endpoint_object(er: EndpointRules) -> dict[str, Any]:
    namespace, name = endpoint_object_name(er)
    content = er.to_dict()
    rules = sum(rs.rule_count() for rs in (er.ingress, er.egress) if rs is not None)
    return {
        "apiVersion": API_VERSION,
        "kind": ENDPOINT_KIND,
        "metadata": {"name": name, "namespace": namespace, "labels": {NODE_LABEL: er.endpoint.node}},
        "spec": {
            "schemaVersion": SCHEMA_VERSION,
            "version": stable_hash(content),
            "endpoint": content["endpoint"],
            "ingress": content["ingress"],
            "egress": content["egress"],
            **{k: content[k] for k in ("stagedIngress", "stagedEgress") if k in content},  # audit mode
            "summary": {
                "ip": er.endpoint.ips[0] if er.endpoint.ips else "",
                "node": er.endpoint.node,
                "ingress": "isolated" if er.ingress is not None else "open",
                "egress": "isolated" if er.egress is not None else "open",
                "rules": rules,
            },
        },
    }


def _spec(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise ModelError(f"{kind}: no spec")
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise ModelError(f"{kind}: unsupported schemaVersion {spec.get('schemaVersion')!r}")
    return spec


def endpoint_from_object(obj: Mapping[str, Any]) -> EndpointRules:
    spec = _spec(obj, ENDPOINT_KIND)
    return EndpointRules.from_dict(
        {k: spec.get(k) for k in ("endpoint", "ingress", "egress", "stagedIngress", "stagedEgress")})


def peer_set_object(ps: PeerSet) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": PEER_SET_KIND,
        "metadata": {"name": ps.name},
        "spec": {
            "schemaVersion": SCHEMA_VERSION,
            "kind": ps.kind.value,
            "members": list(ps.members),
            "excepts": list(ps.excepts),
            "description": ps.description,
            "size": len(ps.members),
        },
    }


def peer_set_from_object(obj: Mapping[str, Any]) -> PeerSet:
    spec = _spec(obj, PEER_SET_KIND)
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    data = {"name": name, **{k: spec.get(k) for k in ("kind", "members", "excepts", "description")}}
    return PeerSet.from_dict({k: v for k, v in data.items() if v is not None})
