"""A small, fast Kubernetes REST client: JSON in, JSON out, pooled connections, streaming watches.

The one client for everything that is not kopf's watching: the operator's publisher and leader
election, the agent's API feed, the local cluster (its node runtimes, control-plane checks and
harness), the tests and the benchmarks. The ``kubernetes`` package is used only to read
credentials (a kubeconfig file, or the in-cluster ServiceAccount files, refreshed as the kubelet
rotates the token); ``KubeClient.from_credentials`` takes them directly (the local cluster's
components, whose certificates it issued itself). Requests go through one thread-safe
``urllib3.PoolManager``, which keeps the per-request cost a few hundred microseconds instead of the
generated client's model validation.

Errors: every non-2xx answer raises ``ApiError`` with the HTTP status and the server's message;
``ApiError.status`` 404/409 are the ones callers usually branch on.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import urllib3

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"  # JSON is valid YAML
THROTTLE_RETRIES = 10  # 429 answers retried per request (each waits Retry-After, at most 2 s)


class ApiError(Exception):
    """A non-2xx answer from the API server (status 0: the server could not be reached)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class Credentials:
    server: str
    ca_file: str | None
    cert_file: str | None = None
    key_file: str | None = None
    verify: bool = True
    token: str | None = None  # a bearer token (from_credentials); kubeconfig tokens come through _Auth


def is_status(err: BaseException, *codes: int) -> bool:
    """Is ``err`` an ``ApiError`` with one of these HTTP statuses?"""
    return isinstance(err, ApiError) and err.status in codes


class _Auth:
    """The bearer token, re-read through the kubernetes package's refresh hook at most every 60 s
    (or a fixed token when there is no kubernetes configuration)."""

    def __init__(self, configuration: Any, token: str | None = None) -> None:
        self._conf = configuration
        self._token = token
        self._lock = threading.Lock()
        self._checked = 0.0

    def header(self) -> str | None:
        if self._conf is None:
            return f"Bearer {self._token}" if self._token else None
        with self._lock:
            now = time.monotonic()
            hook = getattr(self._conf, "refresh_api_key_hook", None)
            if hook is not None and now - self._checked > 60:
                hook(self._conf)
                self._checked = now
            token = self._conf.api_key.get("BearerToken") or self._conf.api_key.get("authorization")
        if not token:
            return None
        token = str(token)
        return token if token.lower().startswith("bearer ") else f"Bearer {token}"


def load_configuration(kubeconfig: Path | None) -> Any:
    """A ``kubernetes.client.Configuration`` from a kubeconfig file, or in-cluster when None."""
    from kubernetes import client, config  # credentials only

    conf = client.Configuration()
    if kubeconfig is None:
        config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=conf)  # type: ignore[no-untyped-call]
    return conf


class KubeClient:
    """JSON requests against one API server. Safe to share between threads."""

    def __init__(
        self,
        kubeconfig: Path | None,
        user_agent: str = "picket",
        pool_size: int = 16,
        *,
        credentials: Credentials | None = None,
    ) -> None:
        if credentials is None:
            conf = load_configuration(kubeconfig)
            credentials = Credentials(
                server=str(conf.host).rstrip("/"),
                ca_file=conf.ssl_ca_cert,
                cert_file=conf.cert_file,
                key_file=conf.key_file,
                verify=bool(conf.verify_ssl),
            )
        else:
            conf = None
        self.credentials = credentials
        self.configuration = conf
        self._auth = _Auth(conf, credentials.token)
        self._user_agent = user_agent
        self._pool = urllib3.PoolManager(
            num_pools=4,
            maxsize=pool_size,
            block=False,
            cert_reqs=ssl.CERT_REQUIRED if self.credentials.verify else ssl.CERT_NONE,
            ca_certs=self.credentials.ca_file,
            cert_file=self.credentials.cert_file,
            key_file=self.credentials.key_file,
        )

    @classmethod
    def from_credentials(cls, credentials: Credentials, user_agent: str = "picket", pool_size: int = 16) -> KubeClient:
        """A client for explicit credentials (certificate files and/or a token), without a kubeconfig."""
        return cls(None, user_agent, pool_size, credentials=credentials)

    def auth_header(self) -> str | None:
        """The current ``Authorization`` header value (a bearer token), if any."""
        return self._auth.header()

    def _headers(self, content_type: str | None) -> dict[str, str]:
        headers = {"Accept": JSON, "User-Agent": self._user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        auth = self._auth.header()
        if auth:
            headers["Authorization"] = auth
        return headers

    def url(self, path: str, query: Mapping[str, Any] | None = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return f"{self.credentials.server}{path}" + (f"?{urlencode(q)}" if q else "")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        content_type: str = JSON,
        timeout: float = 10.0,
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        deadline = time.monotonic() + timeout  # retries of 429 answers never outlive the caller's timeout
        for attempt in range(THROTTLE_RETRIES + 1):
            try:
                resp = self._pool.request(
                    method,
                    self.url(path, query),
                    body=data,
                    headers=self._headers(content_type if data is not None else None),
                    timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout),
                    retries=False,
                )
            except urllib3.exceptions.HTTPError as exc:
                raise ApiError(0, "Unreachable", str(exc)) from exc
            # 429 (throttled, or "storage is (re)initializing" just after a CRD is established):
            # the request was not carried out; wait as the server asks, then send it again.
            wait = _retry_after(resp.headers.get("Retry-After"))
            if resp.status != 429 or attempt == THROTTLE_RETRIES or time.monotonic() + wait > deadline:
                break
            time.sleep(wait)
        return _decode(resp.status, resp.data)

    # Verbs -------------------------------------------------------------------------------------

    def get(self, path: str, **query: Any) -> dict[str, Any]:
        return self.request("GET", path, query=query)

    def create(self, path: str, body: Mapping[str, Any], **query: Any) -> dict[str, Any]:
        return self.request("POST", path, body, query=query)

    def replace(self, path: str, body: Mapping[str, Any], **query: Any) -> dict[str, Any]:
        return self.request("PUT", path, body, query=query)

    def merge_patch(self, path: str, body: Mapping[str, Any], **query: Any) -> dict[str, Any]:
        return self.request("PATCH", path, body, query=query, content_type=MERGE_PATCH)

    def apply(self, path: str, body: Mapping[str, Any], field_manager: str, **query: Any) -> dict[str, Any]:
        """Server-side apply, forcing ownership of the fields we send."""
        q = {"fieldManager": field_manager, "force": "true", **query}
        return self.request("PATCH", path, body, query=q, content_type=APPLY_PATCH)

    def patch(
        self, path: str, body: Mapping[str, Any], content_type: str = STRATEGIC_MERGE_PATCH, **query: Any
    ) -> dict[str, Any]:
        return self.request("PATCH", path, body, query=query, content_type=content_type)

    def delete(self, path: str, body: Mapping[str, Any] | None = None, **query: Any) -> dict[str, Any]:
        return self.request("DELETE", path, body, query=query)

    def get_text(self, path: str, timeout: float = 10.0) -> str:
        """A plain-text endpoint (``/readyz``, ``/livez``): its body, or ``ApiError`` for a non-2xx answer."""
        try:
            resp = self._pool.request("GET", self.url(path), headers=self._headers(None),
                                      timeout=urllib3.Timeout(connect=min(timeout, 5.0), read=timeout), retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(0, "Unreachable", str(exc)) from exc
        text = resp.data.decode(errors="replace")
        if resp.status >= 300:
            raise ApiError(resp.status, "", text[:300])
        return text

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 300, **query: Any
    ) -> Iterator[dict[str, Any]]:
        """Stream watch events ({"type", "object"}) until the server closes the stream.

        Raises ``ApiError`` for a non-2xx answer; a 410 (resource version too old) means the
        caller must list again.
        """
        q = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
            **query,
        }
        try:
            resp = self._pool.request(
                "GET",
                self.url(path, q),
                headers=self._headers(None),
                preload_content=False,
                timeout=urllib3.Timeout(connect=5.0, read=timeout_seconds + 30),
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(0, "Unreachable", str(exc)) from exc
        try:
            if resp.status >= 300:
                _decode(resp.status, resp.read())
            buffer = b""
            for chunk in resp.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        if event.get("type") == "ERROR":
                            obj = event.get("object", {})
                            raise ApiError(int(obj.get("code", 500)), str(obj.get("reason", "")), str(obj))
                        yield event
        except urllib3.exceptions.HTTPError as exc:
            raise ApiError(0, "Unreachable", str(exc)) from exc
        finally:
            resp.release_conn()


def _retry_after(header: str | None) -> float:
    """Seconds to wait from a Retry-After header (seconds form), 1 s by default, at most 2 s."""
    try:
        return min(max(float(header), 0.0), 2.0) if header is not None else 1.0
    except ValueError:
        return 1.0


def _decode(status: int, data: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(data) if data else {}
    except ValueError:
        payload = {"message": data[:200].decode(errors="replace")}
    if status >= 300:
        raise ApiError(status, str(payload.get("reason", "")), str(payload.get("message", payload)))
    return payload if isinstance(payload, dict) else {"items": payload}


def custom_path(group: str, version: str, plural: str, namespace: str | None = None, name: str | None = None) -> str:
    """``/apis/<group>/<version>[/namespaces/<ns>]/<plural>[/<name>]``."""
    ns = f"/namespaces/{namespace}" if namespace else ""
    tail = f"/{name}" if name else ""
    return f"/apis/{group}/{version}{ns}/{plural}{tail}"
