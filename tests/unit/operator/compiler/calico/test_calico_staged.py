"""Calico's staged kinds (audit mode): ``StagedNetworkPolicy``, ``StagedGlobalNetworkPolicy`` and
``StagedKubernetesNetworkPolicy`` compile exactly as the enforced kind they stage, into the staged
rule sets only: the enforced rule sets are those of the cluster without them. ``stagedAction:
Delete`` is rejected with a problem on that field. The CRDs accept the example and the matrix
shows its staged grid."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from picket.model import Compiled, Direction
from picket_operator.commands import matrix
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.frontends import registry
from picket_operator.compiler.incremental import IncrementalCompiler
from tests.unit.operator.compiler.builders import make_ns, make_pod, make_policy
from tests.unit.operator.compiler.calico.test_calico_crds import validate

API = "projectcalico.org/v3"
EXAMPLE = Path(__file__).resolve().parents[5] / "examples" / "audit" / "calico-cluster.yaml"
WORLD = [
    make_ns("x", {"team": "x"}),
    make_ns("y"),
    make_pod("x", "a", "10.0.0.1", {"app": "web"}),
    make_pod("x", "b", "10.0.0.2", {"app": "client"}),
    make_pod("y", "c", "10.0.0.3", {"app": "client"}),
]
ALLOW_CLIENT = make_policy("x", "allow-client", {"matchLabels": {"app": "web"}},
                           ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}])
CALICO_SPEC = {"order": 10, "selector": "app == 'web'", "types": ["Ingress"],
               "ingress": [{"action": "Deny", "source": {"selector": "app == 'client'", "namespaceSelector": "all()"}},
                           {"action": "Allow"}]}


def calico(kind: str, name: str, spec: dict[str, Any], namespace: str | None = "x") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": API, "kind": kind, "metadata": meta, "spec": copy.deepcopy(spec)}


def staged_k8s(policy: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "StagedKubernetesNetworkPolicy",
            "metadata": copy.deepcopy(policy["metadata"]), "spec": {**copy.deepcopy(policy["spec"]), **spec}}


# (staged object, the enforced object it stages, the display its rule-set entries carry)
CASES = {
    "StagedNetworkPolicy": (calico("StagedNetworkPolicy", "p", {**CALICO_SPEC, "stagedAction": "Set"}),
                            calico("NetworkPolicy", "p", CALICO_SPEC), "StagedNetworkPolicy x/p"),
    "StagedGlobalNetworkPolicy": (calico("StagedGlobalNetworkPolicy", "p", CALICO_SPEC, None),
                                  calico("GlobalNetworkPolicy", "p", CALICO_SPEC, None), "StagedGlobalNetworkPolicy p"),
    "StagedKubernetesNetworkPolicy": (staged_k8s(ALLOW_CLIENT, stagedAction="Set"), ALLOW_CLIENT,
                                      "StagedKubernetesNetworkPolicy x/allow-client"),
}


def renamed(rule_set: Any, display: str) -> Any:
    """The enforced kind's rule set, its entries named as the staged kind names them."""
    text = json.dumps(rule_set.to_dict())
    for enforced in ("GlobalNetworkPolicy p", "NetworkPolicy x/p", "NetworkPolicy x/allow-client"):
        text = text.replace(f'"{enforced}"', f'"{display}"')
    return type(rule_set).from_dict(json.loads(text))


@pytest.mark.parametrize("kind", sorted(CASES))
def test_a_staged_kind_compiles_as_its_enforced_kind_into_staged_rule_sets_only(kind: str) -> None:
    staged, enforced, display = CASES[kind]
    base = compile_cluster(WORLD)
    with_staged = compile_cluster([*WORLD, staged])
    as_enforced = compile_cluster([*WORLD, enforced])
    assert not with_staged.problems and not as_enforced.problems
    for key, er in with_staged.endpoints.items():
        assert (er.ingress, er.egress) == (base.endpoints[key].ingress, base.endpoints[key].egress), key
    a = with_staged.endpoints["x/a"]
    expected = as_enforced.endpoints["x/a"].ingress
    assert expected is not None and a.staged_ingress == renamed(expected, display)
    assert a.staged_egress is None and with_staged.endpoints["x/b"].staged_ingress is None
    assert a.staged_ingress.tiers[0].policies[0].policy == display


def test_staged_and_enforced_calico_policies_keep_the_enforced_kinds_order() -> None:
    """A staged order-10 Deny sits before the enforced Kubernetes NetworkPolicy (order 1000) in the
    staged rule set, as the enforced Calico policy would: the client is allowed now, denied staged."""
    staged = calico("StagedNetworkPolicy", "p", CALICO_SPEC)
    c = compile_cluster([*WORLD, ALLOW_CLIENT, staged])
    rs = c.endpoints["x/a"].rule_set(Direction.INGRESS, staged=True)
    assert rs is not None
    assert [p.policy for p in rs.tiers[0].policies] == ["StagedNetworkPolicy x/p", "NetworkPolicy x/allow-client"]
    assert c.endpoints["x/a"].ingress == compile_cluster([*WORLD, ALLOW_CLIENT]).endpoints["x/a"].ingress
    assert allows(c, "x/b", "x/a") and not allows(c.staged(), "x/b", "x/a")


def allows(c: Compiled, src: str, dst: str) -> bool:
    from picket.evaluating import connection_allowed
    from picket.model import Protocol

    s, d = c.endpoints[src], c.endpoints[dst]
    return connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0], Protocol.TCP, 80, c.peer_sets)[0]


@pytest.mark.parametrize("kind", sorted(CASES))
def test_staged_action_delete_is_rejected_on_its_field(kind: str) -> None:
    staged = copy.deepcopy(CASES[kind][0])
    staged["spec"]["stagedAction"] = "Delete"
    c = compile_cluster([*WORLD, staged])
    assert [(p.kind, p.field) for p in c.problems] == [(kind, "spec.stagedAction")]
    assert "Delete" in c.problems[0].message and "not supported by picket" in c.problems[0].message
    assert not c.has_staged()


def test_a_bad_staged_action_and_the_enforced_frontends_problems_name_the_staged_kind() -> None:
    bad_action = calico("StagedNetworkPolicy", "p", {**CALICO_SPEC, "stagedAction": "Maybe"})
    assert [(p.kind, p.field) for p in compile_cluster([*WORLD, bad_action]).problems] == [
        ("StagedNetworkPolicy", "spec.stagedAction")]
    bad_selector = calico("StagedGlobalNetworkPolicy", "g", {"selector": "app = 'web'"}, None)
    problems = compile_cluster([*WORLD, bad_selector]).problems
    assert [(p.kind, p.namespace, p.name, p.field) for p in problems] == [
        ("StagedGlobalNetworkPolicy", "", "g", "spec.selector")]
    bad_k8s = staged_k8s(ALLOW_CLIENT, policyTypes=["Sideways"])
    assert [(p.kind, p.field) for p in compile_cluster([*WORLD, bad_k8s]).problems] == [
        ("StagedKubernetesNetworkPolicy", "spec.policyTypes[0]")]


def test_the_audit_annotation_adds_nothing_to_a_staged_kind() -> None:
    staged = staged_k8s(ALLOW_CLIENT)
    staged["metadata"]["annotations"] = {"picket.dev/audit": "no"}
    c = compile_cluster([*WORLD, staged])
    assert not c.problems and c.endpoints["x/a"].staged_ingress is not None and c.endpoints["x/a"].ingress is None


def test_registry_keys_the_staged_kinds_by_group() -> None:
    unnamespaced = calico("StagedKubernetesNetworkPolicy", "k", {"podSelector": {}}, None)
    assert registry.policy_key(unnamespaced) == ("StagedKubernetesNetworkPolicy.projectcalico.org", "default", "k")
    assert registry.policy_key(CASES["StagedGlobalNetworkPolicy"][0]) == (
        "StagedGlobalNetworkPolicy.projectcalico.org", "", "p")
    assert all(registry.is_policy(staged) for staged, _, _ in CASES.values())
    assert registry.resolve_kind("StagedNetworkPolicy") == "StagedNetworkPolicy.projectcalico.org"


def test_incremental_compiler_equals_the_full_compile_with_staged_kinds() -> None:
    inc = IncrementalCompiler()
    world: list[dict[str, Any]] = []
    for obj in WORLD:
        world.append(obj)
        (inc.upsert_namespace if obj["kind"] == "Namespace" else inc.upsert_pod)(obj)
    for staged, _, _ in CASES.values():
        world.append(staged)
        inc.upsert_policy(staged)
        assert inc.snapshot() == compile_cluster(world), staged["kind"]
    world = [o for o in world if o["kind"] != "StagedNetworkPolicy"]
    inc.delete_policy("StagedNetworkPolicy", "x", "p")
    assert inc.snapshot() == compile_cluster(world)


def example_docs() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["apiVersion"] == API]


def test_the_crds_accept_the_example_and_reject_a_bad_staged_action() -> None:
    docs = example_docs()
    assert {d["kind"] for d in docs} == set(CASES)
    for doc in docs:
        validate(doc)
    for doc in docs:
        bad = copy.deepcopy(doc)
        bad["spec"]["stagedAction"] = "Maybe"
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)
    k8s = next(d for d in docs if d["kind"] == "StagedKubernetesNetworkPolicy")
    typo = copy.deepcopy(k8s)
    typo["spec"]["egress"][0]["too"] = typo["spec"]["egress"][0].pop("to")
    with pytest.raises(jsonschema.ValidationError):
        validate(typo)
    validate(staged_k8s({**ALLOW_CLIENT, "spec": {**ALLOW_CLIENT["spec"], "ingress": [
        {"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}],
         "ports": [{"protocol": "TCP", "port": "http"}, {"port": 8000, "endPort": 8080}]}]}}))


def test_matrix_staged_grid_of_the_calico_example(capsys: Any) -> None:
    assert matrix.main(["--cluster", str(EXAMPLE), "--format", "json"]) == 0
    grid = json.loads(capsys.readouterr().out)
    assert all(all(row.values()) for row in grid["allowed"].values())  # nothing enforced changes
    blocked = {(s, d) for s, row in grid["staged"].items() for d, ok in row.items() if not ok}
    assert blocked == {("shop/batch", "shop/web"), ("shop/batch", "shop/client"), ("shop/client", "shop/batch")}
    assert compile_cluster(yaml.safe_load_all(EXAMPLE.read_text())).problems == ()
