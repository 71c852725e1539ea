"""``picket ui``'s web server: the standard library's threaded HTTP server, JSON in and out.

Pages are one HTML shell and a few static files (``static/``, package data: no CDN, no build
step); the browser asks the JSON API below. Safety:

* bound to 127.0.0.1 by default; every request's ``Host`` must name the address served (a DNS
  rebinding page cannot talk to it);
* every POST (the state-changing requests, and the previews that carry a policy) needs the
  per-process token of the page (``X-Picket-Token``), a JSON body, and an ``Origin``, when sent,
  equal to the server's own: another site's page cannot make the browser save or delete;
* answers carry ``Content-Security-Policy: default-src 'self'`` and ``no-store``.

API: ``GET /api/state?namespace=``, ``GET /api/matrix?port=&protocol=&expand=``,
``GET /api/explain?src=&dst=&port=&protocol=``, ``POST /api/preview {policy, original}``,
``POST /api/parse {yaml}``, ``POST /api/save {policy, original}``, ``POST /api/delete {namespace,
name}``, ``POST /api/probe {port, protocol, expand}`` (when a prober is plugged in: the local
cluster's, from ``picket_lab.uiprobe``).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from picket.model import Protocol
from picket_operator.ui.store import SaveError
from picket_operator.ui.workbench import to_yaml

# A prober runs real probes for (source pod, destination pod) pairs: True where the connection worked.
Prober = Callable[[Sequence[tuple[str, str]], Protocol, int], list[bool]]
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".png": "image/png",
                ".svg": "image/svg+xml"}
MAX_BODY = 2 * 1024 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class UiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Any, prober: Prober | None = None) -> None:
        super().__init__(address, Handler)
        self.store = store
        self.prober = prober
        self.token = secrets.token_urlsafe(32)
        host, port = str(self.server_address[0]), int(self.server_address[1])
        self.allowed_hosts = {f"{h}:{port}" for h in (host, "127.0.0.1", "localhost", "[::1]")}

    @property
    def url(self) -> str:
        return f"http://{self.server_address[0]!s}:{self.server_address[1]}/"


def _static(name: str) -> bytes:
    return resources.files("picket_operator.ui").joinpath("static", name).read_bytes()


class Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the terminal shows only the URL
        return

    # -- plumbing -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'none'")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _check_host(self) -> None:
        if self.headers.get("Host", "") not in self.server.allowed_hosts:
            raise BadRequest(HTTPStatus.MISDIRECTED_REQUEST, "unexpected Host header")

    def _body(self) -> dict[str, Any]:
        if self.headers.get("X-Picket-Token") != self.server.token:
            raise BadRequest(HTTPStatus.FORBIDDEN, "missing or wrong X-Picket-Token (reload the page)")
        origin = self.headers.get("Origin")
        if origin is not None and origin.removeprefix("http://") not in self.server.allowed_hosts:
            raise BadRequest(HTTPStatus.FORBIDDEN, f"cross-site request from {origin} refused")
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            raise BadRequest(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "expected application/json")
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError as exc:
            raise BadRequest(HTTPStatus.BAD_REQUEST, f"not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise BadRequest(HTTPStatus.BAD_REQUEST, "expected a JSON object")
        return data

    def _handle(self, method: str) -> None:
        try:
            self._check_host()
            url = urlsplit(self.path)
            query = {k: v for k, v in parse_qs(url.query).items()}
            if method == "GET":
                self._get(url.path, query)
            else:
                self._post(url.path, self._body())
        except BadRequest as exc:
            self._json(exc.status, {"error": exc.message})
        except SaveError as exc:
            self._json(exc.status if 400 <= exc.status < 600 else 502, {"error": exc.message})
        except (KeyError, ValueError) as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # -- routes ---------------------------------------------------------------------------------

    def _get(self, path: str, query: Mapping[str, list[str]]) -> None:
        if path in ("/", "/index.html"):
            page = _static("index.html").decode().replace("{{TOKEN}}", self.server.token)
            self._send(HTTPStatus.OK, page.encode(), "text/html; charset=utf-8")
            return
        if path == "/favicon.ico":
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if path.startswith("/static/"):
            name = path.removeprefix("/static/")
            suffix = name[name.rfind("."):] if "." in name else ""
            if "/" in name or ".." in name or suffix not in STATIC_TYPES:
                raise BadRequest(HTTPStatus.NOT_FOUND, "no such file")
            try:
                body = _static(name)
            except (FileNotFoundError, OSError):
                raise BadRequest(HTTPStatus.NOT_FOUND, "no such file") from None
            self._send(HTTPStatus.OK, body, STATIC_TYPES[suffix])
            return
        bench = self.server.store.workbench()
        one = {k: v[0] for k, v in query.items() if v}
        if path == "/api/state":
            self._json(HTTPStatus.OK, {
                "mode": self.server.store.mode, "identity": self.server.store.identity,
                "probe": self.server.prober is not None, "namespaces": bench.namespaces(),
                "policies": bench.policies(one.get("namespace") or None),
            })
        elif path == "/api/matrix":
            protocol, port = _port(one)
            self._json(HTTPStatus.OK, bench.matrix(protocol, port, query.get("expand", [])))
        elif path == "/api/explain":
            protocol, port = _port(one)
            self._json(HTTPStatus.OK, bench.explain(one["src"], one["dst"], protocol, port))
        else:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"no such page {path}")

    def _post(self, path: str, body: dict[str, Any]) -> None:
        store = self.server.store
        if path == "/api/parse":
            self._json(HTTPStatus.OK, parse_policy_yaml(str(body.get("yaml", ""))))
            return
        original = _original(body.get("original"))
        if path == "/api/preview":
            self._json(HTTPStatus.OK, store.workbench().preview(_policy(body), original))
        elif path == "/api/save":
            policy = _policy(body)
            preview = store.workbench().preview(policy, original)
            if preview["validation"] or preview["problems"]:
                self._json(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "fix the fields marked first", **preview})
                return
            saved = store.save(policy, original)
            self._json(HTTPStatus.OK, {"saved": saved, "yaml": to_yaml(saved)})
        elif path == "/api/delete":
            store.delete(str(body["namespace"]), str(body["name"]))
            self._json(HTTPStatus.OK, {"deleted": [body["namespace"], body["name"]]})
        elif path == "/api/probe":
            self._json(HTTPStatus.OK, self._probe(body))
        else:
            raise BadRequest(HTTPStatus.NOT_FOUND, f"no such action {path}")

    def _probe(self, body: Mapping[str, Any]) -> dict[str, Any]:
        if self.server.prober is None:
            raise BadRequest(HTTPStatus.NOT_IMPLEMENTED, "probes need the local cluster (picket-lab)")
        protocol, port = _port({k: str(v) for k, v in body.items() if k in ("port", "protocol")})
        bench = self.server.store.workbench()
        predicted = bench.matrix(protocol, port, body.get("expand") or [])
        ids = [i["id"] for i in predicted["items"]]
        pairs = [(s, d) for s in ids for d in ids]
        endpoints = [bench.pair(s, d) for s, d in pairs]
        # Only destinations that declare the port have a listener to answer; the others are not probed.
        wanted = sorted({(a, b) for a, b in endpoints if a != b and (protocol, port) in bench.declared.get(b, ())})
        # A prober may also read the agents' drop counters around the probes (the local cluster's does).
        snapshot = getattr(self.server.prober, "drop_snapshot", None)
        before = snapshot() if callable(snapshot) else None
        results = dict(zip(wanted, self.server.prober(wanted, protocol, port), strict=True))
        drops: list[str] = []
        if before is not None and callable(snapshot):
            drops = list(self.server.prober.drop_lines(before, snapshot()))  # type: ignore[attr-defined]
        probed: dict[str, dict[str, bool | None]] = {s: {} for s in ids}
        for (s, d), (a, b) in zip(pairs, endpoints, strict=True):
            probed[s][d] = True if a == b else results.get((a, b))
        differ = [[s, d] for s in ids for d in ids
                  if probed[s][d] is not None and probed[s][d] != predicted["allowed"][s][d]]
        return {**predicted, "probed": probed, "differ": differ, "probes": len(wanted), "drops": drops}


def _port(query: Mapping[str, str]) -> tuple[Protocol, int]:
    protocol = Protocol(query.get("protocol") or "TCP")
    port = int(query.get("port") or 80)
    if not 0 < port <= 65535:
        raise ValueError(f"port {port}: must be 1-65535")
    return protocol, port


def _policy(body: Mapping[str, Any]) -> dict[str, Any]:
    policy = body.get("policy")
    if not isinstance(policy, dict):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "expected a policy object")
    return policy


def _original(value: Any) -> tuple[str, str] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, str) and v for v in value):
        return (value[0], value[1])
    return None


def parse_policy_yaml(text: str) -> dict[str, Any]:
    """The YAML view's text as a policy, or the error with its line (the form keeps its state)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        return {"error": f"{where}{getattr(exc, 'problem', None) or exc}"}
    if not isinstance(data, dict):
        return {"error": "the YAML must be one NetworkPolicy object"}
    if data.get("kind") not in (None, "NetworkPolicy"):
        return {"error": f"kind {data.get('kind')!r}: this editor writes NetworkPolicies"}
    data.setdefault("apiVersion", "networking.k8s.io/v1")
    data.setdefault("kind", "NetworkPolicy")
    if not isinstance(data.get("metadata"), dict) or not isinstance(data.get("spec", {}), dict):
        return {"error": "metadata and spec must be objects"}
    return {"policy": data}


def serve(store: Any, host: str = "127.0.0.1", port: int = 0, prober: Prober | None = None) -> UiServer:
    """Start serving in a background thread; ``server.shutdown()`` stops it."""
    server = UiServer((host, port), store, prober)
    threading.Thread(target=server.serve_forever, name="picket-ui", daemon=True).start()
    return server
