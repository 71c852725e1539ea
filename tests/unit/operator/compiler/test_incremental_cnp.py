"""Property: random event sequences with ClusterNetworkPolicies and Nodes among the Kubernetes
events; after every event the incremental state equals a full compile and the Delta is exact
(the driver and the exactness check are ``test_incremental``'s)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import Delta, IncrementalCompiler
from tests.unit.operator.compiler import test_incremental as k8s
from tests.unit.operator.compiler.cnp_strategies import cluster_network_policies, nodes

CNP_NAMES = ["cnp0", "cnp1"]
BROKEN = {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
          "metadata": {"name": "cnp1"}, "spec": {"tier": "Admin", "priority": 1, "subject": {"namespaces": {}},
                                                 "egress": [{"action": "Accept", "to": [{"domainNames": ["a.io"]}]}]}}

events = st.one_of(
    k8s.events,
    st.tuples(st.just("cnp"), st.sampled_from(CNP_NAMES).flatmap(cluster_network_policies)),
    st.tuples(st.just("cnp"), st.sampled_from(CNP_NAMES).flatmap(cluster_network_policies)),
    st.tuples(st.just("cnp"), st.just(BROKEN)),
    st.tuples(st.just("del-cnp"), st.sampled_from(CNP_NAMES)),
    st.tuples(st.just("node"), nodes().flatmap(st.sampled_from)),
    st.tuples(st.just("del-node"), st.sampled_from(["node-0", "node-1", "node-2"])),
)


def apply(inc: IncrementalCompiler, world: dict[tuple[str, ...], dict[str, Any]], kind: str, arg: Any) -> Delta:
    if kind == "cnp":
        world[("ClusterNetworkPolicy", arg["metadata"]["name"])] = arg
        return inc.upsert_policy(arg)
    if kind == "del-cnp":
        world.pop(("ClusterNetworkPolicy", arg), None)
        return inc.delete_policy("ClusterNetworkPolicy", "", arg)
    if kind == "node":
        world[("Node", arg["metadata"]["name"])] = arg
        return inc.upsert_policy(arg)  # as the operator feeds it
    if kind == "del-node":
        world.pop(("Node", arg), None)
        return inc.delete_policy("Node", "", arg)
    return k8s.apply(inc, world, kind, arg)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(events, min_size=1, max_size=25))
def test_incremental_with_cluster_network_policies_and_nodes(sequence: list[tuple[str, Any]]) -> None:
    inc = IncrementalCompiler()
    world: dict[tuple[str, ...], dict[str, Any]] = {}
    before = inc.snapshot()
    for step, (kind, arg) in enumerate(sequence):
        delta = apply(inc, world, kind, arg)
        after = inc.snapshot()
        assert after == compile_cluster(list(world.values())), f"step {step}: {kind} diverged from a full compile"
        changed, removed, ps_changed, ps_removed = k8s.expected_delta(before, after)
        assert (set(delta.endpoints_changed), set(delta.endpoints_removed)) == (changed, removed), f"step {step}"
        assert (set(delta.peer_sets_changed), set(delta.peer_sets_removed)) == (ps_changed, ps_removed), \
            f"step {step}: {kind}"
        before = after
