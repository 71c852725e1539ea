"""The node runtime's port server, in a throwaway network namespace: sockets opened from a thread
that entered the namespace answer inside it (TCP echo, HTTP reply, UDP echo) and close on demand."""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from collections.abc import Iterator

import pytest

from picket_lab.listeners import PortServer
from picket_lab.objects import Port

pytestmark = pytest.mark.kernel


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    name = f"pkt-ltest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture
def server() -> Iterator[PortServer]:
    stop = threading.Event()
    srv = PortServer()
    thread = threading.Thread(target=srv.serve, args=(stop,), daemon=True)
    thread.start()
    yield srv
    stop.set()
    thread.join(5)


def in_ns(netns: str, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", netns, "sh", "-c", script], capture_output=True, text=True,
                          timeout=20, check=False)


def test_ports_answer_inside_the_namespace_only(netns: str, server: PortServer) -> None:
    assert server.open("x/a", netns, [Port("TCP", 8080), Port("UDP", 5353)]) == []
    ready = in_ns(netns, "for i in $(seq 50); do nc -z 127.0.0.1 8080 && exit 0; sleep 0.1; done; exit 1")
    assert ready.returncode == 0
    assert "tcp-hi" in in_ns(netns, "echo tcp-hi | nc -w 1 -q 1 127.0.0.1 8080").stdout
    http = in_ns(netns, r"printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 1 127.0.0.1 8080").stdout
    assert http.startswith("HTTP/1.0 200 OK") and "x/a port 8080" in http
    assert "udp-hi" in in_ns(netns, "echo udp-hi | nc -u -w 1 127.0.0.1 5353").stdout
    assert in_ns(netns, "nc -z -w 1 127.0.0.1 8081").returncode != 0


def test_a_port_taken_twice_is_reported_and_close_frees_it(netns: str, server: PortServer) -> None:
    assert server.open("x/a", netns, [Port("TCP", 9000)]) == []
    in_ns(netns, "for i in $(seq 50); do nc -z 127.0.0.1 9000 && exit 0; sleep 0.1; done")
    problems = server.open("x/b", netns, [Port("TCP", 9000)])
    assert len(problems) == 1 and "9000" in problems[0]
    server.close("x/a")
    closed = in_ns(netns, "for i in $(seq 50); do nc -z 127.0.0.1 9000 || exit 0; sleep 0.1; done; exit 1")
    assert closed.returncode == 0
