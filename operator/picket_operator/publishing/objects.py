"""The published form of the compiled state: pure builders of picket.dev/v1alpha1 objects.

Writes grow with nodes and distinct rule sets, not with pods:

* ``CompiledRuleSet`` (cluster-scoped; shortName ``prs``): one per distinct rule set (one
  direction's ordered tiers), named by a digest of its content (``ingress-<digest>``). Pods with
  the same labels under the same policies share one. Content-addressed, so an object never
  changes once written: a new rule set is a new name.
* ``CompiledNode`` (cluster-scoped; shortName ``pcn``): one per node, named after it and
  labelled ``picket.dev/node=<node>`` so each agent watches only its own. It binds the node's
  endpoints (kind, namespace, name, IPs, interface) to rule-set names (``null``: not isolated in
  that direction). ``spec.version`` is a digest of the bindings; the agent reports the version it
  enforces in ``status.appliedVersion`` (one status write per node).
* ``CompiledPeerSet`` (cluster-scoped; shortName ``pps``): one per peer set, named by it;
  ``spec.size`` counts members for the printer column.
* ``CompiledEndpoint`` (namespaced; ``pcep``): the previous form (one per pod). Only read now:
  agents accept it while a cluster switches, the operator deletes it once the node's agent
  reports the new form applied (``writer.py``). ``endpoint_object`` still builds it, for the
  migration tests.

The schemas live in ``crds/`` and a test validates these builders against them. No I/O here;
the operator's publisher writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from picket.model import (
    SCHEMA_VERSION,
    EndpointKind,
    EndpointRules,
    ModelError,
    PeerSet,
    RuleSet,
    stable_hash,
)

GROUP = "picket.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
ENDPOINT_KIND, ENDPOINT_PLURAL, ENDPOINT_SHORT = "CompiledEndpoint", "compiledendpoints", "pcep"
PEER_SET_KIND, PEER_SET_PLURAL, PEER_SET_SHORT = "CompiledPeerSet", "compiledpeersets", "pps"
RULE_SET_KIND, RULE_SET_PLURAL, RULE_SET_SHORT = "CompiledRuleSet", "compiledrulesets", "prs"
NODE_KIND, NODE_PLURAL, NODE_SHORT = "CompiledNode", "compilednodes", "pcn"
NODE_LABEL = "picket.dev/node"
HOST_NAMESPACE = "picket-system"
POLICIES_SUMMARY = 200  # characters of the rule set's policy list shown in its printer column


# Rule sets ----------------------------------------------------------------------------------------

def rule_set_name(rs: RuleSet) -> str:
    return f"{rs.direction.value.lower()}-{rs.digest()}"


def rule_set_object(rs: RuleSet) -> dict[str, Any]:
    content = rs.to_dict()
    policies = ", ".join(dict.fromkeys(p.policy for t in rs.tiers for p in t.policies))
    return {
        "apiVersion": API_VERSION,
        "kind": RULE_SET_KIND,
        "metadata": {"name": rule_set_name(rs)},
        "spec": {
            "schemaVersion": SCHEMA_VERSION,
            "direction": content["direction"],
            "tiers": content["tiers"],
            "summary": {"rules": rs.rule_count(), "policies": policies[:POLICIES_SUMMARY]},
        },
    }


def rule_set_from_object(obj: Mapping[str, Any]) -> RuleSet:
    spec = _spec(obj, RULE_SET_KIND)
    return RuleSet.from_dict({"direction": spec.get("direction"), "tiers": spec.get("tiers") or []})


# Node bindings ------------------------------------------------------------------------------------

BINDING_FIELDS = ("ingress", "egress", "stagedIngress", "stagedEgress")  # row keys naming rule sets


def binding_row(er: EndpointRules, *names: str | None) -> dict[str, Any]:
    """One endpoint of a CompiledNode: who it is (node included, for the per-pod view), and the
    names of its rule sets in ``BINDING_FIELDS`` order (absent: not isolated in that direction;
    the staged ones only in audit mode)."""
    row = er.endpoint.to_dict()
    row.update({field: name for field, name in zip(BINDING_FIELDS, names, strict=False) if name})
    return row


def node_object(node: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The CompiledNode of ``node`` from its rows (``binding_row``), sorted by endpoint key."""
    ordered = sorted(rows, key=_row_key)
    refs = {r[d] for r in ordered for d in BINDING_FIELDS if r.get(d)}
    return {
        "apiVersion": API_VERSION,
        "kind": NODE_KIND,
        "metadata": {"name": node, "labels": {NODE_LABEL: node}},
        "spec": {
            "schemaVersion": SCHEMA_VERSION,
            "node": node,
            "version": stable_hash(ordered),
            "endpoints": ordered,
            "summary": {
                "endpoints": len(ordered),
                "isolated": sum(1 for r in ordered if r.get("ingress") or r.get("egress")),
                "ruleSets": len(refs),
            },
        },
    }


def _row_key(row: Mapping[str, Any]) -> str:
    return f"host/{row['name']}" if row.get("kind") == EndpointKind.HOST.value else f"{row['namespace']}/{row['name']}"


def node_refs(obj: Mapping[str, Any]) -> frozenset[str]:
    """The rule-set names a CompiledNode refers to."""
    rows = (obj.get("spec") or {}).get("endpoints") or []
    return frozenset(str(r[d]) for r in rows if isinstance(r, Mapping) for d in BINDING_FIELDS if r.get(d))


# Peer sets ----------------------------------------------------------------------------------------

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


# The previous form (read for the migration; built by tests) --------------------------------------

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


def endpoint_from_object(obj: Mapping[str, Any]) -> EndpointRules:
    spec = _spec(obj, ENDPOINT_KIND)
    return EndpointRules.from_dict(
        {k: spec.get(k) for k in ("endpoint", "ingress", "egress", "stagedIngress", "stagedEgress")})


def _spec(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise ModelError(f"{kind}: no spec")
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise ModelError(f"{kind}: unsupported schemaVersion {spec.get('schemaVersion')!r}")
    return spec
