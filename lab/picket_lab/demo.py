"""``picket demo``: the local cluster, the operator and agents, policies, and netcat matrices.

1. brings the local cluster up (building the binaries if they are missing, with progress);
2. deploys picket as ``manifests/`` describes it (``labdeploy``): CRDs and RBAC validated and
   applied by the real API server; two operator replicas (leader election) and one agent per node
   running with the ServiceAccount tokens that RBAC grants;
3. creates the model (``examples/model-cluster.yaml``: namespaces x, y, z; pods a, b, c serving
   TCP 80 and 81) and walks two policies on it, then every seed example of ``examples/``
   (its namespaces and pods, then its policy);
4. for each policy prints the live netcat matrix before and after ``kubectl apply`` (``!`` marks a
   cell that differs from the offline prediction), how long enforcement took, and the drops the
   agents counted meanwhile.
It tears everything down at the end unless ``--keep`` is given.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import yaml

from picket.apiclient import KubeClient
from picket_lab import clusterfiles as labmodel
from picket_lab.api import Lab, LabNotRunning
from picket_lab.deploy import REPO, Deployment, apply_manifests, wait_until
from picket_lab.drops import drop_counts, format_drops
from picket_lab.live import live_matrix
from picket_lab.probing import Matrix, differences
from picket_operator.commands.matrix import format_grid

EXAMPLES = REPO / "examples"
MODEL_POLICIES = [
    ("deny all ingress to namespace x", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny-ingress, namespace: x}
spec:
  podSelector: {}
  policyTypes: [Ingress]
"""),
    ("then allow x/a from namespace y on port 80", """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-y, namespace: x}
spec:
  podSelector: {matchLabels: {pod: a}}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]
    ports: [{port: 80, protocol: TCP}]
"""),
]


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


class Demo:
    def __init__(self, lab: Lab, timeout: float) -> None:
        self.lab, self.timeout = lab, timeout
        self.kube = KubeClient(lab.kubeconfig, user_agent="picket-demo")

    def kubectl_apply(self, text: str) -> None:
        argv = [str(self.lab.kubectl_path), f"--kubeconfig={self.lab.kubeconfig}", "apply", "-f", "-"]
        done = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60)
        print("   $ kubectl apply -f -   ->  " + (done.stdout.strip() or done.stderr.strip()))

    def matrix(self, namespaces: list[str], port: int | None, protocol: str) -> tuple[list[str], Matrix, Matrix]:
        return live_matrix(self.lab, self.kube, protocol, port, namespaces)

    def step(self, title: str, policy_yaml: str, namespaces: list[str], port: int | None, protocol: str) -> bool:
        say(title)
        pods, before, predicted = self.matrix(namespaces, port, protocol)
        where = "each pod's service port" if port is None else f"port {port}/{protocol}"
        print(f"   before ({where}):")
        print(_indent(format_grid(pods, before, predicted)))
        drops_before = drop_counts(self.lab)
        started = time.monotonic()
        self.kubectl_apply(policy_yaml)
        seen: list[tuple[list[str], Matrix, Matrix]] = []

        def enforced() -> bool:
            seen.append(self.matrix(namespaces, port, protocol))
            return not differences(seen[-1][1], seen[-1][2])

        ok = wait_until(enforced, self.timeout, interval=0.2)
        pods, after, predicted = seen[-1]
        took = time.monotonic() - started
        print(f"   after ({'enforced' if ok else 'NOT as predicted'} within {took:.1f}s, probes included):")
        print(_indent(format_grid(pods, after, predicted)))
        print(_indent(format_drops(drop_counts(self.lab), drops_before)))
        return ok

    def model(self) -> bool:
        base, _ = labmodel.for_lab(labmodel.load(EXAMPLES / "model-cluster.yaml"), self.lab.nodes)
        say("creating the model: namespaces x, y, z; pods a, b, c serving TCP 80 and 81")
        labmodel.apply(self.kube, base)
        keys = labmodel.keys_of(base)
        wait_until(lambda: labmodel.running(self.lab, self.kube, keys), 60)
        for _, text in MODEL_POLICIES:  # left by an earlier 'picket demo --keep'
            labmodel.delete(self.kube, [d for d in yaml.safe_load_all(text) if d])
        ok = True
        for title, text in MODEL_POLICIES:
            ok &= self.step(title, text, ["x", "y", "z"], 80, "TCP")
        return ok

    def example(self, directory: Path) -> bool:
        cluster = directory / "cluster.yaml"
        base, policies = labmodel.for_lab(labmodel.load(cluster), self.lab.nodes)
        namespaces = sorted({o["metadata"]["name"] for o in base if o["kind"] == "Namespace"}
                            | {o["metadata"].get("namespace", "default") for o in base if o["kind"] == "Pod"})
        labmodel.delete(self.kube, policies)  # left by an earlier 'picket demo --keep'
        labmodel.apply(self.kube, base)
        keys = labmodel.keys_of(base)
        wait_until(lambda: labmodel.running(self.lab, self.kube, keys), 60)
        text = (directory / "policy.yaml").read_text()
        ok = self.step(f"example {directory.name}", text, namespaces, None, "TCP")
        labmodel.delete(self.kube, policies)
        labmodel.delete(self.kube, [o for o in base if o["kind"] == "Pod"], wait=60)
        return ok


def _indent(text: str) -> str:
    return "\n".join("     " + line for line in text.splitlines())


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="picket demo", description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="leave the cluster, operator and agents running")
    parser.add_argument("--only", default="", help="run only examples whose directory name contains this")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for each policy")
    args = parser.parse_args(list(argv))
    from picket_lab import lifecycle
    try:
        lab = Lab.current()
        say("the local cluster is already up")
    except LabNotRunning:
        say(f"bringing up the local cluster ({args.nodes} nodes; the first run builds Kubernetes from source)")
        lifecycle.up(args.nodes, lambda m: print(f"    {m}", flush=True))
        lab = Lab.current()
    say("deploying picket from manifests/")
    apply_manifests(lab, lambda m: print(f"    {m}", flush=True))
    deployment = Deployment(lab)
    ok = False
    try:
        deployment.start_operator("picket-operator-0")
        deployment.start_operator("picket-operator-1")
        deployment.start_agents()
        say(f"operator x2 (leader election) and {len(lab.nodes)} agents started with their ServiceAccount tokens")
        demo = Demo(lab, args.timeout)
        ok = demo.model()
        for directory in sorted(p for p in EXAMPLES.glob("seed*") if (p / "policy.yaml").is_file()):
            if args.only in directory.name:
                ok &= demo.example(directory)
        say("what the operator published (kubectl get pcn, prs)")
        print(_indent(lab.kubectl("get", "pcn,prs", check=False).stdout))
        dead = deployment.check_alive()
        if dead:
            print(f"   processes that died: {', '.join(dead)} (logs in {lab.run_dir}/logs)")
            ok = False
    finally:
        if args.keep:
            say(f"left running; kubeconfig: {lab.kubeconfig}; stop with 'picket lab down'")
        else:
            deployment.stop()
            say("tearing the local cluster down ('picket demo --keep' leaves it up)")
            lifecycle.down(lambda m: print(f"    {m}", flush=True))
    say("every policy enforced as predicted" if ok else "some policy was NOT enforced as predicted")
    return 0 if ok else 1
