"""End-to-end fixtures: picket deployed on the local cluster as manifests/ grants it, and a probe harness.

* ``deployed`` (session): manifests/ validated and applied to the lab's real API server; one
  operator (root namespace) and one agent per node (inside the node's namespace) running with the
  ServiceAccount tokens that manifests/ RBAC grants. A missing permission makes them fail.
* ``model`` (session): namespaces x, y, z with pods a, b, c (examples/model-cluster.yaml), spread
  over both nodes so cross-node pairs are in every matrix.
* ``e2e`` (per test): applies YAML with the real ``kubectl``, and ``expect`` polls the WHOLE live
  netcat matrix until it equals the expected one and the offline compiled prediction equals it
  too (two independent expectations), or fails at the deadline listing every differing pair.
  Everything a test applied is removed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from picket.apiclient import KubeClient
from picket_lab import clusterfiles as labmodel
from picket_lab.api import Lab
from picket_lab.deploy import Deployment, apply_calico_crds, apply_manifests, wait_until
from picket_lab.netpolapi import apply_cluster_network_policy_crd
from tests.e2e.harness import E2E, MODEL_FILE, MODEL_PODS


@pytest.fixture(scope="session")
def deployed(lab: Lab) -> Iterator[Deployment]:
    apply_manifests(lab, lambda _m: None)
    apply_calico_crds(lab)  # before the operator starts, so it watches the Calico kinds too
    apply_cluster_network_policy_crd(lab)  # the same for ClusterNetworkPolicy (network-policy-api release)
    deployment = Deployment(lab)
    deployment.start_operator("picket-operator-0")
    deployment.start_agents()
    try:
        yield deployment
    finally:
        dead = deployment.check_alive()
        deployment.stop()
        assert not dead, f"picket processes died during the tests: {dead} (see {lab.run_dir}/logs)"


@pytest.fixture(scope="session")
def kube(lab: Lab) -> KubeClient:
    return KubeClient(lab.kubeconfig, user_agent="picket-e2e")


@pytest.fixture(scope="session")
def model(lab: Lab, deployed: Deployment, kube: KubeClient) -> list[str]:
    base, _ = labmodel.for_lab(labmodel.load(MODEL_FILE), lab.nodes)
    labmodel.apply(kube, base)
    assert wait_until(lambda: labmodel.running(lab, kube, MODEL_PODS), 90), "model pods never ran"
    return MODEL_PODS


@pytest.fixture
def e2e(lab: Lab, kube: KubeClient, deployed: Deployment, model: list[str]) -> Iterator[E2E]:
    harness = E2E(lab, kube, deployed)
    try:
        yield harness
    finally:
        harness.cleanup()
