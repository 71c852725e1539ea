"""Convergence on kind: from ``kubectl apply`` of a policy to the first probe that sees it enforced.

Run as root with the kind tier up (``picket kind up``):

    python3 -m benchmarks.kind_convergence_bench [--trials 30]

Two probe pods, ``bench/s`` on picket-worker and ``bench/t`` on picket-worker2 (the busybox
stand-in). Per trial: a prober inside ``s`` (``kubectl exec``: a shell loop that notes the time,
then ``nc -z -w 1 t 80``, until three connects in a row fail) is started; then ``kubectl apply``
of a policy isolating ``t`` (the clock starts before kubectl, as a user types it); the prober
prints the start time of the first of those three attempts (pod and machine share one kernel
clock). The policy is deleted and the pair open again before the next trial. Printed: median,
p90, p99, max. Never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import time

from picket_lab.kind import images
from picket_lab.kind.layout import NETNS, layout

POLICY = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
          "metadata": {"name": "bench-isolate-t", "namespace": "bench"},
          "spec": {"podSelector": {"matchLabels": {"pod": "t"}}, "policyTypes": ["Ingress"]}}


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(["ip", "netns", "exec", NETNS, "kubectl", *args], input=stdin, capture_output=True,
                          text=True, env=images.client_env(layout()), check=False, timeout=180)
    if done.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {done.stderr}")
    return done.stdout


def pod(name: str, node: str) -> dict[str, object]:
    meta = {"name": name, "namespace": "bench", "labels": {"pod": name}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "p", "image": images.BUSYBOX_STANDIN, "imagePullPolicy": "IfNotPresent",
                                     "command": ["sh", "-c", "exec httpd -f -p 80 -h /tmp"]}]}}


def open_again(ip: str, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while subprocess.run(["ip", "netns", "exec", NETNS, "kubectl", "-n", "bench", "exec", "s", "--", "nc", "-z", "-w",
                          "1", ip, "80"], env=images.client_env(layout()), capture_output=True,
                         check=False).returncode != 0:
        if time.monotonic() > end:
            raise SystemExit("the pair did not open again")
        time.sleep(0.2)


def trial(ip: str) -> float:
    loop = (f"n=0; while :; do t=$(date +%s.%N); if nc -z -w 1 {ip} 80; then n=0; else [ $n -eq 0 ] && f=$t; "
            "n=$((n+1)); [ $n -ge 3 ] && { echo $f; exit 0; }; fi; done")
    prober = subprocess.Popen(["ip", "netns", "exec", NETNS, "kubectl", "-n", "bench", "exec", "s", "--", "sh", "-c",
                               loop], env=images.client_env(layout()), stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)  # the exec is up and looping
    assert prober.poll() is None, "the prober stopped before the policy"
    began = time.time()
    kubectl("apply", "-f", "-", stdin=json.dumps(POLICY))
    out, _ = prober.communicate(timeout=120)
    blocked = float(out.strip().splitlines()[-1])
    kubectl("-n", "bench", "delete", "networkpolicy", "bench-isolate-t", "--wait=true")
    open_again(ip)
    return blocked - began


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=30)
    opts = parser.parse_args()
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}},
        pod("s", "picket-worker"), pod("t", "picket-worker2")]}))
    kubectl("-n", "bench", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
    ip = kubectl("-n", "bench", "get", "pod", "t", "-o", "jsonpath={.status.podIP}").strip()
    kubectl("-n", "bench", "delete", "networkpolicy", "--all")
    open_again(ip)
    samples = []
    for n in range(opts.trials):
        samples.append(trial(ip))
        print(f"trial {n + 1}: {samples[-1] * 1000:.0f} ms", flush=True)
    kubectl("delete", "namespace", "bench", "--wait=false")
    print(f"kubectl apply -> first refused probe on kind ({len(samples)} trials): median "
          f"{statistics.median(samples) * 1000:.0f} ms, p90 {percentile(samples, 0.9) * 1000:.0f} ms, "
          f"p99 {percentile(samples, 0.99) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
