"""Pure builders of the Kubernetes objects a kubelet writes: Node, Lease, pod status; port lists.

The node runtime sends these; tests check them without a cluster. Times are passed in (no clock
here). Pod status mirrors what a kubelet reports for a running pod: phase, pod/host IPs, the
five standard conditions and one running, ready, started status per container.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, TypedDict

from picket_lab.paths import KUBERNETES_VERSION
from picket_lab.topology import NodeSpec

# "pods" stays below the 253 addresses of a node's /24 pod CIDR, so the scheduler, not the
# runtime's address allocator, is what says a node is full.
CAPACITY = {"cpu": "16", "memory": "32Gi", "pods": "250", "ephemeral-storage": "100Gi"}
RUNTIME_VERSION = "picket-lab://0.1"
POD_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")


class ContainerPort(TypedDict, total=False):
    containerPort: int
    protocol: str
    name: str


@dataclass(frozen=True, order=True)
class Port:
    protocol: str  # "TCP" | "UDP"
    port: int


def declared_ports(pod: dict[str, Any]) -> list[Port]:
    """Every containerPort of the pod's containers; protocol defaults to TCP; SCTP is not served."""
    ports = set()
    for container in pod.get("spec", {}).get("containers", []) or []:
        for entry in container.get("ports", []) or []:
            protocol = str(entry.get("protocol") or "TCP").upper()
            number = entry.get("containerPort")
            if protocol in ("TCP", "UDP") and isinstance(number, int) and 0 < number < 65536:
                ports.add(Port(protocol, number))
    return sorted(ports)


def _node_conditions(now: str) -> list[dict[str, str]]:
    def cond(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now, "lastTransitionTime": now}

    return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "picket lab node"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "picket lab node"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "picket lab node"),
            cond("Ready", "True", "KubeletReady", "picket lab node runtime is posting ready status")]


def node_status(node: NodeSpec, now: str) -> dict[str, Any]:
    return {
        "capacity": CAPACITY, "allocatable": CAPACITY, "conditions": _node_conditions(now),
        "addresses": [{"type": "InternalIP", "address": node.ip}, {"type": "Hostname", "address": node.name}],
        "nodeInfo": {"machineID": node.name, "systemUUID": node.name, "bootID": node.name,
                     "kernelVersion": platform.release(), "osImage": "picket lab netns node",
                     "containerRuntimeVersion": RUNTIME_VERSION, "kubeletVersion": KUBERNETES_VERSION,
                     "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"},
    }


def node_object(node: NodeSpec, now: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node.name, "labels": {
            "kubernetes.io/hostname": node.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "picket.dev/lab-node": "true"}},
        "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]},
        "status": node_status(node, now),
    }


def lease_object(node: str, node_uid: str, now_micro: str, duration: int) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": node, "namespace": "kube-node-lease", "ownerReferences": [
            {"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]},
        "spec": {"holderIdentity": node, "leaseDurationSeconds": duration, "renewTime": now_micro},
    }


def pod_running_status(pod: dict[str, Any], pod_ip: str, host_ip: str, now: str) -> dict[str, Any]:
    uid = pod["metadata"]["uid"]
    statuses = [{
        "name": c["name"], "image": c.get("image", ""), "imageID": c.get("image", ""),
        "containerID": f"picket://{uid[:8]}-{c['name']}", "ready": True, "started": True, "restartCount": 0,
        "state": {"running": {"startedAt": now}},
    } for c in pod.get("spec", {}).get("containers", [])]
    conditions = [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": now}
                  for t in POD_CONDITIONS]
    return {"status": {
        "phase": "Running", "podIP": pod_ip, "podIPs": [{"ip": pod_ip}], "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}], "startTime": pod.get("status", {}).get("startTime") or now,
        "conditions": conditions, "containerStatuses": statuses,
    }}
