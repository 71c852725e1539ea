"""A minimal Kubernetes REST client: JSON requests and watch streams over TLS with keep-alive.

The node runtime and the lab need a handful of verbs (get, create, patch with an explicit patch
type, delete, watch) with exact control over content types and timeouts, and start in
milliseconds; the generated client is heavier and guesses patch types. One connection per thread
(``threading.local``) so workers never share a socket. Auth is a client certificate or a bearer
token; the server is verified against the lab CA.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = "application/json"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


class ApiError(RuntimeError):
    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class Credentials:
    server: str  # https://host:port
    ca: Path
    cert: Path | None = None
    key: Path | None = None
    token: str | None = None


class Kube:
    def __init__(self, creds: Credentials, timeout: float = 30.0) -> None:
        self.creds, self.timeout = creds, timeout
        url = urllib.parse.urlsplit(creds.server)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 443
        self.context = ssl.create_default_context(cafile=str(creds.ca))
        if creds.cert and creds.key:
            self.context.load_cert_chain(str(creds.cert), str(creds.key))
        self._local = threading.local()

    def _connection(self, timeout: float) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.context, timeout=timeout)

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": "picket-lab"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.creds.token:
            headers["Authorization"] = f"Bearer {self.creds.token}"
        return headers

    def request(self, method: str, path: str, body: Any = None, content_type: str = JSON,
                params: Mapping[str, str] | None = None) -> Any:
        """One request on this thread's kept-alive connection; retries once if the server closed it."""
        url = path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            conn = getattr(self._local, "conn", None) or self._connection(self.timeout)
            self._local.conn = conn
            try:
                conn.request(method, url, body=data, headers=self._headers(content_type if data else None))
                resp = conn.getresponse()
                raw = resp.read().decode()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest,
                    http.client.ResponseNotReady, BrokenPipeError):
                conn.close()
                self._local.conn = None
                if attempt == 2:
                    raise
                continue
            if resp.status >= 400:
                raise ApiError(resp.status, method, url, raw)
            return json.loads(raw) if raw and raw.lstrip().startswith(("{", "[")) else raw
        raise AssertionError("unreachable")

    def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def create(self, path: str, body: Any) -> Any:
        return self.request("POST", path, body)

    def patch(self, path: str, body: Any, content_type: str = STRATEGIC) -> Any:
        return self.request("PATCH", path, body, content_type)

    def delete(self, path: str, body: Any = None) -> Any:
        return self.request("DELETE", path, body)

    def watch(self, path: str, params: Mapping[str, str], timeout: float = 330.0) -> Iterator[dict[str, Any]]:
        """Events of one watch request (``?watch=1``), until the server ends it; a new connection each time."""
        conn = self._connection(timeout)
        try:
            query = urllib.parse.urlencode({**params, "watch": "1"})
            conn.request("GET", f"{path}?{query}", headers=self._headers(None))
            resp = conn.getresponse()
            if resp.status >= 400:
                raise ApiError(resp.status, "WATCH", path, resp.read().decode())
            while line := resp.readline():
                if line.strip():
                    yield json.loads(line)
        finally:
            conn.close()


def is_status(err: BaseException, *codes: int) -> bool:
    return isinstance(err, ApiError) and err.status in codes
