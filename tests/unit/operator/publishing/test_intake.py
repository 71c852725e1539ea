"""The compiler feed marks nodes (not pods) dirty and builds each node's CompiledNode from its endpoints."""

from __future__ import annotations

from collections.abc import Iterable

from picket_operator.publishing import objects as publishing
from picket_operator.publishing.intake import CompilerFeed
from tests.unit.operator.compiler.builders import make_ns, make_pod, make_policy


class Marks:
    def __init__(self) -> None:
        self.nodes: list[set[str]] = []

    def __call__(self, nodes: Iterable[str], _sets: Iterable[str]) -> None:
        self.nodes.append(set(nodes))


def feed_with_pods(n: int) -> tuple[CompilerFeed, Marks]:
    marks = Marks()
    feed = CompilerFeed(mark=marks)
    feed.upsert_namespace(make_ns("x"))
    for i in range(n):
        feed.upsert_pod(make_pod("x", f"p{i}", f"10.0.{i % 3}.{i + 2}", {"app": "web"}, node=f"n{i % 3}"))
    return feed, marks


def test_a_policy_over_many_pods_marks_their_nodes_and_shares_one_rule_set() -> None:
    feed, marks = feed_with_pods(30)
    marks.nodes.clear()
    feed.upsert_policy(make_policy("x", "deny", policy_types=["Ingress"]))
    assert marks.nodes == [{"n0", "n1", "n2"}]
    built = [feed.node_object(n) for n in ("n0", "n1", "n2")]
    names = {name for _, sets in built for name in sets}
    assert len(names) == 1  # thirty isolated pods, one rule set
    for obj, _ in built:
        assert obj is not None and obj["spec"]["summary"] == {"endpoints": 10, "isolated": 10, "ruleSets": 1}
        assert {r["ingress"] for r in obj["spec"]["endpoints"]} == names


def test_a_pod_moving_marks_both_nodes_and_leaves_the_old_one_empty() -> None:
    feed, marks = feed_with_pods(1)
    marks.nodes.clear()
    feed.upsert_pod(make_pod("x", "p0", "10.0.9.9", {"app": "web"}, node="n7"))
    assert marks.nodes == [{"n0", "n7"}]
    assert feed.node_object("n0") == (None, {})
    obj, _ = feed.node_object("n7")
    assert obj is not None and [r["ips"] for r in obj["spec"]["endpoints"]] == [["10.0.9.9"]]
    feed.delete_pod("x", "p0")
    assert marks.nodes[-1] == {"n7"} and feed.node_object("n7") == (None, {})
    assert feed.all_keys()[0] == set()


def test_rows_name_rule_sets_by_their_content() -> None:
    feed, _ = feed_with_pods(3)
    feed.upsert_policy(make_policy("x", "deny", policy_types=["Ingress"]))
    obj, sets = feed.node_object("n0")
    assert obj is not None
    (name, rs_obj), = sets.items()
    assert rs_obj["metadata"]["name"] == name == obj["spec"]["endpoints"][0]["ingress"]
    assert name.startswith("ingress-") and "egress" not in obj["spec"]["endpoints"][0]
    assert publishing.node_refs(obj) == {name}


def test_staged_rule_sets_travel_in_the_compiled_node_to_the_agent() -> None:
    """Audit mode survives the CompiledNode form: a staged default-deny's rule set is published as
    a CompiledRuleSet, named in the row, and the agent resolves it as the endpoint's staged rules
    (never as its enforced ones)."""
    from picket_agent import published
    from tests.unit.operator.compiler.test_publishing import validator

    feed, _ = feed_with_pods(1)
    deny = make_policy("x", "deny", policy_types=["Ingress"])
    deny["metadata"]["annotations"] = {"picket.dev/audit": "true"}
    feed.upsert_policy(deny)
    obj, sets = feed.node_object("n0")
    assert obj is not None
    (row,) = obj["spec"]["endpoints"]
    assert "ingress" not in row and row["stagedIngress"] in sets
    assert publishing.node_refs(obj) == {row["stagedIngress"]}
    validator("CompiledNode").validate(obj)  # crds/ accepts the staged names
    binding = published.parse_node(obj)
    rule_sets = {name: published.parse_rule_set(o) for name, o in sets.items()}
    resolved = published.resolve(binding, rule_sets, {}, {})
    (er,) = resolved.endpoints.values()
    assert er.ingress is None and er.staged_ingress is not None and not resolved.pending
    pending = published.resolve(binding, {}, {}, {})
    assert pending.pending == {"x/p0"}


# Readiness: the keys listed at start, fed or gone ------------------------------------------------

def test_ready_once_every_listed_object_was_fed_and_not_before() -> None:
    feed = CompilerFeed()
    feed.upsert_namespace(make_ns("x"))  # fed before the listing arrived
    feed.expect({"pod": {"x/a", "x/b"}, "namespace": {"x"}, "policy": {"NetworkPolicy/x/p"}}, lambda k, n: True)
    feed.upsert_pod(make_pod("x", "a", "10.0.0.1"))
    feed.upsert_policy(make_policy("x", "p"))
    assert not feed.ready() and feed.unseen() == 1
    feed.upsert_pod(make_pod("x", "b", "10.0.0.2"))
    assert feed.ready()


def test_an_object_deleted_before_it_was_fed_does_not_block_readiness() -> None:
    feed = CompilerFeed()
    feed.delete_pod("x", "gone")  # a DELETED event before the listing arrived
    feed.expect({"pod": {"x/gone", "x/vanished"}, "namespace": set(), "policy": set()},
                lambda kind, key: key != "x/vanished")
    assert not feed.ready()  # x/vanished: deleted before kopf listed it, so never delivered
    feed.recheck()
    assert feed.ready()


def test_not_ready_without_the_listing() -> None:
    feed = CompilerFeed()
    feed.upsert_namespace(make_ns("x"))
    assert not feed.ready()
