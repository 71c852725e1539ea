"""Throwaway network-namespace topologies for the agent's kernel tests (and the benchmark).

Every name starts with ``pkt-<tag>-<pid>-`` (namespaces) or ``pk`` (links, created inside node
namespaces only), so a crashed run's leftovers are recognisable and ``sweep()`` removes them,
and only them: a running process's namespaces are not leftovers. Nothing is
created in, or changed in, the machine's own namespace: links are made inside the node
namespace and moved into pod namespaces, and ``ip_forward`` is enabled inside node namespaces.

A node is a namespace routing point-to-point veths like kindnet/Calico: the pod has its /32 and
a default route via 169.254.1.1 (a permanent neighbour entry for the host side's MAC), the
node a /32 route per pod. Two nodes are joined by one veth pair with a route per pod CIDR.
IPv6 (``add_pod(..., ip6=...)``, ``link_nodes(..., v6=...)``) is routed the same way but
with REAL neighbour discovery, no static entries: the pod's default route is via the node
side's link-local ``fe80::1``. Duplicate address detection is off in every namespace made here
(``accept_dad=0`` before any link exists, and ``nodad`` on the addresses given): the kernel's own
link-local addresses would otherwise stay tentative for up to two seconds after a link comes up,
and a fast machine probes inside that window (a CI run saw a freshly made pod's first IPv6
connects time out with no policy at all). ``wait_reachable`` is the fixtures' readiness check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from picket.model import Compiled

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(str(REPO / p) for p in (".", "operator", "agent"))}


def sh(
    *argv: str, check: bool = True, timeout: float = 30, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def sweep(prefix: str = "pkt-") -> None:
    """Remove namespaces of an earlier crashed run (their links and rules go with them).

    A namespace's name carries the pid of the process that made it (``pkt-<tag>-<pid>-...``):
    those of a process still running (another session's tests or benchmark on this shared
    machine) are left alone; names without a pid are from before this rule and go."""
    for line in sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split(" ", 1)[0]
        if name.startswith(prefix) and not _owner_alive(name):
            sh("ip", "netns", "del", name, check=False)


def _owner_alive(name: str) -> bool:
    parts = name.split("-")
    return len(parts) >= 4 and parts[2].isdigit() and Path(f"/proc/{parts[2]}").exists()


def _no_dad(ns: str) -> None:
    """No duplicate address detection for links made later in ``ns`` (a namespace of ours)."""
    for scope in ("all", "default"):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.accept_dad=0")


BACKENDS = ("legacy", "nft")  # the kernel tests run against both iptables backends


@dataclass
class Topology:
    tag: str  # short: goes into names, at most 4 characters
    backend: str = "legacy"  # the agent's --iptables-backend: where its chains go
    nodes: dict[str, str] = field(default_factory=dict)  # node name -> netns
    pods: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # key -> (netns, ip, node)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    ip6s: dict[str, str] = field(default_factory=dict)  # key -> IPv6 address (dual-stack and IPv6-only pods)
    _links: int = 0

    def ns(self, node: str) -> str:
        return self.nodes[node]

    def tool(self, family: int = 4) -> str:
        """The iptables binary of this topology's backend, e.g. ``ip6tables-nft``."""
        return f"{'ip6tables' if family == 6 else 'iptables'}-{self.backend}"

    def save(self, node: str = "n1", family: int = 4, counters: bool = True) -> str:
        """``<tool>-save [-c] -t filter`` inside a node."""
        return self.in_node(node, f"{self.tool(family)}-save", *(["-c"] if counters else []), "-t", "filter").stdout

    def add_node(self, node: str, node_ip: str) -> str:
        ns = f"pkt-{self.tag}-{os.getpid()}-{node}"
        sh("ip", "netns", "add", ns)
        self.nodes[node] = ns
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        sh("ip", "-n", ns, "addr", "add", f"{node_ip}/32", "dev", "lo")  # the node's own address
        return ns

    def add_pod(self, key: str, ip: str, node: str, ip6: str = "") -> str:
        """A pod with IPv4 address ``ip`` (and IPv6 ``ip6``: dual-stack; ``ip`` "" for IPv6 only)."""
        self._links += 1
        ns = f"pkt-{self.tag}-{os.getpid()}-p{self._links}"
        host_if = f"pk{self.tag}{self._links}"
        node_ns = self.nodes[node]
        sh("ip", "netns", "add", ns)
        _no_dad(ns)
        sh("ip", "-n", node_ns, "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        if ip:
            sh("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
        if ip6:
            sh("ip", "-n", ns, "addr", "add", f"{ip6}/128", "dev", "eth0", "nodad")
            sh("ip", "-n", node_ns, "addr", "add", "fe80::1/64", "dev", host_if, "nodad")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", node_ns, "link", "set", host_if, "up")
        if ip:
            mac = json.loads(sh("ip", "-j", "-n", node_ns, "link", "show", host_if).stdout)[0]["address"]
            sh("ip", "-n", ns, "route", "add", "169.254.1.1", "dev", "eth0")
            sh("ip", "-n", ns, "neigh", "add", "169.254.1.1", "lladdr", mac, "dev", "eth0", "nud", "permanent")
            sh("ip", "-n", ns, "route", "add", "default", "via", "169.254.1.1", "dev", "eth0")
            sh("ip", "-n", node_ns, "route", "add", f"{ip}/32", "dev", host_if)
        if ip6:
            sh("ip", "-n", ns, "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0")
            sh("ip", "-n", node_ns, "-6", "route", "add", f"{ip6}/128", "dev", host_if)
            self.ip6s[key] = ip6
        self.pods[key] = (ns, ip or ip6, node)
        return ns

    def link_nodes(
        self, a: str, a_ip: str, b: str, b_ip: str, routes: dict[str, list[str]], v6: tuple[str, str] | None = None
    ) -> None:
        """Join two nodes; ``routes[node]`` are the CIDRs reachable through the other one (IPv6
        CIDRs among them go via the nodes' ``v6`` addresses, a /64 on the link)."""
        na, nb = self.nodes[a], self.nodes[b]
        sh("ip", "-n", na, "link", "add", "pklink", "type", "veth", "peer", "name", "pklink", "netns", nb)
        for ns, ip, ip6 in ((na, a_ip, v6[0] if v6 else ""), (nb, b_ip, v6[1] if v6 else "")):
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "pklink")
            if ip6:
                sh("ip", "-n", ns, "addr", "add", f"{ip6}/64", "dev", "pklink", "nodad")
            sh("ip", "-n", ns, "link", "set", "pklink", "up")
        for ns, cidrs, via, via6 in ((na, routes.get(a, []), b_ip, v6[1] if v6 else ""),
                                     (nb, routes.get(b, []), a_ip, v6[0] if v6 else "")):
            for cidr in cidrs:
                sh("ip", "-n", ns, "route", "add", cidr, "via", via6 if ":" in cidr else via)

    def ip(self, key: str) -> str:
        return self.pods[key][1]

    def listen(self, key: str, tcp: tuple[int, ...] = (), udp: tuple[int, ...] = ()) -> None:
        """TCP echo and UDP echo servers, on IPv4 and, for a pod with an IPv6 address, on IPv6."""
        ns = self.pods[key][0]
        v4 = self.pods[key][1] != self.ip6s.get(key)
        for port in tcp:
            if v4:
                self._spawn(ns, ["socat", f"TCP-LISTEN:{port},fork,reuseaddr", "PIPE"])
            if key in self.ip6s:
                self._spawn(ns, ["socat", f"TCP6-LISTEN:{port},fork,reuseaddr,ipv6only=1", "PIPE"])
        for port in udp:
            if v4:
                self._spawn(ns, ["socat", f"UDP-RECVFROM:{port},fork", "PIPE"])  # echoes the datagram
            if key in self.ip6s:
                self._spawn(ns, ["socat", f"UDP6-RECVFROM:{port},fork,ipv6only=1", "PIPE"])
        time.sleep(0.3)

    def _spawn(self, ns: str, argv: list[str]) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
        )
        self.procs.append(proc)
        return proc

    def probe(self, src: str, dst: str, proto: str, port: int, family: int = 4) -> bool:
        """One nc probe from pod ``src`` to pod ``dst`` (a key: its IPv4, or IPv6 address) or an address."""
        ns = self.pods[src][0]
        ip = dst if dst not in self.pods else self.ip6s[dst] if family == 6 else self.pods[dst][1]
        if proto == "tcp":  # -w 2 leaves room for one SYN retransmission
            return sh("ip", "netns", "exec", ns, "nc", "-z", "-w", "2", ip, str(port), check=False).returncode == 0
        for _ in range(2):  # a UDP datagram may be lost; a blocked one never gets an answer
            out = sh("ip", "netns", "exec", ns, "nc", "-u", "-w", "2", ip, str(port), input="picket\n", check=False)
            if "picket" in out.stdout:
                return True
        return False

    def wait_reachable(self, cases: Sequence[tuple[Any, ...]], timeout: float = 15) -> None:
        """Block until every probe in ``cases`` succeeds (call it before any rules exist): the
        topology is ready. Fails naming the probes that never did, with the namespaces' IPv6
        addresses and neighbours, so a broken topology is never mistaken for a policy verdict."""
        deadline = time.monotonic() + timeout
        while True:
            down = [c for c, ok in zip(cases, self.probes(cases), strict=True) if not ok]
            if not down:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"topology not ready after {timeout:.0f} s, unreachable: {down}\n"
                                     f"{self.diagnose()}")
            time.sleep(0.5)

    def diagnose(self) -> str:
        """IPv6 addresses (with tentative/dadfailed flags) and neighbours of every namespace."""
        out = []
        for ns in [*self.nodes.values(), *(p[0] for p in self.pods.values())]:
            addrs = sh("ip", "-n", ns, "-6", "-o", "addr", check=False).stdout.strip()
            neigh = sh("ip", "-n", ns, "-6", "neigh", check=False).stdout.strip()
            out.append(f"[{ns}]\n{addrs}\n{neigh}")
        return "\n".join(out)

    def probes(self, cases: Sequence[tuple[Any, ...]]) -> list[bool]:
        """Probes in parallel: (src, dst, proto, port[, family])."""
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(lambda c: self.probe(*c), cases))

    def _agent_argv(self, node: str, rules: str, *extra: str) -> list[str]:
        """``picket agent --rules FILE ...`` inside the node's namespace, as a hostNetwork pod runs."""
        return ["ip", "netns", "exec", self.nodes[node], sys.executable, "-m", "picket.cli", "agent", "--rules", rules,
                "--iptables-backend", self.backend, *extra]

    def agent(
        self, node: str, compiled: Compiled | dict, *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``ip netns exec <node> picket agent --rules F --once`` with that node's part of ``compiled``."""
        data = compiled if isinstance(compiled, dict) else compiled.for_node(node).to_dict()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, prefix="pkt-rules-") as f:
            json.dump(data, f)
        try:
            proc = subprocess.run(
                self._agent_argv(node, f.name, "--once", *extra),
                capture_output=True,
                text=True,
                timeout=60,
                env=ENV,
                check=False,
            )
        finally:
            os.unlink(f.name)
        if check and proc.returncode != 0:
            raise RuntimeError(f"agent failed ({proc.returncode}): {proc.stderr}")
        return proc

    def spawn_agent(self, node: str, rules: Path, *extra: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            self._agent_argv(node, str(rules), *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.procs.append(proc)
        return proc

    def in_node(self, node: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.nodes[node], *argv, check=check)

    def destroy(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for ns, _, _ in self.pods.values():
            sh("ip", "netns", "del", ns, check=False)
        for ns in self.nodes.values():
            sh("ip", "netns", "del", ns, check=False)
