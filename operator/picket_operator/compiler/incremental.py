"""The incremental compiler: one event in, exactly what changed out. Pure, in memory, no I/O.

State: pod facts; the endpoint index (``indexing.EndpointIndex``); policy plans filed in a
``SelectorIndex`` by their target selector; which policies select which endpoint (both ways);
every peer set's definition, its referencing policies, and its members as counted entries (two
pods may contribute the same address); peer sets filed in a ``SelectorIndex`` too.

What each event recomputes:

* pod upsert/delete: that pod's own rule sets (its selecting policies come from the policy index
  lookup of its old and new view) and the peer sets the index says its old or new view may join;
* namespace upsert/delete: the same, for each endpoint of that namespace (its labels and the
  legacy isolation annotation are denormalised into every pod view);
* policy upsert/delete: the endpoints the old or new version selects, and the peer sets that
  start or stop being referenced (filled from the index when created);
* HostEndpoint upsert/delete: like a pod (it is an endpoint, key ``host/<name>``, always with
  rule sets: failsafe first, default deny last);
* GlobalNetworkSet / NetworkSet upsert/delete: the peer sets whose (Calico) selector may match
  the old or new version (the peer-set index lookup), which gain or lose its nets; a NetworkSet
  is re-joined when its namespace's labels change. A Node is filed the same way (``nodeviews``):
  only node selectors (ClusterNetworkPolicy ``nodes`` peers) take its addresses.

HostEndpoint and network-set objects arrive through ``upsert_policy``/``delete_policy`` (dispatched
on kind, so a watcher of any projectcalico.org kind needs nothing else) or through their own
methods (``upsert_host_endpoint``, ``upsert_network_set`` and the deletes).

``Changes`` remembers the state of everything an event touched before its first change, so the
returned ``Delta`` lists exactly the endpoints and peer sets whose content differs afterwards.
``snapshot()`` equals ``compiling.compile_cluster`` over the same objects (property-tested).
Called by the kopf operator (one instance, events serialised) and by benchmarks and tests.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from picket.failsafe import Failsafe
from picket.model import Compiled, EndpointRules, PeerSet, Problem
from picket_operator.compiler import ir
from picket_operator.compiler.compiling import sorted_problems
from picket_operator.compiler.frontends import registry as frontends
from picket_operator.compiler.hostviews import NetworkSetView, host_view, network_set_key, network_set_view, object_name
from picket_operator.compiler.indexing import EndpointIndex, SelectorIndex
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

_V = TypeVar("_V", PodView, NetworkSetView)

PolicyKey = tuple[str, str, str]


@dataclass(frozen=True)
class Delta:
    endpoints_changed: frozenset[str] = frozenset()
    endpoints_removed: frozenset[str] = frozenset()
    peer_sets_changed: frozenset[str] = frozenset()
    peer_sets_removed: frozenset[str] = frozenset()
    problems: tuple[Problem, ...] = ()  # problems of the object this event touched

    def is_empty(self) -> bool:
        return not (
            self.endpoints_changed or self.endpoints_removed or self.peer_sets_changed or self.peer_sets_removed
        )


class Changes:
    """Before-images of what one event touched; ``delta()`` compares them with the state after."""

    def __init__(self, compiler: IncrementalCompiler) -> None:
        self._c = compiler
        self.endpoints: dict[str, EndpointRules | None] = {}
        self.peer_existed: dict[str, bool] = {}
        self.entries: dict[str, dict[str, bool]] = {}

    def endpoint(self, key: str) -> None:
        self.endpoints.setdefault(key, self._c._endpoints.get(key))

    def peer(self, name: str) -> None:
        self.peer_existed.setdefault(name, name in self._c._definitions)

    def entry(self, name: str, entry: str, present: bool) -> None:
        self.peer(name)
        self.entries.setdefault(name, {}).setdefault(entry, present)

    def delta(self, problems: tuple[Problem, ...]) -> Delta:
        c = self._c
        ep_changed = {k for k, before in self.endpoints.items() if k in c._endpoints and c._endpoints[k] != before}
        ep_removed = {k for k, before in self.endpoints.items() if before is not None and k not in c._endpoints}
        ps_changed, ps_removed = set(), set()
        for name, existed in self.peer_existed.items():
            exists = name in c._definitions
            if existed and not exists:
                ps_removed.add(name)
            elif exists and (not existed or self._entries_differ(name)):
                ps_changed.add(name)
        for name in ps_changed:
            c._peer_cache.pop(name, None)
        return Delta(
            frozenset(ep_changed), frozenset(ep_removed), frozenset(ps_changed), frozenset(ps_removed), problems
        )

    def _entries_differ(self, name: str) -> bool:
        members = self._c._members[name]
        return any((entry in members) != was for entry, was in self.entries.get(name, {}).items())


def _pid(key: PolicyKey) -> str:
    return "\x1f".join(key)


class IncrementalCompiler:
    def __init__(self, failsafe: Failsafe | None = None) -> None:
        self._failsafe = failsafe  # frames host endpoints' rule sets (None: Calico's defaults)
        self._namespaces: dict[str, NamespaceView] = {}
        self._pods: dict[str, PodFacts] = {}
        self._index: EndpointIndex[PodView] = EndpointIndex()
        self._set_facts: dict[str, NetworkSetView] = {}  # network sets, not joined
        self._sets: EndpointIndex[NetworkSetView] = EndpointIndex()  # joined with their namespace
        self._plans: dict[PolicyKey, PolicyPlan] = {}
        self._plan_ids: dict[str, PolicyKey] = {}
        self._policy_index = SelectorIndex()
        self._selecting: dict[str, set[PolicyKey]] = {}
        self._selected: dict[PolicyKey, set[str]] = {}
        self._endpoints: dict[str, EndpointRules] = {}
        self._definitions: dict[str, PeerDefinition] = {}
        self._refs: dict[str, set[PolicyKey]] = {}
        self._members: dict[str, Counter[str]] = {}
        self._peer_index = SelectorIndex()
        self._peer_cache: dict[str, PeerSet] = {}
        self._problems: dict[tuple[str, ...], tuple[Problem, ...]] = {}

    # -- namespaces -------------------------------------------------------------------------
    def upsert_namespace(self, obj: Mapping[str, Any]) -> Delta:
        ns, problems = parse_namespace(obj)
        if ns is None:
            return Delta(problems=problems)
        self._problems[("Namespace", ns.name)] = problems
        before = self._namespace(ns.name)
        self._namespaces[ns.name] = ns
        return self._rejoin(before, ns, problems)

    def delete_namespace(self, name: str) -> Delta:
        self._problems.pop(("Namespace", name), None)
        before = self._namespace(name)
        self._namespaces.pop(name, None)
        return self._rejoin(before, default_namespace(name), ())

    def _rejoin(self, before: NamespaceView, ns: NamespaceView, problems: tuple[Problem, ...]) -> Delta:
        changes = Changes(self)
        if before != ns:
            for key in sorted(self._index.by_namespace.get(ns.name, ())):
                self._replace_endpoint(key, self._pods[key].joined(ns), changes)
            for key in sorted(self._sets.by_namespace.get(ns.name, ())):
                self._replace_network_set(key, self._set_facts[key].joined(ns), changes)
        return changes.delta(problems)

    def _namespace(self, name: str) -> NamespaceView:
        return self._namespaces.get(name) or default_namespace(name)

    # -- pods -------------------------------------------------------------------------------
    def upsert_pod(self, obj: Mapping[str, Any]) -> Delta:
        facts, problems = parse_pod(obj)
        if facts is None:
            return Delta(problems=problems)
        key = facts.view.key
        self._problems[("Pod", key)] = problems
        self._pods[key] = facts
        changes = Changes(self)
        view = facts.joined(self._namespace(facts.view.namespace)) if facts.is_endpoint else None
        self._replace_endpoint(key, view, changes)
        return changes.delta(problems)

    def delete_pod(self, namespace: str, name: str) -> Delta:
        key = f"{namespace}/{name}"
        self._problems.pop(("Pod", key), None)
        self._pods.pop(key, None)
        changes = Changes(self)
        self._replace_endpoint(key, None, changes)
        return changes.delta(())

    def _replace_endpoint(self, key: str, view: PodView | None, changes: Changes) -> None:
        old = self._index.views.get(key)
        if old == view:
            return
        self._move_members(old, view, peer_entries, changes)
        self._index.remove(key)
        changes.endpoint(key)
        if view is None:
            for pkey in self._selecting.pop(key, set()):
                self._selected[pkey].discard(key)
            self._endpoints.pop(key, None)
            return
        self._index.add(view)
        candidates = (self._plan_ids[pid] for pid in self._policy_index.lookup(view))
        selecting = {pkey for pkey in candidates if selects(self._plans[pkey], view)}
        for pkey in self._selecting.get(key, set()) - selecting:
            self._selected[pkey].discard(key)
        for pkey in selecting:
            self._selected[pkey].add(key)
        self._selecting[key] = selecting
        self._recompute(key)

    def _recompute(self, key: str) -> None:
        plans = [self._plans[p] for p in self._selecting.get(key, ())]
        self._endpoints[key] = endpoint_rules(self._index.views[key], plans, self._failsafe)

    def _move_members(self, old: _V | None, new: _V | None,
                      entries: Callable[[PeerDefinition, _V], tuple[str, ...]], changes: Changes) -> None:
        """Update every peer set whose members from one endpoint or network set differ old -> new."""
        names: set[str] = set()
        for v in (old, new):
            if v is not None:
                names |= self._peer_index.lookup(v)
        for name in names:
            definition = self._definitions[name]
            before = entries(definition, old) if old is not None else ()
            after = entries(definition, new) if new is not None else ()
            if before != after:
                self._update_members(name, before, after, changes)

    def _update_members(self, name: str, before: Iterable[str], after: Iterable[str], changes: Changes) -> None:
        members = self._members[name]
        for entry in before:
            changes.entry(name, entry, entry in members)
            members[entry] -= 1
            if members[entry] <= 0:
                del members[entry]
        for entry in after:
            changes.entry(name, entry, entry in members)
            members[entry] += 1

    # -- host endpoints and network sets ------------------------------------------------------
    def upsert_host_endpoint(self, obj: Mapping[str, Any]) -> Delta:
        """A HostEndpoint; a version with problems is not applied (the endpoint goes away)."""
        view, problems = host_view(obj)
        name = view.name if view is not None else object_name(obj)[1]
        self._problems[("HostEndpoint", name)] = problems
        changes = Changes(self)
        self._replace_endpoint(f"host/{name}", view, changes)
        return changes.delta(problems)

    def delete_host_endpoint(self, name: str) -> Delta:
        self._problems.pop(("HostEndpoint", name), None)
        changes = Changes(self)
        self._replace_endpoint(f"host/{name}", None, changes)
        return changes.delta(())

    def upsert_network_set(self, obj: Mapping[str, Any]) -> Delta:
        """A GlobalNetworkSet or NetworkSet; a version with problems is not applied."""
        kind = str(obj.get("kind"))
        view, problems = network_set_view(obj)
        namespace, name = object_name(obj)
        namespace = (namespace or "default") if kind == "NetworkSet" else ""
        key = network_set_key(kind, namespace, name)
        self._problems[(kind, namespace, name)] = problems
        changes = Changes(self)
        if view is None:
            self._set_facts.pop(key, None)
        else:
            self._set_facts[key] = view
        joined = view.joined(self._namespace(namespace)) if view is not None and namespace else view
        self._replace_network_set(key, joined, changes)
        return changes.delta(problems)

    def delete_network_set(self, kind: str, namespace: str, name: str) -> Delta:
        """``kind``: GlobalNetworkSet (``namespace`` "") or NetworkSet."""
        namespace = (namespace or "default") if kind == "NetworkSet" else ""
        self._problems.pop((kind, namespace, name), None)
        key = network_set_key(kind, namespace, name)
        self._set_facts.pop(key, None)
        changes = Changes(self)
        self._replace_network_set(key, None, changes)
        return changes.delta(())

    def upsert_node(self, obj: Mapping[str, Any]) -> Delta:
        """A Node: its addresses join the peer sets of the node selectors that match its labels."""
        view, problems = node_view(obj)
        name = view.name if view is not None else object_name(obj)[1]
        self._problems[(NODE_KIND, name)] = problems
        changes = Changes(self)
        self._replace_network_set(network_set_key(NODE_KIND, "", name), view, changes)
        return changes.delta(problems)

    def delete_node(self, name: str) -> Delta:
        self._problems.pop((NODE_KIND, name), None)
        changes = Changes(self)
        self._replace_network_set(network_set_key(NODE_KIND, "", name), None, changes)
        return changes.delta(())

    def _replace_network_set(self, key: str, view: NetworkSetView | None, changes: Changes) -> None:
        old = self._sets.views.get(key)
        if old == view:
            return
        self._move_members(old, view, network_set_entries, changes)
        self._sets.remove(key)
        if view is not None:
            self._sets.add(view)

    # -- policies ---------------------------------------------------------------------------
    def upsert_policy(self, obj: Mapping[str, Any]) -> Delta:
        """Any policy kind; HostEndpoint and (Global)NetworkSet objects are dispatched on kind."""
        other = frontends.object_kind(obj)
        if other == NODE_KIND:
            return self.upsert_node(obj)
        if other == "HostEndpoint":
            return self.upsert_host_endpoint(obj)
        if other is not None:
            return self.upsert_network_set(obj)
        key = frontends.policy_key(obj)
        translation = frontends.translate(obj)
        self._problems[("Policy", *key)] = translation.problems
        changes = Changes(self)
        old = self._plans.get(key)
        if translation.policy is None or old is None or old.policy != translation.policy:
            self._set_policy(key, PolicyPlan(translation.policy) if translation.policy else None, changes)
        return changes.delta(translation.problems + self._warnings(key))

    def delete_policy(self, kind: str, namespace: str, name: str) -> Delta:
        """``kind`` as ``frontends.qualified_kind`` makes it, or bare when unambiguous."""
        resolved = frontends.resolve_kind(kind)
        bare, _, group = resolved.partition(".")
        if (group, bare) in frontends.OBJECT_KINDS:
            if bare == NODE_KIND:
                return self.delete_node(name)
            if bare == "HostEndpoint":
                return self.delete_host_endpoint(name)
            return self.delete_network_set(bare, namespace, name)
        key = (resolved, namespace, name)
        self._problems.pop(("Policy", *key), None)
        changes = Changes(self)
        self._set_policy(key, None, changes)
        return changes.delta(())

    def _set_policy(self, key: PolicyKey, plan: PolicyPlan | None, changes: Changes) -> None:
        old = self._plans.pop(key, None)
        old_selected = self._selected.pop(key, set())
        self._policy_index.remove(_pid(key))
        new_selected: set[str] = set()
        if plan is not None:
            self._plans[key] = plan
            self._plan_ids[_pid(key)] = key
            hint = plan.policy.applies_to.index_hint()
            self._policy_index.add(_pid(key), hint)
            views = self._index.views
            new_selected = {k for k in self._index.candidates(hint) if selects(plan, views[k])}
            for name, definition in plan.peer_definitions.items():
                self._acquire(name, definition, key, changes)
        self._selected[key] = new_selected
        if plan is None:
            del self._selected[key]
            self._plan_ids.pop(_pid(key), None)
        if old is not None:
            keep = plan.peer_definitions if plan is not None else {}
            for name in old.peer_definitions:
                if name not in keep:  # refs are per policy: a set both versions use stays
                    self._release(name, key, changes)
        for k in old_selected - new_selected:
            self._selecting[k].discard(key)
        for k in new_selected - old_selected:
            self._selecting[k].add(key)
        for k in sorted(old_selected | new_selected):
            changes.endpoint(k)
            self._recompute(k)

    def _acquire(self, name: str, definition: PeerDefinition, key: PolicyKey, changes: Changes) -> None:
        refs = self._refs.setdefault(name, set())
        refs.add(key)
        if name in self._definitions:
            return
        changes.peer(name)
        self._definitions[name] = definition
        members: Counter[str] = Counter()
        if isinstance(definition, NamedPortPeers):
            candidates: Iterable[str] = self._index.with_port_names(definition.names)
            self._peer_index.add(name, None, definition.names)
        elif definition.selector is not None:
            hint = definition.selector.index_hint()
            candidates = self._index.candidates(hint)
            self._peer_index.add(name, hint)
        else:
            candidates = ()  # CIDRs only: no endpoint ever changes it
        for k in candidates:
            members.update(peer_entries(definition, self._index.views[k]))
        selector = None if isinstance(definition, NamedPortPeers) else definition.selector
        if selector is not None and (ir.selects_network_sets(selector) or ir.selects_nodes(selector)):
            for k in self._sets.candidates(selector.index_hint()):
                members.update(network_set_entries(definition, self._sets.views[k]))
        self._members[name] = members

    def _release(self, name: str, key: PolicyKey, changes: Changes) -> None:
        refs = self._refs.get(name)
        if refs is None:
            return
        refs.discard(key)
        if refs:
            return
        changes.peer(name)
        del self._refs[name], self._definitions[name], self._members[name]
        self._peer_index.remove(name)
        self._peer_cache.pop(name, None)

    # -- reading ----------------------------------------------------------------------------
    def endpoint_rules(self, key: str) -> EndpointRules | None:
        return self._endpoints.get(key)

    def peer_set(self, name: str) -> PeerSet | None:
        if name not in self._definitions:
            return None
        cached = self._peer_cache.get(name)
        if cached is None:
            cached = make_peer_set(name, self._definitions[name], self._members[name])
            self._peer_cache[name] = cached
        return cached

    def _warnings(self, key: PolicyKey) -> tuple[Problem, ...]:
        plan = self._plans.get(key)
        if plan is None or not plan.policy.named_port_sources:
            return ()
        views = (self._index.views[k] for k in self._selected.get(key, ()))
        return named_port_warnings(plan.policy, views, self._index.declares)

    def problems(self) -> tuple[Problem, ...]:
        """Problems of every object, and warnings about named ports that resolve nowhere now."""
        return sorted_problems([*self._problems.values(), *(self._warnings(k) for k in self._plans)])

    def snapshot(self) -> Compiled:
        peer_sets = {}
        for name in self._definitions:
            ps = self.peer_set(name)
            assert ps is not None
            peer_sets[name] = ps
        return Compiled(dict(self._endpoints), peer_sets, self.problems())
