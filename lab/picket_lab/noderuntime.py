"""The node runtime: kubelet and CNI for one lab node, running inside the node's namespace.

A watch on pods bound to this node (``spec.nodeName``) feeds a keyed work queue; workers make
each pod real: a network namespace and veth (``podnet``), an IP from the node's pod CIDR (or the
node's IP for hostNetwork pods), listeners for every declared containerPort (``listeners``), a
record file for ``lab exec``, then the Running status with IPs and conditions. A pod marked for
deletion is torn down and finally deleted with grace period 0, so nothing hangs in Terminating.
Started by ``lifecycle.up`` as ``python -m picket_lab.noderuntime --node-index I --run-dir DIR``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from picket.apiclient import ApiError, KubeClient, is_status
from picket_lab import podnet
from picket_lab.heartbeat import Heartbeat, now
from picket_lab.kubeconfig import credentials_from_kubeconfig
from picket_lab.listeners import PortServer
from picket_lab.objects import declared_ports, pod_running_status
from picket_lab.paths import RunLayout
from picket_lab.podaddrs import Allocator
from picket_lab.topology import NodeSpec, node_spec, pod_netns
from picket_lab.workqueue import WorkQueue

log = logging.getLogger("picket_lab.noderuntime")
WORKERS = 4


@dataclass(frozen=True)
class PodRecord:
    namespace: str
    name: str
    uid: str
    node: str
    netns: str
    ip: str
    host_network: bool


def _key(pod: dict[str, Any]) -> str:
    return f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"


class NodeRuntime:
    def __init__(self, node: NodeSpec, kube: KubeClient, layout: RunLayout) -> None:
        self.node, self.kube, self.layout = node, kube, layout
        self.queue = WorkQueue()
        self.ports = PortServer()
        self.addresses = Allocator(node.pod_cidr)
        self.lock = threading.Lock()
        self.seen: dict[str, dict[str, Any]] = {}
        self.local: dict[str, PodRecord] = {}

    # -- the watch: cache the latest object per pod and queue its key --
    def watch(self, stop: threading.Event) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.node.name}"}
        while not stop.is_set():
            try:
                listed = self.kube.get("/api/v1/pods", **selector)
                self._resync(listed["items"])
                version = listed["metadata"]["resourceVersion"]
                for event in self.kube.watch("/api/v1/pods", version, timeout_seconds=300, **selector):
                    if event["type"] != "BOOKMARK":
                        self._observe(event["object"], deleted=event["type"] == "DELETED")
            except ApiError as err:
                if not is_status(err, 410):  # 410 Gone: list again at once
                    log.warning("pod watch failed (%s); listing again", err)
                    stop.wait(1.0)
            except Exception as err:
                log.warning("pod watch failed (%s); listing again", err)
                stop.wait(1.0)

    def _resync(self, items: list[dict[str, Any]]) -> None:
        keys = {_key(p) for p in items}
        with self.lock:
            gone = [k for k in list(self.seen) + list(self.local) if k not in keys]
            for k in gone:
                self.seen.pop(k, None)
        for pod in items:
            self._observe(pod, deleted=False)
        for k in gone:
            self.queue.add(k)

    def _observe(self, pod: dict[str, Any], deleted: bool) -> None:
        key = _key(pod)
        with self.lock:
            if deleted:
                self.seen.pop(key, None)
            else:
                self.seen[key] = pod
        self.queue.add(key)

    # -- the workers --
    def work(self, stop: threading.Event) -> None:
        while not stop.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            try:
                self.sync(key)
            except Exception as err:
                log.warning("pod %s: %s; retrying", key, err)
                self.queue.add_after(key, 1.0)
            finally:
                self.queue.done(key)

    def sync(self, key: str) -> None:
        with self.lock:
            pod, record = self.seen.get(key), self.local.get(key)
        if record and (pod is None or pod["metadata"]["uid"] != record.uid):
            self._teardown(key, record)
            record = None
        if pod is None:
            return
        if pod["metadata"].get("deletionTimestamp"):
            if record:
                self._teardown(key, record)
            self._final_delete(pod)
            return
        if pod.get("status", {}).get("phase") in ("Succeeded", "Failed"):
            return
        record = record or self._setup(key, pod)
        status = pod.get("status", {})
        if status.get("podIP") != record.ip or status.get("phase") != "Running":
            self.kube.patch(f"/api/v1/namespaces/{record.namespace}/pods/{record.name}/status",
                            pod_running_status(pod, record.ip, self.node.ip, now()))
            log.info("pod %s running with IP %s in %s", key, record.ip, record.netns)

    def _setup(self, key: str, pod: dict[str, Any]) -> PodRecord:
        meta, spec = pod["metadata"], pod.get("spec", {})
        host_network = bool(spec.get("hostNetwork"))
        if host_network:
            netns, pod_ip = self.node.netns, self.node.ip
        else:
            netns = pod_netns(meta["namespace"], meta["name"], meta["uid"])
            pod_ip = self.addresses.take(meta["uid"], pod.get("status", {}).get("podIP"))
            try:
                podnet.create(netns, pod_ip)
            except Exception:
                self.addresses.release(meta["uid"])
                raise
        record = PodRecord(meta["namespace"], meta["name"], meta["uid"], self.node.name, netns, pod_ip, host_network)
        problems = self.ports.open(key, None if host_network else netns, declared_ports(pod))
        for problem in problems:
            log.warning("pod %s: cannot serve %s", key, problem)
        self.layout.pods.mkdir(parents=True, exist_ok=True)
        self.layout.pod_record(record.namespace, record.name).write_text(json.dumps(asdict(record)) + "\n")
        with self.lock:
            self.local[key] = record
        return record

    def _teardown(self, key: str, record: PodRecord) -> None:
        self.ports.close(key)
        if not record.host_network:
            podnet.delete(record.netns)
            self.addresses.release(record.uid)
        path = self.layout.pod_record(record.namespace, record.name)
        try:
            if json.loads(path.read_text()).get("uid") == record.uid:
                path.unlink()
        except (OSError, ValueError):
            pass
        with self.lock:
            if self.local.get(key) == record:
                del self.local[key]
        log.info("pod %s torn down", key)

    def _final_delete(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0,
                "preconditions": {"uid": meta["uid"]}}
        try:
            self.kube.delete(f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}", body)
        except ApiError as err:
            if not is_status(err, 404, 409):
                raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="picket-lab-noderuntime")
    parser.add_argument("--node-index", type=int, required=True)
    parser.add_argument("--run-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    node, layout = node_spec(args.node_index), RunLayout(args.run_dir)
    kube = KubeClient.from_credentials(credentials_from_kubeconfig(layout.component_kubeconfig(node.name)),
                                       user_agent=f"picket-lab-node/{node.name}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    heartbeat = Heartbeat(node, kube)
    heartbeat.register()
    runtime = NodeRuntime(node, kube, layout)
    threads = [threading.Thread(target=runtime.ports.serve, args=(stop,), name="ports", daemon=True),
               threading.Thread(target=heartbeat.run, args=(stop,), name="heartbeat", daemon=True),
               threading.Thread(target=runtime.watch, args=(stop,), name="watch", daemon=True)]
    threads += [threading.Thread(target=runtime.work, args=(stop,), name=f"worker-{i}", daemon=True)
                for i in range(WORKERS)]
    for t in threads:
        t.start()
    log.info("node runtime for %s started (%d workers)", node.name, WORKERS)
    while not stop.wait(1.0):
        pass
    log.info("node runtime for %s stopping", node.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
