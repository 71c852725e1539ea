"""The full compile: cluster objects in, ``picket.model.Compiled`` out. Pure, no I/O.

``compile_cluster(objects, failsafe)`` reads raw Namespace, Pod, Node and policy objects (any kind a
frontend is registered for) and Calico HostEndpoint, GlobalNetworkSet and NetworkSet objects
(later duplicates replace earlier ones, like upserts), then:

1. builds denormalised endpoint views (pods, host endpoints: ``views``, ``hostviews``) and indexes
   them (``indexing``), and indexes the network sets joined with their namespaces;
2. translates every policy through its frontend (``frontends`` -> ``ir.Policy``) and plans it
   (``planning``); a policy with problems is left out entirely;
3. finds the endpoints each policy selects through the index, and builds every endpoint's rule
   sets from the plans of the policies that select it;
4. fills every peer set any applied policy uses, from the endpoints its selector can match and,
   for Calico selectors, the nets of the network sets it matches.

``failsafe`` (``calico.hosts.Failsafe``; default Calico's ports) frames every host endpoint's rule
sets.

``incremental.IncrementalCompiler`` must always equal this function on the same objects (a
property test checks it), so this is the reference for what the compiled state is. Used by
``picket compile``, ``picket matrix`` and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.failsafe import Failsafe
from picket.model import Compiled, PeerSet, Problem
from picket_operator.compiler import ir
from picket_operator.compiler.frontends import registry as frontends
from picket_operator.compiler.hostviews import NetworkSetView, host_view, network_set_key, network_set_view, object_name
from picket_operator.compiler.indexing import EndpointIndex
from picket_operator.compiler.nodeviews import NODE_KIND, node_view
from picket_operator.compiler.planning import (
    NamedPortPeers,
    PeerDefinition,
    PolicyPlan,
    endpoint_rules,
    make_peer_set,
    named_port_warnings,
    network_set_entries,
    peer_entries,
    selects,
)
from picket_operator.compiler.views import (
    NamespaceView,
    PodFacts,
    PodView,
    default_namespace,
    parse_namespace,
    parse_pod,
)


@dataclass
class ParsedCluster:
    namespaces: dict[str, NamespaceView] = field(default_factory=dict)
    pods: dict[str, PodFacts] = field(default_factory=dict)
    hosts: dict[str, PodView] = field(default_factory=dict)
    network_sets: dict[str, NetworkSetView] = field(default_factory=dict)  # not yet joined
    plans: dict[tuple[str, str, str], PolicyPlan] = field(default_factory=dict)
    problems: dict[tuple[str, ...], tuple[Problem, ...]] = field(default_factory=dict)  # by object


def parse_objects(objects: Iterable[Mapping[str, Any]]) -> ParsedCluster:
    out = ParsedCluster()
    for number, obj in enumerate(objects):
        kind = obj.get("kind")
        if kind == "Namespace" and frontends.group_of(obj) == "":
            ns, problems = parse_namespace(obj)
            if ns is not None:
                out.namespaces[ns.name] = ns
            out.problems[("Namespace", ns.name if ns else f"#{number}")] = problems
        elif kind == "Pod" and frontends.group_of(obj) == "":
            facts, problems = parse_pod(obj)
            if facts is not None:
                out.pods[facts.view.key] = facts
            # An object without a name cannot be stored (or deleted): only reported.
            out.problems[("Pod", facts.view.key if facts else f"#{number}")] = problems
        elif kind == NODE_KIND and frontends.group_of(obj) == "":
            node, problems = node_view(obj)
            if node is not None:
                out.network_sets[node.key] = node
            out.problems[(NODE_KIND, node.name if node else f"#{number}")] = problems
        elif frontends.object_kind(obj) is not None:
            _parse_calico_object(out, obj)
        else:
            key = frontends.policy_key(obj)
            translation = frontends.translate(obj)
            out.problems[("Policy", *key)] = translation.problems
            out.plans.pop(key, None)
            if translation.policy is not None:
                out.plans[key] = PolicyPlan(translation.policy)
    return out


def _parse_calico_object(out: ParsedCluster, obj: Mapping[str, Any]) -> None:
    """A HostEndpoint or network set; a broken later version removes the earlier one (an upsert)."""
    kind = str(obj.get("kind"))
    namespace, name = object_name(obj)
    if kind == "HostEndpoint":
        host, problems = host_view(obj)
        out.hosts.pop(f"host/{name}", None)
        if host is not None:
            out.hosts[host.key] = host
        out.problems[(kind, name)] = problems
        return
    view, problems = network_set_view(obj)
    namespace = (namespace or "default") if kind == "NetworkSet" else ""
    out.network_sets.pop(network_set_key(kind, namespace, name), None)
    if view is not None:
        out.network_sets[view.key] = view
    out.problems[(kind, namespace, name)] = problems


def sorted_problems(groups: Iterable[tuple[Problem, ...]]) -> tuple[Problem, ...]:
    every = [p for group in groups for p in group]
    return tuple(sorted(every, key=lambda p: (p.kind, p.namespace, p.name, p.field, p.message)))


def compile_cluster(objects: Iterable[Mapping[str, Any]], failsafe: Failsafe | None = None) -> Compiled:
    parsed = parse_objects(objects)
    index: EndpointIndex[PodView] = EndpointIndex()
    for facts in parsed.pods.values():
        if facts.is_endpoint:
            ns = parsed.namespaces.get(facts.view.namespace) or default_namespace(facts.view.namespace)
            index.add(facts.joined(ns))
    for host in parsed.hosts.values():
        index.add(host)
    sets: EndpointIndex[NetworkSetView] = EndpointIndex()
    for nset in parsed.network_sets.values():
        sets.add(nset.joined(parsed.namespaces.get(nset.namespace) or default_namespace(nset.namespace))
                 if nset.namespace else nset)
    selecting: dict[str, list[PolicyPlan]] = {key: [] for key in index.views}
    definitions: dict[str, PeerDefinition] = {}
    warnings = []
    for plan in parsed.plans.values():
        definitions.update(plan.peer_definitions)
        selected = [k for k in index.candidates(plan.policy.applies_to.index_hint()) if selects(plan, index.views[k])]
        for key in selected:
            selecting[key].append(plan)
        warnings.append(named_port_warnings(plan.policy, (index.views[k] for k in selected), index.declares))
    endpoints = {key: endpoint_rules(index.views[key], plans, failsafe) for key, plans in selecting.items()}
    peer_sets = {name: _fill(name, d, index, sets) for name, d in definitions.items()}
    return Compiled(endpoints, peer_sets, sorted_problems([*parsed.problems.values(), *warnings]))


def _fill(
    name: str, definition: PeerDefinition, index: EndpointIndex[PodView], sets: EndpointIndex[NetworkSetView]
) -> PeerSet:
    set_keys: Iterable[str] = ()
    if isinstance(definition, NamedPortPeers):
        candidates: Iterable[str] = index.with_port_names(definition.names)
    elif definition.selector is None:
        candidates = ()
    else:
        candidates = index.candidates(definition.selector.index_hint())
        if ir.selects_network_sets(definition.selector) or ir.selects_nodes(definition.selector):
            set_keys = sets.candidates(definition.selector.index_hint())
    entries = [e for key in candidates for e in peer_entries(definition, index.views[key])]
    entries += [e for key in set_keys for e in network_set_entries(definition, sets.views[key])]
    return make_peer_set(name, definition, entries)
