"""Agent benchmark: apply latency and dataplane cost, in throwaway namespaces (``pkt-agb-*``).

Run as root: ``python3 -m benchmarks.agent_bench [--seconds 3]``. Nothing outside its own
namespaces is touched; they are removed at the end (and swept at the start).

1. Apply, for one node with 110 pods, 10 policies each (1100 policies), 50 peer sets of 40
   members: the first sync (render + ipsets + one iptables commit), one pod added, a no-op
   submit (unchanged: no kernel access at all) and a no-op verify resync (the kernel is read and
   diffed, nothing written). Targets: < 200 ms, < 20 ms, < 10 ms.
2. Dataplane cost between two pod namespaces on one node: new TCP connections per second
   (a client opening and closing connections as fast as it can) and bulk throughput (iperf3),
   with no picket rules and with the 110-pod/1100-policy state installed (the server is one of
   the policed pods; the client is allowed by the 10th policy of the server's rule set). Runs
   alternate A/B three times and the medians are compared in this run. Targets: >= 95%, >= 99%.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "agent"), str(REPO / "tests" / "kernel"), str(REPO / "tests" / "unit" / "agent")]

from agent_builders import compiled, ep, ip_set, k8s, pod, rule  # noqa: E402
from topology import ENV, Topology, sh, sweep  # noqa: E402

from picket.model import Compiled, Direction, Protocol  # noqa: E402

SERVER, CLIENT = "10.90.0.10", "10.90.0.11"  # pods 10 and 11 of the synthetic node


def pod_ip(i: int) -> str:
    return f"10.90.{i // 250}.{i % 250}"


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
        if i == 10:  # the server: its last policy lets the client in on 5201 (iperf3) and 80
            pols[-1] = (
                "NetworkPolicy ns0/allow-client",
                (rule(proto=Protocol.TCP, port=("80", "5201"), peers=("ps-0",)),),
            )
        eg = k8s(Direction.EGRESS, ("NetworkPolicy eg", (rule(),))) if i % 2 else None
        eps.append(ep(pod(f"ns{i % 10}/pod{i}", pod_ip(i), "n1"), ingress=k8s(Direction.INGRESS, *pols), egress=eg))
    return compiled(eps, peer_sets)


def inner_apply() -> None:
    """Runs inside the node namespace: time the syncs with the real loop and applier."""
    from picket_agent.applying import Applier
    from picket_agent.dataplane import IptablesIO
    from picket_agent.ipsets import IpsetIO
    from picket_agent.loop import SyncLoop
    from picket_agent.settings import AgentSettings

    state = node_state()
    loop = SyncLoop(AgentSettings(), Applier(IptablesIO(), IpsetIO()))
    loop.submit(state)
    first = loop.sync()
    bigger = node_state(pods=111)
    loop.submit(bigger)
    added = loop.sync()
    loop.submit(bigger)
    noop = min(_timed(lambda: loop.sync(force_read=False)) for _ in range(5))
    verify = min(_timed(lambda: loop.sync(force_read=True)) for _ in range(5))
    d = loop.last_desired
    assert d is not None and first.report is not None and added.report is not None
    print(
        json.dumps(
            {
                "first": first.elapsed,
                "added": added.elapsed,
                "noop": noop,
                "verify": verify,
                "rules": d.rule_count(),
                "chains": len(d.chains),
                "sets": len(d.sets),
                "added_written": added.report.chains_written,
            }
        )
    )


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn()
    assert result.ok
    return time.perf_counter() - start


def conn_rate(topo: Topology, seconds: float) -> float:
    code = (
        "import socket,time,sys\nn=0\nend=time.monotonic()+float(sys.argv[1])\n"
        "while time.monotonic()<end:\n s=socket.create_connection((sys.argv[2],80),timeout=2)\n s.close()\n n+=1\n"
        "print(n/float(sys.argv[1]))"
    )
    out = sh(
        "ip",
        "netns",
        "exec",
        topo.pods["client"][0],
        sys.executable,
        "-c",
        code,
        str(seconds),
        SERVER,
        timeout=seconds + 30,
    )
    return float(out.stdout)


def throughput(topo: Topology, seconds: float) -> float:
    out = sh(
        "ip",
        "netns",
        "exec",
        topo.pods["client"][0],
        "iperf3",
        "-J",
        "-c",
        SERVER,
        "-t",
        str(seconds),
        timeout=seconds + 30,
    )
    return float(json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.inner:
        inner_apply()
        return
    if os.geteuid() != 0:
        sys.exit("agent_bench: run as root (it creates network namespaces)")
    sweep("pkt-agb")
    topo = Topology("agb")
    try:
        topo.add_node("n1", "192.168.90.1")
        apply = json.loads(topo.in_node("n1", sys.executable, str(Path(__file__).resolve()), "--inner").stdout)
        print(
            f"apply, 110 pods x 10 policies, 50 peer sets ({apply['rules']} rules, {apply['chains']} chains, "
            f"{apply['sets']} ipsets):"
        )
        print(f"  first apply      {apply['first'] * 1000:8.1f} ms   (target < 200 ms)")
        print(
            f"  one pod added    {apply['added'] * 1000:8.1f} ms   "
            f"(target < 20 ms; {apply['added_written']} chains written)"
        )
        print(f"  no-op submit     {apply['noop'] * 1000:8.1f} ms   (target < 10 ms; unchanged, kernel not touched)")
        print(f"  no-op resync     {apply['verify'] * 1000:8.1f} ms   (kernel read and diffed, nothing written)")
        topo.in_node("n1", sys.executable, "-m", "picket.cli", "agent", "--cleanup")
        dataplane(topo, args.seconds)
    finally:
        topo.destroy()


def dataplane(topo: Topology, seconds: float) -> None:
    topo.add_pod("server", SERVER, "n1")
    topo.add_pod("client", CLIENT, "n1")
    accept_loop = (
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        "s.bind(('0.0.0.0',80))\ns.listen(4096)\nwhile True:\n c,_=s.accept()\n c.close()"
    )
    topo.procs.append(
        subprocess.Popen(["ip", "netns", "exec", topo.pods["server"][0], sys.executable, "-c", accept_loop])
    )
    topo.procs.append(
        subprocess.Popen(
            ["ip", "netns", "exec", topo.pods["server"][0], "iperf3", "-s"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    time.sleep(0.5)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, prefix="pkt-rules-") as f:
        json.dump(node_state().to_dict(), f)
    results: dict[str, dict[str, list[float]]] = {"none": {"conn": [], "bw": []}, "1100": {"conn": [], "bw": []}}
    try:
        for _ in range(3):
            for mode in ("none", "1100"):
                if mode == "none":
                    topo.in_node("n1", sys.executable, "-m", "picket.cli", "agent", "--cleanup")
                else:
                    subprocess.run(
                        [
                            "ip",
                            "netns",
                            "exec",
                            topo.ns("n1"),
                            sys.executable,
                            "-m",
                            "picket.cli",
                            "agent",
                            "--rules",
                            f.name,
                            "--once",
                        ],
                        env=ENV,
                        check=True,
                        capture_output=True,
                    )
                results[mode]["conn"].append(conn_rate(topo, seconds))
                results[mode]["bw"].append(throughput(topo, seconds))
    finally:
        os.unlink(f.name)
    c0, c1 = (statistics.median(results[m]["conn"]) for m in ("none", "1100"))
    b0, b1 = (statistics.median(results[m]["bw"]) for m in ("none", "1100"))
    print("dataplane cost, server pod policed by 10 of the node's 1100 policies (medians of 3 alternating runs):")
    print(f"  new TCP conns/s  none {c0:9.0f}   1100 policies {c1:9.0f}   ratio {c1 / c0:6.1%}   (target >= 95%)")
    print(
        f"  throughput Gb/s  none {b0 / 1e9:9.2f}   1100 policies {b1 / 1e9:9.2f}   "
        f"ratio {b1 / b0:6.1%}   (target >= 99%)"
    )


if __name__ == "__main__":
    main()
