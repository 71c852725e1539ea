"""The end-to-end probe harness: kubectl, pods, and ``expect`` (live == hand-written == predicted).

See ``conftest.py`` for the fixtures that build it. ``expect`` polls the WHOLE live netcat matrix
until it equals the expected one and the offline compiled prediction equals it too (two
independent expectations), or fails at the deadline listing every differing pair.
"""

from __future__ import annotations

import copy
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from picket.apiclient import KubeClient
from picket_lab import clusterfiles as labmodel
from picket_lab.api import Lab
from picket_lab.deploy import REPO, Deployment, wait_until
from picket_lab.live import live_matrix
from picket_lab.probing import Matrix, differences

MODEL = ["x", "y", "z"]
MODEL_PODS = [f"{ns}/{p}" for ns in MODEL for p in "abc"]
MODEL_FILE = REPO / "examples" / "model-cluster.yaml"
PROBE_TIMEOUT = 0.5
DEADLINE = 30.0


def expected(pods: list[str], allowed: Callable[[str, str], bool]) -> Matrix:
    """A hand-written expectation: ``allowed(src, dst)``; a pod always reaches itself."""
    return {s: {d: s == d or allowed(s, d) for d in pods} for s in pods}


def ns(key: str) -> str:
    return key.split("/", 1)[0]


def pod(key: str) -> str:
    return key.split("/", 1)[1]


class E2E:
    def __init__(self, lab: Lab, kube: KubeClient, deployment: Deployment) -> None:
        self.lab, self.kube, self.deployment = lab, kube, deployment
        self._undo: list[Callable[[], object]] = []
        self.last: tuple[list[str], Matrix, Matrix] | None = None

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        argv = [str(self.lab.kubectl_path), f"--kubeconfig={self.lab.kubeconfig}", *args]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def apply(self, text: str) -> None:
        """``kubectl apply -f -``; everything applied is deleted after the test."""
        self.kubectl("apply", "-f", "-", stdin=text)
        self._undo.append(lambda: self.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", "-", stdin=text))

    def label(self, kind: str, name: str, label: str, namespace: str | None = None) -> None:
        where = ["-n", namespace] if namespace else []
        self.kubectl("label", "--overwrite", kind, name, label, *where)
        key = label.split("=", 1)[0].rstrip("-")
        self._undo.append(lambda: self.kubectl("label", kind, name, f"{key}-", *where))

    def create_pods(self, objects: list[dict[str, Any]], remove: bool = True) -> list[str]:
        """Create pods (cluster-file form) and wait until they run; ``remove``: delete after the test."""
        base, _ = labmodel.for_lab(objects, self.lab.nodes)
        labmodel.apply(self.kube, base)
        if remove:
            self._undo.append(lambda: labmodel.delete(self.kube, base, wait=60))
        keys = labmodel.keys_of(base)
        assert wait_until(lambda: labmodel.running(self.lab, self.kube, keys), 60), f"pods {keys} never ran"
        return keys

    def create_cluster(self, path: Path) -> tuple[list[str], list[dict[str, Any]]]:
        """The namespaces and pods of a cluster file (pods removed after the test); returns (pod keys, policies)."""
        base, policies = labmodel.for_lab(labmodel.load(path), self.lab.nodes)
        labmodel.apply(self.kube, base)
        # Namespaces stay (deleting one takes a while, and the next test may want it again).
        pods = [o for o in base if o.get("kind") == "Pod"]
        self._undo.append(lambda: labmodel.delete(self.kube, pods, wait=60))
        keys = labmodel.keys_of(base)
        assert wait_until(lambda: labmodel.running(self.lab, self.kube, keys), 60), f"pods {keys} never ran"
        return keys, policies

    def expect(self, want: Matrix, port: int | None = 80, protocol: str = "TCP",
               namespaces: list[str] | None = None, deadline: float = DEADLINE, prediction: bool = True) -> float:
        """Poll until live == want == prediction over the whole matrix; returns the seconds it took.

        ``prediction=False`` compares only the live matrix (e.g. while no operator runs, when the
        API already holds a policy that nothing enforces yet)."""
        namespaces = namespaces or sorted({ns(k) for k in want})
        started = time.monotonic()
        while True:
            self.last = live_matrix(self.lab, self.kube, protocol, port, namespaces, PROBE_TIMEOUT)
            pods, live, predicted = self.last
            predicted_ok = not prediction or not differences(predicted, want)
            if set(pods) == set(want) and not differences(live, want) and predicted_ok:
                return time.monotonic() - started
            if time.monotonic() - started > deadline:
                break
            time.sleep(0.2)
        problems = [f"pods: live {sorted(pods)} vs expected {sorted(want)}"] if set(pods) != set(want) else []
        problems += [f"live: {d}" for d in differences(live, want)]
        problems += [f"offline prediction: {d}" for d in differences(predicted, want)] if prediction else []
        dead = self.deployment.check_alive()
        pytest.fail(f"not enforced within {deadline:.0f}s ({port}/{protocol}); dead processes: {dead}\n"
                    + "\n".join(problems))

    def cleanup(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def example_dirs() -> list[Path]:
    return sorted(p for p in (REPO / "examples").glob("seed*") if (p / "policy.yaml").is_file())


def model_object(key: str) -> dict[str, Any]:
    """A copy of one pod of the model cluster file."""
    for obj in labmodel.load(MODEL_FILE):
        meta = obj.get("metadata") or {}
        if obj.get("kind") == "Pod" and f"{meta.get('namespace')}/{meta.get('name')}" == key:
            return copy.deepcopy(obj)
    raise KeyError(key)


def events_about(e2e: E2E, kind: str, name: str, namespace: str) -> list[dict[str, Any]]:
    """picket-operator's Events on one object."""
    out = []
    for ev in e2e.kube.get(f"/api/v1/namespaces/{namespace}/events").get("items", []):
        involved, source = ev.get("involvedObject") or {}, ev.get("source") or {}
        if (involved.get("kind"), involved.get("name"), source.get("component")) == (kind, name, "picket-operator"):
            out.append(ev)
    return out
