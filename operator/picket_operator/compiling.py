"""The full compile: cluster objects in, ``picket.model.Compiled`` out. Pure, no I/O.

``compile_cluster(objects)`` reads raw Namespace, Pod and policy objects (any kind a frontend is
registered for; later duplicates replace earlier ones, like upserts), then:

1. builds denormalised pod views (``views``) and indexes the endpoints (``indexing``);
2. translates every policy through its frontend (``frontends`` -> ``ir.Policy``) and plans it
   (``planning``); a policy with problems is left out entirely;
3. finds the endpoints each policy selects through the index, and builds every endpoint's rule
   sets from the plans of the policies that select it;
4. fills every peer set any applied policy uses, from the endpoints its selector can match.

``incremental.IncrementalCompiler`` must always equal this function on the same objects (a
property test checks it), so this is the reference for what the compiled state is. Used by
``picket compile``, ``picket matrix`` and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.model import Compiled, PeerSet, Problem
from picket_operator import frontends
from picket_operator.indexing import EndpointIndex
from picket_operator.planning import (
    NamedPortPeers,
    PeerDefinition,
    PolicyPlan,
    endpoint_rules,
    make_peer_set,
    named_port_warnings,
    peer_entries,
    selects,
)
from picket_operator.views import NamespaceView, PodFacts, default_namespace, parse_namespace, parse_pod


@dataclass
class ParsedCluster:
    namespaces: dict[str, NamespaceView] = field(default_factory=dict)
    pods: dict[str, PodFacts] = field(default_factory=dict)
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
        else:
            key = frontends.policy_key(obj)
            translation = frontends.translate(obj)
            out.problems[("Policy", *key)] = translation.problems
            out.plans.pop(key, None)
            if translation.policy is not None:
                out.plans[key] = PolicyPlan(translation.policy)
    return out


def sorted_problems(groups: Iterable[tuple[Problem, ...]]) -> tuple[Problem, ...]:
    every = [p for group in groups for p in group]
    return tuple(sorted(every, key=lambda p: (p.kind, p.namespace, p.name, p.field, p.message)))


def compile_cluster(objects: Iterable[Mapping[str, Any]]) -> Compiled:
    parsed = parse_objects(objects)
    index = EndpointIndex()
    for facts in parsed.pods.values():
        if facts.is_endpoint:
            ns = parsed.namespaces.get(facts.view.namespace) or default_namespace(facts.view.namespace)
            index.add(facts.joined(ns))
    selecting: dict[str, list[PolicyPlan]] = {key: [] for key in index.views}
    definitions: dict[str, PeerDefinition] = {}
    warnings = []
    for plan in parsed.plans.values():
        definitions.update(plan.peer_definitions)
        selected = [k for k in index.candidates(plan.policy.applies_to.index_hint()) if selects(plan, index.views[k])]
        for key in selected:
            selecting[key].append(plan)
        warnings.append(named_port_warnings(plan.policy, (index.views[k] for k in selected), index.declares))
    endpoints = {key: endpoint_rules(index.views[key], plans) for key, plans in selecting.items()}
    peer_sets = {name: _fill(name, d, index) for name, d in definitions.items()}
    return Compiled(endpoints, peer_sets, sorted_problems([*parsed.problems.values(), *warnings]))


def _fill(name: str, definition: PeerDefinition, index: EndpointIndex) -> PeerSet:
    if isinstance(definition, NamedPortPeers):
        candidates: Iterable[str] = index.with_port_names(definition.names)
    elif definition.selector is None:
        candidates = ()
    else:
        candidates = index.candidates(definition.selector.index_hint())
    entries = (e for key in candidates for e in peer_entries(definition, index.views[key]))
    return make_peer_set(name, definition, entries)
