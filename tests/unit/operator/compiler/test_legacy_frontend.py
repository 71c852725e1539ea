"""v1beta1 NetworkPolicies met live: ``legacy.convert_policy`` then the v1 frontend.

Live semantics are v1's plus the namespace DefaultDeny annotation (which the compiler honours
for any policy version). In an isolated namespace that is the old model; elsewhere it is not (the
old model ignored policies there), and ``picket convert`` is the meaning-preserving path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import IncrementalCompiler
from tests.unit.operator.compiler.builders import compiled_allows, make_ns, make_pod

LEGACY = Path(__file__).resolve().parents[4] / "examples" / "legacy"
VERSIONS = ["extensions/v1beta1", "networking.k8s.io/v1beta1"]


def legacy_policy(api_version: str, ns: str = "x", protocol: str = "tcp") -> dict[str, Any]:
    """Seed 003's shape: no policyTypes, a lowercase protocol."""
    spec = {"podSelector": {"matchLabels": {"role": "db"}}, "ingress": [{"ports": [{"protocol": protocol,
                                                                                  "port": 6379}]}]}
    return {"apiVersion": api_version, "kind": "NetworkPolicy", "metadata": {"namespace": ns, "name": "old"},
            "spec": spec}


def world(api_version: str) -> list[dict[str, Any]]:
    return [make_ns("x"), make_pod("x", "db", "10.0.0.1", {"role": "db"}), make_pod("x", "c", "10.0.0.2"),
            legacy_policy(api_version)]


@pytest.mark.parametrize("api_version", VERSIONS)
def test_v1beta1_policies_compile_with_v1_semantics(api_version: str) -> None:
    compiled = compile_cluster(world(api_version))
    assert [p.field for p in compiled.problems] == ["spec.ingress[0].ports[0].protocol"]  # 'tcp' -> 'TCP', noted
    assert compiled_allows(compiled, "x/c", "x/db", 6379)
    assert not compiled_allows(compiled, "x/c", "x/db", 80)  # v1: the policy isolates db by itself
    assert compiled_allows(compiled, "x/db", "x/c", 80)  # no annotation: other pods stay open
    v1 = compile_cluster([*world(api_version)[:3], {**legacy_policy(api_version, protocol="TCP"),
                                                     "apiVersion": "networking.k8s.io/v1"}])
    assert v1.endpoints == compiled.endpoints  # the same rule sets as the v1 policy


@pytest.mark.parametrize("api_version", VERSIONS)
def test_unconvertible_policy_is_reported_and_not_applied(api_version: str) -> None:
    compiled = compile_cluster([*world(api_version)[:3], legacy_policy(api_version, protocol="icmp")])
    assert compiled.problems[0].message.startswith("error: unknown protocol 'icmp'")
    assert compiled.endpoints["x/db"].ingress is None


def test_every_version_of_a_policy_is_one_object() -> None:
    inc = IncrementalCompiler()
    for obj in world("extensions/v1beta1"):
        getattr(inc, {"Namespace": "upsert_namespace", "Pod": "upsert_pod"}.get(obj["kind"], "upsert_policy"))(obj)
    assert inc.endpoint_rules("x/db").ingress is not None  # type: ignore[union-attr]
    newer = {**legacy_policy("networking.k8s.io/v1", protocol="TCP"), "spec": {"podSelector": {}}}
    inc.upsert_policy(newer)  # the v1 version replaces the v1beta1 one: it selects every pod now
    assert inc.endpoint_rules("x/c").ingress is not None  # type: ignore[union-attr]
    assert len(inc.snapshot().endpoints["x/db"].ingress.tiers[0].policies) == 1  # type: ignore[union-attr]
    delta = inc.delete_policy("NetworkPolicy", "x", "old")
    assert delta.endpoints_changed == {"x/c", "x/db"} and inc.problems() == ()


SEED_003 = {("default/frontend", "default/db", 6379): True, ("myproject/client", "default/db", 6379): True,
            ("default/other", "default/db", 6379): False, ("elsewhere/client", "default/db", 6379): False,
            ("default/db", "default/frontend", 80): False, ("default/frontend", "myproject/client", 80): True}


@pytest.mark.parametrize(("src", "dst", "port"), sorted(SEED_003))
def test_seed_003_live_in_its_isolated_namespace_keeps_the_old_meaning(src: str, dst: str, port: int) -> None:
    compiled = compile_cluster(load_cluster_file(LEGACY / "cluster.yaml"))  # the extensions/v1beta1 original
    assert compiled_allows(compiled, src, dst, port) is SEED_003[(src, dst, port)]
