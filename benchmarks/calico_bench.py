"""Calico compile benchmark: a 100k-CIDR GlobalNetworkSet, and 1k Calico policies over 10k pods.

Run: ``python3 benchmarks/calico_bench.py [--cidrs N] [--pods M] [--policies K]``. Prints:

1. the seed 002 shape at scale: host endpoints, the allow-list policy (``source.selector:
   calico-prometheus-access == "true"``) and one GlobalNetworkSet of N CIDRs carrying that label.
   Full-compile time; how many peer sets and rules the policy became (one ``hash:net`` peer set
   of N + pods members, one rule per host: never N rules); incremental: adding the set to a
   running compiler, a labelled pod joining the set, and re-reading the peer set afterwards;
2. K GlobalNetworkPolicies with random Calico selectors (policy and rule selectors) over M pods
   in 100 namespaces: full compile, and incremental pod events (relabel) median / p99.

Figures only (no pass/fail); deterministic inputs (fixed seed); peak RSS from ``resource``.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / p) for p in ("", "operator")]

from picket_operator.compiler.compiling import compile_cluster  # noqa: E402
from picket_operator.compiler.incremental import IncrementalCompiler  # noqa: E402

API = "projectcalico.org/v3"
LABEL = "calico-prometheus-access"


def pod(ns: str, name: str, ip: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": ns, "name": name, "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c"}]}, "status": {"phase": "Running", "podIP": ip}}


def host(i: int) -> dict[str, Any]:
    return {"apiVersion": API, "kind": "HostEndpoint",
            "metadata": {"name": f"node-{i}.eth0", "labels": {"running-calico": "true"}},
            "spec": {"node": f"node-{i}", "interfaceName": "eth0", "expectedIPs": [f"10.100.{i // 250}.{i % 250 + 1}"]}}


def big_set(count: int) -> dict[str, Any]:
    base = int(ipaddress.ip_address("100.64.0.0"))
    nets = [str(ipaddress.ip_network((base + i * 4, 30))) for i in range(count)]
    return {"apiVersion": API, "kind": "GlobalNetworkSet", "metadata": {"name": "big", "labels": {LABEL: "true"}},
            "spec": {"nets": nets}}


ALLOW_LIST = {"apiVersion": API, "kind": "GlobalNetworkPolicy", "metadata": {"name": "restrict-calico-node-prometheus"},
              "spec": {"selector": 'running-calico == "true"', "order": 500, "types": ["Ingress"],
                       "ingress": [{"action": "Allow", "protocol": "TCP",
                                    "source": {"selector": f'{LABEL} == "true"'}, "destination": {"ports": [9091]}}]}}


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def network_set_figures(cidrs: int) -> None:
    hosts = [host(i) for i in range(10)]
    pods = [pod("monitoring", f"prom-{i}", f"10.244.0.{i + 1}", {LABEL: "true"}) for i in range(10)]
    nset = big_set(cidrs)
    compiled, full_s = timed(compile_cluster, [*hosts, *pods, ALLOW_LIST, nset])
    sets = list(compiled.peer_sets.values())
    rules = sum(len(p.rules) for e in compiled.endpoints.values() if e.ingress for t in e.ingress.tiers
                for p in t.policies if p.policy.startswith("GlobalNetworkPolicy"))
    print(f"GlobalNetworkSet of {cidrs:,} CIDRs, 10 host endpoints, 10 labelled pods:")
    print(f"  full compile                  {full_s * 1000:8.1f} ms")
    kinds = ", ".join(f"{s.kind.value}: {len(s.members):,} members" for s in sets)
    print(f"  peer sets                     {len(sets)} ({kinds})")
    print(f"  policy rules (all hosts)      {rules} (one per host endpoint, each naming the one peer set)")
    inc = IncrementalCompiler()
    for obj in [*hosts, *pods, ALLOW_LIST]:
        inc.upsert_policy(obj) if obj["kind"] != "Pod" else inc.upsert_pod(obj)
    delta, add_s = timed(inc.upsert_policy, nset)
    (name,) = delta.peer_sets_changed
    _, read_s = timed(inc.peer_set, name)
    delta, pod_s = timed(inc.upsert_pod, pod("monitoring", "prom-new", "10.244.0.200", {LABEL: "true"}))
    _, reread_s = timed(inc.peer_set, name)
    _, cached_s = timed(inc.peer_set, name)
    print(f"  incremental: add the set      {add_s * 1000:8.1f} ms (delta: {len(delta.peer_sets_changed)} peer set)")
    print(f"  incremental: read the set     {read_s * 1000:8.1f} ms (built once, then cached)")
    print(f"  incremental: labelled pod     {pod_s * 1000:8.3f} ms; re-read the set {reread_s * 1000:.1f} ms, "
          f"cached {cached_s * 1e6:.1f} us")


KEYS = ["app", "tier", "env", "team", "version"]
VALUES = ["web", "db", "cache", "prod", "dev", "blue", "green", "v1", "v2"]


def selector(rng: random.Random) -> str:
    k, v, w = rng.choice(KEYS), rng.choice(VALUES), rng.choice(VALUES)
    return rng.choice([f"{k} == '{v}'", f"{k} == '{v}' && has({rng.choice(KEYS)})",
                       f"{k} in {{'{v}', '{w}'}}", f"{k} == '{v}' || {rng.choice(KEYS)} != '{w}'"])


def labels(rng: random.Random) -> dict[str, str]:
    return {k: rng.choice(VALUES) for k in rng.sample(KEYS, rng.randint(2, 4))}


def policy_figures(pods: int, policies: int) -> None:
    rng = random.Random(20240602)
    ips = [f"10.{1 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}" for i in range(pods)]
    objects: list[dict[str, Any]] = [pod(f"ns{i % 100}", f"p{i}", ips[i], labels(rng)) for i in range(pods)]
    objects += [{"apiVersion": API, "kind": "GlobalNetworkPolicy", "metadata": {"name": f"gnp{i}"},
                 "spec": {"selector": selector(rng), "order": rng.choice([100, 500, 1000]),
                          "ingress": [{"action": rng.choice(["Allow", "Deny"]), "protocol": "TCP",
                                       "source": {"selector": selector(rng)}, "destination": {"ports": [80]}}]}}
                for i in range(policies)]
    compiled, full_s = timed(compile_cluster, objects)
    per_pod = sum(len(t.policies) for e in compiled.endpoints.values() if e.ingress for t in e.ingress.tiers) / pods
    print(f"{policies:,} GlobalNetworkPolicies (random Calico selectors) over {pods:,} pods in 100 namespaces:")
    print(f"  full compile                  {full_s * 1000:8.1f} ms ({len(compiled.peer_sets):,} peer sets, "
          f"{per_pod:.0f} policies select the average pod)")
    inc = IncrementalCompiler()
    # Policies first: a policy event recomputes every endpoint it selects, a pod event one endpoint.
    ordered = sorted(objects, key=lambda o: o["kind"] == "Pod")
    _, load_s = timed(lambda: [inc.upsert_pod(o) if o["kind"] == "Pod" else inc.upsert_policy(o) for o in ordered])
    times = []
    for i in rng.sample(range(pods), 200):
        obj = objects[i]
        _, took = timed(inc.upsert_pod, {**obj, "metadata": {**obj["metadata"], "labels": labels(rng)}})
        times.append(took)
    times.sort()
    print(f"  incremental: initial load     {load_s * 1000:8.1f} ms (policies, then pods)")
    print(f"  incremental: pod relabel      median {statistics.median(times) * 1000:.3f} ms, "
          f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.3f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cidrs", type=int, default=100_000)
    ap.add_argument("--pods", type=int, default=10_000)
    ap.add_argument("--policies", type=int, default=1_000)
    args = ap.parse_args()
    network_set_figures(args.cidrs)
    policy_figures(args.pods, args.policies)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
