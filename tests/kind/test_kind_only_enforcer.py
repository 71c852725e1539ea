"""picket is the only NetworkPolicy enforcer on the kind cluster: without its agents, a deny-all drops nothing.

kind's kindnet enforces NetworkPolicy itself since v0.24; manifests/kind/kind-config.yaml turns
the default CNI off and picket's agent provides the pod network. Here the agents are taken away
(the DaemonSet gets a nodeSelector no node matches) before a deny-all policy exists for namespace
z: the policy is in the API, yet every connection still succeeds, because nothing else enforces.
Once the agents are back, the same policy drops what it should. (Rules the agents applied earlier
stay in the kernel while they are away, by design; z is new, so it has none.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.kind.harness import Kind, expected

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]

Z_PLACEMENT = {"z/a": "picket-worker", "z/b": "picket-worker2", "z/c": "picket-control-plane"}
AWAY = {"spec": {"template": {"spec": {"nodeSelector": {"picket.dev/no-such-node": "true"}}}}}
BACK = {"spec": {"template": {"spec": {"nodeSelector": None}}}}


def agent_pods(kind: Kind) -> list[str]:
    out = json.loads(kind.kubectl("-n", "picket-system", "get", "pods", "-l", "app.kubernetes.io/name=picket-agent",
                                  "-o", "json"))
    return [p["metadata"]["name"] for p in out["items"]]


@pytest.fixture
def zpods(kind: Kind) -> Iterator[list[str]]:
    kind.make_pods(Z_PLACEMENT)
    yield list(Z_PLACEMENT)
    kind.kubectl("-n", "picket-system", "patch", "daemonset", "picket-agent", "--type=merge", "-p", json.dumps(BACK))
    kind.kubectl("delete", "namespace", "z", "--ignore-not-found", "--wait=false")
    kind.kubectl("-n", "picket-system", "rollout", "status", "daemonset/picket-agent", "--timeout=180s")


def test_without_picket_agents_a_deny_all_drops_nothing(kind: Kind, zpods: list[str]) -> None:
    kind.kubectl("-n", "picket-system", "patch", "daemonset", "picket-agent", "--type=merge", "-p", json.dumps(AWAY))
    kind.kubectl("-n", "picket-system", "wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=picket-agent",
                 "--timeout=120s")
    assert agent_pods(kind) == []
    kind.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "deny-all", "namespace": "z"},
                "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}})
    everything_open = expected(zpods, lambda s, d: True)
    assert kind.matrix(zpods) == everything_open
    assert kind.matrix(zpods, 80, "UDP") == everything_open

    kind.kubectl("-n", "picket-system", "patch", "daemonset", "picket-agent", "--type=merge", "-p", json.dumps(BACK))
    kind.kubectl("-n", "picket-system", "rollout", "status", "daemonset/picket-agent", "--timeout=180s")
    kind.expect(expected(zpods, lambda s, d: False))
