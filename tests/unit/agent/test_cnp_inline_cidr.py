"""network-policy-api v0.2.0 ``CNPAdminTierEgressInlineCIDRPeers``, reproduced offline.

The suite's base manifest ``base/admin_tier/standard-egress-inline-cidr-rules.yaml`` (policy
``inline-cidr-as-peers-example``, Admin tier, priority 85, subject: gryffindor's pods; egress:
Accept to slytherin's pods, then Deny to ``networks: [0.0.0.0/0, ::/0]``), on the suite's
namespaces and pods (labels ``conformance-house: <house>``, two replicas each, spread over two
kind workers), compiled by the real compiler. The "deny-egress" subtest probes harry-potter-1 ->
luna-lovegood-0 and cedric-diggory-0 (TCP 80, UDP 53, SCTP 9003: must be dropped) and ->
draco-malfoy-0 (must connect); the "allow-egress" subtest patches in an Accept of those two
pods' /32s at index 0, then probes them (must connect) and luna-lovegood-1 / cedric-diggory-1
(must be dropped). Each verdict is checked on the compiled model (``picket.evaluating``) AND on
the agent's rendered chains of the client's node (``chainsim``: the /0 becomes two /1 halves).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from picket.model import Compiled, Protocol
from picket_agent.rendering.renderer import render
from picket_operator.compiler.compiling import compile_cluster
from tests.unit.agent.chainsim import forward
from tests.unit.operator.compiler.builders import compiled_allows, make_ns, make_pod

NS = "network-policy-conformance-"
HOUSES = {"gryffindor": "harry-potter", "slytherin": "draco-malfoy", "hufflepuff": "cedric-diggory",
          "ravenclaw": "luna-lovegood"}
PORTS = (("web", 80, "TCP"), ("dns", 53, "UDP"), ("sctp", 9003, "SCTP"))
PROBES = (("TCP", 80), ("UDP", 53), ("SCTP", 9003))

# The suite's manifest, field for field.
POLICY: dict[str, Any] = {
    "apiVersion": "policy.networking.k8s.io/v1alpha2", "kind": "ClusterNetworkPolicy",
    "metadata": {"name": "inline-cidr-as-peers-example"},
    "spec": {
        "tier": "Admin", "priority": 85,
        "subject": {"pods": {"namespaceSelector": {"matchLabels": {"conformance-house": "gryffindor"}},
                             "podSelector": {"matchLabels": {"conformance-house": "gryffindor"}}}},
        "egress": [
            {"name": "allow-egress-to-slytherin", "action": "Accept",
             "to": [{"pods": {"namespaceSelector": {"matchLabels": {"conformance-house": "slytherin"}},
                              "podSelector": {"matchLabels": {"conformance-house": "slytherin"}}}}]},
            {"name": "deny-egress-to-internet", "action": "Deny",
             "to": [{"networks": ["0.0.0.0/0", "::/0"]}]},
        ],
    },
}


def _ip(house: str, replica: int) -> str:
    return f"10.244.{replica + 1}.{list(HOUSES).index(house) + 2}"  # replica 0 on worker, 1 on worker2


def _cluster(policy: dict[str, Any]) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for house, stateful in HOUSES.items():
        objects.append(make_ns(NS + house, {"conformance-house": house, "kubernetes.io/metadata.name": NS + house}))
        for replica in (0, 1):
            objects.append(make_pod(NS + house, f"{stateful}-{replica}", _ip(house, replica),
                                    {"conformance-house": house}, PORTS, node=f"worker{replica + 1}"))
    return [*objects, policy]


def _key(house: str, replica: int) -> str:
    return f"{NS}{house}/{HOUSES[house]}-{replica}"


def _with_pod_ips_allowed() -> dict[str, Any]:
    """The "allow-egress" subtest's patch: an Accept of luna-lovegood-0's and cedric-diggory-0's /32 first."""
    mutated = copy.deepcopy(POLICY)
    mutated["spec"]["egress"].insert(0, {"name": "allow-egress-to-specific-podIPs", "action": "Accept", "to": [
        {"networks": [_ip("ravenclaw", 0) + "/32", _ip("hufflepuff", 0) + "/32"]}]})
    return mutated


CLIENT = ("gryffindor", 1)
DENY_SUBTEST = [(("ravenclaw", 0), False), (("hufflepuff", 0), False), (("slytherin", 0), True)]
ALLOW_SUBTEST = [(("ravenclaw", 0), True), (("hufflepuff", 0), True), (("ravenclaw", 1), False),
                 (("hufflepuff", 1), False)]


def _kernel_verdict(compiled: Compiled, dst: tuple[str, int], protocol: str, port: int) -> bool:
    """The client's node's chains, then (cross node) the server's node's chains."""
    src_ip, dst_ip = _ip(*CLIENT), _ip(*dst)
    nodes = {f"worker{CLIENT[1] + 1}", f"worker{dst[1] + 1}"}
    return all(forward(render(compiled.for_node(n)), src_ip, dst_ip, Protocol(protocol), port) for n in sorted(nodes))


@pytest.mark.parametrize(("subtest", "policy", "probes"), [
    ("deny-egress", POLICY, DENY_SUBTEST), ("allow-egress", _with_pod_ips_allowed(), ALLOW_SUBTEST)])
def test_inline_cidr_subtests_offline(subtest: str, policy: dict[str, Any], probes: list[Any]) -> None:
    compiled = compile_cluster(_cluster(policy))
    assert not compiled.problems, compiled.problems
    for dst, want in probes:
        for protocol, port in PROBES:
            model = compiled_allows(compiled, _key(*CLIENT), _key(*dst), port, protocol)
            chains = _kernel_verdict(compiled, dst, protocol, port)
            assert (model, chains) == (want, want), (subtest, dst, protocol, port)


def test_the_deny_network_renders_as_halves_of_every_address() -> None:
    desired = render(compile_cluster(_cluster(POLICY)).for_node("worker2"))
    nets = [s for s in desired.sets.values() if s.kind.value == "hash:net"]
    assert [s.members for s in nets] == [("0.0.0.0/1", "128.0.0.0/1")]
