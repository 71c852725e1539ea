"""Live reachability probes with netcat, from inside the source pod's network namespace.

``probe_matrix`` runs one ``nc`` per (source, destination) pair, in parallel, each inside the
source pod's namespace (``ip netns exec``), against the destination pod's IP:
* TCP: ``nc -z`` (connect only); success means the three-way handshake completed.
* UDP: a datagram is sent and the lab's listener echoes it; success means the echo came back.
Blocked pairs cost the timeout (packets are dropped, not rejected), so the pool is wide.

Used by ``picket matrix --live``, ``picket demo``, the end-to-end tests and the convergence
benchmark. Only addresses of lab pods are ever probed, from inside lab namespaces.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

Matrix = dict[str, dict[str, bool]]


@dataclass(frozen=True)
class Target:
    """A pod as the prober needs it: its key ("ns/name"), network namespace and IP."""

    key: str
    netns: str
    ip: str


def nc_argv(ip: str, protocol: str, port: int, timeout: float) -> list[str]:
    wait = str(max(1, round(timeout)))
    if protocol.upper() == "UDP":
        argv = ["nc", "-u", "-w", wait, ip, str(port)]
    else:
        argv = ["nc", "-z", "-w", wait, ip, str(port)]
    if timeout < 1:  # nc's -w is whole seconds; cut shorter waits with coreutils' timeout
        argv = ["timeout", f"{timeout:.2f}", *argv]
    return argv


def probe(src: Target, dst_ip: str, protocol: str, port: int, timeout: float = 1.0) -> bool:
    argv = ["ip", "netns", "exec", src.netns, *nc_argv(dst_ip, protocol, port, timeout)]
    udp = protocol.upper() == "UDP"
    try:
        done = subprocess.run(
            argv, input="picket-probe\n" if udp else None, capture_output=True, text=True, timeout=timeout + 5
        )
    except subprocess.TimeoutExpired:
        return False
    if udp:
        return "picket-probe" in done.stdout
    return done.returncode == 0


def probe_matrix(
    targets: Sequence[Target],
    protocol: str = "TCP",
    port: int = 80,
    timeout: float = 1.0,
    parallel: int = 48,
    sources: Sequence[str] | None = None,
    ports: Mapping[str, tuple[str, int]] | None = None,
) -> Matrix:
    """``allowed[source][destination]`` for every pair (the diagonal included: it is probed too).

    ``ports`` (destination key -> (protocol, port)) probes each destination on its own port
    instead of ``protocol``/``port`` (e.g. each pod's first declared containerPort).
    """
    srcs = [t for t in targets if sources is None or t.key in sources]
    pairs = [(s, d) for s in srcs for d in targets]

    def one(pair: tuple[Target, Target]) -> bool:
        proto, number = ports.get(pair[1].key, (protocol, port)) if ports else (protocol, port)
        return probe(pair[0], pair[1].ip, proto, number, timeout)

    with ThreadPoolExecutor(max(1, min(parallel, len(pairs)))) as pool:
        results = list(pool.map(one, pairs))
    out: Matrix = {s.key: {} for s in srcs}
    for (s, d), ok in zip(pairs, results, strict=True):
        out[s.key][d.key] = ok
    return out


def differences(live: Mapping[str, Mapping[str, bool]], expected: Mapping[str, Mapping[str, bool]]) -> list[str]:
    """Human-readable list of the pairs where two matrices disagree."""
    out = []
    for src in sorted(expected):
        for dst in sorted(expected[src]):
            got = live.get(src, {}).get(dst)
            if got != expected[src][dst]:
                want = "allowed" if expected[src][dst] else "blocked"
                seen = "allowed" if got else "blocked" if got is not None else "not probed"
                out.append(f"{src} -> {dst}: expected {want}, live {seen}")
    return out
