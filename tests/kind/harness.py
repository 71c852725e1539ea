"""The kind tier's test harness: kubectl in the engine's namespace, probe pods on every node, netcat matrices.

Probe pods run the ``busybox:1.36`` stand-in (``picket_lab.kind.images``): busybox httpd on TCP 80
and 81, socat echoing UDP 80; declared as named ports ``http``, ``alt`` and ``echo``. Probes are
``kubectl exec SRC -- nc -z -w 1 IP PORT`` (TCP: the handshake completed) and, for UDP, a datagram
through socat that must come back. ``expect`` polls the whole matrix until it equals the expected
one (or fails at the deadline listing every differing pair), then checks it once more.

The tier's cluster is dual-stack (``tests/kind/conftest.py``): every pod has an IPv4 and an IPv6
address (``status.podIPs``). ``Kind.ips`` holds each pod's IPv4 address, ``Kind.ips6`` its IPv6
one; ``matrix`` and ``expect`` probe the IPv4 addresses unless given ``family="ipv6"``.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from picket_lab.kind import cluster, images
from picket_lab.kind.layout import NETNS, Layout

Matrix = dict[str, dict[str, bool]]
REPO = Path(__file__).resolve().parents[2]
NODES = ("picket-worker", "picket-worker2", "picket-control-plane")
DEADLINE = 60.0
POD_COMMAND = ("echo ok >/tmp/index.html; httpd -p 81 -h /tmp; "
               "socat UDP-RECVFROM:80,fork EXEC:cat & exec httpd -f -p 80 -h /tmp")


def listener_command(ports: Sequence[dict[str, Any]]) -> str:
    """Serve every declared port: TCP with busybox httpd, UDP with a socat echo."""
    parts = ["echo ok >/tmp/index.html"]
    for p in ports:
        if str(p.get("protocol", "TCP")) == "UDP":
            parts.append(f"(socat UDP-RECVFROM:{p['containerPort']},fork EXEC:cat &)")
        else:
            parts.append(f"httpd -p {p['containerPort']} -h /tmp")
    return "; ".join([*parts, "exec sleep infinity"])


def probe_pod_from(obj: dict[str, Any], node: str) -> dict[str, Any]:
    """A cluster file's pod as a runnable probe pod: same name, namespace, labels and declared ports."""
    meta = obj["metadata"]
    ports = [dict(p) for c in obj["spec"].get("containers", []) for p in c.get("ports", [])] or [
        {"containerPort": 80}]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "labels": dict(meta.get("labels") or {})},
        "spec": {"nodeName": node, "terminationGracePeriodSeconds": 0, "tolerations": [{"operator": "Exists"}],
                 "containers": [{"name": "probe", "image": images.BUSYBOX_STANDIN, "imagePullPolicy": "IfNotPresent",
                                 "command": ["sh", "-c", listener_command(ports)], "ports": ports}]},
    }


def pod_manifest(key: str, node: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    namespace, name = key.split("/")
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"pod": name, **(labels or {})}},
        "spec": {
            "nodeName": node, "terminationGracePeriodSeconds": 0,
            "tolerations": [{"operator": "Exists"}],
            "containers": [{
                "name": "probe", "image": images.BUSYBOX_STANDIN, "imagePullPolicy": "IfNotPresent",
                "command": ["sh", "-c", POD_COMMAND],
                "ports": [{"name": "http", "containerPort": 80}, {"name": "alt", "containerPort": 81},
                          {"name": "echo", "containerPort": 80, "protocol": "UDP"}],
            }],
        },
    }


def pod_addresses(pod: dict[str, Any]) -> tuple[str, str | None]:
    """A pod's (IPv4, IPv6 or None) addresses from its status (``podIPs``; ``podIP`` alone on old servers)."""
    status = pod["status"]
    found = [entry["ip"] for entry in status.get("podIPs") or []] or [status["podIP"]]
    v4 = [ip for ip in found if ":" not in ip]
    v6 = [ip for ip in found if ":" in ip]
    assert v4, f"{pod['metadata']['name']} has no IPv4 address: {found}"
    return v4[0], v6[0] if v6 else None


def expected(pods: Sequence[str], allowed: Callable[[str, str], bool]) -> Matrix:
    return {s: {d: s == d or allowed(s, d) for d in pods} for s in pods}


def differences(live: Matrix, want: Matrix) -> list[str]:
    return [f"{s} -> {d}: {'open' if live[s][d] else 'blocked'}, want {'open' if want[s][d] else 'blocked'}"
            for s in want for d in want[s] if live[s][d] != want[s][d]]


class Kind:
    def __init__(self, lay: Layout) -> None:
        self.lay = lay
        self.ips: dict[str, str] = {}  # IPv4
        self.ips6: dict[str, str] = {}  # IPv6, for the pods that have one

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 120) -> str:
        argv = ["ip", "netns", "exec", NETNS, "kubectl", *args]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=images.client_env(self.lay), check=False)
        if check:
            assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
        return done.stdout

    def sh(self, script: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return cluster.shell(self.lay, script, cwd=REPO, check=check, timeout=timeout)

    def apply(self, *docs: dict[str, Any]) -> None:
        # JSON, not YAML: kubectl reads YAML 1.1, where a label value y would be a bool
        self.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(docs)}))

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.kubectl("delete", kind, name, *(["-n", namespace] if namespace else []), "--ignore-not-found",
                     "--wait=true")

    def make_pods(self, placement: dict[str, str], labels: dict[str, dict[str, str]] | None = None) -> None:
        """Create pods ("ns/name" -> node) in labelled namespaces (ns=<name>), wait for them, learn their IPs."""
        for namespace in sorted({k.split("/")[0] for k in placement}):
            self.apply({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": namespace, "labels": {"ns": namespace}}})
        self.apply(*(pod_manifest(k, n, (labels or {}).get(k)) for k, n in placement.items()))
        for namespace in sorted({k.split("/")[0] for k in placement}):
            self.kubectl("-n", namespace, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s")
        for key in placement:
            namespace, name = key.split("/")
            self.learn_ips(key, json.loads(self.kubectl("-n", namespace, "get", "pod", name, "-o", "json")))

    def learn_ips(self, key: str, pod: dict[str, Any]) -> None:
        v4, v6 = pod_addresses(pod)
        self.ips[key] = v4
        if v6:
            self.ips6[key] = v6
        else:
            self.ips6.pop(key, None)

    def addresses(self, family: str) -> dict[str, str]:
        assert family in ("ipv4", "ipv6"), family
        return self.ips if family == "ipv4" else self.ips6

    def probe(self, src: str, dst_ip: str, port: int = 80, protocol: str = "TCP", timeout: int = 1) -> bool:
        return self.probe_or_none(src, dst_ip, port, protocol, timeout) is True

    def probe_or_none(self, src: str, dst_ip: str, port: int = 80, protocol: str = "TCP",
                      timeout: int = 1) -> bool | None:
        """Like ``probe``; None when kubectl itself failed (the probe never ran), e.g. during an API hiccup."""
        namespace, name = src.split("/")
        if protocol == "UDP":
            cmd = ["sh", "-c", f"echo picket | socat -T{timeout} - UDP:{dst_ip}:{port}"]
        else:
            cmd = ["nc", "-z", "-w", str(timeout), dst_ip, str(port)]
        argv = ["ip", "netns", "exec", NETNS, "kubectl", "-n", namespace, "exec", name, "--", *cmd]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=images.client_env(self.lay),
                              check=False)
        if done.returncode != 0 and "command terminated with exit code" not in done.stderr:
            return None
        return done.returncode == 0 and (protocol != "UDP" or "picket" in done.stdout)

    def matrix(self, pods: Sequence[str], port: int = 80, protocol: str = "TCP",
               ports: dict[str, tuple[str, int]] | None = None, family: str = "ipv4") -> Matrix:
        """Every pair probed (to the destination's address of ``family``); ``ports`` gives a destination its own
        (protocol, port)."""
        pairs = [(s, d) for s in pods for d in pods]
        addresses = self.addresses(family)

        def one(pair: tuple[str, str]) -> bool:
            src, dst = pair
            proto, number = (ports or {}).get(dst, (protocol, port))
            return src == dst or self.probe(src, addresses[dst], number, proto)

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, pairs))
        out: Matrix = {s: {} for s in pods}
        for (s, d), ok in zip(pairs, results, strict=True):
            out[s][d] = ok
        return out

    def expect(self, want: Matrix, port: int = 80, protocol: str = "TCP", deadline: float = DEADLINE,
               ports: dict[str, tuple[str, int]] | None = None, family: str = "ipv4") -> None:
        pods = list(want)
        end = time.monotonic() + deadline
        while True:
            live = self.matrix(pods, port, protocol, ports, family)
            if live == want:
                break
            assert time.monotonic() < end, f"{family} {protocol}/{port} after {deadline:.0f}s:\n" + "\n".join(
                differences(live, want))
        assert self.matrix(pods, port, protocol, ports, family) == want  # and it stays so
