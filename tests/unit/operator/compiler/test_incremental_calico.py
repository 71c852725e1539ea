"""Property: with Calico policies, HostEndpoints and (Global)NetworkSets in the event mix, the
IncrementalCompiler still equals a full compile after every event and reports exact deltas.

Host endpoints and network sets arrive through ``upsert_policy``/``delete_policy`` (as the
operator's generic watcher sends them) or through their own methods, chosen at random. The
property checks itself: ``expected_delta`` compares consecutive full snapshots.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from picket.failsafe import Failsafe
from picket.model import PeerSetKind, Protocol
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import Delta, IncrementalCompiler
from tests.unit.operator.compiler.builders import make_ns
from tests.unit.operator.compiler.calico_strategies import (
    API,
    HOST_NAMES,
    POLICY_NAMES,
    SET_NAMES,
    calico_policies,
    host_endpoints,
    network_sets,
    object_key,
)
from tests.unit.operator.compiler.strategies import NAMESPACES, namespaces, pods, policies
from tests.unit.operator.compiler.test_incremental import apply as apply_k8s_event
from tests.unit.operator.compiler.test_incremental import expected_delta

FAILSAFE = Failsafe(inbound=((Protocol.TCP, 22),), outbound=())  # not the default: it must reach every host

events = st.one_of(
    st.tuples(st.just("ns"), namespaces()),
    st.tuples(st.just("ns"), namespaces()),
    st.tuples(st.just("del-ns"), st.sampled_from(NAMESPACES)),
    st.tuples(st.just("pod"), pods()),
    st.tuples(st.just("policy"), policies()),
    st.tuples(st.just("object"), calico_policies()),
    st.tuples(st.just("object"), calico_policies()),
    st.tuples(st.just("object"), host_endpoints()),
    st.tuples(st.just("object"), network_sets()),
    st.tuples(st.just("object"), network_sets()),
    st.tuples(st.just("del-object"), st.tuples(
        st.sampled_from(["GlobalNetworkPolicy", "NetworkPolicy", "HostEndpoint", "GlobalNetworkSet", "NetworkSet"]),
        st.sampled_from(NAMESPACES), st.sampled_from(POLICY_NAMES + HOST_NAMES + SET_NAMES), st.booleans())),
)


def apply(inc: IncrementalCompiler, world: dict[tuple[str, ...], dict[str, Any]], kind: str, arg: Any) -> Delta:
    """The Kubernetes events as in test_incremental; Calico objects by their own key and route."""
    if kind not in ("object", "del-object"):
        return apply_k8s_event(inc, world, kind, arg)
    if kind == "object":
        world[object_key(arg)] = arg
        return inc.upsert_policy(arg)
    bare, namespace, name, own_method = arg
    namespace = namespace if bare in ("NetworkPolicy", "NetworkSet") else ""
    world.pop((f"{bare}.{API}", namespace, name), None)
    if own_method and bare == "HostEndpoint":
        return inc.delete_host_endpoint(name)
    if own_method and bare.endswith("NetworkSet"):
        return inc.delete_network_set(bare, namespace, name)
    return inc.delete_policy(f"{bare}.projectcalico.org", namespace, name)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(events, min_size=1, max_size=30))
def test_incremental_with_hosts_and_network_sets_equals_full_compile(sequence: list[tuple[str, Any]]) -> None:
    inc = IncrementalCompiler(FAILSAFE)
    world: dict[tuple[str, ...], dict[str, Any]] = {}
    before = inc.snapshot()
    for step, (kind, arg) in enumerate(sequence):
        delta = apply(inc, world, kind, arg)
        after = inc.snapshot()
        assert after == compile_cluster(list(world.values()), FAILSAFE), f"step {step}: {kind} diverged"
        changed, removed, ps_changed, ps_removed = expected_delta(before, after)
        assert set(delta.endpoints_changed) == changed, f"step {step}: {kind} endpoints_changed"
        assert set(delta.endpoints_removed) == removed, f"step {step}: {kind} endpoints_removed"
        assert set(delta.peer_sets_changed) == ps_changed, f"step {step}: {kind} peer_sets_changed"
        assert set(delta.peer_sets_removed) == ps_removed, f"step {step}: {kind} peer_sets_removed"
        before = after


def gnp(name: str, selector: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "GlobalNetworkPolicy", "metadata": {"name": name},
            "spec": {"selector": selector, **spec}}


def host(name: str, ip: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "HostEndpoint", "metadata": {"name": name, "labels": labels},
            "spec": {"node": "n1", "expectedIPs": [ip]}}


def gns(name: str, *nets: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "GlobalNetworkSet", "metadata": {"name": name, "labels": labels},
            "spec": {"nets": list(nets)}}


def test_a_network_set_event_touches_only_the_peer_sets_that_match_it() -> None:
    inc = IncrementalCompiler()
    inc.upsert_host_endpoint(host("h", "10.100.0.1", running="yes"))
    inc.upsert_policy(gnp("p", "running == 'yes'", ingress=[{"action": "Allow", "source": {"selector": "a == 'x'"}},
                                                            {"action": "Deny", "source": {"selector": "b == 'y'"}}]))
    delta = inc.upsert_network_set(gns("big", "172.15.0.0/24", a="x"))
    (name,) = delta.peer_sets_changed
    assert not delta.endpoints_changed  # rule sets refer to the peer set by name: unchanged
    assert inc.peer_set(name).kind is PeerSetKind.NET  # type: ignore[union-attr]
    assert inc.peer_set(name).members == ("172.15.0.0/24",)  # type: ignore[union-attr]
    assert inc.delete_policy("GlobalNetworkSet", "", "big").peer_sets_changed == {name}  # bare kind resolves
    assert inc.peer_set(name).members == ()  # type: ignore[union-attr]


def test_a_host_endpoint_no_policy_selects_still_gets_the_failsafe_frame() -> None:
    inc = IncrementalCompiler()
    delta = inc.upsert_policy(host("h", "10.100.0.1"))
    assert delta.endpoints_changed == {"host/h"}
    rules = inc.endpoint_rules("host/h")
    assert rules is not None and rules.ingress is not None
    assert [t.name for t in rules.ingress.tiers] == ["failsafe", "host-endpoint-default"]
    assert inc.delete_policy("HostEndpoint.projectcalico.org", "", "h").endpoints_removed == {"host/h"}


def test_a_namespace_relabel_moves_its_network_sets_between_peer_sets() -> None:
    inc = IncrementalCompiler()
    inc.upsert_host_endpoint(host("h", "10.100.0.1", running="yes"))
    source = {"selector": "access == 'yes'", "namespaceSelector": "team == 'a'"}
    inc.upsert_policy(gnp("p", "running == 'yes'", ingress=[{"action": "Allow", "source": source}]))
    nset = {"apiVersion": API, "kind": "NetworkSet", "metadata": {"name": "s", "namespace": "x",
                                                                   "labels": {"access": "yes"}},
            "spec": {"nets": ["10.9.0.0/16"]}}
    assert inc.upsert_policy(nset).is_empty()  # namespace x has no team label yet
    delta = inc.upsert_namespace(make_ns("x", {"team": "a"}))
    (name,) = delta.peer_sets_changed
    assert inc.peer_set(name).members == ("10.9.0.0/16",)  # type: ignore[union-attr]
    assert inc.delete_namespace("x").peer_sets_changed == {name}
    assert inc.peer_set(name).members == ()  # type: ignore[union-attr]
