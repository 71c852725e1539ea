"""Hollow nodes: the operator against the real API server at a scale no runtime here could host.

Run as root (the binaries built: ``picket lab build``):

    python3 -m benchmarks.hollow_bench [--pods 50000] [--policies 5000] [--nodes 500] [--trials 100] [--keep]

Pods are bound to hollow nodes (Node objects without a kubelet, tolerating everything so the
node lifecycle controller leaves them alone) and the benchmark sets their IPs itself
(``pods/status``), so nothing runs: only the API server, etcd, the controllers and picket's
operator (this tree, the operator's ServiceAccount token). No agents. Measured in one run:

1. start-up: from the operator's start to the last hollow node's CompiledNode published with all
   its pods (steady state), and the operator's RSS then;
2. event -> published: ``--trials`` single-pod events (one pod relabelled so that another policy
   selects it, then back), from the client's request to a watch seeing that node's CompiledNode
   change, against a plain watcher seeing the pod event (the floor); median, p99, ratio;
3. API writes per single-pod event (kube-apiserver's ``apiserver_request_total`` for
   ``picket.dev``; no agents here, so the status report an agent would add is +1);
4. the operator's RSS at the end.

Timings are printed, never asserted. The lab is left as found: brought up (one node) if none ran,
then taken down, unless ``--keep``.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from picket.apiclient import ApiError, KubeClient
from picket_lab import lifecycle
from picket_lab.api import Lab, LabNotRunning
from picket_lab.deploy import Deployment, apply_manifests, wait_until

API = "/apis/picket.dev/v1alpha1"
NS_COUNT = 50


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return math.nan


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process (on a shared machine a steadier figure than wall time);
    with ``children``, also that of its children it has waited for (e.g. ``ip6tables-restore`` runs)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def node(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"picket.dev/hollow": "yes"}},
            "spec": {}}


def pod(namespace: str, name: str, node_name: str, app: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": namespace, "name": name, "labels": {"app": f"app-{app}", "hollow": "yes"}},
            "spec": {"nodeName": node_name, "tolerations": [{"operator": "Exists"}],
                     "containers": [{"name": "c", "image": "hollow", "ports": [{"containerPort": 80}]}]}}


def policy(namespace: str, i: int, apps: int) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": namespace, "name": f"pol-{i}"},
            "spec": {"podSelector": {"matchLabels": {"app": f"app-{i % apps}"}},
                     "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": f"app-{(i + 1) % apps}"}}}],
                                  "ports": [{"port": 80 + i % 5}]}]}}


def pod_ip(i: int) -> str:
    return f"10.{100 + i // 65536}.{(i // 256) % 256}.{i % 256}"


def running_status(ip: str) -> dict[str, Any]:
    """What a kubelet would report for a started pod (the body of a ``pods/status`` merge patch)."""
    return {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": "True"}]}}


class Setup:
    def __init__(self, kube: KubeClient, pods: int, policies: int, nodes: int) -> None:
        self.kube, self.pods, self.policies, self.nodes = kube, pods, policies, nodes
        self.apps = max(2, policies // NS_COUNT)

    def run(self) -> None:
        started = time.monotonic()
        self._each([self.node_obj(n) for n in range(self.nodes)], lambda o: f"/api/v1/nodes/{o['metadata']['name']}")
        self._each([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"hollow-{n}"}}
                    for n in range(NS_COUNT)], lambda o: f"/api/v1/namespaces/{o['metadata']['name']}")
        self._each([self.pod_obj(i) for i in range(self.pods)], self._pod_path)
        print(f"setup: {self.nodes} hollow nodes, {self.pods} pods created after "
              f"{time.monotonic() - started:.0f}s", flush=True)

        def running(i: int) -> None:
            self.kube.merge_patch(f"{self._pod_path(self.pod_obj(i))}/status", running_status(self.ip(i)))

        with ThreadPoolExecutor(16) as pool:
            list(pool.map(running, range(self.pods)))
        self._each([policy(f"hollow-{i % NS_COUNT}", i, self.apps) for i in range(self.policies)],
                   lambda o: f"/apis/networking.k8s.io/v1/namespaces/{o['metadata']['namespace']}/networkpolicies/"
                             f"{o['metadata']['name']}")
        print(f"setup: IPs set, {self.policies} policies created after {time.monotonic() - started:.0f}s",
              flush=True)

    @property
    def selected(self) -> list[int]:
        """Pods some policy selects (policy i: namespace i % NS_COUNT, app i % apps)."""
        chosen = {(i % NS_COUNT, i % self.apps) for i in range(self.policies)}
        return [i for i in range(self.pods) if (i % NS_COUNT, i % self.apps) in chosen]

    @property
    def per_node(self) -> dict[str, int]:
        """Pods per hollow node (pod i is on node i % nodes): what steady state publishes."""
        return {f"hollow-{n}": len(range(n, self.pods, self.nodes)) for n in range(self.nodes)}

    def pod_obj(self, i: int) -> dict[str, Any]:
        return pod(f"hollow-{i % NS_COUNT}", f"p{i}", f"hollow-{i % self.nodes}", i % self.apps)

    def node_obj(self, n: int) -> dict[str, Any]:
        return node(f"hollow-{n}")

    def ip(self, i: int) -> str:
        """Pod ``i``'s IP (set through ``pods/status``)."""
        return pod_ip(i)

    @staticmethod
    def _pod_path(o: dict[str, Any]) -> str:
        return f"/api/v1/namespaces/{o['metadata']['namespace']}/pods/{o['metadata']['name']}"

    def _each(self, objs: list[dict[str, Any]], path: Any) -> None:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda o: self.kube.apply(path(o), o, "picket-bench"), objs))


def published_counts(kube: KubeClient) -> dict[str, int]:
    items = kube.get(f"{API}/compilednodes").get("items", [])
    return {o["metadata"]["name"]: int(o["spec"]["summary"]["endpoints"]) for o in items}


class Watcher:
    """When objects of a collection changed, as one watch stream sees it: (when, name) pairs."""

    def __init__(self, kube: KubeClient, path: str, selector: str | None = None) -> None:
        self.kube, self.path, self.selector = kube, path, selector
        self.changes: list[tuple[float, str]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        rv = ""
        while True:
            try:
                if not rv:
                    rv = str(self.kube.get(self.path, limit=1)["metadata"]["resourceVersion"])
                for ev in self.kube.watch(self.path, rv, timeout_seconds=600, labelSelector=self.selector):
                    obj = ev.get("object") or {}
                    if ev.get("type") == "ERROR":  # e.g. 410 Gone: start again from now
                        rv = ""
                        break
                    meta = obj.get("metadata") or {}
                    rv = str(meta.get("resourceVersion", rv))
                    if ev.get("type") != "BOOKMARK" and meta.get("name"):
                        self.record(time.time(), obj)
            except ApiError as exc:
                if exc.status == 0:  # the lab went away
                    return
                rv = ""

    def record(self, when: float, obj: dict[str, Any]) -> None:
        """Note one change (here: the object's name; a subclass may note something finer)."""
        with self.lock:
            self.changes.append((when, str(obj["metadata"]["name"])))

    def first_after(self, t0: float, name: str, timeout: float = 30) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for when, seen in reversed(self.changes):
                    if when < t0:
                        break
                    if seen == name:
                        return when
            time.sleep(0.002)
        return math.nan


def writes(kube: KubeClient, lab: Lab) -> float:
    import re
    import subprocess

    out = subprocess.run([str(lab.kubectl_path), f"--kubeconfig={lab.kubeconfig}", "get", "--raw", "/metrics"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    total = 0.0
    for line in out.splitlines():
        if line.startswith("apiserver_request_total{") and 'group="picket.dev"' in line and not re.search(
                r'verb="(GET|LIST|WATCH)"', line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def p99(xs: list[float]) -> float:
    v = sorted(xs)
    return v[max(0, math.ceil(0.99 * len(v)) - 1)]


@contextlib.contextmanager
def hollow_lab(keep: bool, hollow_nodes: int) -> Iterator[tuple[Lab, KubeClient, Deployment]]:
    """The lab with manifests/ applied (brought up with one node if none ran) and a ``Deployment``.

    On leaving, picket's processes are stopped and the lab is left as found: taken down if it was
    brought up here, else the hollow namespaces and nodes are deleted; ``keep`` leaves everything."""
    try:
        lab, brought_up = Lab.current(), False
    except LabNotRunning:
        lifecycle.up(1, lambda m: print(f"  {m}", flush=True))
        lab, brought_up = Lab.current(), True
    kube = KubeClient(lab.kubeconfig, user_agent="picket-bench", pool_size=32)
    deployment = Deployment(lab)
    try:
        apply_manifests(lab, lambda m: print(f"  {m}", flush=True))
        yield lab, kube, deployment
    finally:
        deployment.stop()
        if not keep:
            if brought_up:
                lifecycle.down(lambda m: None)
            else:
                for path in [*(f"/api/v1/namespaces/hollow-{n}" for n in range(NS_COUNT)),
                             *(f"/api/v1/nodes/hollow-{n}" for n in range(hollow_nodes))]:
                    with contextlib.suppress(ApiError):
                        kube.delete(path)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=50000)
    p.add_argument("--policies", type=int, default=5000)
    p.add_argument("--nodes", type=int, default=500, help="hollow nodes")
    p.add_argument("--trials", type=int, default=100)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    with hollow_lab(args.keep, args.nodes) as (lab, kube, deployment):
        setup = Setup(kube, args.pods, args.policies, args.nodes)
        setup.run()
        want = setup.per_node
        started = time.monotonic()
        operator = deployment.start_operator("picket-operator-0")

        def steady() -> bool:
            counts = published_counts(kube)
            return all(counts.get(n) == c for n, c in want.items())

        ok = wait_until(steady, 1800, interval=1.0)
        took = time.monotonic() - started
        print(f"start-up: operator start -> every hollow CompiledNode published with all its pods: "
              f"{'' if ok else 'NOT within '}{took:.1f}s ({cpu_seconds(operator.pid):.1f} s of CPU); operator RSS "
              f"{rss_mb(operator.pid):.0f} MB "
              f"({args.pods} pods, {args.policies} policies, {args.nodes} nodes)", flush=True)
        nodes_seen = Watcher(kube, f"{API}/compilednodes")
        pods_seen = Watcher(kube, "/api/v1/pods", "hollow=yes")
        time.sleep(1)
        rng = random.Random(13)
        took_ms: list[float] = []
        floor_ms: list[float] = []
        per_event: list[float] = []
        for _ in range(args.trials):
            i = rng.choice(setup.selected)
            obj = setup.pod_obj(i)
            name, node_name = obj["metadata"]["name"], obj["spec"]["nodeName"]
            before = writes(kube, lab)
            # There and back: two single-pod events, each changing the pod's own rule set (a policy
            # selects it, then none does) and the peer sets that select its label.
            for label in ("unselected", obj["metadata"]["labels"]["app"]):
                t0 = time.time()
                kube.merge_patch(Setup._pod_path(obj), {"metadata": {"labels": {"app": label}}})
                took_ms.append((nodes_seen.first_after(t0, node_name) - t0) * 1000)
                floor_ms.append((pods_seen.first_after(t0, name) - t0) * 1000)
                time.sleep(0.2)
            per_event.append((writes(kube, lab) - before) / 2)
        good = [t for t in took_ms if not math.isnan(t)]
        fl = [t for t in floor_ms if not math.isnan(t)]
        print(f"event -> published (CompiledNode changed, seen by a watch): n={len(good)}/{len(took_ms)} "
              f"median {statistics.median(good):.0f} ms, p99 {p99(good):.0f} ms; floor (plain watcher) median "
              f"{statistics.median(fl):.0f} ms, p99 {p99(fl):.0f} ms; ratio median/floor "
              f"{statistics.median(good) / statistics.median(fl):.1f}x", flush=True)
        print(f"API writes per single-pod event (operator only; an agent adds one status report): median "
              f"{statistics.median(per_event):.1f}, max {max(per_event):.1f}", flush=True)
        print(f"operator RSS at the end: {rss_mb(operator.pid):.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
