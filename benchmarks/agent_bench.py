"""Agent benchmark: apply latency and dataplane cost, both iptables backends side by side (``pkt-bnch-*``).

Run as root: ``python3 -m benchmarks.agent_bench [--seconds 3] [--rounds 3] [--baseline REV]
[--only apply|dataplane|floor] [--scales "110x10,110x10 dual,250x2,250x500"] [--floor-scale 250x500]``.
Nothing outside its own namespaces is touched; they are removed at the end (and swept at the
start). Every figure is printed for the legacy backend (python-iptables for IPv4,
ip6tables-legacy-restore for IPv6) and the nft backend (ip[6]tables-nft-restore) in one run.
``--baseline REV`` also measures the agent as it was at git revision REV (its ``agent/`` tree
is extracted with ``git archive`` into a temp dir and put first on the path; legacy, IPv4 only).

1. Apply, for one node with N pods each selected by M policies (``--scales``: 110x10 is 1100
   policies; "dual": dual-stack pods, peer sets with IPv6 members too; 250x500 runs one round:
   it is 126k rules), 50 peer sets of 40 members, with the real ``SyncLoop`` and
   ``families.NodeDataplane`` (medians of ``--rounds`` runs, each from an empty kernel): the
   first sync; one pod added as the loop applies it between resyncs (quick: trusts the last
   apply) and as a verifying resync (kernel read and compared); a no-op submit (an equal state
   submitted again: rendered, found equal, kernel not touched); a no-op resync (kernel read or,
   on nft, its generation compared; nothing written). Targets (issue 14) are printed beside.
2. Dataplane cost: new TCP connections per second over IPv4 and over IPv6 (a small C client
   built here with gcc: connect + close with SO_LINGER 0, back to back, against a C
   accept-and-close server) and bulk throughput (iperf3, IPv4) between a client and a server
   pod of one node, with no picket rules and with the 1100-policy dual-stack state (the server
   is policed by 10 policies, the client by an egress policy; both are the LAST pods in their
   direction's dispatch order, the worst case for flat dispatch). Every mode (none, and each
   agent, per backend) has its own node, set up once. One client process moves between the
   modes' client pods (``setns``) in 25 ms slices, round-robin, so every mode is measured
   within the same ~0.1 s again and again and a shared machine's load, which drifts over
   seconds, falls on all alike; the median of per-round ratios to "none" of the same backend is
   reported, and the time picket adds per connection (1/rate - 1/rate(none)), which does not
   depend on how fast the machine opens connections at the time. Every node keeps a
   kube-proxy-like ``FORWARD -m conntrack --ctstate INVALID -j DROP`` (IPv4 and IPv6) of its
   backend (``iptables-legacy`` or ``iptables-nft``), as every Kubernetes node has, so conntrack
   runs in every mode, one netfilter backend is on the hook, and the ratio is picket's rules
   alone (``--bare``: without it, so the ratio also charges picket for turning conntrack on).
   ``--baseline REV`` with an agent that has both backends measures it on both. Targets: >= 98%,
   >= 99%.
3. ``--only floor`` (only then): the floor of a first apply at ``--floor-scale`` (250x500: 126k
   rules), that no Python can beat: the rendered state's ipsets (``ipset restore``) and table
   (``ip[6]tables-{legacy,nft}-restore --noflush --counters`` with the agent's own first-apply
   script) written into an empty, fresh namespace per run, wall and CPU; and the pure render
   (no cache) and the script's assembly in Python. Medians of ``--rounds``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AGENT = Path(os.environ.get("PICKET_BENCH_AGENT", REPO / "agent"))  # the agent tree to measure
sys.path[:0] = [str(REPO), str(AGENT)]

from picket.model import Compiled, Direction, Protocol  # noqa: E402
from tests.kernel.netns_topology import ENV, Topology, sh, sweep  # noqa: E402
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, pod, rule  # noqa: E402

SERVER_POD, CLIENT_POD = 99, 89  # "ns9/pod99" and "ns9/pod89" sort last among isolated pods
PORT = 80
KUBE_PROXY_LIKE = ["-m", "conntrack", "--ctstate", "INVALID", "-j", "DROP"]


def pod_ip(i: int) -> str:
    return f"10.90.{i // 250}.{i % 250}"


def pod_ip6(i: int) -> str:
    return f"fd00:90::{i // 250:x}:{i % 250:x}"


SERVER, CLIENT = pod_ip(SERVER_POD), pod_ip(CLIENT_POD)
SERVER6, CLIENT6 = pod_ip6(SERVER_POD), pod_ip6(CLIENT_POD)


def node_state(
    pods: int = 110, policies: int = 10, sets: int = 50, members: int = 40, seed: int = 1, dual: bool = False
) -> Compiled:
    """``pods`` pods of one node, each selected by ``policies`` policies; ``dual``: dual-stack
    pods and peer sets with as many IPv6 members as IPv4 ones."""
    rnd = random.Random(seed)
    peer_sets = []
    for s in range(sets):
        v4 = {f"10.91.{rnd.randrange(40)}.{rnd.randrange(1, 250)}" for _ in range(members)}
        v6 = {f"fd00:91::{rnd.randrange(40):x}:{rnd.randrange(1, 250):x}" for _ in range(members)} if dual else set()
        peer_sets.append(ip_set(f"ps-{s}", *sorted(v4 | v6)))
    peer_sets[0] = ip_set("ps-0", CLIENT, *([CLIENT6] if dual else []), *peer_sets[0].members[1:])
    eps = []
    for i in range(pods):
        pols = []
        for p in range(policies):
            port = str(rnd.choice([80, 443, 8080, 9090, 5432]))
            peers = ("ps-0",) if p == policies - 1 else (f"ps-{rnd.randrange(1, sets)}",)
            pols.append(
                (f"NetworkPolicy ns{i % 10}/pod{i}-p{p}", (rule(proto=Protocol.TCP, port=(port,), peers=peers),))
            )
        if i == SERVER_POD:  # the server: its last policy lets the client in on 5201 (iperf3) and 80
            pols[-1] = (
                "NetworkPolicy ns9/allow-client",
                (rule(proto=Protocol.TCP, port=(str(PORT), "5201"), peers=("ps-0",)),),
            )
        eg = k8s(Direction.EGRESS, ("NetworkPolicy eg", (rule(),))) if i % 2 else None
        more = (pod_ip6(i),) if dual else ()
        eps.append(ep(pod(f"ns{i % 10}/pod{i}", pod_ip(i), "n1", *more), ingress=k8s(Direction.INGRESS, *pols),
                      egress=eg))
    return compiled(eps, peer_sets)


def inner_apply(backend: str, scale: str) -> None:
    """Runs inside the node namespace: time the syncs with the real loop and applier."""
    from picket_agent.loop import SyncLoop
    from picket_agent.settings import AgentSettings

    pods, policies, dual = SCALES[scale]
    state, plus_one, plus_two = (node_state(pods + n, policies, dual=dual) for n in (0, 1, 2))
    loop = SyncLoop(AgentSettings(), _dataplane(backend))
    loop.submit(state)
    with _cpu() as cpu_first:
        first = loop.sync()
    loop.submit(plus_one)
    with _cpu() as cpu_added:
        added = loop.sync(force_read=False)
    loop.submit(plus_two)
    added_verified = loop.sync(force_read=True)

    equal_copies = [node_state(pods + 2, policies, dual=dual) for _ in range(5)]  # as a feed re-reading its source

    def noop_submit():  # type: ignore[no-untyped-def]
        loop.submit(equal_copies.pop())
        return loop.sync(force_read=False)

    noop = min(_timed(noop_submit) for _ in range(5))
    verify = min(_timed(lambda: loop.sync(force_read=True)) for _ in range(5))
    with _cpu() as cpu_verify:
        loop.sync(force_read=True)
    d = loop.last_desired
    assert d is not None and first.report is not None and added.report is not None
    print(json.dumps({
        "first": first.elapsed, "added": added.elapsed, "added_verified": added_verified.elapsed,
        "noop": noop, "verify": verify, "rules": d.rule_count(), "chains": len(d.chains),
        "sets": len(d.sets), "added_written": added.report.chains_written,
        "cpu_first": cpu_first[0], "cpu_added": cpu_added[0], "cpu_verify": cpu_verify[0],
    }))


@contextlib.contextmanager
def _cpu() -> Iterator[list[float]]:
    """CPU seconds of this process AND its children (the restore binaries) spent in the block:
    unlike wall time, hardly inflated when other work on a shared machine takes the CPU."""
    out = [0.0]
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    yield out
    own2, kids2 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out[0] = sum(b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime for a, b in ((own, own2), (kids, kids2)))


def _dataplane(backend: str):  # type: ignore[no-untyped-def]
    """The agent's node dataplane for ``backend``; an agent tree from before the backends (``--baseline``)
    has only the legacy Applier."""
    try:
        from picket_agent.kernel import families
    except ImportError:
        from picket_agent.kernel.applier import Applier
        from picket_agent.kernel.ipsets import IpsetIO
        from picket_agent.kernel.iptables import IptablesIO

        return Applier(IptablesIO(), IpsetIO())
    return families.build("/run/xtables.lock", backend)


# scale name -> (pods, policies selecting each pod, dual-stack)
SCALES = {"110x10": (110, 10, False), "110x10 dual": (110, 10, True), "250x2": (250, 2, False),
          "250x500": (250, 500, False)}


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    assert result.ok
    return time.perf_counter() - start


INTERLEAVED_C = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
/* argv: seconds slice_ms address port netns-file...: round-robin over the client pods' network
   namespaces (setns before any socket: nothing is sent from the namespace it started in), one
   slice each, connect + close (RST) back to back; prints "round pod connections failed seconds"
   per slice. Each round starts at the next pod, so no pod always follows the same one. */
int main(int argc, char **argv) {
  double total = atof(argv[1]), slice = atof(argv[2]) / 1000; int n = argc - 5, fds[64];
  struct sockaddr_in a = {0}; struct sockaddr_in6 a6 = {0}; struct linger l = {1, 0};
  int v6 = inet_pton(AF_INET6, argv[3], &a6.sin6_addr) == 1;
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[4])); inet_pton(AF_INET, argv[3], &a.sin_addr);
  a6.sin6_family = AF_INET6; a6.sin6_port = a.sin_port;
  struct sockaddr *to = v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a;
  socklen_t len = v6 ? sizeof a6 : sizeof a;
  if (n < 1 || n > 64) return 2;
  for (int i = 0; i < n; i++) if ((fds[i] = open(argv[5 + i], O_RDONLY)) < 0) { perror(argv[5 + i]); return 1; }
  double end = now() + total;
  for (int r = 0; now() < end; r++) {
    for (int k = 0; k < n; k++) {
      int i = (r + k) % n; long ok = 0, failed = 0;
      if (setns(fds[i], CLONE_NEWNET) != 0) { perror("setns"); return 1; }
      double start = now(), stop = start + slice, t;
      while ((t = now()) < stop) {
        int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
        setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        if (connect(s, to, len) == 0) ok++; else failed++;
        close(s);
      }
      printf("%d %d %ld %ld %.6f\n", r, i, ok, failed, t - start);
    }
  }
  return 0;
}
"""
SERVER_C = r"""
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {  /* accept and close, forever; IPv6 and IPv4 (v4-mapped) */
  int s = socket(AF_INET6, SOCK_STREAM, 0), one = 1, zero = 0; struct sockaddr_in6 a = {0};
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  a.sin6_family = AF_INET6; a.sin6_port = htons(atoi(argv[1]));
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096)) return 1;
  for (;;) { int c = accept(s, 0, 0); if (c >= 0) close(c); }
}
"""


def build_tools(where: Path) -> tuple[str, str]:
    if shutil.which("gcc") is None:
        sys.exit("agent_bench: gcc is needed for the connection-rate client (scripts/setup.sh installs it)")
    out = []
    for name, source in (("server", SERVER_C), ("interleaved", INTERLEAVED_C)):
        (where / f"{name}.c").write_text(source)
        sh("gcc", "-O2", "-o", str(where / name), str(where / f"{name}.c"))
        out.append(str(where / name))
    return out[0], out[1]


def throughput(topo: Topology, seconds: float, client: str = "client") -> float:
    out = sh("ip", "netns", "exec", topo.pods[client][0], "iperf3", "-J", "-c", SERVER, "-t", str(seconds),
             timeout=seconds + 30)
    return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])


def agent_env(agent_dir: Path) -> dict[str, str]:
    return {**ENV, "PYTHONPATH": os.pathsep.join([str(agent_dir), ENV["PYTHONPATH"]]),
            "PICKET_BENCH_AGENT": str(agent_dir)}


def run_in_node(topo: Topology, agent_dir: Path, *argv: str, node: str = "n1") -> str:
    proc = subprocess.run(["ip", "netns", "exec", topo.ns(node), sys.executable, *argv], env=agent_env(agent_dir),
                          capture_output=True, text=True, check=False, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed: {proc.stderr[-2000:]}")
    return proc.stdout


def cleanup(topo: Topology, node: str = "n1") -> None:
    run_in_node(topo, REPO / "agent", "-m", "picket.cli", "agent", "--cleanup", node=node)


Mode = tuple[str, Path, str]  # (label, agent tree, --iptables-backend; "" for a tree from before the backends)


def measure_apply(topo: Topology, modes: list[Mode], scale: str, rounds: int) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in modes}
    for _ in range(rounds):
        for label, agent_dir, backend in modes:
            cleanup(topo)
            out = run_in_node(topo, agent_dir, str(Path(__file__).resolve()), "--inner", "--backend",
                              backend or "legacy", "--scale", scale)
            runs[label].append(json.loads(out))
    cleanup(topo)
    return {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()}


TARGETS = {  # scale -> (first apply, one pod added, no-op resync) in ms, from issue 14
    "110x10": ("<= 150", "<= 20", "<= 15"), "110x10 dual": ("", "", ""), "250x2": ("<= 1000", "<= 30", ""),
    "250x500": ("<= 1000", "<= 30", ""),
}


def print_apply(scale: str, results: dict[str, dict[str, float]]) -> None:
    pods, policies, dual = SCALES[scale]
    any_run = next(iter(results.values()))
    family = "dual-stack pods and peer sets" if dual else "IPv4"
    print(f"apply, {pods} pods x {policies} policies each ({pods * policies} policies), {family}, 50 peer sets of "
          f"40 (ms, medians; {any_run['sets']:.0f} ipsets):")
    labels = list(results)
    first, added, resync = TARGETS.get(scale, ("", "", ""))
    print("  " + " " * 34 + "".join(f"{label:>12}" for label in labels))
    rows = [
        (f"first apply            {first:>8}", "first"),
        (f"one pod added, quick   {added:>8}", "added"),
        ("one pod added, verified", "added_verified"),
        ("no-op submit", "noop"),
        (f"no-op resync, verified {resync:>8}", "verify"),
        ("CPU ms (agent + children): first", "cpu_first"),
        ("  one pod added, quick", "cpu_added"),
        ("  no-op resync, verified", "cpu_verify"),
    ]
    for title, key in rows:
        print(f"  {title:34}" + "".join(f"{results[label][key] * 1000:12.1f}" for label in labels))
    for label in labels:
        r = results[label]
        print(f"  {label}: {r['rules']:.0f} rules in {r['chains']:.0f} chains; one pod added wrote "
              f"{r['added_written']:.0f} chains")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="legacy", help=argparse.SUPPRESS)
    parser.add_argument("--scale", default="110x10", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also measure the (legacy) agent of this git revision")
    parser.add_argument("--only", choices=["apply", "dataplane", "floor"],
                        help="run one half only; floor: the restore binaries' and the renderer's time for "
                             "--floor-scale (not run otherwise)")
    parser.add_argument("--floor-scale", default="250x500", help=f"the scale of --only floor, of {', '.join(SCALES)}")
    parser.add_argument("--scales", default="110x10,110x10 dual,250x2",
                        help=f"apply scales, comma separated, of {', '.join(SCALES)}")
    parser.add_argument("--legacy-restore", action="store_true",
                        help="also apply with iptables-legacy-restore instead of python-iptables + hand-packed entries")
    parser.add_argument("--bare", action="store_true",
                        help="no kube-proxy-like conntrack rule: 'none' then runs without conntrack at all")
    args = parser.parse_args()
    if args.inner:
        inner_apply(args.backend, args.scale)
        return
    if os.geteuid() != 0:
        sys.exit("agent_bench: run as root (it creates network namespaces)")
    sweep("pkt-bnch")
    work = Path(tempfile.mkdtemp(prefix="pkt-bnch-"))
    modes: list[Mode] = [("legacy", REPO / "agent", "legacy"), ("nft", REPO / "agent", "nft")]
    if args.legacy_restore:
        modes.append(("leg-restore", REPO / "agent", "legacy-restore"))
    if args.baseline:
        sh("sh", "-c", f"git -C {REPO} archive {args.baseline} agent | tar -x -C {work}")
        if (work / "agent" / "picket_agent" / "kernel" / "families.py").exists():  # it has both backends
            modes = [(f"{args.baseline} legacy", work / "agent", "legacy"), (f"{args.baseline} nft", work / "agent",
                                                                              "nft"), *modes]
        else:
            modes = [(f"at {args.baseline}", work / "agent", ""), *modes]
    if args.only == "floor":
        try:
            floor(args.floor_scale, max(args.rounds, 1))
        finally:
            shutil.rmtree(work, ignore_errors=True)
            for line in sh("ip", "netns", "list", check=False).stdout.splitlines():  # none should be left
                if line.startswith(f"pkt-bnch-{os.getpid()}-"):
                    sh("ip", "netns", "del", line.split(" ", 1)[0], check=False)
        return
    topo = Topology("bnch")
    try:
        if args.only != "dataplane":
            topo.add_node("n1", "192.168.90.1")
            for scale in args.scales.split(","):
                usable = [m for m in modes if m[2] or not SCALES[scale][2]]  # no IPv6 before the backends
                print_apply(scale, measure_apply(topo, usable, scale, 1 if scale == "250x500" else args.rounds))
        if args.only != "apply":
            # (an agent from before the backends cannot render the dual-stack state: not measured here)
            dataplane(topo, [m for m in modes if m[2] in ("legacy", "nft")], work, args.seconds, args.rounds,
                      not args.bare)
    finally:
        topo.destroy()
        shutil.rmtree(work, ignore_errors=True)


def floor(scale: str, reps: int = 3) -> None:
    """What no Python can beat for one node's first apply: the restore binaries writing the
    rendered state into an empty, fresh namespace (``pkt-bnch-<pid>-floor-<n>``, one per run,
    removed right after), and the pure render itself. Medians of ``reps``."""
    from picket_agent.kernel.restore import restore_script
    from picket_agent.rendering.diffing import plan_table
    from picket_agent.rendering.iptrules import SavedTable
    from picket_agent.rendering.renderer import render

    pods, policies, dual = SCALES[scale]
    state = node_state(pods, policies, dual=dual)
    renders = []
    for _ in range(reps):
        start, cpu = time.perf_counter(), time.process_time()
        desired = render(state)
        renders.append((time.perf_counter() - start, time.process_time() - cpu))
    families = [(4, desired), *([(6, desired.v6)] if desired.v6 is not None else [])]
    start, cpu = time.perf_counter(), time.process_time()
    texts = {family: restore_script(plan_table(d, SavedTable()), SavedTable()) for family, d in families}
    script_s = (time.perf_counter() - start, time.process_time() - cpu)
    sets = "".join(
        f"create {s.name} {s.kind.value} family {'inet6' if s.family == 6 else 'inet'}\n"
        + "".join(f"add {s.name} {m}\n" for m in s.members) + "".join(f"add {s.name} {m} nomatch\n" for m in s.nomatch)
        for _, d in families for s in d.sets.values())
    runs: dict[str, list[tuple[float, float]]] = {}
    seq = 0

    def timed_in_fresh(steps: list[tuple[str, list[str], str]]) -> None:
        nonlocal seq
        seq += 1
        ns = f"pkt-bnch-{os.getpid()}-floor-{seq}"
        sh("ip", "netns", "add", ns)
        try:
            for label, argv, text in steps:
                kids = resource.getrusage(resource.RUSAGE_CHILDREN)
                start = time.perf_counter()
                proc = subprocess.run(["ip", "netns", "exec", ns, *argv], input=text, capture_output=True, text=True,
                                      timeout=1200, check=False)
                wall = time.perf_counter() - start
                kids2 = resource.getrusage(resource.RUSAGE_CHILDREN)
                if proc.returncode != 0:
                    raise RuntimeError(f"{' '.join(argv)} failed: {proc.stderr[-2000:]}")
                cpu = kids2.ru_utime - kids.ru_utime + kids2.ru_stime - kids.ru_stime
                runs.setdefault(label, []).append((wall, cpu))
        finally:
            sh("ip", "netns", "del", ns, check=False)

    for _ in range(reps):
        timed_in_fresh([("ip netns exec true (overhead, included below)", ["true"], "")])
        for backend in ("legacy", "nft"):
            steps = [(f"ipset restore ({backend} run)", ["ipset", "restore"], sets)]
            steps += [(f"{'ip6tables' if family == 6 else 'iptables'}-{backend}-restore",
                       [f"{'ip6tables' if family == 6 else 'iptables'}-{backend}-restore", "--noflush", "--counters"],
                       texts[family]) for family, _ in families]
            timed_in_fresh(steps)
    med = statistics.median
    members = sum(len(s.members) + len(s.nomatch) for _, d in families for s in d.sets.values())
    print(f"floor of a first apply, {pods} pods x {policies} policies each ({pods * policies} policies"
          f"{', dual-stack' if dual else ''}): {desired.rule_count()} rules in "
          f"{sum(len(d.chains) for _, d in families)} chains, {sum(len(d.sets) for _, d in families)} ipsets "
          f"({members} members); restore text {sum(map(len, texts.values())) / 1e6:.1f} MB; medians of {reps} "
          f"(each restore into an empty fresh namespace; load average {os.getloadavg()[0]:.1f}):")
    print(f"  {'render (pure Python, no cache)':46} {med(w for w, _ in renders):8.3f} s wall "
          f"{med(c for _, c in renders):8.3f} s CPU")
    print(f"  {'plan + restore text (Python, once)':46} {script_s[0]:8.3f} s wall {script_s[1]:8.3f} s CPU")
    for label, values in runs.items():
        print(f"  {label:46} {med(w for w, _ in values):8.3f} s wall {med(c for _, c in values):8.3f} s CPU")


def backend_tables(topo: Topology, node: str) -> tuple[str, str]:
    """The legacy tables (``/proc/net/ip[6]_tables_names``) and nft tables that exist in ``node``."""
    legacy = topo.in_node(node, "cat", "/proc/net/ip_tables_names", "/proc/net/ip6_tables_names",
                          check=False).stdout.split()
    nft = topo.in_node(node, "nft", "list", "tables", check=False).stdout.split("\n")
    return " ".join(sorted(set(legacy))), " ".join(t.strip() for t in nft if t.strip())


def dataplane(
    topo: Topology, agents: list[Mode], work: Path, seconds: float, rounds: int, kube_proxy_like: bool = True
) -> None:
    """Every mode has its own node, set up once: "none" (no picket rules) and each agent, per
    backend, each node with a client and a server pod, and a kube-proxy-like conntrack rule of
    its backend (``iptables-legacy`` or ``iptables-nft``): one netfilter backend on the hook,
    as on a real node (a legacy filter table, once created in a namespace, stays hooked, empty
    or not, until the namespace goes; checked at the end).

    New connections/s: ONE client process (``INTERLEAVED_C``) moves between the modes' client
    pods (``setns``) in slices of ``SLICE_MS``, round-robin, for ``rounds * seconds`` seconds per
    mode: every mode is measured within the same ~0.1 s over and over, so the load of a shared
    machine, which drifts over seconds, falls on all modes alike. Reported: the rate over all
    slices, the median over rounds of the ratio to "none" of the same backend (a round: one
    slice per mode), and the time picket adds per connection (1/rate - 1/rate(none), from the
    rates over all slices). IPv4 and IPv6 (the pods and rules are dual-stack). Bulk throughput
    (iperf3, IPv4): ``rounds`` rounds of every mode for ``seconds``, in alternating order, each
    divided by "none" of its backend in the same round; medians."""
    server, interleaved = build_tools(work)
    rules = work / "rules.json"
    rules.write_text(json.dumps(node_state(dual=True).to_dict()))
    by_label = {label: (agent_dir, backend or "legacy") for label, agent_dir, backend in agents}
    backends = [b for b in ("legacy", "nft") if any(backend == b for _, backend in by_label.values())]
    nones = {backend: f"none ({backend})" for backend in backends}
    modes = [m for backend in backends
             for m in (nones[backend], *(label for label, (_, b) in by_label.items() if b == backend))]
    backend_of = {**{none: b for b, none in nones.items()}, **{label: b for label, (_, b) in by_label.items()}}
    node_of = {mode: f"d{i}" for i, mode in enumerate(modes)}
    for i, mode in enumerate(modes):
        node, backend = node_of[mode], backend_of[mode]
        topo.add_node(node, f"192.168.90.{11 + i}")
        topo.add_pod(f"server-{node}", SERVER, node, ip6=SERVER6)
        topo.add_pod(f"client-{node}", CLIENT, node, ip6=CLIENT6)
        if kube_proxy_like:
            topo.in_node(node, f"iptables-{backend}", "-A", "FORWARD", *KUBE_PROXY_LIKE)
            topo.in_node(node, f"ip6tables-{backend}", "-A", "FORWARD", *KUBE_PROXY_LIKE)
        for argv in ([server, str(PORT)], ["iperf3", "-s"]):
            topo.procs.append(subprocess.Popen(  # type: ignore[arg-type]
                ["ip", "netns", "exec", topo.pods[f"server-{node}"][0], *argv], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL))
        if mode in by_label:
            agent_dir, _ = by_label[mode]
            run_in_node(topo, agent_dir, "-m", "picket.cli", "agent", "--rules", str(rules), "--once",
                        "--iptables-backend", backend, node=node)
    time.sleep(0.5)
    pod_ns = [f"/run/netns/{topo.pods[f'client-{node_of[m]}'][0]}" for m in modes]
    med = statistics.median
    load = [os.getloadavg()[0]]
    conn: dict[str, dict[str, tuple[float, float, float]]] = {}  # what -> mode -> (rate, ratio, us/conn)
    raw: dict[str, object] = {}
    for what, address in (("conn4", SERVER), ("conn6", SERVER6)):
        out = sh(interleaved, str(seconds * rounds * len(modes)), str(SLICE_MS), address, str(PORT), *pod_ns,
                 timeout=seconds * rounds * len(modes) + 60).stdout
        slices = [tuple(line.split()) for line in out.splitlines()]
        per_round: dict[int, dict[str, float]] = {}
        totals = {m: [0, 0.0] for m in modes}
        for r, i, ok, failed, elapsed in slices:
            assert int(failed) == 0, f"{failed} connections failed in {modes[int(i)]}: the client must be allowed"
            per_round.setdefault(int(r), {})[modes[int(i)]] = int(ok) / float(elapsed)
            totals[modes[int(i)]][0] += int(ok)
            totals[modes[int(i)]][1] += float(elapsed)
        full = [rates for rates in per_round.values() if len(rates) == len(modes)]
        rate = {m: n / t for m, (n, t) in totals.items()}
        conn[what] = {m: (rate[m], med(rr[m] / rr[nones[backend_of[m]]] for rr in full) if m in by_label else 1.0,
                          1e6 / rate[m] - 1e6 / rate[nones[backend_of[m]]]) for m in modes}
        raw[what] = {"rounds": len(full), "rates": rate}
        load.append(os.getloadavg()[0])
    bw: dict[str, list[float]] = {m: [] for m in modes}
    bw_ratio: dict[str, list[float]] = {m: [] for m in by_label}
    for r in range(rounds):
        this = {m: throughput(topo, seconds, f"client-{node_of[m]}") for m in (modes if r % 2 == 0 else modes[::-1])}
        for m in modes:
            bw[m].append(this[m])
            if m in by_label:
                bw_ratio[m].append(this[m] / this[nones[backend_of[m]]])
    load.append(os.getloadavg()[0])
    mixed = []
    for m in modes:
        legacy, nft = backend_tables(topo, node_of[m])
        if (backend_of[m] == "nft" and legacy) or (backend_of[m] == "legacy" and nft):
            mixed.append(f"{m}: legacy tables [{legacy}], nft tables [{nft}]")
    if os.environ.get("PICKET_BENCH_RAW"):
        print(json.dumps({**raw, "bw": bw}))
    print(f"dataplane cost, 1100 policies on the node (dual-stack), server and client dispatched last; each mode "
          f"its own node; load average {' -> '.join(f'{x:.1f}' for x in load)}:")
    for what, title in (("conn4", "new TCP conns/s IPv4"), ("conn6", "new TCP conns/s IPv6")):
        print(f"  {title} (target >= 98%; {raw[what]['rounds']} rounds of {SLICE_MS} ms per mode, "  # type: ignore[index]
              f"interleaved; ratio: median of per-round ratios; us/conn: 1/rate - 1/rate(none)):")
        for m in modes:
            rate, ratio, extra = conn[what][m]
            tail = f" ({ratio:6.1%}) {extra:+6.2f} us/conn" if m in by_label else ""
            print(f"    {m:>16} {rate:9.0f}{tail}")
    print(f"  throughput Gb/s IPv4 (target >= 99%; {rounds} rounds of {seconds:g} s per mode, alternating):")
    for m in modes:
        tail = (f" ({med(bw_ratio[m]):6.1%}; rounds " + " ".join(f"{x:.0%}" for x in bw_ratio[m]) + ")"
                if m in by_label else "")
        print(f"    {m:>16} {med(bw[m]) / 1e9:9.2f}{tail}")
    for line in mixed:
        print(f"  WARNING: two backends on the hook in {line}")


SLICE_MS = 25  # one slice of the interleaved connection-rate client per mode and round


if __name__ == "__main__":
    main()
