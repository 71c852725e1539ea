"""ClusterNetworkPolicy status.conditions: Accepted True/False, the reason, the field in the message,
no rewrite of an unchanged condition, only while leading; and the RBAC the writer needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from picket.apiclient import ApiError
from picket_operator.publishing.policystatus import PolicyStatusWriter, desired_condition, status_patch
from tests.unit.operator.test_manifests import rules

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def cnp(name: str = "guard", generation: int = 3, **spec: Any) -> dict[str, Any]:
    body = {"tier": "Admin", "priority": 10, "subject": {"namespaces": {}},
            "ingress": [{"action": "Deny", "from": [{"namespaces": {}}]}], **spec}
    return {"apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
            "metadata": {"name": name, "generation": generation}, "spec": body}


DOMAINS = [{"action": "Accept", "to": [{"domainNames": ["*.example.com"]}]}]


def test_a_valid_policy_is_accepted() -> None:
    condition = desired_condition(cnp())
    assert condition["type"] == "Accepted" and condition["status"] == "True" and condition["reason"] == "Accepted"
    assert condition["observedGeneration"] == 3
    assert "tier Admin, priority 10, 1 ingress and 0 egress rules" in condition["message"]


def test_domain_names_are_not_supported_and_the_message_names_the_field() -> None:
    condition = desired_condition(cnp(egress=DOMAINS))
    assert (condition["status"], condition["reason"]) == ("False", "NotSupported")
    assert condition["message"].startswith("not applied: spec.egress[0].to[0].domainNames: domainNames peers")


def test_an_invalid_field_is_invalid() -> None:
    condition = desired_condition(cnp(priority=5000))
    assert (condition["status"], condition["reason"]) == ("False", "Invalid")
    assert "spec.priority" in condition["message"]


def test_a_fail_closed_peer_is_accepted_with_a_warning() -> None:
    condition = desired_condition(cnp(ingress=[{"action": "Deny", "from": [{"future": {}}]}]))
    assert (condition["status"], condition["reason"]) == ("True", "AcceptedWithWarnings")
    assert "spec.ingress[0].from[0]" in condition["message"]


def test_status_patch_is_none_when_the_condition_is_already_there() -> None:
    first = status_patch(cnp(), NOW)
    assert first is not None
    (condition,) = first["status"]["conditions"]
    assert condition["lastTransitionTime"] == "2026-12-02T10:00:00Z"
    written = {**cnp(), "status": {"conditions": [condition, {"type": "Other", "status": "True"}]}}
    assert status_patch(written, NOW) is None
    # A new generation with the same status keeps lastTransitionTime.
    newer = {**written, "metadata": {"name": "guard", "generation": 4}}
    again = status_patch(newer, datetime(2026, 12, 3, tzinfo=UTC))
    assert again is not None
    assert again["status"]["conditions"][0]["lastTransitionTime"] == "2026-12-02T10:00:00Z"
    # A status change moves it.
    broken = {**written, "spec": {**cnp()["spec"], "egress": DOMAINS}}
    changed = status_patch(broken, datetime(2026, 12, 3, tzinfo=UTC))
    assert changed is not None and changed["status"]["conditions"][0]["lastTransitionTime"] == "2026-12-03T00:00:00Z"


class FakeClient:
    def __init__(self) -> None:
        self.applied: list[tuple[str, dict[str, Any], str]] = []
        self.fail: ApiError | None = None

    def apply(self, path: str, body: dict[str, Any], field_manager: str, **_: Any) -> dict[str, Any]:
        if self.fail is not None:
            raise self.fail
        self.applied.append((path, body, field_manager))
        return body


def test_writer_applies_the_status_subresource_only_while_leading() -> None:
    client, leading = FakeClient(), [False]
    writer = PolicyStatusWriter(client, lambda: leading[0])  # type: ignore[arg-type]
    writer.observe(cnp())
    writer.observe(cnp("bad", egress=DOMAINS))
    if leading[0]:
        writer.sync()
    assert client.applied == []
    leading[0] = True
    writer.reset()
    writer.sync()
    paths = [p for p, _, _ in client.applied]
    assert paths == ["/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies/bad/status",
                     "/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies/guard/status"]
    assert {m for _, _, m in client.applied} == {"picket-operator"}
    writer.sync()  # nothing dirty: nothing written
    assert len(client.applied) == 2


def test_writer_retries_a_failed_write_and_forgets_a_deleted_object() -> None:
    client = FakeClient()
    writer = PolicyStatusWriter(client, lambda: True)  # type: ignore[arg-type]
    client.fail = ApiError(500, "InternalError", "boom")
    writer.observe(cnp())
    writer.sync()
    client.fail = None
    writer.sync()
    assert len(client.applied) == 1
    writer.forget("guard")
    writer.reset()
    writer.sync()
    assert len(client.applied) == 1


def test_operator_reads_cluster_network_policies_and_writes_only_their_status() -> None:
    from picket_operator.handlers import POLICY_RESOURCES

    assert ("policy.networking.k8s.io", "v1alpha2", "clusternetworkpolicies", "ClusterNetworkPolicy") in \
        POLICY_RESOURCES
    granted = {(r, v) for g, r, v in rules("ClusterRole", "picket-operator") if g == "policy.networking.k8s.io"}
    assert granted == {("clusternetworkpolicies", "get"), ("clusternetworkpolicies", "list"),
                       ("clusternetworkpolicies", "watch"), ("clusternetworkpolicies/status", "patch")}
