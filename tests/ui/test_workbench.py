"""The workbench's preview against a full recompile, and the editor's warnings (pure, no browser)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picket.model import Protocol
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.ui import insight
from picket_operator.ui.workbench import Workbench, object_id
from tests.unit.operator.compiler.builders import compiled_allows
from tests.unit.operator.compiler.strategies import clusters, policies


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clusters(), policies("edited"), st.booleans())
def test_preview_after_cells_equal_a_full_compile_with_the_edit(objects: list[dict[str, Any]],
                                                                edited: dict[str, Any], replace: bool) -> None:
    """Every before/after cell of the preview: before = the cluster compiled, after = the cluster with the
    edited policy (replacing an existing one, or added) compiled from scratch; and the preview leaves the
    workbench's incremental state as it found it."""
    bench = Workbench(objects)
    existing = [o for o in objects if o.get("kind") == "NetworkPolicy"]
    original = None
    if replace and existing:
        original = object_id(existing[0])[1:]
    after_objects = [o for o in objects if original is None or object_id(o)[1:] != original] + [edited]
    after = compile_cluster(after_objects)
    before = bench.compiled
    preview = bench.preview(edited, original)
    for table in preview["impact"]:
        proto, port = Protocol(table["protocol"]), table["port"]
        for r in table["rowIds"]:
            for c in table["colIds"]:
                src, dst = bench.pair(r, c)
                assert table["before"][r][c] == compiled_allows(before, src, dst, port, proto.value)
                assert table["after"][r][c] == compiled_allows(after, src, dst, port, proto.value), (src, dst)
    # Endpoints outside the Delta did not change at all.
    changed = set(preview["changedEndpoints"])
    for key, rules in before.endpoints.items():
        if key not in changed:
            assert after.endpoints[key] == rules, key
    # The incremental state was restored: previewing the cluster's own policy changes nothing.
    if existing:
        again = bench.preview(existing[0], object_id(existing[0])[1:])
        assert again["changedEndpoints"] == []


def policy(spec: dict[str, Any], name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "x"}, "spec": spec}


def test_warnings_name_what_people_get_wrong() -> None:
    and_peer = {"podSelector": {"matchLabels": {"app": "web"}}, "namespaceSelector": {"matchLabels": {"team": "a"}}}
    text = "\n".join(insight.warnings(policy({"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                                              "ingress": [{"from": [and_peer, {"namespaceSelector": {}}]}]}), []))
    assert "selects no pod" in text
    assert "The Pod Selector is empty ({}): the policy selects every pod in namespace x" in text
    assert "its 2 sources are ORed" in text
    assert "Pod Selector AND Namespace Selector: only pods with app=web in namespaces with team=a" in text
    assert "the namespace selector {} selects every pod in every namespace" in text
    assert "Egress isolation without DNS" in text and "Egress deny-all" in text
    dns = policy({"podSelector": {"matchLabels": {"a": "b"}}, "policyTypes": ["Egress"],
                  "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]})
    assert not [w for w in insight.warnings(dns, ["x/a"]) if "DNS" in w]


def test_validation_reports_api_server_rules_by_json_path() -> None:
    bad = policy({"podSelector": {"matchLabels": {"bad key!": "v", "ok": "bad value!"}},
                  "ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]}, name="Bad")
    found = dict(insight.validate(bad))
    assert "metadata.name" in found
    assert "the name must be 1-63" in found["spec.podSelector.matchLabels"]
    assert "label value 'bad value!'" in found["spec.podSelector.matchLabels.ok"]
    assert "cannot be combined" in found["spec.ingress[0].from[0]"]
    assert insight.validate(policy({"podSelector": {"matchLabels": {"service.corp/users-api-role": "API"}}})) == []


def test_lab_drop_lines_name_endpoint_direction_and_policy() -> None:
    from picket_lab.uiprobe import LabProber, lab_prober

    key = ("pkt-node-1", "picket_dropped_packets_total",
           "direction=ingress,endpoint=project-a/users-api,policy=tier kubernetes default")
    other = ("pkt-node-1", "picket_dropped_packets_total",
             "direction=egress,endpoint=x/a,policy=tier kubernetes default")
    lines = LabProber.drop_lines({key: 2.0, other: 5.0}, {key: 5.0, other: 5.0})
    assert lines == ["project-a/users-api ingress: tier kubernetes default +3 packets (pkt-node-1)"]
    assert lab_prober(["--cluster", "x.yaml"], None) is None  # offline: nothing to probe


def test_applied_counts_pods_whose_agent_enforces_what_is_compiled_here() -> None:
    from picket_operator.publishing.objects import binding_row, node_object, rule_set_name
    from tests.ui.conftest import seed_objects

    objects = seed_objects("seed004-database-access-api-only", True)
    compiled = compile_cluster(objects)

    def nodes(state: Any, applied: bool = True) -> list[dict[str, Any]]:
        rows: dict[str, list[dict[str, Any]]] = {}
        for er in state.endpoints.values():
            names = [rule_set_name(rs) if rs is not None else None for rs in (er.ingress, er.egress)]
            rows.setdefault(er.endpoint.node, []).append(binding_row(er, *names))
        out = []
        for node, node_rows in rows.items():
            obj = node_object(node, node_rows)
            version = obj["spec"]["version"] if applied else "older"
            out.append({**obj, "status": {"applied": "True", "appliedVersion": version}})
        return out

    def row(bench: Workbench) -> Any:
        return next(r for r in bench.policies() if r["name"] == "database-access-api-only")["applied"]

    assert row(Workbench(objects)) is None  # offline
    assert row(Workbench(objects, None, nodes(compiled))) == {"applied": 1, "of": 1}
    assert row(Workbench(objects, None, nodes(compiled, applied=False))) == {"applied": 0, "of": 1}
    without = compile_cluster([o for o in objects if o.get("kind") != "NetworkPolicy"])
    assert row(Workbench(objects, None, nodes(without))) == {"applied": 0, "of": 1}  # operator not caught up
