"""Every seed NetworkPolicy of examples/ on kind: the seed's own pods (names, labels, ports) as real containers.

The same examples and hand-written expectations as the local cluster's tests/e2e/test_e2e_seeds.py:
each cluster file's namespaces and pods are created (pods spread over the three nodes, serving
every port they declare), everything must be open, then the policy is applied with kubectl and the
whole matrix (each destination probed on its own first declared port) must match the seed's text.
Namespaces that existed before (default, kube-system) are left as they are; the seeds' own are
deleted after the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from picket_lab import clusterfiles
from picket_lab.live import service_ports
from tests.e2e.harness import example_dirs
from tests.e2e.test_e2e_seeds import HAND
from tests.kind.harness import NODES, Kind, expected, probe_pod_from

pytestmark = [pytest.mark.kind, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def system_namespaces(kind: Kind) -> Iterator[set[str]]:
    """Namespaces that existed before (left alone); the seeds' own are deleted after the module."""
    before = set(kind.kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split())
    yield before
    now = set(kind.kubectl("get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}").split())
    seeds = {o["metadata"]["name"] for d in example_dirs() for o in clusterfiles.load(d / "cluster.yaml")
             if o.get("kind") == "Namespace"}
    for name in sorted((now & seeds) - before):
        kind.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=false", check=False)


@pytest.mark.parametrize("directory", example_dirs(), ids=lambda p: p.name)
def test_seed_policy_on_kind(kind: Kind, system_namespaces: set[str], directory: Path) -> None:
    objects = clusterfiles.load(directory / "cluster.yaml")
    namespaces = [o for o in objects if o.get("kind") == "Namespace"]
    made = [n["metadata"]["name"] for n in namespaces if n["metadata"]["name"] not in system_namespaces]
    pods = [o for o in objects if o.get("kind") == "Pod"]
    keys = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods]
    ports = service_ports(objects, keys)
    try:
        kind.apply(*({"apiVersion": "v1", "kind": "Namespace",
                      "metadata": {"name": n["metadata"]["name"], "labels": n["metadata"].get("labels") or {}}}
                     for n in namespaces if n["metadata"]["name"] in made))
        kind.apply(*(probe_pod_from(p, NODES[i % len(NODES)]) for i, p in enumerate(pods)))
        for key in keys:
            namespace, name = key.split("/")
            kind.kubectl("-n", namespace, "wait", "--for=condition=Ready", f"pod/{name}", "--timeout=120s")
            kind.learn_ips(key, json.loads(kind.kubectl("-n", namespace, "get", "pod", name, "-o", "json")))
        kind.expect(expected(keys, lambda s, d: True), ports=ports)
        kind.kubectl("apply", "-f", str(directory / "policy.yaml"))
        kind.expect(expected(keys, HAND[directory.name]), ports=ports)
    finally:
        kind.kubectl("delete", "-f", str(directory / "policy.yaml"), "--ignore-not-found", check=False)
        for key in keys:  # the next seed may use the same names
            namespace, name = key.split("/")
            kind.kubectl("-n", namespace, "delete", "pod", name, "--ignore-not-found", "--wait=true", check=False)
