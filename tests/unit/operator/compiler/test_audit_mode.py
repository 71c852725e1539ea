"""Audit (staged) mode in the compiler: ``picket.dev/audit: "true"`` on a NetworkPolicy puts it in
the endpoints' staged rule sets only. The enforced rule sets are exactly those without the
policy; the staged ones exactly those with it enforced; the incremental compiler agrees."""

from __future__ import annotations

import copy
from typing import Any

from picket.evaluating import connection_allowed
from picket.model import Compiled, Direction, Protocol
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import IncrementalCompiler
from tests.unit.operator.compiler.builders import make_ns, make_pod, make_policy


def staged(policy: dict[str, Any], value: str = "true") -> dict[str, Any]:
    out = copy.deepcopy(policy)
    out["metadata"]["annotations"] = {"picket.dev/audit": value}
    return out


WORLD = [
    make_ns("x"),
    make_pod("x", "a", "10.0.0.1", {"app": "web"}),
    make_pod("x", "b", "10.0.0.2", {"app": "client"}),
    make_pod("x", "c", "10.0.0.3", {"app": "other"}),
]
DENY_ALL = make_policy("x", "deny-all", {"matchLabels": {"app": "web"}}, policy_types=["Ingress"])
ALLOW_CLIENT = make_policy("x", "allow-client", {"matchLabels": {"app": "web"}},
                           ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}])


def allows(c: Compiled, src: str, dst: str) -> bool:
    s, d = c.endpoints[src], c.endpoints[dst]
    return connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0], Protocol.TCP, 80, c.peer_sets)[0]


def test_a_staged_default_deny_is_compiled_but_not_enforced() -> None:
    c = compile_cluster([*WORLD, staged(DENY_ALL)])
    assert not c.problems
    a = c.endpoints["x/a"]
    assert a.ingress is None and a.staged_ingress is not None and a.staged_egress is None
    assert allows(c, "x/b", "x/a") and not allows(c.staged(), "x/b", "x/a")
    assert c.has_staged() and not compile_cluster([*WORLD, DENY_ALL]).has_staged()
    # the staged rule set is what the policy would compile to if it were enforced
    assert a.staged_ingress == compile_cluster([*WORLD, DENY_ALL]).endpoints["x/a"].ingress


def test_staged_and_enforced_policies_together() -> None:
    c = compile_cluster([*WORLD, ALLOW_CLIENT, staged(make_policy("x", "deny-all", {}, policy_types=["Ingress"]))])
    enforced_only = compile_cluster([*WORLD, ALLOW_CLIENT])
    for key in ("x/a", "x/b", "x/c"):
        assert c.endpoints[key].ingress == enforced_only.endpoints[key].ingress
    assert allows(c, "x/c", "x/b") and not allows(c.staged(), "x/c", "x/b")  # only the staged deny-all isolates b
    assert allows(c.staged(), "x/b", "x/a") and not allows(c.staged(), "x/c", "x/a")
    assert c.endpoints["x/a"].staged_ingress is not None  # a's rule set gains the staged policy
    # serialised only when present, and read back
    data = c.to_dict()
    assert "stagedIngress" in next(e for e in data["endpoints"] if e["endpoint"]["name"] == "a")
    assert "stagedIngress" not in enforced_only.to_dict()["endpoints"][0]
    assert Compiled.from_dict(data) == c


def test_annotation_false_enforces_and_a_bad_value_is_a_problem() -> None:
    assert compile_cluster([*WORLD, staged(DENY_ALL, "false")]).endpoints["x/a"].ingress is not None
    bad = compile_cluster([*WORLD, staged(DENY_ALL, "yes")])
    assert [p.field for p in bad.problems] == ["metadata.annotations['picket.dev/audit']"]
    assert bad.endpoints["x/a"].ingress is None and bad.endpoints["x/a"].staged_ingress is None


def test_for_node_keeps_the_peer_sets_of_staged_rule_sets() -> None:
    c = compile_cluster([*WORLD, staged(ALLOW_CLIENT)])
    node = c.for_node("node-1")
    rs = node.endpoints["x/a"].rule_set(Direction.INGRESS, staged=True)
    assert rs is not None and rs.peer_set_names() and rs.peer_set_names() <= set(node.peer_sets)


def test_incremental_compiler_equals_the_full_compile_with_staged_policies() -> None:
    inc = IncrementalCompiler()
    world: list[dict[str, Any]] = []
    for obj in WORLD:
        world.append(obj)
        (inc.upsert_namespace if obj["kind"] == "Namespace" else inc.upsert_pod)(obj)
    for policy in (staged(DENY_ALL), ALLOW_CLIENT, make_policy("x", "deny-all", {"matchLabels": {"app": "web"}},
                                                                policy_types=["Ingress"])):
        world = [o for o in world if o["metadata"].get("name") != policy["metadata"]["name"]] + [policy]
        inc.upsert_policy(policy)
        assert inc.snapshot() == compile_cluster(world), policy["metadata"]
    world = [o for o in world if o["metadata"].get("name") != "allow-client"]
    inc.delete_policy("NetworkPolicy", "x", "allow-client")
    assert inc.snapshot() == compile_cluster(world)


def test_published_endpoint_carries_staged_rule_sets_valid_for_the_crd() -> None:
    from picket_operator.publishing import objects as publishing
    from tests.unit.operator.compiler.test_publishing import validator

    c = compile_cluster([*WORLD, ALLOW_CLIENT, staged(make_policy("x", "deny-all", {}, policy_types=["Ingress"]))])
    for er in c.endpoints.values():
        obj = publishing.endpoint_object(er)
        validator("CompiledEndpoint").validate(obj)
        assert publishing.endpoint_from_object(obj) == er
    assert "stagedIngress" in publishing.endpoint_object(c.endpoints["x/b"])["spec"]


def test_matrix_shows_staged_verdicts_separately(capsys: Any) -> None:
    import json
    from pathlib import Path

    from picket_operator.commands import matrix

    example = str(Path(__file__).resolve().parents[4] / "examples/audit/cluster.yaml")
    assert matrix.main(["--cluster", example, "--format", "json"]) == 0
    grid = json.loads(capsys.readouterr().out)
    assert grid["allowed"]["shop/batch"]["shop/web"] is True  # nothing enforced yet
    assert grid["staged"]["shop/batch"]["shop/web"] is False and grid["staged"]["shop/client"]["shop/web"] is True
    assert matrix.main(["--cluster", example]) == 0
    text = capsys.readouterr().out
    assert "staged (audit mode" in text and "X!" in text
    assert matrix.main(["--cluster", example.replace("audit/cluster", "model-cluster")]) == 0
    assert "staged" not in capsys.readouterr().out
