"""The UI server's API and its safety rules, without a browser (offline store, real HTTP)."""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from picket.apiclient import ApiError
from picket_operator.ui.server import UiServer, serve
from picket_operator.ui.store import ApiStore, FileStore
from tests.ui.conftest import seed_objects


def request(server: UiServer, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None,
            token: bool = True) -> tuple[int, Any]:
    host, port = server.server_address[0], server.server_address[1]
    conn = http.client.HTTPConnection(str(host), int(port), timeout=10)
    h = {"Host": f"127.0.0.1:{port}"}
    if body is not None:
        h["Content-Type"] = "application/json"
    if token:
        h["X-Picket-Token"] = server.token
    h.update(headers or {})
    conn.request(method, path, json.dumps(body) if body is not None else None, h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        return resp.status, data.decode()


@pytest.fixture
def server() -> Any:
    srv = serve(FileStore(seed_objects("seed004-microsvc-users-api-allow", True), "test"))
    yield srv
    srv.shutdown()
    srv.server_close()


def policy(name: str = "p", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "project-a"}, "spec": {"podSelector": {}, **spec}}


def test_the_page_carries_the_token_and_a_strict_content_policy(server: UiServer) -> None:
    status, page = request(server, "GET", "/", token=False)
    assert status == 200 and server.token in page
    host, port = server.server_address[0], server.server_address[1]
    conn = http.client.HTTPConnection(str(host), int(port))
    conn.request("GET", "/static/app.js", headers={"Host": f"127.0.0.1:{port}"})
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Security-Policy", "").startswith("default-src 'self'")
    assert b"cdn" not in resp.read().lower()


def test_state_changing_requests_need_the_token(server: UiServer) -> None:
    status, body = request(server, "POST", "/api/delete", {"namespace": "project-a",
                                                           "name": "microsvc-users-api-allow"}, token=False)
    assert status == 403 and "X-Picket-Token" in body["error"]
    assert server.store.workbench().find_policy("project-a", "microsvc-users-api-allow") is not None


def test_cross_site_origins_are_refused_even_with_a_token(server: UiServer) -> None:
    status, body = request(server, "POST", "/api/save", {"policy": policy()},
                           headers={"Origin": "http://evil.example"})
    assert status == 403 and "cross-site" in body["error"]


def test_a_form_post_is_not_json_and_is_refused(server: UiServer) -> None:
    status, _ = request(server, "POST", "/api/save", None, headers={"Content-Type": "text/plain"})
    assert status == 415


def test_dns_rebinding_hosts_are_refused(server: UiServer) -> None:
    status, _ = request(server, "GET", "/api/state", headers={"Host": "attacker.example:80"})
    assert status == 421


def test_preview_and_save_go_through_validation(server: UiServer) -> None:
    bad = policy("Bad_Name", ingress=[{"ports": [{"port": 70000}]}])
    status, preview = request(server, "POST", "/api/preview", {"policy": bad})
    assert status == 200
    assert [v["field"] for v in preview["validation"]] == ["metadata.name"]
    assert any(p["field"] == "spec.ingress[0].ports[0].port" for p in preview["problems"])
    status, body = request(server, "POST", "/api/save", {"policy": bad})
    assert status == 422 and body["validation"]
    assert server.store.workbench().find_policy("project-a", "Bad_Name") is None


def test_save_then_the_table_shows_the_selected_pods(server: UiServer) -> None:
    status, _ = request(server, "POST", "/api/save", {"policy": policy("all", policyTypes=["Ingress"])})
    assert status == 200
    _, state = request(server, "GET", "/api/state?namespace=project-a")
    row = next(r for r in state["policies"] if r["name"] == "all")
    assert row["selectedCount"] == 4 and row["policyTypes"] == ["Ingress"]


def test_yaml_round_trip_and_errors_with_lines(server: UiServer) -> None:
    _, ok = request(server, "POST", "/api/parse", {"yaml": "metadata: {name: x}\nspec:\n  podSelector: {}\n"})
    assert ok["policy"]["kind"] == "NetworkPolicy" and ok["policy"]["metadata"]["name"] == "x"
    _, bad = request(server, "POST", "/api/parse", {"yaml": "spec:\n  podSelector: [\n"})
    assert bad["error"].startswith("line ")


def test_explain_a_cell(server: UiServer) -> None:
    status, body = request(server, "GET", "/api/explain?src=project-a/restricted&dst=project-a/users-api&port=8080")
    assert status == 200 and body["allowed"] is False
    assert "allows only pods with service.corp/users-api-role=client in all namespaces" in body["ingress"]["summary"]


class FakeKube:
    """Answers like an API server that refuses the user (RBAC) on apply."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects = objects
        self.applied: list[dict[str, Any]] = []

    def get(self, path: str) -> dict[str, Any]:
        return {"items": []}

    def apply(self, path: str, body: dict[str, Any], field_manager: str) -> dict[str, Any]:
        self.applied.append(body)
        raise ApiError(403, "Forbidden", 'networkpolicies.networking.k8s.io "p" is forbidden: User "dev" cannot '
                                         'patch resource "networkpolicies" in the namespace "project-a"')


def test_an_api_error_on_save_is_returned_with_the_servers_message() -> None:
    objects = seed_objects("seed004-microsvc-users-api-allow", True)
    kube = FakeKube(objects)
    store = ApiStore(kube, lambda _: objects, "test")
    srv = serve(store)
    try:
        status, body = request(srv, "POST", "/api/save", {"policy": policy("p")})
        assert status == 403 and 'User "dev" cannot patch' in body["error"]
        assert kube.applied and kube.applied[0]["metadata"]["name"] == "p"
    finally:
        srv.shutdown()
        srv.server_close()


class ApplyingKube:
    """An API server that defaults what it stores, and may keep a label another field manager owns."""

    def __init__(self, keep: dict[str, str] | None = None) -> None:
        self.keep = keep or {}
        self.calls: list[str] = []

    def get(self, path: str) -> dict[str, Any]:
        return {"items": []}

    def apply(self, path: str, body: dict[str, Any], field_manager: str) -> dict[str, Any]:
        self.calls.append(f"apply {field_manager}")
        from picket_operator.ui.store import defaulted

        spec = defaulted(body["spec"])
        if self.keep:
            spec["podSelector"].setdefault("matchLabels", {}).update(self.keep)
        return {**body, "metadata": {**body["metadata"], "resourceVersion": "7"}, "spec": spec}

    def replace(self, path: str, body: dict[str, Any], **query: Any) -> dict[str, Any]:
        self.calls.append(f"replace rv={body['metadata']['resourceVersion']}")
        return body


def test_save_is_a_server_side_apply_and_defaulting_is_not_a_difference() -> None:
    kube = ApplyingKube()
    store = ApiStore(kube, lambda _: [], "test")
    store.save(policy("p", ingress=[{"ports": [{"port": 80}]}]), None)
    assert kube.calls == ["apply picket-ui"]


def test_fields_another_manager_keeps_are_replaced_by_what_the_user_wrote() -> None:
    kube = ApplyingKube(keep={"stale": "label"})
    store = ApiStore(kube, lambda _: [], "test")
    store.save(policy("p"), None)
    assert kube.calls == ["apply picket-ui", "replace rv=7"]


def test_picket_ui_command_serves_a_cluster_file_on_loopback() -> None:
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root / p) for p in (".", "operator", "agent", "lab"))}
    cluster = root / "examples" / "seed004-deny-restricted-egress" / "cluster.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "picket.cli", "ui", "--cluster", str(cluster), "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env, cwd=root)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"at http://127\.0\.0\.1:(\d+)/", line)
        assert match, line
        conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=10)
        conn.request("GET", "/api/state", headers={"Host": f"127.0.0.1:{match.group(1)}"})
        state = json.loads(conn.getresponse().read())
        assert state["mode"] == "offline" and [r["name"] for r in state["policies"]] == ["deny-restricted-egress"]
        assert state["probe"] is False
    finally:
        proc.terminate()
        proc.wait(10)
