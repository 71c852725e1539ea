"""Compiler benchmark: full compile time, peak memory, incremental event latency.

Synthetic clusters of realistic shape: namespaces labelled by team and environment; pods of ~8
apps per namespace with app/tier labels, named ports (http 8080, metrics 9090, dns 53/UDP on DNS
pods); policies mixing a per-namespace default deny, same-namespace app-to-app allows (numeric
and named ports), cross-namespace allows by team label (namespaceSelector AND podSelector),
monitoring scrapes by namespace name, DNS egress to kube-system plus an ipBlock with except, and
egress to named ports.

For each size: full ``compile_cluster`` time; its peak traced memory (tracemalloc, a second run)
and the process's max RSS; the initial load of an ``IncrementalCompiler``; then a mixed stream of
events (pod relabel, pod re-IP, pod add, pod delete, policy update, namespace relabel) with the
latency of each: median, p99, and median / full compile. Prints figures; asserts nothing.

    python -m benchmarks.compile_bench            # 1k/5k/20k pods
    python -m benchmarks.compile_bench --quick    # small sizes, a few seconds
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.incremental import IncrementalCompiler

APPS = ["web", "api", "worker", "db", "cache", "queue", "auth", "search"]
TEAMS = [f"team{i}" for i in range(10)]


def namespace(i: int) -> dict[str, Any]:
    labels = {"team": TEAMS[i % len(TEAMS)], "env": "prod" if i % 3 else "dev"}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"ns{i:04d}", "labels": labels}}


def pod(ns: str, i: int, ip_seq: int, app: str, version: str = "v1") -> dict[str, Any]:
    ports = [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
             {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}]
    if app == "dns":
        ports.append({"name": "dns", "containerPort": 53, "protocol": "UDP"})
    ip = f"10.{(ip_seq >> 16) & 255}.{(ip_seq >> 8) & 255}.{ip_seq & 255}"
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"namespace": ns, "name": f"{app}-{i}", "labels": {
            "app": app, "tier": "back" if app in ("db", "cache", "queue") else "front", "version": version}},
        "spec": {"nodeName": f"node-{ip_seq % 50}", "containers": [{"name": "main", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip},
    }


def policy(ns: str, i: int, rng: random.Random, namespaces: int) -> dict[str, Any]:
    shape = i % 6
    app, other = rng.choice(APPS), rng.choice(APPS)
    spec: dict[str, Any]
    if shape == 0:
        spec = {"podSelector": {}, "policyTypes": ["Ingress"]}
    elif shape == 1:
        spec = {"podSelector": {"matchLabels": {"app": app}},
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": other}}}],
                             "ports": [{"port": 8080}, {"port": "metrics"}]}]}
    elif shape == 2:
        spec = {"podSelector": {"matchLabels": {"app": app}},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": rng.choice(TEAMS)}},
                                       "podSelector": {"matchLabels": {"app": other}}}],
                             "ports": [{"port": 8080, "endPort": 8090}]}]}
    elif shape == 3:
        monitoring = f"ns{rng.randrange(namespaces):04d}"
        spec = {"podSelector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "back"]}]},
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": monitoring}}}], "ports": [{"port": "metrics"}]}]}
    elif shape == 4:
        spec = {"podSelector": {}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ns0000"}},
                                    "podSelector": {"matchLabels": {"app": "dns"}}}],
                            "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53}]},
                           {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.255.0.0/16"]}}]}]}
    else:
        spec = {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"],
                "egress": [{"to": [{"podSelector": {"matchLabels": {"tier": "back"}}}], "ports": [{"port": "http"}]}]}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": ns, "name": f"np-{i}"}, "spec": spec}


def cluster(pods: int, namespaces: int, policies: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    objects = [namespace(i) for i in range(namespaces)]
    objects.append(pod("ns0000", 0, 1, "dns"))
    for i in range(1, pods):
        ns = f"ns{i % namespaces:04d}"
        objects.append(pod(ns, i, i + 1, APPS[rng.randrange(len(APPS))]))
    objects += [policy(f"ns{i % namespaces:04d}", i, rng, namespaces) for i in range(policies)]
    return objects


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def event_stream(objects: list[dict[str, Any]], count: int, rng: random.Random) -> list[tuple[str, Any]]:
    pods = [o for o in objects if o["kind"] == "Pod"]
    pols = [o for o in objects if o["kind"] == "NetworkPolicy"]
    nss = [o for o in objects if o["kind"] == "Namespace"]
    events: list[tuple[str, Any]] = []
    for i in range(count):
        kind = i % 6
        if kind == 0:  # relabel a pod (moves it between selectors)
            p = rng.choice(pods)
            events.append(("pod", {**p, "metadata": {**p["metadata"], "labels": {**p["metadata"]["labels"],
                                                                                 "app": rng.choice(APPS)}}}))
        elif kind == 1:  # re-IP a pod
            p = rng.choice(pods)
            events.append(("pod", {**p, "status": {**p["status"], "podIP": f"10.254.{i >> 8 & 255}.{i & 255}"}}))
        elif kind == 2:  # a new pod
            ns = rng.choice(nss)["metadata"]["name"]
            events.append(("pod", pod(ns, 10_000_000 + i, 0xFE0000 + i, rng.choice(APPS))))
        elif kind == 3:  # delete a pod
            p = pods.pop(rng.randrange(len(pods)))
            events.append(("del-pod", (p["metadata"]["namespace"], p["metadata"]["name"])))
        elif kind == 4:  # edit a policy
            p = rng.choice(pols)
            spec = {**p["spec"], "ingress": [{"ports": [{"port": rng.randrange(1000, 2000)}]}]}
            events.append(("policy", {**p, "spec": spec}))
        else:  # relabel a namespace
            n = rng.choice(nss)
            events.append(("ns", {**n, "metadata": {**n["metadata"], "labels": {**n["metadata"]["labels"],
                                                                                 "team": rng.choice(TEAMS)}}}))
    return events


def apply(inc: IncrementalCompiler, kind: str, arg: Any) -> None:
    if kind == "pod":
        inc.upsert_pod(arg)
    elif kind == "del-pod":
        inc.delete_pod(*arg)
    elif kind == "policy":
        inc.upsert_policy(arg)
    else:
        inc.upsert_namespace(arg)


def load(objects: list[dict[str, Any]]) -> IncrementalCompiler:
    inc = IncrementalCompiler()
    for o in objects:
        apply(inc, {"Pod": "pod", "NetworkPolicy": "policy", "Namespace": "ns"}[o["kind"]], o)
    return inc


def run(pods: int, namespaces: int, policies: int, events: int) -> None:
    objects = cluster(pods, namespaces, policies)
    gc.collect()
    full, compiled = timed(lambda: compile_cluster(objects))
    tracemalloc.start()
    compile_cluster(objects)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    load_time, inc = timed(lambda: load(objects))
    latencies = {}
    for kind, arg in event_stream(objects, events, random.Random(7)):
        latencies.setdefault(kind, []).append(timed(lambda k=kind, a=arg: apply(inc, k, a))[0])
    every = sorted(t for ts in latencies.values() for t in ts)
    median, p99 = statistics.median(every), every[int(0.99 * (len(every) - 1))]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{pods:>6} pods {namespaces:>5} ns {policies:>5} policies | full {full * 1000:8.1f} ms"
          f" ({len(compiled.peer_sets)} peer sets) | peak {peak / 2**20:6.1f} MB traced, {rss:6.0f} MB max RSS"
          f" | incremental load {load_time * 1000:8.1f} ms")
    per_kind = ", ".join(f"{k} {statistics.median(v) * 1000:.2f}" for k, v in sorted(latencies.items()))
    print(f"{'':>6}      events {len(every)}: median {median * 1000:.3f} ms, p99 {p99 * 1000:.3f} ms,"
          f" median/full {median / full:.5f}; median by kind (ms): {per_kind}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    args = parser.parse_args()
    sizes = [(500, 50, 50, 300), (1000, 100, 100, 600)] if args.quick else [
        (1000, 100, 100, 600), (5000, 250, 1000, 1200), (5000, 500, 5000, 1200), (20000, 1000, 5000, 1200)]
    for size in sizes:
        run(*size)


if __name__ == "__main__":
    main()
