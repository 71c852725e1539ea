"""Property: driving random event sequences through IncrementalCompiler, after every event
``snapshot()`` equals ``compile_cluster`` over the objects that exist, and the returned Delta
names exactly the endpoints and peer sets whose content changed (compared between snapshots)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picket.model import Compiled
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import Delta, IncrementalCompiler
from tests.unit.operator.compiler.builders import make_ns, make_pod, make_policy
from tests.unit.operator.compiler.strategies import NAMESPACES, POD_NAMES, namespaces, pods, policies

BROKEN = make_policy("x", "np1", {"matchExpressions": [{"key": "app", "operator": "Near", "values": ["web"]}]})

events = st.one_of(
    st.tuples(st.just("ns"), namespaces()),
    st.tuples(st.just("del-ns"), st.sampled_from(NAMESPACES)),
    st.tuples(st.just("pod"), pods()),
    st.tuples(st.just("pod"), pods()),
    st.tuples(st.just("del-pod"), st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(POD_NAMES))),
    st.tuples(st.just("policy"), policies()),
    st.tuples(st.just("policy"), policies()),
    st.tuples(st.just("policy"), st.just(BROKEN)),
    st.tuples(st.just("del-policy"), st.tuples(st.sampled_from(NAMESPACES), st.sampled_from(["np0", "np1", "np2"]))),
)


def apply(inc: IncrementalCompiler, world: dict[tuple[str, ...], dict[str, Any]], kind: str, arg: Any) -> Delta:
    if kind == "ns":
        world[("Namespace", arg["metadata"]["name"])] = arg
        return inc.upsert_namespace(arg)
    if kind == "del-ns":
        world.pop(("Namespace", arg), None)
        return inc.delete_namespace(arg)
    if kind == "pod":
        world[("Pod", arg["metadata"]["namespace"], arg["metadata"]["name"])] = arg
        return inc.upsert_pod(arg)
    if kind == "del-pod":
        world.pop(("Pod", *arg), None)
        return inc.delete_pod(*arg)
    if kind == "policy":
        world[("NetworkPolicy", arg["metadata"]["namespace"], arg["metadata"]["name"])] = arg
        return inc.upsert_policy(arg)
    world.pop(("NetworkPolicy", *arg), None)
    return inc.delete_policy("NetworkPolicy", *arg)


def expected_delta(before: Compiled, after: Compiled) -> tuple[set[str], set[str], set[str], set[str]]:
    return (
        {k for k, v in after.endpoints.items() if before.endpoints.get(k) != v},
        set(before.endpoints) - set(after.endpoints),
        {k for k, v in after.peer_sets.items() if before.peer_sets.get(k) != v},
        set(before.peer_sets) - set(after.peer_sets),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(events, min_size=1, max_size=30))
def test_incremental_equals_full_compile_and_reports_exact_deltas(sequence: list[tuple[str, Any]]) -> None:
    inc = IncrementalCompiler()
    world: dict[tuple[str, ...], dict[str, Any]] = {}
    before = inc.snapshot()
    for step, (kind, arg) in enumerate(sequence):
        delta = apply(inc, world, kind, arg)
        after = inc.snapshot()
        assert after == compile_cluster(list(world.values())), f"step {step}: {kind} diverged from a full compile"
        changed, removed, ps_changed, ps_removed = expected_delta(before, after)
        assert set(delta.endpoints_changed) == changed, f"step {step}: {kind} endpoints_changed"
        assert set(delta.endpoints_removed) == removed, f"step {step}: {kind} endpoints_removed"
        assert set(delta.peer_sets_changed) == ps_changed, f"step {step}: {kind} peer_sets_changed"
        assert set(delta.peer_sets_removed) == ps_removed, f"step {step}: {kind} peer_sets_removed"
        for key in changed:
            assert inc.endpoint_rules(key) == after.endpoints[key]
        for name in ps_changed:
            assert inc.peer_set(name) == after.peer_sets[name]
        before = after


def test_one_pod_change_touches_one_shared_peer_set() -> None:
    inc = IncrementalCompiler()
    inc.upsert_namespace(make_ns("x"))
    for i in range(5):
        inc.upsert_pod(make_pod("x", f"web{i}", f"10.0.0.{i + 1}", {"app": "web"}))
    for i in range(3):  # three policies, one shared "app=web" peer
        inc.upsert_policy(make_policy("x", f"p{i}", {"matchLabels": {"app": f"db{i}"}},
                                      ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "web"}}}]}]))
    delta = inc.upsert_pod(make_pod("x", "web9", "10.0.0.9", {"app": "web"}))
    assert len(delta.peer_sets_changed) == 1 and delta.endpoints_changed == {"x/web9"}
    relabel = inc.upsert_pod(make_pod("x", "web9", "10.0.0.9", {"app": "web", "extra": "1"}))
    assert relabel.is_empty()  # same rule sets, same peer-set membership: nothing to publish
    moved = inc.upsert_pod(make_pod("x", "web9", "10.0.0.99", {"app": "web"}))
    assert moved.peer_sets_changed == delta.peer_sets_changed and moved.endpoints_changed == {"x/web9"}


def test_namespace_relabel_moves_its_pods_between_peer_sets() -> None:
    inc = IncrementalCompiler()
    inc.upsert_namespace(make_ns("x"))
    inc.upsert_pod(make_pod("y", "a", "10.0.1.1"))
    inc.upsert_pod(make_pod("x", "db", "10.0.0.1", {"app": "db"}))
    peer = {"namespaceSelector": {"matchLabels": {"t": "1"}}}
    inc.upsert_policy(make_policy("x", "p", {}, ingress=[{"from": [peer]}]))
    name = next(iter(inc.snapshot().peer_sets))
    assert inc.peer_set(name).members == ()  # type: ignore[union-attr]
    delta = inc.upsert_namespace(make_ns("y", {"t": "1"}))
    assert delta.peer_sets_changed == {name} and not delta.endpoints_changed
    assert inc.peer_set(name).members == ("10.0.1.1",)  # type: ignore[union-attr]
    assert inc.delete_namespace("y").peer_sets_changed == {name}
