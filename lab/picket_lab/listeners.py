"""Serve every declared containerPort of many pods from one thread.

``open`` creates the listening sockets of one pod *inside the pod's namespace* (a socket keeps
the namespace it was created in, so the calling thread enters the namespace only for
``socket()``/``bind()``); the serving thread then multiplexes all pods' sockets with one
selector, so hundreds of pods cost a few file descriptors each and no process. TCP: a request
starting with an HTTP method gets a short HTTP/1.0 reply naming the pod; anything else is echoed
back. UDP: each datagram is echoed to its sender. Used by the node runtime.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from collections.abc import Callable

from picket_lab.objects import Port
from picket_lab.podnet import in_netns

HTTP_METHODS = (b"GET ", b"HEAD ", b"POST ", b"PUT ", b"DELETE ", b"OPTIONS ")


def http_reply(key: str, port: int) -> bytes:
    body = f"picket-lab pod {key} port {port}\n".encode()
    head = f"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    return head.encode() + body


class PortServer:
    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._pending: list[Callable[[], None]] = []
        self._sockets: dict[str, list[socket.socket]] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)

    def open(self, key: str, netns: str | None, ports: list[Port]) -> list[str]:
        """Listen on ``ports`` in ``netns`` for pod ``key``; returns problems (e.g. a port in use)."""
        made, problems = [], []
        with in_netns(netns):
            for p in ports:
                kind = socket.SOCK_STREAM if p.protocol == "TCP" else socket.SOCK_DGRAM
                sock = socket.socket(socket.AF_INET, kind)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("0.0.0.0", p.port))
                    if kind == socket.SOCK_STREAM:
                        sock.listen(128)
                except OSError as err:
                    sock.close()
                    problems.append(f"{p.protocol}/{p.port}: {err.strerror}")
                    continue
                sock.setblocking(False)
                made.append((sock, p))
        self._call_soon(lambda: self._register(key, made))
        return problems

    def close(self, key: str) -> None:
        self._call_soon(lambda: self._unregister(key))

    def _call_soon(self, fn: Callable[[], None]) -> None:
        with self._lock:
            self._pending.append(fn)
        os.write(self._wake_w, b"x")

    def _register(self, key: str, made: list[tuple[socket.socket, Port]]) -> None:
        self._unregister(key)
        self._sockets[key] = [s for s, _ in made]
        for sock, port in made:
            self._selector.register(sock, selectors.EVENT_READ, (key, port, "listen"))

    def _unregister(self, key: str) -> None:
        for sock in self._sockets.pop(key, []):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()

    def serve(self, stop: threading.Event) -> None:
        while not stop.is_set():
            for selkey, _ in self._selector.select(timeout=1.0):
                if selkey.data is None:
                    self._drain_pending()
                else:
                    sock, (key, port, role) = selkey.fileobj, selkey.data
                    try:
                        self._ready(sock, key, port, role)  # type: ignore[arg-type]
                    except OSError:
                        if role == "conn":
                            self._drop(key, sock)  # type: ignore[arg-type]

    def _drain_pending(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_r, 4096)
        with self._lock:
            pending, self._pending = self._pending, []
        for fn in pending:
            fn()

    def _ready(self, sock: socket.socket, key: str, port: Port, role: str) -> None:
        if port.protocol == "UDP":
            data, peer = sock.recvfrom(65535)
            sock.sendto(data, peer)
        elif role == "listen":
            conn, _ = sock.accept()
            conn.setblocking(False)
            self._sockets.setdefault(key, []).append(conn)
            self._selector.register(conn, selectors.EVENT_READ, (key, port, "conn"))
        else:
            self._answer(sock, key, port)

    def _answer(self, conn: socket.socket, key: str, port: Port) -> None:
        data = conn.recv(65536)
        if data and not data.startswith(HTTP_METHODS):
            conn.setblocking(True)
            conn.settimeout(1.0)
            conn.sendall(data)
            conn.setblocking(False)
            return
        if data:
            conn.settimeout(1.0)
            conn.sendall(http_reply(key, port.port))
        self._drop(key, conn)

    def _drop(self, key: str, conn: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn)
        with contextlib.suppress(ValueError):
            self._sockets.get(key, []).remove(conn)
        conn.close()
