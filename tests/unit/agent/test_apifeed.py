"""The agent's API feed without an API server: what it submits, and when it reports status.

Both published forms: the CompiledNode + CompiledRuleSets of this version (one status write per
node, exact versions) and the CompiledEndpoints of the previous one (read while a cluster
switches).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from picket.model import Compiled, Endpoint, EndpointKind, EndpointRules, RuleSet
from picket_agent.apifeed import ApiFeed
from picket_agent.rendering.renderer import endpoint_version
from picket_operator.publishing import objects as publishing
from tests.unit.operator.publishing.test_ledger import pcep, rule_set


def full_pcep(ns: str, name: str, version: str, node: str = "n1", status: dict[str, str] | None = None,
              rv: str = "1") -> dict[str, Any]:
    obj = pcep(ns, name, version, node)
    obj["spec"].update({"schemaVersion": 1, "ingress": None, "egress": None})
    obj["metadata"]["resourceVersion"] = rv
    obj["status"] = status or {}
    return obj


def endpoint(name: str, ip: str, node: str = "n1") -> Endpoint:
    return Endpoint(EndpointKind.POD, "x", name, node, (ip,))


def node_obj(rows: list[tuple[EndpointRules, RuleSet | None]], node: str = "n1", status: dict[str, str] | None = None,
             rv: str = "1") -> dict[str, Any]:
    built = [publishing.binding_row(er, publishing.rule_set_name(rs) if rs else None, None) for er, rs in rows]
    obj = publishing.node_object(node, built)
    obj["metadata"]["resourceVersion"] = rv
    obj["status"] = status or {}
    return obj


class Client:
    def __init__(self) -> None:
        self.patches: list[tuple[str, dict[str, Any]]] = []

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.patches.append((path, body))
        return {}


def listed(feed: ApiFeed, endpoints: list[Any] = (), nodes: list[Any] = (),  # type: ignore[assignment]
           rule_sets: list[Any] = ()) -> None:  # type: ignore[assignment]
    feed._sync("endpoints", list(endpoints))
    feed._sync("nodes", list(nodes))
    feed._sync("rule sets", list(rule_sets))
    feed._sync("peer sets", [])


def make() -> tuple[ApiFeed, Client, list[Compiled]]:
    client, submitted = Client(), []
    feed = ApiFeed(client, "n1", submitted.append)  # type: ignore[arg-type]
    listed(feed, endpoints=[full_pcep("x", "a", "v1")])
    return feed, client, submitted


def drain(feed: ApiFeed) -> None:
    feed.flush_reports()
    feed._pool.shutdown(wait=True)


# The previous form ---------------------------------------------------------------------------------

def test_status_only_changes_do_not_change_the_rules() -> None:
    feed, _, _ = make()
    assert feed._endpoints.event("MODIFIED", full_pcep("x", "a", "v1", status={"applied": "Pending"}, rv="2")) is False
    assert feed._endpoints.event("MODIFIED", full_pcep("x", "a", "v2", rv="3")) is True
    assert set(feed.snapshot().endpoints) == {"x/a"}


def test_applied_version_is_reported_once_per_state() -> None:
    feed, client, _ = make()
    feed.snapshot()
    feed.applied({"x/a": "v0"})  # an older version than the object's: not reported
    feed.applied({"x/a": "v1"})
    feed.applied({"x/a": "v1"})  # the same state again: not reported twice
    drain(feed)
    assert [b["status"]["appliedVersion"] for _, b in client.patches] == ["v1"]
    assert client.patches[0][0].endswith("/namespaces/x/compiledendpoints/a/status")


def test_a_reset_to_pending_of_an_applied_version_is_reported_again() -> None:
    feed, client, _ = make()
    feed.snapshot()
    feed.applied({"x/a": "v1"})
    feed.flush_reports()
    feed._event("endpoints", "MODIFIED", full_pcep("x", "a", "v1", status={"applied": "Pending"}, rv="5"))
    feed._event("endpoints", "MODIFIED",
                full_pcep("x", "a", "v1", status={"applied": "True", "appliedVersion": "v1"}, rv="6"))
    drain(feed)
    assert len(client.patches) == 2


# The CompiledNode form -----------------------------------------------------------------------------

DENY = RuleSet.from_dict({"direction": "Ingress", "tiers": [{"name": "kubernetes", "default": "Deny",
                                                               "policies": [{"policy": "x/deny", "rules": []}]}]})


def test_a_compiled_node_wins_over_the_previous_form_and_is_reported_once_per_version() -> None:
    feed, client, _ = make()  # x/a published in the previous form
    a = EndpointRules(endpoint("a", "10.0.0.1"), DENY)
    feed._sync("rule sets", [rule_set(DENY)])
    feed._event("nodes", "ADDED", node_obj([(a, DENY)]))
    snap = feed.snapshot()
    assert snap.endpoints["x/a"] == a  # the node's rules, not the CompiledEndpoint's (open) ones
    feed.applied({"x/a": "stale"})
    assert client.patches == []  # not the version of the node's rules: nothing reported
    feed.applied({"x/a": endpoint_version(a)})
    feed.applied({"x/a": endpoint_version(a)})
    drain(feed)
    version = node_obj([(a, DENY)])["spec"]["version"]
    assert [(p, b["status"]["appliedVersion"]) for p, b in client.patches] == [
        ("/apis/picket.dev/v1alpha1/compilednodes/n1/status", version)]


def test_an_endpoint_whose_rule_set_has_not_arrived_keeps_its_previous_rules() -> None:
    client, submitted = Client(), []
    feed = ApiFeed(client, "n1", submitted.append)  # type: ignore[arg-type]
    a, b = EndpointRules(endpoint("a", "10.0.0.1")), EndpointRules(endpoint("b", "10.0.0.2"))
    listed(feed, nodes=[node_obj([(a, None), (b, None)])])
    before = feed.snapshot()
    assert set(before.endpoints) == {"x/a", "x/b"}
    feed.applied({k: endpoint_version(er) for k, er in before.endpoints.items()})
    # The operator isolates a; the node's new version arrives before the rule set it names.
    a2 = EndpointRules(a.endpoint, DENY)
    feed._event("nodes", "MODIFIED", node_obj([(a2, DENY), (b, None)], rv="2"))
    mid = feed.snapshot()
    assert mid.endpoints["x/a"] == a  # never half of the new version: the old rules, whole
    feed.applied({k: endpoint_version(er) for k, er in mid.endpoints.items()})
    drain_node = len(client.patches)
    feed._event("rule sets", "ADDED", rule_set(DENY))
    after = feed.snapshot()
    assert after.endpoints["x/a"] == a2
    feed.applied({k: endpoint_version(er) for k, er in after.endpoints.items()})
    feed._pool.shutdown(wait=True)
    versions = [b["status"]["appliedVersion"] for _, b in client.patches]
    assert drain_node == 1 and versions == [node_obj([(a, None), (b, None)])["spec"]["version"],
                                            node_obj([(a2, DENY), (b, None)])["spec"]["version"]]


def test_nothing_is_submitted_before_every_initial_list() -> None:
    client, submitted = Client(), []
    feed = ApiFeed(client, "n1", submitted.append)  # type: ignore[arg-type]
    feed._sync("nodes", [node_obj([(EndpointRules(endpoint("a", "10.0.0.1")), None)])])
    feed._sync("endpoints", [])
    feed._sync("peer sets", [])
    assert not feed._dirty.is_set()
    feed._sync("rule sets", [])
    assert feed._dirty.is_set()


def test_per_endpoint_status_is_not_reported_once_the_node_has_a_compiled_node() -> None:
    feed, client, _ = make()
    feed._event("nodes", "ADDED", node_obj([(EndpointRules(endpoint("a", "10.0.0.1")), None)]))
    feed.snapshot()
    feed.applied({"x/a": "v1"})  # the CompiledEndpoint's version: irrelevant now
    drain(feed)
    assert not any("compiledendpoints" in p for p, _ in client.patches)


def test_a_compiled_node_the_kernel_already_enforces_is_reported_without_an_apply() -> None:
    """The switch from the previous form: the same rules, so the dataplane does not apply anything."""
    feed, client, _ = make()
    before = feed.snapshot()
    feed.applied({k: endpoint_version(er) for k, er in before.endpoints.items()})  # x/a open, from its pcep
    drain_previous = len(client.patches)
    stop = threading.Event()
    builder = threading.Thread(target=feed._build, args=(stop,), daemon=True)
    builder.start()
    feed._event("nodes", "ADDED", node_obj([(EndpointRules(endpoint("a", "10.0.0.1")), None)]))
    deadline = time.monotonic() + 5
    while feed.submitted < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    builder.join(timeout=5)
    feed._pool.shutdown(wait=True)
    assert [p for p, _ in client.patches[drain_previous:]] == ["/apis/picket.dev/v1alpha1/compilednodes/n1/status"]


def test_a_compiled_node_recreated_with_the_same_version_is_reported_again() -> None:
    client, submitted = Client(), []
    feed = ApiFeed(client, "n1", submitted.append)  # type: ignore[arg-type]
    a = EndpointRules(endpoint("a", "10.0.0.1"))
    listed(feed, nodes=[node_obj([(a, None)], rv="1")])
    snap = feed.snapshot()
    feed.applied({k: endpoint_version(er) for k, er in snap.endpoints.items()})
    version = node_obj([(a, None)])["spec"]["version"]
    truthful = {"applied": "True", "appliedVersion": version}
    feed._event("nodes", "MODIFIED", node_obj([(a, None)], rv="2", status=truthful))
    feed._event("nodes", "DELETED", node_obj([(a, None)], rv="3"))
    feed._event("nodes", "ADDED", node_obj([(a, None)], rv="4"))  # a new operator publishes it again
    feed.snapshot()
    feed._check_node()
    feed._pool.shutdown(wait=True)
    assert [b["status"]["appliedVersion"] for _, b in client.patches] == [version, version]
