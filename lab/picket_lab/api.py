"""The Python face of a running lab, for tests, the demo and the operator helper.

``Lab.current()`` reads the state file of a lab that ``lab up`` (or the pytest fixture) brought
up; everything else asks the lab: names and namespaces of nodes and pods, commands inside them,
ServiceAccount kubeconfigs (tokens from the TokenRequest API), and ``spawn`` for background
processes (in a node's namespace, as a hostNetwork pod would run, or in the root namespace) that
``lab down`` kills with the rest.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from picket.apiclient import KubeClient
from picket_lab import controlplane as cp
from picket_lab import procs
from picket_lab.kubeconfig import token_kubeconfig
from picket_lab.paths import RunLayout, run_layout
from picket_lab.shell import LabError
from picket_lab.state import LabState, read_state
from picket_lab.topology import api_url

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class LabNotRunning(LabError):
    pass


@dataclass(frozen=True)
class Spawned:
    """A background process of the lab; ``lab down`` kills it if ``stop`` was not called."""

    name: str
    pid: int
    log: Path
    pidfile: Path

    def alive(self) -> bool:
        return procs.alive(self.pid)

    def stop(self, grace: float = 5.0) -> None:
        procs.stop([self.pid], grace)
        self.pidfile.unlink(missing_ok=True)


class Lab:
    def __init__(self, layout: RunLayout, state: LabState) -> None:
        self.layout, self.state = layout, state

    @classmethod
    def current(cls) -> Lab:
        layout = run_layout()
        state = read_state(layout.state)
        if state is None or state.status != "ready":
            raise LabNotRunning(f"the local cluster is not up (no ready state in {layout.state}); run 'picket lab up'")
        return cls(layout, state)

    @property
    def kubeconfig(self) -> Path:
        return self.layout.admin_kubeconfig

    @property
    def run_dir(self) -> Path:
        return self.layout.root

    @property
    def kubectl_path(self) -> Path:
        return Path(self.state.bin_dir) / "kubectl"

    @property
    def nodes(self) -> list[str]:
        return [n.name for n in self.state.nodes]

    @property
    def api_server_url_from_nodes(self) -> str:
        return api_url()

    @property
    def ca_cert(self) -> Path:
        return self.layout.pki / "ca.crt"

    def node_netns(self, node: str) -> str:
        for spec in self.state.nodes:
            if spec.name == node:
                return spec.netns
        raise LabError(f"no lab node named {node!r} (nodes: {', '.join(self.nodes)})")

    def node_ip(self, node: str) -> str:
        return next(n.ip for n in self.state.nodes if n.name == self.node_netns(node))

    def pod_record(self, namespace: str, pod: str) -> dict[str, Any]:
        try:
            record: dict[str, Any] = json.loads(self.layout.pod_record(namespace, pod).read_text())
        except (OSError, ValueError):
            raise LabError(f"pod {namespace}/{pod} is not running on a lab node (no record in "
                           f"{self.layout.pods}); check 'picket lab kubectl get pod -n {namespace} {pod}'") from None
        return record

    def pod_netns(self, namespace: str, pod: str) -> str:
        return str(self.pod_record(namespace, pod)["netns"])

    def pod_ip(self, namespace: str, pod: str) -> str:
        return str(self.pod_record(namespace, pod)["ip"])

    def exec_in_pod(self, target: str, argv: Sequence[str], timeout: float | None = 30,
                    check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the network namespace of pod ``"namespace/name"``."""
        namespace, _, pod = target.partition("/")
        if not namespace or not pod:
            raise LabError(f"expected NAMESPACE/POD, got {target!r}")
        return _run_in(self.pod_netns(namespace, pod), argv, timeout, check)

    def exec_in_node(self, node: str, argv: Sequence[str], timeout: float | None = 30,
                     check: bool = False) -> subprocess.CompletedProcess[str]:
        return _run_in(self.node_netns(node), argv, timeout, check)

    def kube(self) -> KubeClient:
        return KubeClient.from_credentials(cp.admin_credentials(self.layout), user_agent="picket-lab")

    def kubectl(self, *args: str, timeout: float | None = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=check)

    def service_account_kubeconfig(self, namespace: str, sa_name: str, expiration_seconds: int = 86400) -> Path:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds}}
        reply = self.kube().create(f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa_name}/token", body)
        path = self.layout.component_kubeconfig(f"sa-{namespace}-{sa_name}")
        return token_kubeconfig(path, api_url(), self.ca_cert, reply["status"]["token"], f"{namespace}-{sa_name}")

    def spawn(self, name: str, argv: Sequence[str], node: str | None = None,
              env: Mapping[str, str] | None = None, netns: str | None = None) -> Spawned:
        """Start ``argv`` in ``node``'s namespace, or in ``netns`` (one the caller made, e.g. a
        benchmark's stand-in node), or else in the root namespace."""
        if not _NAME.match(name):
            raise LabError(f"spawn name {name!r} must be letters, digits, '.', '_' or '-'")
        netns = self.node_netns(node) if node is not None else netns
        started = procs.start(self.layout.root, f"spawn-{name}", argv, netns=netns, env=env)
        return Spawned(name, started.pid, started.log, procs.pidfile(self.layout.root, started.name))


def _run_in(netns: str, argv: Sequence[str], timeout: float | None, check: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, timeout=timeout,
                          check=check)
