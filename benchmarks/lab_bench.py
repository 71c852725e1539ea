"""Benchmark of the local cluster: ``lab up`` with warm binaries, and pod start-up latency.

Run as root: ``python3 benchmarks/lab_bench.py [--pods N] [--nodes 2]``. It tears down any lab,
times ``lab up`` (the binaries must be built already: ``picket lab build``), then measures, from
the client's create call to a watch seeing the pod Running with an IP (the node runtime reports
Running only after the pod's ports listen): N pods created one after another (each waited for),
then N pods created in one burst. Prints medians and p90s; targets: up < 30 s, median < 1 s.
Leaves the lab down at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
import uuid
from typing import Any

from picket.apiclient import ApiError
from picket_lab import lifecycle
from picket_lab.api import Lab
from picket_lab.build import missing_binaries
from picket_lab.paths import build_paths


class RunningWatcher:
    """Records when each pod of a namespace is first seen Running with a pod IP."""

    def __init__(self, lab: Lab, namespace: str) -> None:
        self.lab, self.namespace = lab, namespace
        self.seen: dict[str, float] = {}
        self.cond = threading.Condition()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        kube = self.lab.kube()
        path = f"/api/v1/namespaces/{self.namespace}/pods"
        while not self.stop.is_set():
            for event in kube.watch(path, "", timeout_seconds=60):
                pod = event["object"]
                status = pod.get("status", {})
                if status.get("phase") == "Running" and status.get("podIP"):
                    with self.cond:
                        self.seen.setdefault(pod["metadata"]["name"], time.monotonic())
                        self.cond.notify_all()

    def wait(self, names: list[str], timeout: float = 300) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: all(n in self.seen for n in names), timeout):
                raise SystemExit(f"timed out waiting for {len(names)} pods")


def pod(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": namespace, "name": name},
            "spec": {"containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10",
                                     "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}]}]}}


def summary(label: str, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p90 = ordered[max(0, int(len(ordered) * 0.9) - 1)]
    return (f"{label}: n={len(ordered)} median={statistics.median(ordered) * 1000:.0f} ms "
            f"p90={p90 * 1000:.0f} ms max={ordered[-1] * 1000:.0f} ms")


def measure_pods(lab: Lab, count: int, burst: bool) -> list[float]:
    namespace = f"bench-{uuid.uuid4().hex[:6]}"
    kube = lab.kube()
    kube.create("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    watcher = RunningWatcher(lab, namespace)
    watcher.thread.start()
    time.sleep(0.5)  # let the watch connect before the first create (not part of any figure)
    created: dict[str, float] = {}
    for i in range(count):
        name = f"p{i}"
        created[name] = time.monotonic()
        kube.create(f"/api/v1/namespaces/{namespace}/pods", pod(namespace, name))
        if not burst:
            watcher.wait([name])
    watcher.wait(list(created))
    watcher.stop.set()
    kube.delete(f"/api/v1/namespaces/{namespace}")
    wait_gone(lab, f"/api/v1/namespaces/{namespace}")  # frees the addresses before the next round
    return [watcher.seen[n] - created[n] for n in created]


def wait_gone(lab: Lab, path: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            lab.kube().get(path)
        except ApiError as err:
            if err.status == 404:
                return
            raise
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {path} to be deleted")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab_bench")
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if missing_binaries(build_paths()):
        print("binaries missing: run 'picket lab build' first (this benchmark measures warm starts)")
        return 2
    lifecycle.down(lambda _: None)
    t0 = time.monotonic()
    state = lifecycle.up(args.nodes, lambda _: None)
    up_seconds = time.monotonic() - t0
    print(f"lab up (warm binaries, {args.nodes} nodes): {up_seconds:.1f} s to ready "
          f"(inside up: {state.ready_seconds:.1f} s)   target < 30 s", flush=True)
    lab = Lab.current()
    try:
        print(summary("pod create -> Running with IP, one at a time", measure_pods(lab, args.pods, burst=False)))
        print(summary(f"pod create -> Running with IP, burst of {args.pods}", measure_pods(lab, args.pods, burst=True)))
    finally:
        if not args.keep:
            lifecycle.down(lambda _: None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
