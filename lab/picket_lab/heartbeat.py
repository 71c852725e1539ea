"""The node's own objects, kept as a kubelet keeps them: register the Node, renew its Lease.

``register`` creates the Node (with its pod CIDR; or finds it after a restart) and posts a Ready
status; ``run`` renews ``kube-node-lease/<node>`` every ``LEASE_RENEW`` seconds (the node
lifecycle controller's heartbeat) and re-posts the node status every ``STATUS_EVERY`` seconds.
Errors are logged and retried on the next tick. Used by the node runtime, with the node's
own credentials (the Node authorizer lets a node write exactly these objects).
"""

from __future__ import annotations

import datetime
import logging
import threading

from picket.apiclient import ApiError, KubeClient, is_status
from picket_lab.objects import lease_object, node_object, node_status
from picket_lab.topology import NodeSpec

LEASE_DURATION = 40
LEASE_RENEW = 10.0
STATUS_EVERY = 60.0
LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
log = logging.getLogger("picket_lab.heartbeat")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_micro() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Heartbeat:
    def __init__(self, node: NodeSpec, kube: KubeClient) -> None:
        self.node, self.kube, self.uid = node, kube, ""

    def register(self) -> None:
        try:
            created = self.kube.create("/api/v1/nodes", node_object(self.node, now()))
        except ApiError as err:
            if not is_status(err, 409):
                raise
            created = self.kube.get(f"/api/v1/nodes/{self.node.name}")
        self.uid = created["metadata"]["uid"]
        self.post_status()
        self.renew_lease()
        log.info("registered node %s (uid %s, pod CIDR %s)", self.node.name, self.uid, self.node.pod_cidr)

    def post_status(self) -> None:
        self.kube.patch(f"/api/v1/nodes/{self.node.name}/status", {"status": node_status(self.node, now())})

    def renew_lease(self) -> None:
        path = f"{LEASES}/{self.node.name}"
        try:
            self.kube.patch(path, {"spec": {"renewTime": now_micro(), "holderIdentity": self.node.name,
                                            "leaseDurationSeconds": LEASE_DURATION}}, "application/merge-patch+json")
        except ApiError as err:
            if not is_status(err, 404):
                raise
            self.kube.create(LEASES, lease_object(self.node.name, self.uid, now_micro(), LEASE_DURATION))

    def run(self, stop: threading.Event) -> None:
        last_status = 0.0
        ticks = 0.0
        while not stop.wait(LEASE_RENEW):
            ticks += LEASE_RENEW
            try:
                self.renew_lease()
                if ticks - last_status >= STATUS_EVERY:
                    self.post_status()
                    last_status = ticks
            except Exception as err:  # keep beating; the next tick retries
                log.warning("heartbeat of %s failed: %s", self.node.name, err)
