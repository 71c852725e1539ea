"""What the publisher last wrote, and the pure plan of the next writes (diff-based publishing).

``Ledger`` remembers, per published object, the identity it was written under and a content
fingerprint (hash of labels and spec): the CompiledNode of each node (and the rule-set names it
refers to), the CompiledRuleSets, the CompiledPeerSets, and the CompiledEndpoints the previous
version of picket left behind (``legacy``, deleted during the switch, see ``legacy_deletes``).

``plan`` takes the nodes and peer sets marked dirty since the last sync and ways to build their
desired objects, and returns only the writes and deletes that change something, in an order
safe for the agents watching:

1. peer sets and new rule sets written before the nodes that may start referencing them
   (rule sets are content-addressed: a name is written once and never changes),
2. nodes written (only when every rule set they name was written), then nodes deleted,
3. peer sets deleted last, when nothing references them any more; rule sets no node refers to
   are collected after a grace period (``collectable``), so an agent that is a little behind
   still finds them and a rule set that comes back (a policy re-applied) is not rewritten.

``recover`` rebuilds a ledger from the objects listed from the API server, so a restarted or
newly elected operator writes only what differs from what is already published.
Pure: no I/O, no clock (``now`` is passed in); ``writer.py`` performs the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from picket.model import Endpoint, ModelError, stable_hash
from picket_operator.publishing.objects import NODE_LABEL, node_refs

Obj = dict[str, Any]
DesiredNode = Callable[[str], tuple[Obj | None, Mapping[str, Obj]]]  # node -> (CompiledNode, its rule sets)


@dataclass(frozen=True)
class Written:
    namespace: str  # "" for cluster-scoped objects
    name: str
    fingerprint: str


def fingerprint(obj: Mapping[str, Any]) -> str:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return stable_hash({"labels": labels, "spec": obj.get("spec")}, 24)


def identity(obj: Mapping[str, Any], fp: str | None = None) -> Written:
    meta = obj.get("metadata") or {}
    return Written(str(meta.get("namespace") or ""), str(meta["name"]), fp or fingerprint(obj))


@dataclass
class Ledger:
    nodes: dict[str, Written] = field(default_factory=dict)  # node -> its CompiledNode
    node_refs: dict[str, frozenset[str]] = field(default_factory=dict)  # node -> rule-set names it names
    rule_sets: dict[str, Written] = field(default_factory=dict)
    peer_sets: dict[str, Written] = field(default_factory=dict)
    legacy: dict[str, tuple[Written, str]] = field(default_factory=dict)  # endpoint key -> (pcep, its node)
    unreferenced: dict[str, float] = field(default_factory=dict)  # rule set -> since when no node names it

    def referenced(self) -> set[str]:
        return set().union(*self.node_refs.values()) if self.node_refs else set()


@dataclass
class Plan:
    peer_set_writes: list[Obj] = field(default_factory=list)
    rule_set_writes: list[Obj] = field(default_factory=list)
    node_writes: list[tuple[str, Obj]] = field(default_factory=list)  # (node, object); content changed
    node_deletes: list[tuple[str, Written]] = field(default_factory=list)
    peer_set_deletes: list[tuple[str, Written]] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.peer_set_writes) + len(self.rule_set_writes) + len(self.node_writes)
                + len(self.node_deletes) + len(self.peer_set_deletes))


def plan(
    ledger: Ledger,
    nodes: Iterable[str],
    peer_set_names: Iterable[str],
    desired_node: DesiredNode,
    desired_peer_set: Callable[[str], Obj | None],
) -> Plan:
    out = Plan()
    for name in sorted(set(peer_set_names)):
        obj = desired_peer_set(name)
        if obj is None:
            if name in ledger.peer_sets:
                out.peer_set_deletes.append((name, ledger.peer_sets[name]))
        elif _changed(ledger.peer_sets.get(name), obj):
            out.peer_set_writes.append(obj)
    new_sets: dict[str, Obj] = {}
    for node in sorted(set(nodes)):
        obj, rule_sets = desired_node(node)
        old = ledger.nodes.get(node)
        if obj is None:
            if old is not None:
                out.node_deletes.append((node, old))
        elif _changed(old, obj):
            out.node_writes.append((node, obj))
            for name in sorted(node_refs(obj)):
                if name not in ledger.rule_sets and name not in new_sets:
                    new_sets[name] = dict(rule_sets[name])
    out.rule_set_writes = list(new_sets.values())
    return out


def _changed(old: Written | None, obj: Mapping[str, Any]) -> bool:
    return old is None or old.fingerprint != fingerprint(obj)


def record(ledger: Ledger, p: Plan, failed: set[tuple[str, str]], now: float) -> None:
    """Apply a performed plan to the ledger, except the (kind, key) pairs that failed."""
    for obj in p.peer_set_writes:
        if ("pps", identity(obj).name) not in failed:
            ledger.peer_sets[identity(obj).name] = identity(obj)
    for obj in p.rule_set_writes:
        if ("prs", identity(obj).name) not in failed:
            ledger.rule_sets[identity(obj).name] = identity(obj)
    for node, obj in p.node_writes:
        if ("pcn", node) not in failed:
            ledger.nodes[node], ledger.node_refs[node] = identity(obj), node_refs(obj)
    for node, old in p.node_deletes:
        if ("pcn", node) not in failed and ledger.nodes.get(node) == old:
            del ledger.nodes[node]
            ledger.node_refs.pop(node, None)
    for name, _ in p.peer_set_deletes:
        if ("pps", name) not in failed:
            ledger.peer_sets.pop(name, None)
    note_references(ledger, now)


def note_references(ledger: Ledger, now: float) -> None:
    """Start (or stop) the grace period of every published rule set no node names."""
    referenced = ledger.referenced()
    for name in ledger.rule_sets:
        if name in referenced:
            ledger.unreferenced.pop(name, None)
        else:
            ledger.unreferenced.setdefault(name, now)
    for name in set(ledger.unreferenced) - set(ledger.rule_sets):
        del ledger.unreferenced[name]


def collectable(ledger: Ledger, now: float, grace: float) -> list[tuple[str, Written]]:
    """Rule sets no node has named for at least ``grace`` seconds."""
    referenced = ledger.referenced()
    return [(n, ledger.rule_sets[n]) for n, since in sorted(ledger.unreferenced.items())
            if now - since >= grace and n not in referenced and n in ledger.rule_sets]


def legacy_deletes(ledger: Ledger, switched: set[str], desired: Callable[[str], bool]) -> list[tuple[str, Written]]:
    """CompiledEndpoints of the previous version that may go now: those on a node whose agent has
    reported the new form applied (it no longer reads them), and those of endpoints that no
    longer exist (they enforce nothing anyone wants, and an old agent would keep them)."""
    return [(key, w) for key, (w, node) in sorted(ledger.legacy.items()) if node in switched or not desired(key)]


def endpoint_key_of(obj: Mapping[str, Any]) -> str | None:
    """The endpoint key a published CompiledEndpoint is for (None: unreadable, a stale schema)."""
    try:
        return Endpoint.from_dict((obj.get("spec") or {})["endpoint"]).key
    except (KeyError, TypeError, ModelError):
        return None


def recover(
    nodes: Iterable[Mapping[str, Any]],
    rule_sets: Iterable[Mapping[str, Any]],
    peer_sets: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Mapping[str, Any]],
    now: float,
) -> tuple[Ledger, list[Written]]:
    """A ledger of what is published, and the CompiledEndpoints no key can be derived from."""
    ledger, unreadable = Ledger(), []
    for obj in nodes:
        node = identity(obj).name
        ledger.nodes[node], ledger.node_refs[node] = identity(obj), node_refs(obj)
    for obj in rule_sets:
        ledger.rule_sets[identity(obj).name] = identity(obj)
    for obj in peer_sets:
        ledger.peer_sets[identity(obj).name] = identity(obj)
    for obj in endpoints:
        key = endpoint_key_of(obj)
        if key is None:
            unreadable.append(identity(obj))
        else:
            node = str(((obj.get("metadata") or {}).get("labels") or {}).get(NODE_LABEL, ""))
            ledger.legacy[key] = (identity(obj), node)
    note_references(ledger, now)
    return ledger, unreadable


def switched_nodes(node_objects: Iterable[Mapping[str, Any]]) -> set[str]:
    """Nodes whose agent has reported a CompiledNode applied (it reads the new form only)."""
    return {identity(o).name for o in node_objects if (o.get("status") or {}).get("appliedVersion")}
