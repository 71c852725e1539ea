"""Dual stack on the kind tier: picket enforces a NetworkPolicy on a pod's IPv4 and IPv6 addresses alike.

The tier's cluster is created from ``manifests/kind/kind-config-dual.yaml`` (``tests/kind/conftest.py``):
every node has a podCIDR of each family and every pod an IPv4 and an IPv6 address, the pod network
being picket's agent's own (``--pod-network auto``). Pods dual/a (worker), dual/b (worker2), dual/c
(worker, a's node) and dual/d (control plane). With no policy every pair connects over both
families. Then dual/a admits only pods labelled pod=b, and the IPv6 ipBlock ``<d's IPv6>/128``:
b reaches a over both families, d over IPv6 only (its IPv4 source is outside the block), c (same
node) over neither; a still reaches everyone and the other pairs stay open. The node's
``ip6tables-save`` shows picket's chains matching a's IPv6 address. After the policy is deleted
both families are open again. Probes are OpenBSD netcat from the pods (``Kind.probe``), to the
addresses of ``status.podIPs``.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Iterator

import pytest

from picket_lab.kind import cluster, engine
from tests.kind.harness import Kind, expected

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]

PLACEMENT = {"dual/a": "picket-worker", "dual/b": "picket-worker2", "dual/c": "picket-worker",
             "dual/d": "picket-control-plane"}
POD_CIDRS = {"ipv4": ipaddress.ip_network("10.244.0.0/16"), "ipv6": ipaddress.ip_network("fd00:10:244::/56")}
FAMILIES = ("ipv4", "ipv6")


@pytest.fixture(scope="module")
def dual(kind: Kind) -> Iterator[list[str]]:
    kind.make_pods(PLACEMENT)
    yield list(PLACEMENT)
    kind.kubectl("delete", "namespace", "dual", "--ignore-not-found", "--wait=false")


def say(message: str) -> None:
    print(message, flush=True)


def saved_rules(kind: Kind, node: str, command: str) -> str:
    done = engine.docker(kind.lay, "exec", node, command, check=False, timeout=120)
    assert done.returncode == 0, f"{command} on {node}: {done.stderr}"
    return done.stdout


def test_cluster_and_pods_are_dual_stack(kind: Kind, dual: list[str]) -> None:
    assert cluster.cluster_family(kind.lay) == "dual"
    for key in dual:
        assert ipaddress.ip_address(kind.ips[key]) in POD_CIDRS["ipv4"], (key, kind.ips[key])
        assert key in kind.ips6, f"{key} has no IPv6 address"
        assert ipaddress.ip_address(kind.ips6[key]) in POD_CIDRS["ipv6"], (key, kind.ips6[key])
    assert len({kind.ips6[k] for k in dual}) == len(dual)


@pytest.mark.parametrize("family", FAMILIES)
def test_both_families_open_without_policies(kind: Kind, dual: list[str], family: str) -> None:
    kind.expect(expected(dual, lambda s, d: True), family=family)


def test_policy_enforced_on_both_families(kind: Kind, dual: list[str], policies: list[tuple[str, str]]) -> None:
    a6, d6 = kind.ips6["dual/a"], kind.ips6["dual/d"]
    began = time.monotonic()
    kind.apply({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"name": "a-from-b-or-d6", "namespace": "dual"},
                "spec": {"podSelector": {"matchLabels": {"pod": "a"}},
                         "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}},
                                               {"ipBlock": {"cidr": f"{d6}/128"}}]}]}})
    policies.append(("dual", "a-from-b-or-d6"))
    allowed_to_a = {"ipv4": {"dual/b"}, "ipv6": {"dual/b", "dual/d"}}
    for family in FAMILIES:
        to_a = allowed_to_a[family]
        kind.expect(expected(dual, lambda s, d: d != "dual/a" or s in to_a), family=family)  # noqa: B023
    say(f"dual stack: policy enforced on both families {time.monotonic() - began:.1f}s after kubectl apply")

    # what enforces it on a's node: picket's chains in the IPv6 table, matching a's IPv6 address
    node = PLACEMENT["dual/a"]
    rules6 = saved_rules(kind, node, "ip6tables-save")
    assert re.search(r"^:PICKET-\S+ ", rules6, re.MULTILINE), rules6[-3000:]
    a_rules = [line for line in rules6.splitlines()
               if line.startswith("-A PICKET-") and re.search(rf"\s-[ds] {re.escape(a6)}/128(\s|$)", line)]
    assert a_rules, f"no PICKET rule for {a6} in {node}'s ip6tables-save:\n{rules6[-3000:]}"
    assert kind.ips["dual/a"] not in rules6
    rules4 = saved_rules(kind, node, "iptables-save")
    assert re.search(rf"^-A PICKET-\S+ .*-[ds] {re.escape(kind.ips['dual/a'])}/32(\s|$)", rules4, re.MULTILINE), \
        rules4[-3000:]
    say(f"dual stack: {node}'s ip6tables-save, {len(a_rules)} PICKET rules for {a6}, e.g. {a_rules[0]}")

    began = time.monotonic()
    kind.delete("networkpolicy", "a-from-b-or-d6", "dual")
    for family in FAMILIES:
        kind.expect(expected(dual, lambda s, d: True), family=family)
    say(f"dual stack: both families open again {time.monotonic() - began:.1f}s after the delete")
