"""Every networking.k8s.io/v1 policy of the seeds (seed 001's and seed 004's four examples) on real packets.

Each example directory holds a cluster file (namespaces and pods) and the policy as standard
YAML. The pods are created on the local cluster, the policy is applied with kubectl, and the
whole matrix (each destination probed on its own service port, cross-node pairs included) must
equal both the offline compiled prediction and a hand-written expectation of what the seed's
text says the policy does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.e2e.harness import E2E, example_dirs, expected, ns

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

Rule = Callable[[str, str], bool]

HAND: dict[str, Rule] = {
    # "Deny all traffic to a Pod": nothing reaches default/web.
    "seed001-web-deny-all": lambda s, d: d != "default/web",
    # All of default isolated; only pods of namespace kube-system get in.
    "seed001-allow-kube-system-ingress": lambda s, d: ns(d) != "default" or ns(s) == "kube-system",
    # longhorn-manager:9500 only from app.kubernetes.io/name=prometheus pods IN namespace monitoring
    # (default/scraper has the label but the wrong namespace).
    "seed001-allow-prometheus-longhorn-manager-ingress":
        lambda s, d: d != "longhorn-system/longhorn-manager" or s == "monitoring/prometheus",
    # grafana:3000 from prometheus pods of its namespace, or from any pod of kube-system; egress open.
    "seed001-grafana": lambda s, d: d != "monitoring/grafana" or s in ("monitoring/prometheus", "kube-system/coredns"),
    # mysql:3306 only from tier=api pods of project-a.
    "seed004-database-access-api-only": lambda s, d: d != "project-a/mysql" or s == "project-a/users-api",
    # restricted pods send nothing.
    "seed004-deny-restricted-egress": lambda s, d: s != "project-a/restricted",
    # policyTypes [Egress] only, with an allow-all egress rule: nothing is blocked.
    "seed004-ingress-disabled": lambda s, d: True,
    # users-api:8080 from role=client pods of every namespace.
    "seed004-microsvc-users-api-allow":
        lambda s, d: d != "project-a/users-api" or s in ("project-a/client", "project-b/client"),
}


def test_every_example_has_a_hand_written_expectation() -> None:
    assert {p.name for p in example_dirs()} == set(HAND)


@pytest.mark.parametrize("directory", example_dirs(), ids=lambda p: p.name)
def test_seed_policy(e2e: E2E, directory: Path) -> None:
    pods, _ = e2e.create_cluster(directory / "cluster.yaml")
    namespaces = sorted({ns(k) for k in pods})
    e2e.expect(expected(pods, lambda s, d: True), port=None, namespaces=namespaces)
    e2e.apply((directory / "policy.yaml").read_text())
    e2e.expect(expected(pods, HAND[directory.name]), port=None, namespaces=namespaces)
