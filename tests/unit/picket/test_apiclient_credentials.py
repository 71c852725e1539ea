"""The one API client with explicit credentials (the local cluster's components): bearer token,
strategic-merge patches with their content type, deletes with a body, plain-text endpoints.

A throwaway HTTP server on loopback records what the client sends; nothing else of the API is claimed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from picket.apiclient import STRATEGIC_MERGE_PATCH, ApiError, Credentials, KubeClient, is_status

Seen = list[tuple[str, str, dict[str, str], bytes]]


@pytest.fixture
def server() -> Iterator[tuple[str, Seen]]:
    seen: Seen = []

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append((self.command, self.path, dict(self.headers), body))
            if self.path == "/readyz":
                status, data, kind = 200, b"ok", "text/plain"
            elif self.path.startswith("/missing"):
                data = json.dumps({"reason": "NotFound", "message": "gone"}).encode()
                status, kind = 404, "application/json"
            else:
                status, data, kind = 200, b'{"kind": "Pod"}', "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_DELETE = _any

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_explicit_credentials_send_the_token_and_the_verbs_their_content_types(server: tuple[str, Seen]) -> None:
    url, seen = server
    kube = KubeClient.from_credentials(Credentials(url, None, verify=False, token="s3cret"), user_agent="t")
    kube.patch("/api/v1/namespaces/x/pods/p/status", {"status": {"phase": "Running"}})
    kube.delete("/api/v1/namespaces/x/pods/p", {"gracePeriodSeconds": 0})
    assert kube.get_text("/readyz") == "ok"
    (m1, _, h1, b1), (m2, _, h2, b2), (m3, _, h3, _) = seen
    assert (m1, h1["Content-Type"]) == ("PATCH", STRATEGIC_MERGE_PATCH)
    assert json.loads(b1) == {"status": {"phase": "Running"}}
    assert m3 == "GET"
    assert (m2, json.loads(b2)) == ("DELETE", {"gracePeriodSeconds": 0})
    assert {h["Authorization"] for h in (h1, h2, h3)} == {"Bearer s3cret"}


def test_errors_carry_the_status(server: tuple[str, Seen]) -> None:
    url, _ = server
    kube = KubeClient.from_credentials(Credentials(url, None, verify=False))
    with pytest.raises(ApiError) as err:
        kube.get("/missing/thing")
    assert is_status(err.value, 404) and not is_status(err.value, 409)
    with pytest.raises(ApiError) as err:
        kube.get_text("/missing/readyz")
    assert err.value.status == 404
