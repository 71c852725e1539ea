"""Property: on random clusters with all three tiers (ClusterNetworkPolicy Admin and Baseline,
NetworkPolicy, legacy isolation), the compiled verdict equals the three-tier oracle's on every pair
of pods, port and protocol. The oracle (``cnp_oracle.py``) shares no code with the compiler."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from picket.evaluating import verdict
from picket.model import Protocol
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import IncrementalCompiler
from tests.unit.operator.compiler.builders import compiled_allows
from tests.unit.operator.compiler.cnp_oracle import NodeEgressOracle, ThreeTierOracle
from tests.unit.operator.compiler.cnp_strategies import NODE_IPS, three_tier_clusters
from tests.unit.operator.compiler.strategies import PORTS, PROTOCOLS


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(three_tier_clusters())
def test_compiled_three_tier_verdicts_equal_the_oracle(objects: list[dict[str, Any]]) -> None:
    compiled = compile_cluster(objects)
    assert all("it matches nothing" in p.message for p in compiled.problems), compiled.problems
    oracle = ThreeTierOracle(objects)
    pods = oracle.pods()
    assert sorted(compiled.endpoints) == pods
    for src in pods:
        for dst in pods:
            for port in PORTS:
                for protocol in PROTOCOLS:
                    expected = oracle.allowed(src, dst, port, protocol)
                    got = compiled_allows(compiled, src, dst, port, protocol)
                    assert got == expected, f"{src} -> {dst} {protocol}/{port}: compiled {got}, oracle {expected}"
    # Egress to the Nodes' addresses (``nodes`` and ``networks`` peers, NetworkPolicy ipBlocks).
    node_oracle = NodeEgressOracle(objects)
    for src in pods:
        rule_set = compiled.endpoints[src].egress
        for ip in NODE_IPS:
            for port in PORTS:
                for protocol in PROTOCOLS:
                    expected = node_oracle.egress_allowed(src, ip, port, protocol)
                    got = rule_set is None or verdict(rule_set, ip, Protocol(protocol), port,
                                                      compiled.peer_sets).allowed
                    assert got == expected, f"{src} -> node {ip} {protocol}/{port}: compiled {got}, oracle {expected}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(three_tier_clusters())
def test_incremental_equals_full_compile_with_cluster_network_policies(objects: list[dict[str, Any]]) -> None:
    # ClusterNetworkPolicies first, then everything else: each event re-plans what it touches.
    ordered = sorted(objects, key=lambda o: o["kind"] != "ClusterNetworkPolicy")
    compiler = IncrementalCompiler()
    for obj in ordered:
        if obj["kind"] == "Namespace":
            compiler.upsert_namespace(obj)
        elif obj["kind"] == "Pod":
            compiler.upsert_pod(obj)
        elif obj["kind"] == "Node" and obj["metadata"]["name"] == "node-0":
            compiler.upsert_node(obj)
            compiler.delete_node("node-0")  # and back: a Node event in between
            compiler.upsert_policy(obj)
        else:
            compiler.upsert_policy(obj)
    assert compiler.snapshot() == compile_cluster(objects)
