"""The local cluster behaves like a real one where the tests need it: nodes, pods, namespaces, RBAC.

Every test talks to the real API server and probes with real netcat inside pod namespaces.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from picket_lab.api import Lab
from picket_lab.network import lab_namespaces
from picket_lab.pytest_plugin import wait_for
from tests.lab.lab_manifests import gone, namespace, pod, ports, running_pods, spread_deployment, unique

pytestmark = [pytest.mark.lab, pytest.mark.timeout(3600)]
TCP_PORT, UDP_PORT, UNDECLARED_PORT = 8080, 5353, 9


@pytest.fixture(scope="module")
def spread(lab: Lab) -> dict[str, Any]:
    """Four replicas of a Deployment, two per node, serving TCP 8080 and UDP 5353."""
    ns = unique("lab-net")
    kube = lab.kube()
    kube.create("/api/v1/namespaces", namespace(ns))
    kube.create(f"/apis/apps/v1/namespaces/{ns}/deployments",
                spread_deployment(ns, "echo", 4, ports(tcp=(TCP_PORT,), udp=(UDP_PORT,))))
    pods = wait_for(lambda: (p := running_pods(lab, ns, "app=echo")) and len(p) == 4 and p, 120, "4 running pods")
    return {"namespace": ns, "pods": pods}


def _by_node(pods: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for p in pods:
        grouped.setdefault(p["spec"]["nodeName"], []).append(p)
    return grouped


def test_nodes_are_ready_with_their_pod_cidrs_and_leases(lab: Lab) -> None:
    kube = lab.kube()
    for index, name in enumerate(lab.nodes, start=1):
        node = kube.get(f"/api/v1/nodes/{name}")
        assert node["spec"]["podCIDR"] == f"10.244.{index}.0/24"
        assert {"type": "InternalIP", "address": lab.node_ip(name)} in node["status"]["addresses"]
        assert any(c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"])
        lease = kube.get(f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}")
        assert lease["spec"]["holderIdentity"] == name
    first = lab.nodes[0]
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{first}"
    before = kube.get(path)["spec"]["renewTime"]
    wait_for(lambda: kube.get(path)["spec"]["renewTime"] != before, 30, "the lease to be renewed", interval=0.5)


def test_deployment_pods_get_ips_from_their_nodes_cidrs(lab: Lab, spread: dict[str, Any]) -> None:
    cidrs = {name: ipaddress.ip_network(lab.kube().get(f"/api/v1/nodes/{name}")["spec"]["podCIDR"])
             for name in lab.nodes}
    pods = spread["pods"]
    assert {p["spec"]["nodeName"] for p in pods} == set(lab.nodes)
    assert len({p["status"]["podIP"] for p in pods}) == len(pods)
    for p in pods:
        assert ipaddress.ip_address(p["status"]["podIP"]) in cidrs[p["spec"]["nodeName"]]
        assert p["status"]["hostIP"] == lab.node_ip(p["spec"]["nodeName"])
        assert all(c["ready"] for c in p["status"]["containerStatuses"])
        record = lab.pod_record(spread["namespace"], p["metadata"]["name"])
        assert record["ip"] == p["status"]["podIP"] and record["netns"] in lab_namespaces()


@pytest.mark.parametrize("where", ["same node", "other node"])
def test_pods_answer_on_tcp_and_udp_and_refuse_undeclared_ports(lab: Lab, spread: dict[str, Any], where: str) -> None:
    ns, groups = spread["namespace"], _by_node(spread["pods"])
    src_node = lab.nodes[0]
    src = groups[src_node][0]
    dst = groups[src_node][1] if where == "same node" else groups[lab.nodes[1]][0]
    src_key, dst_ip = f"{ns}/{src['metadata']['name']}", dst["status"]["podIP"]

    assert lab.exec_in_pod(src_key, ["nc", "-z", "-w", "2", dst_ip, str(TCP_PORT)]).returncode == 0
    tcp = lab.exec_in_pod(src_key, ["sh", "-c", f"echo tcp-hello | nc -w 2 -q 1 {dst_ip} {TCP_PORT}"])
    assert "tcp-hello" in tcp.stdout
    udp = lab.exec_in_pod(src_key, ["sh", "-c", f"echo udp-hello | nc -u -w 1 {dst_ip} {UDP_PORT}"])
    assert "udp-hello" in udp.stdout
    refused = lab.exec_in_pod(src_key, ["nc", "-z", "-w", "2", dst_ip, str(UNDECLARED_PORT)])
    assert refused.returncode != 0


def test_pod_deletion_completes_and_tears_down_its_network(lab: Lab, spread: dict[str, Any]) -> None:
    ns = spread["namespace"]
    lab.kube().create(f"/api/v1/namespaces/{ns}/pods", pod(ns, "short-lived", ports(tcp=(80,))))
    wait_for(lambda: running_pods(lab, ns, "app=short-lived"), 60, "the pod to run")
    netns = lab.pod_netns(ns, "short-lived")
    lab.kube().delete(f"/api/v1/namespaces/{ns}/pods/short-lived")  # default grace period: 30 s
    wait_for(lambda: gone(lab, f"/api/v1/namespaces/{ns}/pods/short-lived"), 20, "the pod to be deleted")
    assert netns not in lab_namespaces()


def test_host_network_pods_use_the_node_address_and_namespace(lab: Lab, spread: dict[str, Any]) -> None:
    ns, node = spread["namespace"], lab.nodes[1]
    lab.kube().create(f"/api/v1/namespaces/{ns}/pods",
                      pod(ns, "hostnet", ports(tcp=(18080,)), hostNetwork=True, nodeName=node))
    running = wait_for(lambda: running_pods(lab, ns, "app=hostnet"), 60, "the hostNetwork pod to run")
    assert running[0]["status"]["podIP"] == lab.node_ip(node)
    assert lab.pod_netns(ns, "hostnet") == lab.node_netns(node)
    src = _by_node(spread["pods"])[lab.nodes[0]][0]["metadata"]["name"]
    probe = lab.exec_in_pod(f"{ns}/{src}", ["nc", "-z", "-w", "2", lab.node_ip(node), "18080"])
    assert probe.returncode == 0


def test_namespaces_delete_with_their_pods(lab: Lab) -> None:
    ns = unique("lab-gone")
    kube = lab.kube()
    kube.create("/api/v1/namespaces", namespace(ns))
    kube.create(f"/api/v1/namespaces/{ns}/pods", pod(ns, "doomed", ports(tcp=(80,))))
    wait_for(lambda: running_pods(lab, ns, "app=doomed"), 60, "the pod to run")
    netns = lab.pod_netns(ns, "doomed")
    kube.delete(f"/api/v1/namespaces/{ns}")
    wait_for(lambda: gone(lab, f"/api/v1/namespaces/{ns}"), 120, f"namespace {ns} to be deleted")
    assert netns not in lab_namespaces()


def test_new_namespaces_get_a_default_service_account_and_root_ca(lab: Lab) -> None:
    ns = unique("lab-sa")
    lab.kube().create("/api/v1/namespaces", namespace(ns))
    wait_for(lambda: not gone(lab, f"/api/v1/namespaces/{ns}/serviceaccounts/default"), 60, "the default SA")
    wait_for(lambda: not gone(lab, f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt"), 60, "kube-root-ca.crt")
    lab.kube().delete(f"/api/v1/namespaces/{ns}")


def test_service_account_kubeconfig_is_bound_by_rbac(lab: Lab) -> None:
    ns = unique("lab-rbac")
    kube = lab.kube()
    kube.create("/api/v1/namespaces", namespace(ns))
    wait_for(lambda: not gone(lab, f"/api/v1/namespaces/{ns}/serviceaccounts/default"), 60, "the default SA")
    config = lab.service_account_kubeconfig(ns, "default")
    as_sa = ["--kubeconfig", str(config), "-n", ns, "get", "pods"]
    denied = lab.kubectl(*as_sa, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    kube.create(f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "view"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": ns}]})
    wait_for(lambda: lab.kubectl(*as_sa, check=False).returncode == 0, 30, "the RoleBinding to take effect")
    kube.delete(f"/api/v1/namespaces/{ns}")


def test_spawned_processes_run_in_the_node_namespace(lab: Lab) -> None:
    node = lab.nodes[0]
    spawned = lab.spawn("lab-test-sleeper", ["sleep", "600"], node=node)
    try:
        assert spawned.alive()
        own = lab.exec_in_node(node, ["readlink", "/proc/self/ns/net"]).stdout.strip()
        wait_for(lambda: _netns_of(spawned.pid) == own, 10, "the spawned process to be in the node's netns")
    finally:
        spawned.stop()
    assert not spawned.alive()


def _netns_of(pid: int) -> str:
    import os

    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""
