"""The UI's model of one cluster state: policies table, grouped matrix, explanations, edit previews.

``Workbench(objects)`` compiles the objects once (``explaining.Explainer``: the compiled model,
the endpoint views, the translated policies) and answers the UI's questions from that:

* ``policies()``: one row per NetworkPolicy (networking.k8s.io/v1), with its description (the
  ``picket.dev/description`` annotation), the pods it selects, its policy types, rule counts and
  the compiler's problems.
* ``groups()`` / ``matrix(port, protocol, expanded)``: endpoints grouped by namespace and labels
  (pods of one workload have the same labels, and no selector can tell them apart; only an ipBlock
  could), so 1,000 pods stay readable; a group's cell is decided on its first pods, an expanded
  group shows each pod.
* ``explain(...)``: ``Explainer.explain`` as JSON.
* ``preview(policy, original)``: what saving an edited policy would change. An
  ``IncrementalCompiler`` holding the same state takes the edited policy as one event; the
  endpoints its ``Delta`` names are the only ones whose rule sets change, so before/after cells are
  computed only for rows (egress) and columns (ingress) of those endpoints, on the ports the policy
  mentions; then the original is put back (another event). Selected pods, validation, the
  compiler's problems and the warnings of ``insight`` come with it.

Pure apart from time measurement: no I/O. Used by ``ui.server``; the store (file or API server)
builds a new ``Workbench`` whenever the cluster's objects change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from picket.evaluating import connection_allowed, verdict
from picket.failsafe import Failsafe
from picket.model import Compiled, Direction, EndpointRules, PeerSet, Protocol, stable_hash
from picket_operator.compiler.explaining import Explainer
from picket_operator.compiler.frontends import registry as frontends
from picket_operator.compiler.incremental import IncrementalCompiler
from picket_operator.compiler.planning import PolicyPlan, selects
from picket_operator.compiler.views import PodView
from picket_operator.ui import insight

K8S_API = "networking.k8s.io/v1"
Memo = dict[tuple[int, str, Protocol, int], bool]  # (id of a rule set, peer IP, protocol, port) -> allowed
MAX_PREVIEW_PORTS = 4


def is_network_policy(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "NetworkPolicy" and obj.get("apiVersion") == K8S_API


def object_id(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    """(kind with group, namespace, name): how the store files objects."""
    meta = obj.get("metadata") or {}
    kind = str(obj.get("kind", ""))
    group = frontends.group_of(obj)
    namespace = str(meta.get("namespace") or ("default" if kind in ("Pod", "NetworkPolicy") else ""))
    return (f"{kind}.{group}" if group else kind, namespace, str(meta.get("name", "")))


def clean_policy(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What the user edits: apiVersion, kind, name, namespace, labels, annotations, spec."""
    meta = obj.get("metadata") or {}
    out_meta: dict[str, Any] = {"name": meta.get("name", ""), "namespace": meta.get("namespace") or "default"}
    for key in ("labels", "annotations"):
        value = {k: v for k, v in (meta.get(key) or {}).items()
                 if k != "kubectl.kubernetes.io/last-applied-configuration"}
        if value:
            out_meta[key] = value
    return {"apiVersion": K8S_API, "kind": "NetworkPolicy", "metadata": out_meta, "spec": obj.get("spec") or {}}


def to_yaml(obj: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(obj), sort_keys=False, default_flow_style=False)


@dataclass(frozen=True)
class Group:
    id: str
    namespace: str
    labels: Mapping[str, str]
    members: tuple[str, ...]

    @property
    def title(self) -> str:
        if len(self.members) == 1:
            return self.members[0]
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.labels.items())) or "no labels"
        return f"{self.namespace or 'hosts'}: {shown} ({len(self.members)} pods)"

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "namespace": self.namespace, "title": self.title, "members": list(self.members),
                "labels": dict(self.labels)}


class Workbench:
    def __init__(self, objects: Iterable[Mapping[str, Any]], failsafe: Failsafe | None = None,
                 compiled_nodes: Iterable[Mapping[str, Any]] | None = None) -> None:
        self.objects = [dict(o) for o in objects]
        # The agents' side (live clusters): CompiledNode objects with their status; None offline.
        self.compiled_nodes = None if compiled_nodes is None else [dict(o) for o in compiled_nodes]
        self.failsafe = failsafe
        self.explainer = Explainer(self.objects, failsafe)
        self.compiled: Compiled = self.explainer.compiled
        self.views: dict[str, PodView] = self.explainer.views
        self._plans_by_key: dict[tuple[str, str, str], PolicyPlan] = {
            plan.policy.key: plan for plan in self.explainer.plans.values()}
        self._fast_sets = fast_peer_sets(self.compiled.peer_sets)
        self._groups = _group(self.compiled, self.views)
        self._group_of = {m: g for g in self._groups for m in g.members}
        self._group_by_id = {g.id: g for g in self._groups}
        self.declared = declared_ports(self.objects)
        self._incremental: IncrementalCompiler | None = None
        self._rows: list[dict[str, Any]] | None = None
        self._applied: set[str] | None = None
        self._lock = threading.Lock()

    # -- policies -------------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        names = {str((o.get("metadata") or {}).get("name")) for o in self.objects if o.get("kind") == "Namespace"}
        names |= {v.namespace for v in self.views.values() if v.namespace}
        names |= {object_id(o)[1] for o in self.objects if is_network_policy(o)}
        return sorted(names)

    def policy_objects(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if is_network_policy(o)]

    def find_policy(self, namespace: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.policy_objects() if object_id(o)[1:] == (namespace, name)), None)

    def selected_by(self, policy: Mapping[str, Any]) -> list[str]:
        translation = frontends.translate(policy)
        if translation.policy is None:
            return []
        plan = PolicyPlan(translation.policy)
        return sorted(k for k, v in self.views.items() if selects(plan, v))

    def _selected_by_key(self, key: tuple[str, str, str]) -> list[str]:
        plan = self._plans_by_key.get(key)
        if plan is None:
            return []
        return sorted(k for k, v in self.views.items() if selects(plan, v))

    def policies(self, namespace: str | None = None) -> list[dict[str, Any]]:
        if self._rows is None:
            self._rows = self._policy_rows()
        return [r for r in self._rows if not namespace or r["namespace"] == namespace]

    def _policy_rows(self) -> list[dict[str, Any]]:
        rows = []
        for obj in self.policy_objects():
            _, ns, name = object_id(obj)
            spec = obj.get("spec") or {}
            selected = self._selected_by_key(frontends.policy_key(obj))
            problems = [f"{p.field}: {p.message}" for p in self.compiled.problems
                        if (p.namespace, p.name) == (ns, name) and p.kind == "NetworkPolicy"]
            annotations = (obj.get("metadata") or {}).get("annotations") or {}
            rows.append({
                "namespace": ns, "name": name, "description": annotations.get(insight.DESCRIPTION, ""),
                "selected": selected, "selectedCount": len(selected),
                "policyTypes": insight.effective_types(spec), "explicitTypes": bool(spec.get("policyTypes")),
                "ingressRules": len(spec.get("ingress") or []), "egressRules": len(spec.get("egress") or []),
                "problems": problems, "policy": clean_policy(obj),
                "applied": self.applied_count(selected),
            })
        return sorted(rows, key=lambda r: (r["namespace"], r["name"]))

    def applied_count(self, keys: Iterable[str]) -> dict[str, int] | None:
        """Of these endpoints, how many the agents enforce as compiled here (None: offline)."""
        if self.compiled_nodes is None:
            return None
        if self._applied is None:
            self._applied = applied_endpoints(self.compiled, self.compiled_nodes)
        wanted = list(keys)
        return {"applied": sum(1 for k in wanted if k in self._applied), "of": len(wanted)}

    # -- matrix ---------------------------------------------------------------------------------

    def groups(self) -> list[Group]:
        return list(self._groups)

    def items(self, expanded: Iterable[str] = ()) -> list[dict[str, Any]]:
        """Matrix rows/columns: groups, or their pods when the group is expanded."""
        open_ = set(expanded)
        out: list[dict[str, Any]] = []
        for g in self._groups:
            if g.id in open_ or len(g.members) == 1:
                out += [{"id": m, "title": m, "group": g.id, "namespace": g.namespace, "pod": True,
                         "size": 1, "expandable": len(g.members) > 1} for m in g.members]
            else:
                out.append({"id": g.id, "title": g.title, "group": g.id, "namespace": g.namespace, "pod": False,
                            "size": len(g.members), "expandable": True})
        return out

    def pair(self, src_item: str, dst_item: str) -> tuple[str, str]:
        """The endpoints a cell is decided on: a pod itself, or a group's first members."""
        src = self._representative(src_item, 0)
        dst = self._representative(dst_item, 0)
        if src == dst and not self._is_pod(dst_item):
            dst = self._representative(dst_item, 1)
        return src, dst

    def _is_pod(self, item: str) -> bool:
        return item in self.compiled.endpoints

    def _representative(self, item: str, index: int) -> str:
        if item in self.compiled.endpoints:
            return item
        group = self._group_by_id[item]
        return group.members[min(index, len(group.members) - 1)]

    def matrix(self, protocol: Protocol, port: int, expanded: Iterable[str] = ()) -> dict[str, Any]:
        items = self.items(expanded)
        ids = [i["id"] for i in items]
        allowed: dict[str, dict[str, bool]] = {}
        for s in ids:
            row = allowed[s] = {}
            for d in ids:
                src, dst = self.pair(s, d)
                row[d] = self._allowed(src, dst, protocol, port, self.compiled.endpoints, self._fast_sets)
        return {"protocol": protocol.value, "port": port, "items": items, "allowed": allowed}

    @staticmethod
    def _allowed(src: str, dst: str, protocol: Protocol, port: int, endpoints: Mapping[str, EndpointRules],
                 peer_sets: Mapping[str, PeerSet], memo: Memo | None = None) -> bool:
        """Sender's egress AND receiver's ingress (``picket.evaluating.verdict``), memoised per rule set
        and peer when ``memo`` is given (one memo per set of peer sets: rule sets are immutable)."""
        if src == dst:
            return True
        s, d = endpoints[src], endpoints[dst]
        if memo is None:
            ok, _, _ = connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0], protocol, port, peer_sets)
            return ok
        for rule_set, peer_ip in ((s.egress, d.endpoint.ips[0]), (d.ingress, s.endpoint.ips[0])):
            if rule_set is None:
                continue
            key = (id(rule_set), peer_ip, protocol, port)
            found = memo.get(key)
            if found is None:
                found = memo[key] = verdict(rule_set, peer_ip, protocol, port, peer_sets).allowed
            if not found:
                return False
        return True

    def explain(self, src: str, dst: str, protocol: Protocol, port: int) -> dict[str, Any]:
        """Explain a cell: items (groups) are explained on the pods that decide the cell."""
        s, d = (src, dst) if _is_address(src) or _is_address(dst) else self.pair(src, dst)
        explanation = self.explainer.explain(s, d, protocol, port)
        out = explanation.to_dict()
        out["text"] = explanation.to_text()
        return out

    # -- editing --------------------------------------------------------------------------------

    def warm(self) -> None:
        """Load the incremental compiler now (in a background thread), so the first preview is fast."""
        with self._lock:
            self._inc()

    def _inc(self) -> IncrementalCompiler:
        if self._incremental is None:
            inc = IncrementalCompiler(self.failsafe)
            for obj in self.objects:
                kind = obj.get("kind")
                if kind == "Namespace" and frontends.group_of(obj) == "":
                    inc.upsert_namespace(obj)
                elif kind == "Pod" and frontends.group_of(obj) == "":
                    inc.upsert_pod(obj)
                else:
                    inc.upsert_policy(obj)
            self._incremental = inc
        return self._incremental

    def preview(self, policy: Mapping[str, Any], original: tuple[str, str] | None = None) -> dict[str, Any]:
        """What saving ``policy`` (replacing the policy ``original`` = (namespace, name)) would change."""
        edited = dict(policy)
        validation = [{"field": f, "message": m} for f, m in insight.validate(edited)]
        old = self.find_policy(*original) if original else None
        key = frontends.policy_key(edited)
        same = self.find_policy(key[1], key[2])
        with self._lock:
            inc = self._inc()
            removed = None
            deltas = []
            if old is not None and frontends.policy_key(old) != key:  # renamed or moved: the old one goes
                removed = old
                deltas.append(inc.delete_policy(*frontends.policy_key(old)))
            delta = inc.upsert_policy(edited)
            deltas.append(delta)
            changed = sorted({k for d in deltas for k in d.endpoints_changed | d.endpoints_removed
                              if k in self.compiled.endpoints})
            after_endpoints = {k: inc.endpoint_rules(k) for k in changed}
            after_sets = dict(self._fast_sets)
            for name in {n for d in deltas for n in d.peer_sets_changed}:
                peer_set = inc.peer_set(name)
                if peer_set is not None:
                    after_sets[name] = fast_peer_sets({name: peer_set})[name]
            problems = list(delta.problems)
            # Put the cluster's own state back.
            if same is not None:
                inc.upsert_policy(same)
            else:
                inc.delete_policy(*key)
            if removed is not None:
                inc.upsert_policy(removed)
        selected = self.selected_by(edited)
        compiler_warnings = [f"{p.field}: {p.message}" for p in problems if "matches nothing" in p.message]
        errors = [{"field": p.field, "message": p.message} for p in problems if "matches nothing" not in p.message]
        ports = self._mentioned_ports(edited, old, changed)
        impact = self._impact(changed, after_endpoints, after_sets, ports)
        return {
            "policy": edited, "yaml": to_yaml(edited), "validation": validation, "problems": errors,
            "selected": selected, "warnings": insight.warnings(edited, selected, compiler_warnings),
            "changedEndpoints": changed, "impact": impact,
        }

    def _mentioned_ports(self, policy: Mapping[str, Any], old: Mapping[str, Any] | None,
                         changed: list[str]) -> list[tuple[Protocol, int]]:
        found: dict[tuple[Protocol, int], None] = {}
        for obj in (policy, old or {}):
            spec = obj.get("spec") or {}
            for field in ("ingress", "egress"):
                for rule in spec.get(field) or []:
                    for p in (rule or {}).get("ports") or []:
                        if not isinstance(p, Mapping):
                            continue
                        try:
                            proto = Protocol(str(p.get("protocol") or "TCP"))
                        except ValueError:
                            continue
                        number = p.get("port")
                        if isinstance(number, int) and 0 < number <= 65535:
                            found[(proto, number)] = None
                        elif isinstance(number, str):
                            for view in self.views.values():
                                for resolved in view.resolve_all(number, proto):
                                    found[(proto, resolved)] = None
        if not found:  # a policy without ports (deny-all, allow-all): the affected pods' own ports
            for key in changed:
                own = self.views.get(key)
                for np in own.named_ports if own else ():
                    found[(np.protocol, np.port)] = None
        if not found:
            found[(Protocol.TCP, 80)] = None
        return list(found)[:MAX_PREVIEW_PORTS]

    def _impact(self, changed: list[str], after_endpoints: Mapping[str, EndpointRules | None],
                after_sets: Mapping[str, PeerSet], ports: list[tuple[Protocol, int]]) -> list[dict[str, Any]]:
        """Before/after tables: sources (groups) -> changed receivers, changed senders -> destinations."""
        before_eps = self.compiled.endpoints
        after_eps = {**before_eps, **{k: v for k, v in after_endpoints.items() if v is not None}}
        tables = []
        # Rule sets are immutable and an edit only adds or drops peer sets (members change with pods, not
        # policies), so a rule set's verdict for a peer is the same before and after unless it changed.
        before_memo: Memo = {}
        after_memo = before_memo
        for direction in (Direction.INGRESS, Direction.EGRESS):
            touched = [k for k in changed
                       if (before_eps[k].rule_set(direction) != (after_eps[k].rule_set(direction)))]
            if not touched:
                continue
            touched_groups = _dedupe(self._group_of[k].id if len(self._group_of[k].members) > 1 and all(
                m in touched for m in self._group_of[k].members) else k for k in touched)
            others = [g.id for g in self._groups]
            rows, cols = (others, touched_groups) if direction is Direction.INGRESS else (touched_groups, others)
            for proto, port in ports:
                before: dict[str, dict[str, bool]] = {}
                after: dict[str, dict[str, bool]] = {}
                changes = 0
                for r in rows:
                    before[r], after[r] = {}, {}
                    for c in cols:
                        s, d = self.pair(r, c)
                        b = self._allowed(s, d, proto, port, before_eps, self._fast_sets, before_memo)
                        a = self._allowed(s, d, proto, port, after_eps, after_sets, after_memo)
                        before[r][c], after[r][c] = b, a
                        changes += b != a
                tables.append({"direction": direction.value, "protocol": proto.value, "port": port,
                               "rows": [self._title(r) for r in rows], "cols": [self._title(c) for c in cols],
                               "rowIds": rows, "colIds": cols, "before": before, "after": after,
                               "changed": changes})
        return tables

    def _title(self, item: str) -> dict[str, str]:
        if item in self.compiled.endpoints:
            return {"id": item, "title": item}
        return {"id": item, "title": self._group_by_id[item].title}


def applied_endpoints(compiled: Compiled, nodes: Iterable[Mapping[str, Any]]) -> set[str]:
    """Endpoints whose node's agent reports the current version applied and whose binding there names
    exactly the rule sets compiled here (content-addressed: ``publishing.objects.rule_set_name``).

    So a pod counts once the operator has published this state of the policies AND its agent
    enforces it; a pod whose agent is behind, or whose rule sets the operator has not caught up
    with, does not."""
    from picket_operator.publishing.objects import rule_set_name

    out: set[str] = set()
    for node in nodes:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        if status.get("applied") != "True" or status.get("appliedVersion") != spec.get("version"):
            continue
        for row in spec.get("endpoints") or []:
            name = row.get("name")
            key = f"host/{name}" if row.get("kind") == "Host" else f"{row.get('namespace')}/{name}"
            rules = compiled.endpoints.get(key)
            if rules is None:
                continue
            want = {d: rule_set_name(rs) if rs is not None else None
                    for d, rs in (("ingress", rules.ingress), ("egress", rules.egress))}
            if all(row.get(d) == name for d, name in want.items()):
                out.add(key)
    return out


def declared_ports(objects: Iterable[Mapping[str, Any]]) -> dict[str, set[tuple[Protocol, int]]]:
    """Each pod's declared container ports: where a probe can expect a listener."""
    out: dict[str, set[tuple[Protocol, int]]] = {}
    for obj in objects:
        if obj.get("kind") != "Pod":
            continue
        meta = obj.get("metadata") or {}
        ports = out.setdefault(f"{meta.get('namespace') or 'default'}/{meta.get('name')}", set())
        for container in (obj.get("spec") or {}).get("containers") or []:
            for p in container.get("ports") or []:
                try:
                    ports.add((Protocol(str(p.get("protocol") or "TCP")), int(p["containerPort"])))
                except (KeyError, TypeError, ValueError):
                    continue
    return out


def fast_peer_sets(peer_sets: Mapping[str, PeerSet]) -> dict[str, PeerSet]:
    """The same peer sets with hashed members: ``picket.evaluating`` tests membership with ``in``,
    which is linear on the model's tuples; the UI evaluates tens of thousands of cells."""
    return {name: replace(ps, members=frozenset(ps.members))  # type: ignore[arg-type]
            for name, ps in peer_sets.items()}


def _dedupe(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _is_address(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _group(compiled: Compiled, views: Mapping[str, PodView]) -> tuple[Group, ...]:
    by_key: dict[tuple[str, tuple[tuple[str, str], ...]], list[str]] = {}
    for key in sorted(compiled.endpoints):
        view = views.get(key)
        labels = tuple(sorted(view.labels.items())) if view else ()
        namespace = view.namespace if view else compiled.endpoints[key].endpoint.namespace
        by_key.setdefault((namespace, labels), []).append(key)
    groups = []
    for (namespace, labels), members in sorted(by_key.items(), key=lambda kv: (kv[0][0] == "", kv[0][0], kv[1][0])):
        gid = f"group:{namespace or 'hosts'}:{stable_hash([namespace, labels], 8)}"
        groups.append(Group(gid, namespace, dict(labels), tuple(members)))
    return tuple(groups)
