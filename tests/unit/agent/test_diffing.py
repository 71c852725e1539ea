"""Desired vs actual: empty plans for equal state, minimal rewrites, drift accounts, hooks, sets."""

from __future__ import annotations

from picket.model import Direction, Protocol
from picket_agent.rendering import naming
from picket_agent.rendering.diffing import ActualSet, plan_removal, plan_sets, plan_table
from picket_agent.rendering.iptrules import SavedTable, parse_save
from picket_agent.rendering.renderer import render
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, pod, rule

STATE = compiled(
    [
        ep(
            pod("x/a", "10.0.0.2"),
            ingress=k8s(Direction.INGRESS, ("NetworkPolicy x/p", (rule(proto=Protocol.TCP, peers=("s",)),))),
        )
    ],
    [ip_set("s", "10.0.0.3")],
)


def kernel_of(desired, extra: str = "") -> SavedTable:  # type: ignore[no-untyped-def]
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]", ":KUBE-X - [0:0]"]
    lines += [f":{c} - [0:0]" for c in desired.chains]
    lines += ["[5:300] -A FORWARD -j KUBE-X"]
    lines += [f"[1:60] -A {hook} {rule.text()}" for hook, rule in desired.hooks.items()]
    lines += [f"[2:120] -A {c} {r.text()}" for c, rules in desired.chains.items() for r in rules]
    return parse_save("\n".join([*lines, extra, "COMMIT"]))


def test_equal_state_plans_nothing() -> None:
    d = render(STATE)
    assert plan_table(d, kernel_of(d), d).empty


def test_counters_and_foreign_lines_are_parsed() -> None:
    saved = kernel_of(render(STATE))
    assert saved.chains["FORWARD"][0] == ((5, 300), "-j KUBE-X")


def test_only_changed_chains_are_rewritten() -> None:
    old = render(STATE)
    new = render(
        compiled(
            [*STATE.endpoints.values(), ep(pod("x/b", "10.0.0.3"), ingress=k8s(Direction.INGRESS))],
            list(STATE.peer_sets.values()),
        )
    )
    plan = plan_table(new, kernel_of(old), old)
    assert set(plan.rewrite) == {naming.POD_INGRESS_CHAIN, *(c for c in new.chains if c not in old.chains)}
    assert plan.repairs == ()  # an update is not drift


def test_drift_is_described() -> None:
    d = render(STATE)
    tier = naming.tier_chain("x/a", "Ingress", 0)
    saved = kernel_of(d)
    saved.chains[tier].insert(0, ((0, 0), "-j RETURN"))
    del saved.chains[naming.POD_INGRESS_CHAIN]
    saved.chains["FORWARD"] = [r for r in saved.chains["FORWARD"] if "PICKET" not in r[1]]
    plan = plan_table(d, saved, d)
    text = "\n".join(plan.repairs)
    assert f"chain {tier} was changed (1 foreign rule(s), first: '-j RETURN')" in text
    assert f"chain {naming.POD_INGRESS_CHAIN} was deleted" in text and "hook rule in FORWARD was missing" in text
    assert set(plan.hook_inserts) == {"FORWARD"}


def test_owned_chains_no_longer_desired_are_deleted_and_foreign_ones_kept() -> None:
    d = render(STATE)
    plan = plan_table(render(compiled([])), kernel_of(d), d)
    assert naming.tier_chain("x/a", "Ingress", 0) in plan.delete and "KUBE-X" not in plan.delete


def test_duplicate_and_stale_hooks_are_removed() -> None:
    d = render(STATE)
    saved = kernel_of(d)
    saved.chains["FORWARD"].append(((0, 0), "-j PICKET-OLD"))
    saved.chains["FORWARD"].append(((0, 0), d.hooks["FORWARD"].text()))
    plan = plan_table(d, saved, d)
    assert plan.hook_removals == {"FORWARD": (2, 3)}


def test_removal_takes_everything_of_ours() -> None:
    plan = plan_removal(kernel_of(render(STATE)))
    assert all(naming.is_owned_chain(c) for c in plan.delete) and len(plan.hook_removals) == 3


def test_sets_created_swapped_destroyed() -> None:
    d = render(STATE)
    name = naming.set_name("s", "hash:ip")
    assert plan_sets(d, {name: ActualSet("hash:ip", frozenset({"10.0.0.3"}))}).empty
    changed = plan_sets(
        d,
        {
            name: ActualSet("hash:ip", frozenset({"10.0.0.9"})),
            "picket-old": ActualSet("hash:ip", frozenset()),
            "other": ActualSet("hash:ip", frozenset()),
        },
    )
    assert [s.name for s in changed.replace] == [name] and changed.destroy == ("picket-old",)
    assert [s.name for s in plan_sets(d, {}).create] == [name]
