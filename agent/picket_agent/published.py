"""The compiled objects as the agent reads them: both published forms, resolved exactly.

Pure (no I/O); ``apifeed.py`` keeps the objects its watches deliver and calls these.

* The current form: one ``CompiledNode`` per node binding each endpoint (kind, namespace, name,
  IPs, interface) to the names of its ``CompiledRuleSet``\\ s (content-addressed, one per
  distinct rule set). ``resolve`` builds the node's endpoint rules from it. **Exact versions**:
  an endpoint whose rule sets are not all known yet (their watch event has not arrived) is never
  half-built: it keeps the rules it had in the previous snapshot (or its CompiledEndpoint of the
  previous form), is listed as pending, and the node's version is not reported applied until
  every endpoint is built from it.
* The previous form: one ``CompiledEndpoint`` per pod (``parse_endpoint``). Read while a cluster
  switches: as long as the node has no CompiledNode, the agent enforces these; once it has one,
  the CompiledNode alone decides (the operator deletes the old objects after this agent reports
  the CompiledNode applied).

The agent never imports the operator: objects are read with ``picket.model`` directly, and the
names below are the CRDs' (``crds/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.model import SCHEMA_VERSION, Endpoint, EndpointRules, ModelError, PeerSet, RuleSet

GROUP, VERSION = "picket.dev", "v1alpha1"
NODE_LABEL = "picket.dev/node"
ENDPOINTS, PEER_SETS, RULE_SETS, NODES = "compiledendpoints", "compiledpeersets", "compiledrulesets", "compilednodes"


@dataclass(frozen=True)
class Parsed:
    """One CompiledEndpoint (previous form) as the agent keeps it: where, its version, its rules."""

    namespace: str
    name: str
    version: str
    rules: EndpointRules


BINDING_FIELDS = ("ingress", "egress", "stagedIngress", "stagedEgress")  # row keys naming rule sets


@dataclass(frozen=True)
class Row:
    endpoint: Endpoint
    ingress: str | None  # rule-set name; None: not isolated in that direction
    egress: str | None
    staged_ingress: str | None = None  # audit mode: the rule set as it would be with staged policies
    staged_egress: str | None = None

    def names(self) -> tuple[str | None, ...]:
        return self.ingress, self.egress, self.staged_ingress, self.staged_egress


@dataclass(frozen=True)
class NodeBinding:
    node: str
    version: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Resolution:
    """What one snapshot enforces, and how it relates to the node's CompiledNode."""

    endpoints: dict[str, EndpointRules]
    binding: str | None = None  # the CompiledNode's spec.version (None: previous form only)
    current: dict[str, EndpointRules] = field(default_factory=dict)  # endpoints built from that version
    pending: frozenset[str] = frozenset()  # endpoints still waiting for a rule set


def _spec(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    spec = obj.get("spec")
    if not isinstance(spec, Mapping):
        raise ModelError(f"{kind}: no spec")
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise ModelError(f"{kind}: unsupported schemaVersion {spec.get('schemaVersion')!r}")
    return spec


def parse_endpoint(obj: Mapping[str, Any]) -> Parsed:
    meta, spec = obj.get("metadata") or {}, _spec(obj, "CompiledEndpoint")
    rules = EndpointRules.from_dict({"endpoint": spec["endpoint"], "ingress": spec.get("ingress"),
                                     "egress": spec.get("egress"), "stagedIngress": spec.get("stagedIngress"),
                                     "stagedEgress": spec.get("stagedEgress")})
    return Parsed(str(meta.get("namespace", "")), str(meta["name"]), str(spec.get("version", "")), rules)


def parse_peer_set(obj: Mapping[str, Any]) -> PeerSet:
    return PeerSet.from_dict({**_spec(obj, "CompiledPeerSet"), "name": (obj.get("metadata") or {})["name"]})


def parse_rule_set(obj: Mapping[str, Any]) -> RuleSet:
    spec = _spec(obj, "CompiledRuleSet")
    return RuleSet.from_dict({"direction": spec.get("direction"), "tiers": spec.get("tiers") or []})


def parse_node(obj: Mapping[str, Any]) -> NodeBinding:
    spec = _spec(obj, "CompiledNode")
    node = str(spec.get("node") or (obj.get("metadata") or {}).get("name", ""))
    rows = []
    for raw in spec.get("endpoints") or []:
        if not isinstance(raw, Mapping):
            raise ModelError(f"CompiledNode {node}: an endpoint is not a mapping")
        names = [raw.get(f) for f in BINDING_FIELDS]
        rows.append(Row(Endpoint.from_dict({**raw, "node": node}), *(str(n) if n else None for n in names)))
    return NodeBinding(node, str(spec.get("version", "")), tuple(rows))


def resolve(
    binding: NodeBinding | None,
    rule_sets: Mapping[str, RuleSet],
    legacy: Mapping[str, EndpointRules],
    previous: Mapping[str, EndpointRules],
) -> Resolution:
    """The endpoints to enforce. Without a CompiledNode: the CompiledEndpoints (previous form).
    With one: its rows, each built only when all its rule sets are known, else the endpoint's
    ``previous`` rules (or its CompiledEndpoint), never a mix."""
    if binding is None:
        return Resolution(dict(legacy))
    endpoints: dict[str, EndpointRules] = {}
    current: dict[str, EndpointRules] = {}
    pending: set[str] = set()
    for row in binding.rows:
        key = row.endpoint.key
        if all(n is None or n in rule_sets for n in row.names()):
            er = EndpointRules(row.endpoint, *(rule_sets[n] if n else None for n in row.names()))
            before = previous.get(key)
            if before is not None and before == er:
                er = before  # the same object as last time: cheap comparisons and caches downstream
            endpoints[key] = current[key] = er
            continue
        pending.add(key)
        fallback = previous.get(key) or legacy.get(key)
        if fallback is not None:
            endpoints[key] = fallback
    return Resolution(endpoints, binding.version, current, frozenset(pending))


def binding_applied(
    resolution: Resolution, applied: Mapping[str, str], version_of: Callable[[EndpointRules], str]
) -> bool:
    """True when the dataplane enforces every endpoint of the CompiledNode at its version:
    nothing pending, and each endpoint's applied version is that of its rules from the node."""
    if resolution.binding is None or resolution.pending:
        return False
    return all(applied.get(key) == version_of(er) for key, er in resolution.current.items())
