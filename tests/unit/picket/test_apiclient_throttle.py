"""The API client waits and retries when the API server answers 429 (e.g. "storage is
(re)initializing" right after a CRD is established), as client-go does, within a bounded budget.

A throwaway HTTP server on loopback plays the API server's throttling answer; nothing else of the
API is claimed here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from picket.apiclient import ApiError, KubeClient

Server = tuple[str, type["_Throttling"]]


class _Throttling(BaseHTTPRequestHandler):
    throttle_first = 0
    seen = 0

    def do_GET(self) -> None:
        cls = type(self)
        cls.seen += 1
        if cls.seen <= cls.throttle_first:
            body = {"kind": "Status", "status": "Failure", "reason": "TooManyRequests",
                    "message": "storage is (re)initializing", "code": 429}
            self._answer(429, body, {"Retry-After": "0"})
        else:
            self._answer(200, {"kind": "Namespace", "metadata": {"name": "x"}}, {})

    def _answer(self, status: int, body: dict[str, object], headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", "Content-Length": str(len(data)), **headers}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    handler = type("Handler", (_Throttling,), {"seen": 0, "throttle_first": 0})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def _client(url: str, tmp_path: Path) -> KubeClient:
    kubeconfig = {
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "t", "cluster": {"server": url}}],
        "users": [{"name": "t", "user": {}}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig))
    return KubeClient(path)


def test_a_throttled_request_is_retried_until_it_succeeds(server: Server, tmp_path: Path) -> None:
    url, handler = server
    handler.throttle_first = 2
    assert _client(url, tmp_path).get("/api/v1/namespaces/x")["metadata"]["name"] == "x"
    assert handler.seen == 3


def test_throttling_beyond_the_budget_is_reported(server: Server, tmp_path: Path) -> None:
    url, handler = server
    handler.throttle_first = 1000
    with pytest.raises(ApiError) as err:
        _client(url, tmp_path).get("/api/v1/namespaces/x")
    assert err.value.status == 429
    assert 1 < handler.seen < 1000
