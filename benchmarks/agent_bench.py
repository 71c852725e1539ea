"""Agent benchmark: apply latency and dataplane cost, in throwaway namespaces (``pkt-agb-*``).

Run as root: ``python3 -m benchmarks.agent_bench [--seconds 3] [--rounds 3] [--baseline REV]
[--only apply|dataplane]``.
Nothing outside its own namespaces is touched; they are removed at the end (and swept at the
start). ``--baseline REV`` also measures the agent as it was at git revision REV (its
``agent/`` tree is extracted with ``git archive`` into a temp dir and put first on the path),
side by side in the same run, e.g. ``--baseline bec0e67`` for the agent before the speed work.

1. Apply, for one node with 110 pods, 10 policies each (1100 policies), 50 peer sets of 40
   members, with the real ``SyncLoop`` and applier (medians of ``--rounds`` runs, each from an
   empty kernel): the first sync; one pod added as the loop applies it between resyncs (quick:
   trusts the last apply) and as a verifying resync (kernel read and compared); a no-op submit
   (an equal state submitted again: rendered, found equal, kernel not touched); a no-op resync
   (kernel read and compared, nothing written). Targets: < 200 ms, < 20 ms, < 10 ms.
2. Dataplane cost: new TCP connections per second (a small C client built here with gcc:
   connect + close with SO_LINGER 0, back to back, against a C accept-and-close server) and bulk
   throughput (iperf3) between a client and a server pod of one node, with no picket rules and
   with the 1100-policy state (the server is policed by 10 policies, the client by an egress
   policy; both are the LAST pods in their direction's dispatch order, the worst case for flat
   dispatch). Each round measures every mode once, in alternating order, and divides by the
   no-rules figure of the same round (a shared machine's load drifts; adjacent runs see the
   same load); the medians of these per-round ratios are reported. Every mode keeps a
   kube-proxy-like ``FORWARD -m conntrack --ctstate INVALID -j DROP``, as every Kubernetes node
   has, so conntrack runs in every mode and the ratio is picket's rules alone (``--bare``: without
   it, so the ratio also charges picket for turning conntrack on). Targets: >= 95%, >= 99%.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
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


SERVER, CLIENT = pod_ip(SERVER_POD), pod_ip(CLIENT_POD)


def node_state(pods: int = 110, policies: int = 10, sets: int = 50, members: int = 40, seed: int = 1) -> Compiled:
    rnd = random.Random(seed)
    peer_sets = [
        ip_set(f"ps-{s}", *{f"10.91.{rnd.randrange(40)}.{rnd.randrange(1, 250)}" for _ in range(members)})
        for s in range(sets)
    ]
    peer_sets[0] = ip_set("ps-0", CLIENT, *peer_sets[0].members[1:])
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
        eps.append(ep(pod(f"ns{i % 10}/pod{i}", pod_ip(i), "n1"), ingress=k8s(Direction.INGRESS, *pols), egress=eg))
    return compiled(eps, peer_sets)


def inner_apply() -> None:
    """Runs inside the node namespace: time the syncs with the real loop and applier."""
    from picket_agent.kernel.applier import Applier
    from picket_agent.kernel.ipsets import IpsetIO
    from picket_agent.kernel.iptables import IptablesIO
    from picket_agent.loop import SyncLoop
    from picket_agent.settings import AgentSettings

    state, plus_one, plus_two = node_state(), node_state(pods=111), node_state(pods=112)
    loop = SyncLoop(AgentSettings(), Applier(IptablesIO(), IpsetIO()))
    loop.submit(state)
    first = loop.sync()
    loop.submit(plus_one)
    added = loop.sync(force_read=False)
    loop.submit(plus_two)
    added_verified = loop.sync(force_read=True)

    equal_copies = [node_state(pods=112) for _ in range(5)]  # as a feed re-reading its source submits them

    def noop_submit():  # type: ignore[no-untyped-def]
        loop.submit(equal_copies.pop())
        return loop.sync(force_read=False)

    noop = min(_timed(noop_submit) for _ in range(5))
    verify = min(_timed(lambda: loop.sync(force_read=True)) for _ in range(5))
    d = loop.last_desired
    assert d is not None and first.report is not None and added.report is not None
    print(json.dumps({
        "first": first.elapsed, "added": added.elapsed, "added_verified": added_verified.elapsed,
        "noop": noop, "verify": verify, "rules": d.rule_count(), "chains": len(d.chains),
        "sets": len(d.sets), "added_written": added.report.chains_written,
    }))


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    assert result.ok
    return time.perf_counter() - start


CLIENT_C = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv) {  /* connect + close (RST) back to back for argv[1] seconds */
  struct sockaddr_in a = {0}; struct linger l = {1, 0}; long n = 0, failed = 0;
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[3])); inet_pton(AF_INET, argv[2], &a.sin_addr);
  double start = now(), end = start + atof(argv[1]);
  while (now() < end) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) n++; else failed++;
    close(s);
  }
  printf("%.1f %ld\n", n / (now() - start), failed);
  return 0;
}
"""
SERVER_C = r"""
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {  /* accept and close, forever */
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1; struct sockaddr_in a = {0};
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  a.sin_family = AF_INET; a.sin_port = htons(atoi(argv[1]));
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096)) return 1;
  for (;;) { int c = accept(s, 0, 0); if (c >= 0) close(c); }
}
"""


def build_tools(where: Path) -> tuple[str, str]:
    if shutil.which("gcc") is None:
        sys.exit("agent_bench: gcc is needed for the connection-rate client (scripts/setup.sh installs it)")
    out = []
    for name, source in (("client", CLIENT_C), ("server", SERVER_C)):
        (where / f"{name}.c").write_text(source)
        sh("gcc", "-O2", "-o", str(where / name), str(where / f"{name}.c"))
        out.append(str(where / name))
    return out[0], out[1]


def conn_rate(topo: Topology, client: str, seconds: float) -> float:
    out = sh("ip", "netns", "exec", topo.pods["client"][0], client, str(seconds), SERVER, str(PORT),
             timeout=seconds + 30)
    rate, failed = out.stdout.split()
    assert int(failed) == 0, f"{failed} connections failed: the client must be allowed"
    return float(rate)


def throughput(topo: Topology, seconds: float) -> float:
    out = sh("ip", "netns", "exec", topo.pods["client"][0], "iperf3", "-J", "-c", SERVER, "-t", str(seconds),
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


def measure_apply(topo: Topology, agents: dict[str, Path], rounds: int) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in agents}
    for _ in range(rounds):
        for label, agent_dir in agents.items():
            cleanup(topo)
            runs[label].append(json.loads(run_in_node(topo, agent_dir, str(Path(__file__).resolve()), "--inner")))
    cleanup(topo)
    return {label: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for label, rs in runs.items()}


def print_apply(results: dict[str, dict[str, float]]) -> None:
    any_run = next(iter(results.values()))
    print(f"apply, 110 pods x 10 policies, 50 peer sets of 40 (ms, medians; {any_run['sets']:.0f} ipsets):")
    labels = list(results)
    print("  " + " " * 34 + "".join(f"{label:>12}" for label in labels))
    rows = [
        ("first apply            (< 200)", "first"),
        ("one pod added, quick   (< 20)", "added"),
        ("one pod added, verified", "added_verified"),
        ("no-op submit           (< 10)", "noop"),
        ("no-op resync, verified (< 10)", "verify"),
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
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", metavar="REV", help="also measure the agent of this git revision")
    parser.add_argument("--only", choices=["apply", "dataplane"], help="run one half only")
    parser.add_argument("--bare", action="store_true",
                        help="no kube-proxy-like conntrack rule: 'none' then runs without conntrack at all")
    args = parser.parse_args()
    if args.inner:
        inner_apply()
        return
    if os.geteuid() != 0:
        sys.exit("agent_bench: run as root (it creates network namespaces)")
    sweep("pkt-agb")
    work = Path(tempfile.mkdtemp(prefix="pkt-agb-"))
    agents = {"now": REPO / "agent"}
    if args.baseline:
        sh("sh", "-c", f"git -C {REPO} archive {args.baseline} agent | tar -x -C {work}")
        agents = {f"at {args.baseline}": work / "agent", **agents}
    topo = Topology("agb")
    try:
        topo.add_node("n1", "192.168.90.1")
        if args.only != "dataplane":
            print_apply(measure_apply(topo, agents, args.rounds))
        if args.only != "apply":
            dataplane(topo, agents, work, args.seconds, args.rounds, not args.bare)
    finally:
        topo.destroy()
        shutil.rmtree(work, ignore_errors=True)


def dataplane(
    topo: Topology, agents: dict[str, Path], work: Path, seconds: float, rounds: int, kube_proxy_like: bool = True
) -> None:
    """Every round measures every mode once, in alternating order (forward, then backward), and
    each agent's figure is divided by the no-rules figure OF THE SAME ROUND: on a shared machine
    the load changes over minutes, and adjacent measurements see the same load. The medians of
    these per-round ratios are reported (with the median rates)."""
    client, server = build_tools(work)
    rules = work / "rules.json"
    rules.write_text(json.dumps(node_state().to_dict()))
    topo.add_pod("server", SERVER, "n1")
    topo.add_pod("client", CLIENT, "n1")
    if kube_proxy_like:
        topo.in_node("n1", "iptables-legacy", "-A", "FORWARD", *KUBE_PROXY_LIKE)
    for argv in ([server, str(PORT)], ["iperf3", "-s"]):
        topo.procs.append(subprocess.Popen(  # type: ignore[arg-type]
            ["ip", "netns", "exec", topo.pods["server"][0], *argv], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    modes = ["none", *agents]
    rates: dict[str, dict[str, list[float]]] = {m: {"conn": [], "bw": []} for m in modes}
    ratios: dict[str, dict[str, list[float]]] = {m: {"conn": [], "bw": []} for m in agents}
    for r in range(rounds):
        this: dict[str, dict[str, float]] = {}
        for mode in modes if r % 2 == 0 else reversed(modes):
            cleanup(topo)
            if mode != "none":
                run_in_node(topo, agents[mode], "-m", "picket.cli", "agent", "--rules", str(rules), "--once")
            this[mode] = {"conn": conn_rate(topo, client, seconds), "bw": throughput(topo, seconds)}
        for mode in modes:
            for what in ("conn", "bw"):
                rates[mode][what].append(this[mode][what])
                if mode != "none":
                    ratios[mode][what].append(this[mode][what] / this["none"][what])
    cleanup(topo)
    if os.environ.get("PICKET_BENCH_RAW"):
        print(json.dumps(rates))
    med = statistics.median
    print(f"dataplane cost, 1100 policies on the node, server and client dispatched last "
          f"({rounds} rounds; ratio = median of per-round ratios to no rules):")
    print(f"  new TCP conns/s  none {med(rates['none']['conn']):9.0f}" + "".join(
        f"   {m} {med(rates[m]['conn']):9.0f} ({med(ratios[m]['conn']):6.1%})" for m in agents)
        + "   (target >= 95%)")
    print(f"  throughput Gb/s  none {med(rates['none']['bw']) / 1e9:9.2f}" + "".join(
        f"   {m} {med(rates[m]['bw']) / 1e9:9.2f} ({med(ratios[m]['bw']):6.1%})" for m in agents)
        + "   (target >= 99%)")


if __name__ == "__main__":
    main()
