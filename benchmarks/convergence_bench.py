"""Convergence on the local cluster: from ``kubectl`` to the first probe that sees the change enforced.

Run as root (the binaries built: ``picket lab build``):

    python3 -m benchmarks.convergence_bench [--pods 300] [--policies 60] [--big 1000] [--trials 50]
                                            [--big-trials 10] [--previous REF] [--keep]

It brings up a lab with enough nodes (each node has a /24 of pod addresses), deploys picket as
``picket demo`` does (manifests/, operator and agents with their ServiceAccount tokens), creates
the background load (``--pods`` pods in 6 namespaces and ``--policies`` NetworkPolicies over
them) plus two probe pods ``bench-probe/s`` and ``bench-probe/t`` on different nodes, then times:

1. policy: ``kubectl apply`` of a policy isolating ``t`` -> a prober inside ``s``'s network
   namespace (TCP connects every ~5 ms, 25 ms timeout) sees the first of three consecutive
   refusals;
2. label: ``kubectl label`` removing ``role=client`` from ``s`` (``t`` admits only clients) -> the
   same;
3. big: a policy selecting every pod of a ``--big``-pod namespace -> one prober per node, each
   aimed at that node's last-created pod of the namespace (an agent applies its node's whole
   CompiledNode in one transaction, so one pod per node stands for all of that node's pods): the
   first and the LAST of them blocked; reported separately, the time until every node's agent
   reports the new version applied, and the API writes to picket.dev objects per trial (from
   kube-apiserver's ``apiserver_request_total``).

``--previous REF`` (e.g. the commit before the CompiledNode form) first runs the big case with
that version's operator (from ``git archive REF``, with admin credentials, as this version's RBAC
no longer grants its writes), then starts this version's operator on the cluster it published
(timing the switch: CompiledEndpoints replaced by applied CompiledNodes) and runs the same
trials again: before and after in one run, on the same cluster and agents.

The floor is measured in the same run: a plain watcher (one list+watch stream in this process)
records when the API server delivers the corresponding event. Printed: median and p99 per kind,
the floor's, and their ratio. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from picket.apiclient import KubeClient
from picket_lab import lifecycle
from picket_lab.api import Lab, LabNotRunning
from picket_lab.deploy import Deployment, apply_manifests, picket_argv, wait_until

REPO = Path(__file__).resolve().parents[1]
API = "/apis/picket.dev/v1alpha1"

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


def policy_trials(b: Bench, floor: FloorWatcher, trials: int,
                  writes: list[float] | None = None) -> tuple[list[float], list[float]]:
    took, floors = [], []
    counter = Writes(b)
    for i in range(trials):
        name = f"deny-t-{i}"
        prober = b.prober("bench-probe/s", "bench-probe/t", "blocked")
        before = counter.count() if writes is not None else 0.0
        t0 = time.time()
        b.kubectl("apply", "-f", "-", stdin=deny_t(name))
        took.append(b.seen_at(prober) - t0)
        floors.append(floor.first_after(t0, lambda o, n=name: o["metadata"]["name"] == n) - t0)
        if writes is not None:
            time.sleep(0.5)  # the agent's status report
            writes.append(counter.count() - before)
        back = b.prober("bench-probe/s", "bench-probe/t", "allowed")
        b.kubectl("delete", "networkpolicy", "-n", "bench-probe", name)
        b.seen_at(back)
    return took, floors


def label_trials(b: Bench, floor: FloorWatcher, trials: int,
                 writes: list[float] | None = None) -> tuple[list[float], list[float]]:
    b.kubectl("apply", "-f", "-", stdin=(
        HEAD + "metadata: {name: clients-only, namespace: bench-probe}\n"
        "spec: {podSelector: {matchLabels: {app: t}},\n"
        "       ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]}\n"))
    took, floors = [], []
    counter = Writes(b)
    for _ in range(trials):
        b.seen_at(b.prober("bench-probe/s", "bench-probe/t", "allowed"))
        prober = b.prober("bench-probe/s", "bench-probe/t", "blocked")
        before = counter.count() if writes is not None else 0.0
        t0 = time.time()
        b.kubectl("label", "pod", "-n", "bench-probe", "s", "role-")
        took.append(b.seen_at(prober) - t0)
        floors.append(floor.first_after(
            t0, lambda o: o["metadata"]["name"] == "s" and "role" not in (o["metadata"].get("labels") or {})) - t0)
        if writes is not None:
            time.sleep(0.5)  # the agent's status report
            writes.append(counter.count() - before)
        b.kubectl("label", "pod", "-n", "bench-probe", "s", "role=client")
    b.kubectl("delete", "networkpolicy", "-n", "bench-probe", "clients-only")
    return took, floors


def applied_previous(kube: KubeClient, namespace: str, isolated: bool | None) -> bool:
    """Previous form: every CompiledEndpoint of the namespace applied at its version (isolated as asked)."""
    items = kube.get(f"{API}/namespaces/{namespace}/compiledendpoints").get("items", [])
    want = {True: "isolated", False: "open", None: None}[isolated]
    return bool(items) and all(
        want in (None, o["spec"]["summary"]["ingress"]) and (o.get("status") or {}).get("applied") == "True"
        and o["status"].get("appliedVersion") == o["spec"]["version"] for o in items)


def applied_current(kube: KubeClient, namespace: str, isolated: bool | None) -> bool:
    """Every CompiledNode applied at its version; the namespace's pods there (isolated as asked)."""
    nodes = kube.get(f"{API}/compilednodes").get("items", [])
    rows = [r for o in nodes for r in o["spec"]["endpoints"] if r.get("namespace") == namespace]
    return bool(rows) and all(isolated is None or bool(r.get("ingress")) == isolated for r in rows) and all(
        (o.get("status") or {}).get("appliedVersion") == o["spec"]["version"] for o in nodes)


class Writes:
    """API writes to picket.dev objects so far, by kube-apiserver's own request counter."""

    LINE = re.compile(r'^apiserver_request_total\{(.*)\} ([0-9.e+]+)$')

    def __init__(self, b: Bench) -> None:
        self.b = b

    def count(self) -> float:
        out = subprocess.run([str(self.b.lab.kubectl_path), f"--kubeconfig={self.b.lab.kubeconfig}", "get", "--raw",
                              "/metrics"], capture_output=True, text=True, timeout=60, check=True).stdout
        total = 0.0
        for line in out.splitlines():
            m = self.LINE.match(line)
            if m and 'group="picket.dev"' in m.group(1) and not re.search(r'verb="(GET|LIST|WATCH)"', m.group(1)):
                total += float(m.group(2))
        return total


def probe_targets(lab: Lab, big: int) -> list[str]:
    """Per node, the last-created pod of bench-big there (pods go round-robin over the nodes)."""
    n = len(lab.nodes)
    return [f"bench-big/b{max(i for i in range(big) if i % n == j)}" for j in range(min(n, big))]


def big_trials(b: Bench, floor: FloorWatcher, trials: int, big: int,
               applied: Callable[[KubeClient, str, bool | None], bool]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"first": [], "last": [], "status": [], "floor": [], "writes": []}
    text = ("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-all, namespace: bench-big}\n"
            "spec: {podSelector: {}, policyTypes: [Ingress]}\n")
    targets = probe_targets(b.lab, big)
    writes = Writes(b)
    for _ in range(trials):
        probers = [b.prober("bench-probe/s", t, "blocked") for t in targets]
        before = writes.count()
        t0 = time.time()
        b.kubectl("apply", "-f", "-", stdin=text)
        seen = [b.seen_at(p) - t0 for p in probers]
        out["first"].append(min(seen))
        out["last"].append(max(seen))
        wait_until(lambda: applied(b.kube, "bench-big", True), 120, interval=0.05)
        out["status"].append(time.time() - t0)
        out["floor"].append(floor.first_after(t0, lambda o: o["metadata"]["name"] == "deny-all") - t0)
        time.sleep(0.5)  # late status reports count too
        out["writes"].append(writes.count() - before)
        back = [b.prober("bench-probe/s", t, "allowed") for t in targets]
        b.kubectl("delete", "networkpolicy", "-n", "bench-big", "deny-all")
        for proc in back:
            b.seen_at(proc)
        wait_until(lambda: applied(b.kube, "bench-big", False), 120, interval=0.2)
    return out


def print_big(label: str, big: int, out: dict[str, list[float]]) -> None:
    print(figures(f"{label}policy over {big} pods -> first pod enforced", out["first"], out["floor"]))
    print(figures(f"{label}policy over {big} pods -> LAST pod enforced", out["last"], out["floor"]))
    print(figures(f"{label}policy over {big} pods -> every agent reported it applied", out["status"], out["floor"]))
    w = out["writes"]
    print(f"{label}API writes to picket.dev objects per trial (operator + agents): median "
          f"{statistics.median(w):.0f}, max {max(w):.0f}", flush=True)


def previous_tree(ref: str) -> Path:
    """The previous version's source, from git (run from it: PYTHONPATH, as the lab runs this tree)."""
    where = Path(tempfile.mkdtemp(prefix="picket-previous-"))
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def start_previous_operator(lab: Lab, tree: Path) -> Any:
    env = {"PYTHONPATH": ":".join(str(tree / d) for d in ("", "operator", "agent", "lab"))}
    argv = picket_argv("operator", "--kubeconfig", str(lab.kubeconfig), "--identity", "picket-operator-previous")
    return lab.spawn("picket-operator-previous", argv, env=env)


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
    p.add_argument("--trials", type=int, default=50, help="trials of the policy and label cases (0: skip them)")
    p.add_argument("--big-trials", type=int, default=0, help="trials of the big case (default: --trials)")
    p.add_argument("--previous", metavar="REF", help="also run the big case with this git ref's operator first "
                   "(the CompiledEndpoint form), then switch to this version on the same cluster")
    p.add_argument("--warmup", type=int, default=3, help="policy trials run first and discarded (a fresh "
                   "lab is still settling: controllers, 1000s of status reports)")
    p.add_argument("--keep", action="store_true", help="leave the lab and picket running")
    args = p.parse_args(argv)
    nodes = max(3, math.ceil((args.pods + args.big + 4) / 240))
    lab = ensure_lab(nodes)
    kube = KubeClient(lab.kubeconfig, user_agent="picket-bench", pool_size=32)
    apply_manifests(lab, lambda m: print(f"  {m}", flush=True))
    deployment = Deployment(lab)
    previous = None
    if args.previous:
        previous = start_previous_operator(lab, previous_tree(args.previous))
    else:
        deployment.start_operator("picket-operator-0")
    deployment.start_agents()
    big_trials_n = args.big_trials or args.trials
    try:
        setup(lab, kube, args.pods, args.policies, args.big)
        b = Bench(lab, kube)
        applied = applied_previous if previous is not None else applied_current
        quiet = wait_until(lambda: all(applied(kube, n, None) for n in ("bench-probe", "bench-big", "bench-0")),
                           600, interval=1.0)
        print(f"warm-up: every compiled object applied: {quiet}", flush=True)
        print(f"lab: {len(lab.nodes)} nodes; {args.pods} pods + {args.big} in bench-big; {args.policies} policies",
              flush=True)
        big_floor = FloorWatcher(kube, "/apis/networking.k8s.io/v1/namespaces/bench-big/networkpolicies")
        before: dict[str, list[float]] | None = None
        if previous is not None and args.big:
            before = big_trials(b, big_floor, big_trials_n, args.big, applied_previous)
            print_big(f"[previous {args.previous}] ", args.big, before)
        if previous is not None:
            previous.stop()
            started = time.monotonic()
            deployment.start_operator("picket-operator-0")

            def switched() -> bool:
                return (not kube.get(f"{API}/compiledendpoints").get("items")
                        and applied_current(kube, "bench-big", None))

            done = wait_until(switched, 300, interval=0.2)
            print(f"switch to this version: CompiledEndpoints replaced by applied CompiledNodes "
                  f"{'in' if done else 'NOT within'} {time.monotonic() - started:.1f}s of the operator's start",
                  flush=True)
        pol_floor = FloorWatcher(kube, "/apis/networking.k8s.io/v1/namespaces/bench-probe/networkpolicies")
        pod_floor = FloorWatcher(kube, "/api/v1/namespaces/bench-probe/pods")
        if args.trials:
            if args.warmup:
                warm, _ = policy_trials(b, pol_floor, args.warmup)
                print(f"warm-up trials (discarded): {', '.join(f'{w * 1000:.0f} ms' for w in warm)}", flush=True)
            pol_writes: list[float] = []
            took, floor = policy_trials(b, pol_floor, args.trials, pol_writes)
            print(figures("policy apply -> enforced", took, floor), flush=True)
            lab_writes: list[float] = []
            took, floor = label_trials(b, pod_floor, args.trials, lab_writes)
            print(figures("pod label change -> enforced", took, floor), flush=True)
            print("API writes to picket.dev objects per single-pod event (operator + agents, counted in the same "
                  f"trials): isolate one pod median {statistics.median(pol_writes):.0f}"
                  f" (max {max(pol_writes):.0f}), peer label change median {statistics.median(lab_writes):.0f} "
                  f"(max {max(lab_writes):.0f})", flush=True)
        if args.big:
            after = big_trials(b, big_floor, big_trials_n, args.big, applied_current)
            print_big("", args.big, after)
            if before is not None:
                ratio = statistics.median(before["last"]) / statistics.median(after["last"])
                wratio = statistics.median(before["writes"]) / max(1.0, statistics.median(after["writes"]))
                print(f"previous/this version: last pod enforced {ratio:.1f}x faster (median), "
                      f"{wratio:.0f}x fewer API writes", flush=True)
        dead = deployment.check_alive()
        if dead:
            print(f"processes that died: {dead}")
    finally:
        if previous is not None and previous.alive():
            previous.stop()
        if not args.keep:
            deployment.stop()
            for ns in ("bench-0", "bench-1", "bench-2", "bench-3", "bench-4", "bench-5", "bench-probe", "bench-big"):
                subprocess.run([str(lab.kubectl_path), f"--kubeconfig={lab.kubeconfig}", "delete", "namespace", ns,
                                "--wait=false", "--ignore-not-found"], capture_output=True, timeout=60)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
