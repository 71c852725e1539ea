"""Churn: hollow nodes with REAL agents, the operator at issue 13's size, pods created and deleted.

Run as root (the binaries built: ``picket lab build``), under the lab's lock on a shared machine:

    flock /run/picket-lab.lock python3 -m benchmarks.churn_bench [--pods 5000] [--policies 1000]
        [--nodes 20] [--churn-rate 50] [--churn-seconds 60] [--trials 10] [--idle-seconds 10] [--keep]

The cluster is ``hollow_bench``'s (its ``Setup``, imported): pods bound to hollow Node objects (no
kubelet; the benchmark sets their IPs through ``pods/status``), here each node with a podCIDR of
its own (a /20) and its pods' IPs from it. What is added: a real ``picket agent`` per hollow node,
started as ``picket_lab.deploy`` starts the lab nodes' agents (its ServiceAccount's token, the same
flags), each in a network namespace of its own, ``pkt-chrn-<pid>-<n>``, whose ``eth0`` is on the
lab bridge at 172.30.0.(100+n) (the lab's nodes use .11-.60), so it reaches the API server at
172.30.0.1 as the lab's nodes do. Each agent renders and applies its node's ~pods/nodes endpoints
into its namespace's own kernel tables, with its own xtables lock file (on a real cluster each
node has its own ``/run/xtables.lock``). No lab node namespaces are used: a lab node's runtime
would try to make every pod bound to it real. Measured in one run:

1. start-up: agents idle and waiting, then the operator started; until every hollow CompiledNode
   is published with all its pods (the operator's steady state), and until every agent reports
   that version applied (CompiledNode status); the operator's RSS and CPU, the agents' RSS;
2. idle: the agents' CPU over ``--idle-seconds`` at steady state (resyncs only);
3. churn: ``--churn-rate`` pod creates AND as many deletes per second for ``--churn-seconds``
   (each delete removes an existing pod, each create adds its replacement: same namespace,
   labels and node, a new name and a new IP; grace period 0, as there is no kubelet; a fixed
   window, see ``Churn``, the rate achieved printed): the
   agents' CPU (their own plus their waited-for children's, e.g. ``ip6tables-restore``) divided
   by the wall time = cores, per agent and in total, and the operator's; the rates achieved;
4. isolate-one-pod under the churn, ``--trials`` times spread over the churn: a NetworkPolicy
   (deny all ingress) selecting one pod (one of the trials' own pods, made with the setup: no
   setup policy selects them, and each has a label of its own for the policy to select exactly
   it), from the client's create request until its node's kernel has
   the pod's dispatch rule (``-d <ip>/32 ... PICKET-TIER-...``, polled with ``iptables-save``
   every ~50 ms inside that node's namespace), against a plain watcher seeing the policy's
   event (the floor); median, p99, ratio;
5. after the churn: the time until every agent has applied the final state again, RSS at the end.

Targets of issue 13 are printed beside the figures (operator steady state < 30 s and < 500 MB
RSS; agent < 0.1 core on average under the churn). Timings are printed, never asserted. The lab
is left as found (see ``hollow_bench.hollow_lab``); the benchmark's namespaces and processes are
removed at the end (and namespaces of a crashed run swept at the start), unless ``--keep``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ipaddress
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# This checkout's packages first, whatever picket install the interpreter has (several checkouts
# share the machine); ``picket_lab.deploy`` then runs the operator and agents from this tree too.
REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / p) for p in (".", "operator", "agent", "lab")]

from benchmarks.hollow_bench import (  # noqa: E402
    API,
    NS_COUNT,
    Setup,
    Watcher,
    cpu_seconds,
    hollow_lab,
    p99,
    pod,
    published_counts,
    rss_mb,
    running_status,
)
from picket.apiclient import ApiError, KubeClient  # noqa: E402
from picket_lab import procs  # noqa: E402
from picket_lab.api import Spawned  # noqa: E402
from picket_lab.deploy import Deployment, wait_until  # noqa: E402
from picket_lab.shell import ip, ip_batch  # noqa: E402
from picket_lab.topology import BRIDGE, LAB_NETNS, LAB_NETWORK  # noqa: E402
from tests.kernel.netns_topology import sweep  # noqa: E402

TAG = "chrn"
FIRST_HOST = 100  # the agents' namespaces are at 172.30.0.(100+n); the lab's nodes at .11-.60
MAX_NODES = 150
NODE_PREFIX = 20  # each hollow node's podCIDR: the n-th /20 from 10.128.0.0 (clear of the lab's ranges)
PODS_BASE = ipaddress.IPv4Address("10.128.0.0")
TRIAL_ADDRESSES = 3000  # the trials' pods' addresses: from the 3000th of their node's podCIDR
WORKERS = 64  # the churn's client threads (and connections)
POLL = 0.05  # seconds between two kernel reads of an isolate trial
TARGET_STARTUP_S, TARGET_RSS_MB, TARGET_AGENT_CORES = 30.0, 500.0, 0.1


def node_cidr(n: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((int(PODS_BASE) + (n << (32 - NODE_PREFIX)), NODE_PREFIX))


def node_pod_ip(n: int, j: int) -> str:
    """The ``j``-th pod address of hollow node ``n`` (the first address is kept, as a node's own)."""
    net = node_cidr(n)
    if j + 2 >= net.num_addresses:
        raise ValueError(f"node {n}: pod address {j} out of {net}")
    return str(net[1 + j])


class RangedSetup(Setup):
    """``hollow_bench.Setup`` whose nodes have a podCIDR each and whose pods take IPs from it."""

    def node_obj(self, n: int) -> dict[str, Any]:
        obj = super().node_obj(n)
        obj["spec"] = {**obj["spec"], "podCIDR": str(node_cidr(n)), "podCIDRs": [str(node_cidr(n))]}
        return obj

    def ip(self, i: int) -> str:
        return node_pod_ip(i % self.nodes, i // self.nodes)


def ratio(value: float, target: float) -> str:
    return f"{value / target:.2f}x of the target"


class AgentNodes:
    """A network namespace per hollow node on the lab bridge, each with that node's agent in it."""

    def __init__(self, deployment: Deployment, count: int) -> None:
        if not 1 <= count <= MAX_NODES:
            raise SystemExit(f"--nodes must be between 1 and {MAX_NODES}")
        self.deployment, self.count = deployment, count
        self.netns = {f"hollow-{n}": f"pkt-{TAG}-{os.getpid()}-{n}" for n in range(count)}
        self.locks = Path(tempfile.mkdtemp(prefix=f"pkt-{TAG}-{os.getpid()}-"))
        self.agents: dict[str, Spawned] = {}
        self.log_offsets: dict[str, int] = {}

    def create(self) -> None:
        for n, ns in enumerate(self.netns.values()):
            peer = f"pk{os.getpid()}c{n}"  # inside pkt-lab; goes with the pair when ``ns`` is deleted
            ip("netns", "add", ns)
            ip("link", "add", "eth0", "type", "veth", "peer", "name", peer, "netns", LAB_NETNS, netns=ns)
            ip_batch([f"link set {peer} master {BRIDGE}", f"link set {peer} up"], netns=LAB_NETNS)
            ip_batch(["link set lo up", f"addr add {LAB_NETWORK[FIRST_HOST + n]}/{LAB_NETWORK.prefixlen} dev eth0",
                      "link set eth0 up"], netns=ns)
        print(f"agents' namespaces: {self.count} ({next(iter(self.netns.values()))} ...), on the lab bridge "
              f"at {LAB_NETWORK[FIRST_HOST]}..{LAB_NETWORK[FIRST_HOST + self.count - 1]}", flush=True)

    def start(self) -> None:
        kc = self.deployment.agent_kubeconfig()
        for node, ns in self.netns.items():
            lock = str(self.locks / f"{node}.xtables.lock")
            log = self.deployment.lab.layout.root / "logs" / f"spawn-picket-agent-{node}.log"
            self.log_offsets[node] = log.stat().st_size if log.exists() else 0
            self.agents[node] = self.deployment.start_agent(node, kc, "--xtables-lock", lock, netns=ns)

    def remove(self) -> None:
        for spawned in self.agents.values():
            spawned.stop()
        for ns in self.netns.values():
            ip("netns", "del", ns, check=False)
        shutil.rmtree(self.locks, ignore_errors=True)

    def pids(self) -> list[int]:
        return [s.pid for s in self.agents.values()]

    def watching(self) -> bool:
        """Every agent has started its watches (logged since it was started here)."""
        for node, spawned in self.agents.items():
            with open(spawned.log, "rb") as f:
                f.seek(self.log_offsets[node])
                if b"watching the CompiledNode" not in f.read():
                    return False
        return True

    def dead(self) -> list[str]:
        return [node for node, s in self.agents.items() if not s.alive()]

    def cpu(self) -> dict[str, float]:
        return {node: cpu_seconds(s.pid, children=True) for node, s in self.agents.items()}

    def rss(self) -> str:
        values = [rss_mb(p) for p in self.pids()]
        return f"sum {sum(values):.0f} MB, max {max(values):.0f} MB, median {statistics.median(values):.0f} MB"

    def save(self, node: str, tool: str) -> str:
        done = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns[node]}", tool, "-t", "filter"],
                              capture_output=True, text=True, timeout=30, check=False)
        return done.stdout


def applied(kube: KubeClient, nodes: dict[str, int]) -> bool:
    """Every hollow node's CompiledNode published with all its pods and applied by its agent."""
    items = {o["metadata"]["name"]: o for o in kube.get(f"{API}/compilednodes").get("items", [])}
    for name, count in nodes.items():
        obj = items.get(name)
        if obj is None or int(obj["spec"]["summary"]["endpoints"]) != count:
            return False
        status = obj.get("status") or {}
        if status.get("applied") != "True" or status.get("appliedVersion") != obj["spec"].get("version"):
            return False
    return True


def dispatched(saved: str, pod_ip: str) -> bool:
    """The pod's ingress dispatch rule (``-d <ip>/32 ... -g PICKET-TIER-...``) is in the saved table."""
    needle = f"-d {pod_ip}/32 "
    return any(needle in line and "PICKET-TIER-" in line for line in saved.splitlines())


class Churn:
    """``rate`` pod replacements per second (a delete and a create each), paced evenly, for exactly
    ``seconds``: replacements whose turn came but that no client thread had started by then are
    dropped (the rate achieved is reported), so the CPU figures cover the asked window.

    Each delete takes the next pod of a queue (the setup's pods in random order) and its create
    adds the replacement (same namespace, labels and node; the next address of the node's
    podCIDR) at the queue's end, so a long churn deletes pods it made."""

    def __init__(self, kube: KubeClient, setup: RangedSetup, rate: int, seconds: float, seed: int = 13) -> None:
        self.kube, self.setup, self.rate, self.seconds = kube, setup, rate, seconds
        order = list(range(setup.pods))
        random.Random(seed).shuffle(order)
        self.queue: collections.deque[dict[str, Any]] = collections.deque(setup.pod_obj(i) for i in order)
        self.next_j = [len(range(n, setup.pods, setup.nodes)) for n in range(setup.nodes)]
        self.created = self.deleted = self.errors = 0
        self.late = 0.0  # the most a replacement started after its turn
        self.lock = threading.Lock()
        self.started = self.ended = math.nan

    def run(self) -> None:
        self.started = time.monotonic()
        pool = ThreadPoolExecutor(WORKERS)
        k = 0
        while (due := self.started + k / self.rate) < self.started + self.seconds:
            time.sleep(max(0.0, due - time.monotonic()))
            gone = self.queue.popleft()
            node_name = gone["spec"]["nodeName"]
            n = int(node_name.removeprefix("hollow-"))
            j, self.next_j[n] = self.next_j[n], self.next_j[n] + 1
            new = pod(gone["metadata"]["namespace"], f"c{k}", node_name,
                      int(gone["metadata"]["labels"]["app"].removeprefix("app-")))
            self.queue.append(new)
            pool.submit(self._replace, gone, new, node_pod_ip(n, j), due)
            k += 1
        time.sleep(max(0.0, self.started + self.seconds - time.monotonic()))
        pool.shutdown(wait=True, cancel_futures=True)
        self.ended = time.monotonic()

    def _replace(self, gone: dict[str, Any], new: dict[str, Any], pod_ip: str, due: float) -> None:
        late = time.monotonic() - due
        path = Setup._pod_path(new)
        try:
            self.kube.delete(Setup._pod_path(gone), {"apiVersion": "v1", "kind": "DeleteOptions",
                                                     "gracePeriodSeconds": 0})
            with self.lock:
                self.deleted += 1
            self.kube.create(path.rsplit("/", 1)[0], new)
            self.kube.merge_patch(f"{path}/status", running_status(pod_ip))
        except ApiError as exc:
            with self.lock:
                self.errors += 1
            if self.errors <= 3:
                print(f"  churn: replacing {gone['metadata']['name']} failed: {exc}", flush=True)
            return
        with self.lock:
            self.created += 1
            self.late = max(self.late, late)


def pods_per_node(kube: KubeClient) -> dict[str, int]:
    """The hollow pods with an IP per node, as the API server has them now."""
    counts: dict[str, int] = collections.Counter()
    for obj in kube.get("/api/v1/pods", labelSelector="hollow=yes").get("items", []):
        if (obj.get("status") or {}).get("podIP") and not obj["metadata"].get("deletionTimestamp"):
            counts[obj["spec"]["nodeName"]] += 1
    return dict(counts)


class Isolations(Watcher):
    """When a CompiledNode first binds a pod to an ingress rule set: ``"<node>:<namespace>/<pod>"``."""

    def __init__(self, kube: KubeClient) -> None:
        self.isolated: dict[str, set[str]] = {}
        super().__init__(kube, f"{API}/compilednodes")

    def record(self, when: float, obj: dict[str, Any]) -> None:
        node = str(obj["metadata"]["name"])
        now = {f"{r.get('namespace')}/{r.get('name')}" for r in (obj.get("spec") or {}).get("endpoints") or []
               if r.get("ingress")}
        with self.lock:
            new = now - self.isolated.get(node, set())
            self.isolated[node] = now
            self.changes.extend((when, f"{node}:{key}") for key in sorted(new))


class Trials:
    """Isolate one pod under churn: policy created -> its dispatch rule in its node's kernel.

    The trials' pods are pods of their own (``t<k>``, label ``app=trial``: no policy of the setup
    selects them, at any size), each with a label no other pod has, for a policy to select exactly
    it; they are spread over the nodes and never deleted by the churn."""

    def __init__(self, kube: KubeClient, setup: RangedSetup, agents: AgentNodes, count: int) -> None:
        self.kube, self.setup, self.agents = kube, setup, agents
        self.pods = []
        for k in range(count):
            obj = pod(f"hollow-{k % NS_COUNT}", f"t{k}", f"hollow-{k % setup.nodes}", 0)
            obj["metadata"]["labels"] = {"app": "trial", "hollow": "yes", "victim": f"v{k}"}
            self.pods.append((obj, node_pod_ip(k % setup.nodes, TRIAL_ADDRESSES + k // setup.nodes)))
        self.took_ms: list[float] = []
        self.published_ms: list[float] = []
        self.floor_ms: list[float] = []
        self.ended: list[float] = []  # monotonic time each trial ended
        self.tool = "iptables-legacy-save"
        self.policies = Watcher(kube, "/apis/networking.k8s.io/v1/networkpolicies")
        self.isolations = Isolations(kube)

    def create(self) -> None:
        """The trials' pods, running (before the operator starts: no events later)."""
        for obj, pod_ip in self.pods:
            path = Setup._pod_path(obj)
            self.kube.create(path.rsplit("/", 1)[0], obj)
            self.kube.merge_patch(f"{path}/status", running_status(pod_ip))

    def add_to(self, per_node: dict[str, int]) -> dict[str, int]:
        out = dict(per_node)
        for obj, _ in self.pods:
            out[obj["spec"]["nodeName"]] += 1
        return out

    def pick_tool(self) -> str:
        """The ``-save`` of the backend the agents chose (the one holding PICKET chains)."""
        node = next(iter(self.agents.netns))
        for tool in ("iptables-legacy-save", "iptables-nft-save"):
            if ":PICKET-" in self.agents.save(node, tool):
                self.tool = tool
        return self.tool

    def run(self, k: int) -> None:
        obj, pod_ip = self.pods[k]
        namespace, node = obj["metadata"]["namespace"], obj["spec"]["nodeName"]
        if dispatched(self.agents.save(node, self.tool), pod_ip):
            print(f"  trial {k}: {namespace}/{obj['metadata']['name']} already dispatched; skipped", flush=True)
            return
        name = f"isolate-{k}"
        body = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": {"namespace": namespace, "name": name},
                "spec": {"podSelector": {"matchLabels": {"victim": f"v{k}"}}, "policyTypes": ["Ingress"]}}
        path = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
        t0 = time.time()
        self.kube.create(path, body)
        deadline = t0 + 60
        seen = math.nan
        while time.time() < deadline:
            if dispatched(self.agents.save(node, self.tool), pod_ip):
                seen = time.time()
                break
            time.sleep(POLL)
        self.took_ms.append((seen - t0) * 1000)
        self.floor_ms.append((self.policies.first_after(t0, name) - t0) * 1000)
        self.published_ms.append(
            (self.isolations.first_after(t0, f"{node}:{namespace}/{obj['metadata']['name']}", 5) - t0) * 1000)
        self.ended.append(time.monotonic())
        with contextlib.suppress(ApiError):
            self.kube.delete(f"{path}/{name}")


def summary(xs: list[float]) -> str:
    good = [x for x in xs if not math.isnan(x)]
    if not good:
        return "no result"
    return f"median {statistics.median(good):.0f} ms, p99 {p99(good):.0f} ms (n={len(good)}/{len(xs)})"


CpuSnapshot = tuple[dict[str, float], dict[str, float], float]


def snapshot(agents: AgentNodes, others: dict[str, int]) -> CpuSnapshot:
    return agents.cpu(), {n: cpu_seconds(p) for n, p in others.items()}, time.monotonic()


def cores_since(agents: AgentNodes, others: dict[str, int], before: CpuSnapshot) -> CpuSnapshot:
    """Cores of each agent and of ``others`` (name -> pid) since ``before``, and the wall seconds."""
    a1, o1, now = snapshot(agents, others)
    a0, o0, t0 = before
    wall = now - t0
    return {n: (a1[n] - a0[n]) / wall for n in a0}, {n: (o1[n] - o0[n]) / wall for n in o0}, wall


def cores(of: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.3f}" for name, value in of.items())


def agent_cores(per_agent: dict[str, float]) -> str:
    values = list(per_agent.values())
    mean = statistics.mean(values)
    return (f"average per agent {mean:.3f} cores ({ratio(mean, TARGET_AGENT_CORES)} < {TARGET_AGENT_CORES}), "
            f"max {max(values):.3f}, total {sum(values):.2f} cores over {len(values)} agents")


def median_ratio(xs: list[float], floor: list[float]) -> str:
    good, fl = [x for x in xs if not math.isnan(x)], [f for f in floor if not math.isnan(f)]
    return f"{statistics.median(good) / statistics.median(fl):.1f}x" if good and fl else "-"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pods", type=int, default=5000)
    p.add_argument("--policies", type=int, default=1000)
    p.add_argument("--nodes", type=int, default=20, help="hollow nodes, each with a real agent")
    p.add_argument("--churn-rate", type=int, default=50, help="pod creates (and as many deletes) per second")
    p.add_argument("--churn-seconds", type=float, default=60)
    p.add_argument("--trials", type=int, default=10, help="isolate-one-pod trials during the churn")
    p.add_argument("--idle-seconds", type=float, default=10)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    sweep(f"pkt-{TAG}")
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
          flush=True)
    with hollow_lab(args.keep, args.nodes) as (_lab, kube, deployment):
        agents = AgentNodes(deployment, args.nodes)
        try:
            run(args, kube, deployment, agents)
        finally:
            if not args.keep:
                agents.remove()
    return 0


def run(args: argparse.Namespace, kube: KubeClient, deployment: Deployment, agents: AgentNodes) -> None:
    setup = RangedSetup(kube, args.pods, args.policies, args.nodes)
    setup.run()
    trials = Trials(kube, setup, agents, args.trials)
    trials.create()
    agents.create()
    agents.start()
    waited = time.monotonic()
    if not wait_until(lambda: agents.watching() or bool(agents.dead()), 300, 0.5):
        print("  agents not all watching after 300 s", flush=True)
    time.sleep(2)  # their initial lists done (no compiled objects yet): idle, waiting
    if agents.dead():
        raise SystemExit(f"agents died at start: {agents.dead()} (see /run/picket-lab/logs/)")
    print(f"agents: {args.nodes} started, watching after {time.monotonic() - waited:.1f}s; RSS {agents.rss()}",
          flush=True)

    want = trials.add_to(setup.per_node)
    started = time.monotonic()
    operator = deployment.start_operator("picket-operator-0")
    published = applied_at = math.nan
    deadline = started + 1800
    while time.monotonic() < deadline and math.isnan(applied_at):
        if math.isnan(published):
            counts = published_counts(kube)
            if all(counts.get(n) == c for n, c in want.items()):
                published = time.monotonic() - started
                op_cpu, op_rss = cpu_seconds(operator.pid), rss_mb(operator.pid)
        if not math.isnan(published) and applied(kube, want):
            applied_at = time.monotonic() - started
        time.sleep(0.5)
    if math.isnan(applied_at):
        raise SystemExit(f"no steady state within 1800 s (published: {published:.1f}s); dead: {agents.dead()}")
    print(f"start-up: operator start -> every CompiledNode published with all its pods: {published:.1f}s "
          f"({ratio(published, TARGET_STARTUP_S)} < {TARGET_STARTUP_S:.0f} s; {op_cpu:.1f} s of CPU); operator "
          f"RSS {op_rss:.0f} MB ({ratio(op_rss, TARGET_RSS_MB)} < {TARGET_RSS_MB:.0f} MB)", flush=True)
    print(f"start-up: -> every agent reported that version applied: {applied_at:.1f}s; agents' RSS {agents.rss()}; "
          f"({args.pods} pods, {args.policies} policies, {args.nodes} nodes with real agents)", flush=True)
    print(f"kernel: the agents write with {trials.pick_tool().removesuffix('-save')}", flush=True)

    pids = procs.pidfile_pids(deployment.lab.run_dir)
    others = {"operator": operator.pid, **{n: pids[n] for n in ("kube-apiserver", "etcd") if n in pids},
              "this benchmark (client, watchers, kernel polls)": os.getpid()}
    before = snapshot(agents, others)
    time.sleep(args.idle_seconds)
    idle, others_idle, _ = cores_since(agents, others, before)
    print(f"idle ({args.idle_seconds:.0f} s at steady state): agents {agent_cores(idle)}; cores of "
          f"{cores(others_idle)}", flush=True)

    churn = Churn(KubeClient(deployment.lab.kubeconfig, user_agent="picket-bench-churn", pool_size=WORKERS), setup,
                  args.churn_rate, args.churn_seconds)
    failed: list[BaseException] = []
    measured: list[CpuSnapshot] = []

    def churning() -> None:
        try:
            before = snapshot(agents, others)
            churn.run()
            measured.append(cores_since(agents, others, before))
        except BaseException as exc:
            failed.append(exc)
            raise

    thread = threading.Thread(target=churning, daemon=True)

    thread.start()
    warmup = min(3.0, args.churn_seconds / 5)
    span = max(0.0, args.churn_seconds - 3 * warmup)
    t0 = time.monotonic()
    for k in range(len(trials.pods)):
        time.sleep(max(0.0, t0 + warmup + k * span / max(1, len(trials.pods)) - time.monotonic()))
        trials.run(k)
    thread.join()
    if failed or not measured:
        raise SystemExit(f"the churn failed: {failed[0]!r}" if failed else "the churn failed")
    per_agent, others_churn, wall = measured[0]
    achieved = churn.created / (churn.ended - churn.started)
    scaled = statistics.mean(per_agent.values()) * args.churn_rate / achieved if achieved else math.nan
    under = sum(1 for t in trials.ended if t <= churn.ended)
    print(f"churn: {churn.created} pods created and {churn.deleted} deleted in {churn.ended - churn.started:.1f}s "
          f"({churn.created / (churn.ended - churn.started):.1f}/s each; asked {args.churn_rate}/s; "
          f"{churn.errors} errors; a replacement started at most {churn.late * 1000:.0f} ms after its turn)",
          flush=True)
    print(f"churn CPU over {wall:.1f}s (churn and trials): agents {agent_cores(per_agent)}; cores of "
          f"{cores(others_churn)}", flush=True)
    print(f"churn CPU scaled linearly to the asked {args.churn_rate}/s: average per agent {scaled:.3f} cores "
          f"({ratio(scaled, TARGET_AGENT_CORES)} < {TARGET_AGENT_CORES})", flush=True)
    print(f"isolate one pod under churn (policy created -> its dispatch rule in its node's kernel, polled every "
          f"{POLL * 1000:.0f} ms): {summary(trials.took_ms)}; of which until the CompiledNode binding it, seen by a "
          f"watch: {summary(trials.published_ms)}; floor (plain watcher of the policy) "
          f"{summary(trials.floor_ms)}; ratio median/floor {median_ratio(trials.took_ms, trials.floor_ms)}; "
          f"{under} of {len(trials.took_ms)} trials ended before the churn did", flush=True)

    t0 = time.monotonic()
    want = pods_per_node(kube)
    settled = wait_until(lambda: applied(kube, want), 600, interval=0.5)
    print(f"after the churn: every agent applied the final state {'' if settled else 'NOT '}within "
          f"{time.monotonic() - t0:.1f}s; operator RSS {rss_mb(operator.pid):.0f} MB; agents' RSS {agents.rss()}; "
          f"dead: {agents.dead() or 'none'}", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
