"""Convergence on the local cluster: from ``kubectl`` to the first probe that sees the change enforced.

Run as root (the binaries built: ``picket lab build``):

    python3 benchmarks/convergence_bench.py [--pods 300] [--policies 60] [--big 1000] [--trials 50] [--keep]

It brings up a lab with enough nodes (each node has a /24 of pod addresses), deploys picket as
``picket demo`` does (manifests/, operator and agents with their ServiceAccount tokens), creates
the background load (``--pods`` pods in 6 namespaces and ``--policies`` NetworkPolicies over
them) plus two probe pods ``bench-probe/s`` and ``bench-probe/t`` on different nodes, then times:

1. policy: ``kubectl apply`` of a policy isolating ``t`` -> a prober inside ``s``'s network
   namespace (TCP connects every ~5 ms, 25 ms timeout) sees the first of three consecutive
   refusals;
2. label: ``kubectl label`` removing ``role=client`` from ``s`` (``t`` admits only clients) -> the
   same;
3. big: a policy selecting every pod of a ``--big``-pod namespace -> the first probed pod of that
   namespace blocked (and, reported separately, the time until every CompiledEndpoint of the
   namespace reports ``applied: True``).

The floor is measured in the same run: a plain watcher (one list+watch stream in this process)
records when the API server delivers the corresponding event. Printed: median and p99 per kind,
the floor's, and their ratio. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from picket.apiclient import KubeClient
from picket_lab import lifecycle
from picket_lab.api import Lab, LabNotRunning
from picket_lab.deploy import Deployment, apply_manifests, wait_until

PROBER = r"""
import socket, sys, time
ip, port, want_blocked = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "blocked"
deadline = time.time() + float(sys.argv[4])
streak, first = 0, None
print("ready", flush=True)
while time.time() < deadline:
    t = time.time()
    s = socket.socket(); s.settimeout(0.025)
    try:
        s.connect((ip, port)); ok = True
    except OSError:
        ok = False
    finally:
        s.close()
    if ok != want_blocked:
        first = t if streak == 0 else first
        streak += 1
        if streak >= 3 or not want_blocked:
            print(f"{first:.6f}", flush=True); sys.exit(0)
    else:
        streak = 0
    time.sleep(max(0.0, 0.005 - (time.time() - t)))
print("timeout", flush=True); sys.exit(1)
"""


class FloorWatcher:
    """A plain watch stream: when does the API server deliver an event for an object?"""

    def __init__(self, kube: KubeClient, path: str) -> None:
        self.kube, self.path = kube, path
        self.events: list[tuple[float, str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        rv = str(self.kube.get(self.path)["metadata"]["resourceVersion"])
        while True:
            for ev in self.kube.watch(self.path, rv, timeout_seconds=600):
                now = time.time()
                obj = ev.get("object") or {}
                rv = str((obj.get("metadata") or {}).get("resourceVersion", rv))
                with self.lock:
                    self.events.append((now, str(ev.get("type")), obj))

    def first_after(self, t0: float, match: Callable[[dict[str, Any]], bool], timeout: float = 10) -> float:
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                for when, _, obj in self.events:
                    if when >= t0 and match(obj):
                        return when
            time.sleep(0.002)
        return math.nan


class Bench:
    def __init__(self, lab: Lab, kube: KubeClient) -> None:
        self.lab, self.kube = lab, kube

    def kubectl(self, *args: str, stdin: str | None = None) -> None:
        argv = [str(self.lab.kubectl_path), f"--kubeconfig={self.lab.kubeconfig}", *args]
        subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60, check=True)

    def prober(self, src: str, dst: str, want: str, timeout: float = 60) -> subprocess.Popen[str]:
        ns, name = src.split("/")
        dns, dname = dst.split("/")
        proc = subprocess.Popen(["ip", "netns", "exec", self.lab.pod_netns(ns, name), sys.executable, "-c", PROBER,
                                 self.lab.pod_ip(dns, dname), "80", want, str(timeout)],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        return proc

    @staticmethod
    def seen_at(proc: subprocess.Popen[str]) -> float:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        proc.wait()
        return float(line) if line and line != "timeout" else math.nan


def pod(namespace: str, name: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": namespace, "name": name, "labels": labels},
            "spec": {"nodeName": node, "containers": [{"name": "server", "image": "picket/agnhost",
                                                       "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}


def netpol(namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"namespace": namespace, "name": name}, "spec": spec}


def create_all(kube: KubeClient, objects: list[dict[str, Any]]) -> None:
    def one(obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if obj["kind"] == "Namespace":
            path = f"/api/v1/namespaces/{meta['name']}"
        elif obj["kind"] == "Pod":
            path = f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
        else:
            path = f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/networkpolicies/{meta['name']}"
        kube.apply(path, obj, "picket-bench")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, objects))


def setup(lab: Lab, kube: KubeClient, pods: int, policies: int, big: int) -> None:
    nodes = lab.nodes
    spaces = [f"bench-{i}" for i in range(6)]
    objs: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "labels": {
        "bench": "yes", "team": f"team-{i % 3}"}}} for i, n in enumerate([*spaces, "bench-probe", "bench-big"])]
    create_all(kube, objs)
    load = [pod(spaces[i % 6], f"p{i}", nodes[i % len(nodes)], {"app": f"app-{i % 10}", "tier": f"t{i % 3}"})
            for i in range(pods)]
    load += [pod("bench-probe", "s", nodes[0], {"role": "client"}), pod("bench-probe", "t", nodes[1], {"app": "t"})]
    load += [pod("bench-big", f"b{i}", nodes[i % len(nodes)], {"app": "big"}) for i in range(big)]
    rules = [netpol(spaces[i % 6], f"bg{i}", {
        "podSelector": {"matchLabels": {"app": f"app-{i % 10}"}},
        "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": f"team-{i % 3}"}},
                               "podSelector": {"matchLabels": {"tier": f"t{i % 3}"}}}],
                     "ports": [{"port": 80 + i % 3}]}]}) for i in range(policies)]
    started = time.monotonic()
    create_all(kube, load + rules)
    keys = {f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in load}

    def running() -> bool:
        items = kube.get("/api/v1/pods").get("items", [])
        up = {f"{i['metadata']['namespace']}/{i['metadata']['name']}" for i in items
              if (i.get("status") or {}).get("podIP")}
        return keys <= up

    assert wait_until(running, 900, interval=1.0), "bench pods never ran"
    print(f"setup: {len(load)} pods, {len(rules)} policies running after {time.monotonic() - started:.0f}s", flush=True)


def figures(name: str, values: list[float], floor: list[float]) -> str:
    v = sorted(x for x in values if not math.isnan(x))
    f = sorted(x for x in floor if not math.isnan(x))
    if not v:
        return f"{name}: no successful trial"

    def p99(xs: list[float]) -> float:
        return xs[max(0, math.ceil(0.99 * len(xs)) - 1)]

    med, fmed = statistics.median(v), statistics.median(f) if f else math.nan
    slow = sorted(range(len(values)), key=lambda i: -values[i] if not math.isnan(values[i]) else 0)[:3]
    slowest = ", ".join(f"#{i}: {values[i] * 1000:.0f} ms" for i in slow)
    return (f"{name}: n={len(v)}/{len(values)} median {med * 1000:.0f} ms, p99 {p99(v) * 1000:.0f} ms, "
            f"max {v[-1] * 1000:.0f} ms; "
            f"floor (plain watcher) median {fmed * 1000:.0f} ms, p99 {p99(f) * 1000 if f else math.nan:.0f} ms; "
            f"ratio median/floor {med / fmed:.1f}x; slowest trials {slowest}")


HEAD = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"


def deny_t(name: str) -> str:
    return (HEAD + f"metadata: {{name: {name}, namespace: bench-probe}}\n"
            "spec: {podSelector: {matchLabels: {app: t}}, policyTypes: [Ingress]}\n")


def policy_trials(b: Bench, floor: FloorWatcher, trials: int) -> tuple[list[float], list[float]]:
    took, floors = [], []
    for i in range(trials):
        name = f"deny-t-{i}"
        prober = b.prober("bench-probe/s", "bench-probe/t", "blocked")
        t0 = time.time()
        b.kubectl("apply", "-f", "-", stdin=deny_t(name))
        took.append(b.seen_at(prober) - t0)
        floors.append(floor.first_after(t0, lambda o, n=name: o["metadata"]["name"] == n) - t0)
        back = b.prober("bench-probe/s", "bench-probe/t", "allowed")
        b.kubectl("delete", "networkpolicy", "-n", "bench-probe", name)
        b.seen_at(back)
    return took, floors


def label_trials(b: Bench, floor: FloorWatcher, trials: int) -> tuple[list[float], list[float]]:
    b.kubectl("apply", "-f", "-", stdin=(
        HEAD + "metadata: {name: clients-only, namespace: bench-probe}\n"
        "spec: {podSelector: {matchLabels: {app: t}},\n"
        "       ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]}\n"))
    took, floors = [], []
    for _ in range(trials):
        b.seen_at(b.prober("bench-probe/s", "bench-probe/t", "allowed"))
        prober = b.prober("bench-probe/s", "bench-probe/t", "blocked")
        t0 = time.time()
        b.kubectl("label", "pod", "-n", "bench-probe", "s", "role-")
        took.append(b.seen_at(prober) - t0)
        floors.append(floor.first_after(
            t0, lambda o: o["metadata"]["name"] == "s" and "role" not in (o["metadata"].get("labels") or {})) - t0)
        b.kubectl("label", "pod", "-n", "bench-probe", "s", "role=client")
    b.kubectl("delete", "networkpolicy", "-n", "bench-probe", "clients-only")
    return took, floors


def all_applied(kube: KubeClient, namespace: str, isolated: bool | None) -> bool:
    """Every CompiledEndpoint of the namespace applied at its current version (and isolated as asked)."""
    items = kube.get(f"/apis/picket.dev/v1alpha1/namespaces/{namespace}/compiledendpoints").get("items", [])
    want = {True: "isolated", False: "open", None: None}[isolated]
    return bool(items) and all(
        want in (None, o["spec"]["summary"]["ingress"]) and (o.get("status") or {}).get("applied") == "True"
        and o["status"].get("appliedVersion") == o["spec"]["version"] for o in items)


def big_trials(b: Bench, floor: FloorWatcher, trials: int, big: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first": [], "last": [], "status": [], "floor": []}
    text = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: bench-big}\n"
            "spec: {podSelector: {}, policyTypes: [Ingress]}\n")
    for _ in range(trials):
        first = b.prober("bench-probe/s", "bench-big/b0", "blocked")
        last = b.prober("bench-probe/s", f"bench-big/b{big - 1}", "blocked")
        t0 = time.time()
        b.kubectl("apply", "-f", "-", stdin=text)
        out["first"].append(b.seen_at(first) - t0)
        out["last"].append(b.seen_at(last) - t0)
        wait_until(lambda: all_applied(b.kube, "bench-big", True), 120, interval=0.1)
        out["status"].append(time.time() - t0)
        out["floor"].append(floor.first_after(t0, lambda o: o["metadata"]["name"] == "deny-all") - t0)
        back = [b.prober("bench-probe/s", f"bench-big/b{i}", "allowed") for i in (0, big - 1)]
        b.kubectl("delete", "networkpolicy", "-n", "bench-big", "deny-all")
        for proc in back:
            b.seen_at(proc)
        wait_until(lambda: all_applied(b.kube, "bench-big", False), 120, interval=0.2)
    return out


def ensure_lab(nodes: int) -> Lab:
    try:
        lab = Lab.current()
        if len(lab.nodes) >= nodes:
            return lab
        print(f"the running lab has {len(lab.nodes)} nodes; restarting it with {nodes}", flush=True)
        lifecycle.down(lambda m: None)
    except LabNotRunning:
        pass
    lifecycle.up(nodes, lambda m: print(f"  {m}", flush=True))
    return Lab.current()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=300)
    p.add_argument("--policies", type=int, default=60)
    p.add_argument("--big", type=int, default=1000, help="pods of the namespace one policy selects entirely (0: skip)")
    p.add_argument("--trials", type=int, default=50)
    p.add_argument("--big-trials", type=int, default=0, help="trials of the big case (default: --trials)")
    p.add_argument("--warmup", type=int, default=3, help="policy trials run first and discarded (a fresh "
                   "lab is still settling: controllers, 1000s of status reports)")
    p.add_argument("--keep", action="store_true", help="leave the lab and picket running")
    args = p.parse_args(argv)
    nodes = max(3, math.ceil((args.pods + args.big + 4) / 240))
    lab = ensure_lab(nodes)
    kube = KubeClient(lab.kubeconfig, user_agent="picket-bench", pool_size=32)
    apply_manifests(lab, lambda m: print(f"  {m}", flush=True))
    deployment = Deployment(lab)
    deployment.start_operator("picket-operator-0")
    deployment.start_agents()
    try:
        setup(lab, kube, args.pods, args.policies, args.big)
        b = Bench(lab, kube)
        quiet = wait_until(lambda: all(all_applied(kube, n, None) for n in ("bench-probe", "bench-big", "bench-0")),
                           600, interval=1.0)
        print(f"warm-up: every CompiledEndpoint applied: {quiet}", flush=True)
        pol_floor = FloorWatcher(kube, "/apis/networking.k8s.io/v1/namespaces/bench-probe/networkpolicies")
        pod_floor = FloorWatcher(kube, "/api/v1/namespaces/bench-probe/pods")
        print(f"lab: {len(lab.nodes)} nodes; {args.pods} pods + {args.big} in bench-big; {args.policies} policies",
              flush=True)
        if args.warmup:
            warm, _ = policy_trials(b, pol_floor, args.warmup)
            print(f"warm-up trials (discarded): {', '.join(f'{w * 1000:.0f} ms' for w in warm)}", flush=True)
        took, floor = policy_trials(b, pol_floor, args.trials)
        print(figures("policy apply -> enforced", took, floor), flush=True)
        took, floor = label_trials(b, pod_floor, args.trials)
        print(figures("pod label change -> enforced", took, floor), flush=True)
        if args.big:
            big_floor = FloorWatcher(kube, "/apis/networking.k8s.io/v1/namespaces/bench-big/networkpolicies")
            out = big_trials(b, big_floor, args.big_trials or args.trials, args.big)
            print(figures(f"policy over {args.big} pods -> first pod enforced", out["first"], out["floor"]))
            print(figures(f"policy over {args.big} pods -> last pod enforced", out["last"], out["floor"]))
            print(figures(f"policy over {args.big} pods -> every pcep Applied", out["status"], out["floor"]))
        dead = deployment.check_alive()
        if dead:
            print(f"processes that died: {dead}")
    finally:
        if not args.keep:
            deployment.stop()
            for ns in ("bench-0", "bench-1", "bench-2", "bench-3", "bench-4", "bench-5", "bench-probe", "bench-big"):
                subprocess.run([str(lab.kubectl_path), f"--kubeconfig={lab.kubeconfig}", "delete", "namespace", ns,
                                "--wait=false", "--ignore-not-found"], capture_output=True, timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
