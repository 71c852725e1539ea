"""Deploy picket to the local cluster the way manifests/ deploys it to a real one.

``apply_manifests`` renders ``manifests/`` with kustomize (kubectl's built-in), asks the lab's
real API server to validate every object (server-side dry run, the Deployment and DaemonSet
included), then applies what the lab can use for real: the namespace, the CRDs, the
ServiceAccounts and the RBAC. The workloads are not applied (the lab's nodes run no container
images); instead ``Deployment`` runs the same processes they would run:

* operators: ``picket operator`` in the root namespace with a token of the ServiceAccount
  ``picket-system/picket-operator``, leader election on;
* agents: ``picket agent --node N`` *inside node N's network namespace* (as the DaemonSet's
  hostNetwork pod would), with a token of ``picket-system/picket-agent``.

So a permission missing from manifests/ makes the operator or the agents fail, and the tests with
them. Used by ``picket demo``, the end-to-end tests and the convergence benchmark.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from picket.apiclient import KubeClient
from picket_lab.api import Lab, Spawned

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
WORKLOADS = {"Deployment", "DaemonSet"}
SYSTEM_NAMESPACE = "picket-system"


def render_manifests(lab: Lab) -> list[dict[str, Any]]:
    out = lab.kubectl("kustomize", str(MANIFESTS)).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _kubectl_apply(lab: Lab, docs: list[dict[str, Any]], *extra: str) -> str:
    data = json.dumps({"apiVersion": "v1", "kind": "List", "items": docs})
    argv = [str(lab.kubectl_path), f"--kubeconfig={lab.kubeconfig}", "apply", "--server-side",
            "--field-manager=picket-demo", "-f", "-", *extra]
    import subprocess

    done = subprocess.run(argv, input=data, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"kubectl apply {' '.join(extra)} failed: {done.stderr.strip()}")
    return done.stdout


def apply_manifests(lab: Lab, progress: Callable[[str], None] = print) -> None:
    docs = render_manifests(lab)
    crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
    rest = [d for d in docs if d["kind"] not in WORKLOADS and d["kind"] != "CustomResourceDefinition"]
    # CRDs first (dry runs of objects in a namespace need the namespace; custom kinds need their CRD).
    _kubectl_apply(lab, [d for d in docs if d["kind"] == "Namespace"] + crds, "--dry-run=server")
    _kubectl_apply(lab, [d for d in docs if d["kind"] == "Namespace"] + crds)
    wait_established(lab, [crd["metadata"]["name"] for crd in crds])
    _kubectl_apply(lab, docs, "--dry-run=server")
    _kubectl_apply(lab, rest)
    kinds = sorted({d["kind"] for d in docs})
    progress(f"manifests/: {len(docs)} objects validated by the API server ({', '.join(kinds)}); "
             f"{len(rest) + len(crds)} applied (workloads run as lab processes)")


def apply_calico_crds(lab: Lab) -> None:
    """picket's Calico-compatible CRDs (optional component manifests/calico/, over crds/calico/):
    not part of manifests/ (a cluster running Calico has its own); applied in the lab before the
    operator starts, so it watches those kinds."""
    out = lab.kubectl("apply", "--server-side", "-k", str(MANIFESTS / "calico"), "-o", "name").stdout
    wait_established(lab, [line.split("/", 1)[1] for line in out.split() if "/" in line])


def wait_established(lab: Lab, names: list[str], timeout: float = 60) -> None:
    """Until every named CRD reports condition Established (its kinds can be used)."""
    client = KubeClient(lab.kubeconfig, user_agent="picket-deploy")

    def established(name: str) -> bool:
        crd = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = (crd.get("status") or {}).get("conditions") or []
        return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)

    if not wait_until(lambda: all(established(n) for n in names), timeout):
        raise RuntimeError(f"CRDs not established within {timeout:.0f}s: {names}")


def picket_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "picket.cli", *args]


def picket_env() -> dict[str, str]:
    """Run the operator and agents from this source tree, whatever picket install the interpreter has.

    Without it, ``python -m picket.cli`` imports the editable install's tree, which is not the
    checkout under test when several checkouts share one machine (a CI clone beside a work tree).
    """
    tree = [str(REPO), str(REPO / "operator"), str(REPO / "agent"), str(REPO / "lab")]
    return {"PYTHONPATH": os.pathsep.join([*tree, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


class Deployment:
    """The operator replicas and one agent per node, as lab processes with manifests/' identities."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.operators: dict[str, Spawned] = {}
        self.agents: dict[str, Spawned] = {}

    def start_operator(self, name: str = "picket-operator-0", *extra: str) -> Spawned:
        kc = self.lab.service_account_kubeconfig(SYSTEM_NAMESPACE, "picket-operator")
        argv = picket_argv("operator", "--kubeconfig", str(kc), "--leader-election", "--identity", name, *extra)
        self.operators[name] = self.lab.spawn(name, argv, env=picket_env())
        return self.operators[name]

    def start_agents(self, *extra: str) -> None:
        kc = self.agent_kubeconfig()
        for node in self.lab.nodes:
            self.start_agent(node, kc, *extra)

    def agent_kubeconfig(self) -> Path:
        """A kubeconfig with a fresh token of the agents' ServiceAccount."""
        return self.lab.service_account_kubeconfig(SYSTEM_NAMESPACE, "picket-agent")

    def start_agent(self, node: str, kubeconfig: Path, *extra: str, netns: str | None = None) -> Spawned:
        """The agent of ``node``, in that lab node's namespace, or in ``netns`` for a node that is
        not the lab's (a benchmark's hollow node with a namespace of its own)."""
        argv = picket_argv("agent", "--kubeconfig", str(kubeconfig), "--node", node, "--metrics-port", "9091",
                           "--log-drops", *extra)
        where = {"netns": netns} if netns is not None else {"node": node}
        self.agents[node] = self.lab.spawn(f"picket-agent-{node}", argv, env=picket_env(), **where)
        return self.agents[node]

    def check_alive(self) -> list[str]:
        """Names of spawned processes that died (a crash, or a missing permission)."""
        return [s.name for s in [*self.operators.values(), *self.agents.values()] if not s.alive()]

    def stop(self) -> None:
        for spawned in [*self.operators.values(), *self.agents.values()]:
            spawned.stop()
        self.operators.clear()
        self.agents.clear()


def agent_metrics(lab: Lab, node: str, port: int = 9091) -> str:
    """The Prometheus text of the agent of ``node`` (fetched from inside the node's namespace)."""
    code = f"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/metrics',timeout=3).read().decode())"
    done = lab.exec_in_node(node, [sys.executable, "-c", code], timeout=10)
    return done.stdout if done.returncode == 0 else ""


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
