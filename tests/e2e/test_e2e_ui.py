"""Seed 004's four procedures in Chromium on the local cluster with picket deployed, then netcat.

picket runs as ``manifests/`` deploys it (operator and agents on their ServiceAccount tokens, the
``deployed`` fixture of the end-to-end tests). ``picket ui`` talks to the lab's API server with
the lab's kubeconfig (server-side apply) and probes with ``picket_lab.uiprobe.LabProber``. After
each procedure is saved in the browser, the whole live netcat matrix of the seed's pods (each
destination on its own port) must equal what the seed says (the end-to-end tests' hand-written
expectations) and the offline prediction; after procedure 1, the table must show the policy applied
by the agents (CompiledNode status) and the UI's own Probe must find no
difference with its prediction and show the drops the agents counted meanwhile; after procedure 2,
``picket explain --live`` must say why project-b/client cannot reach mysql. It lives with the
end-to-end tests to share their session's one deployment of picket. Run under the lab lock:

    flock /run/picket-lab.lock python3 -m pytest tests/e2e/test_e2e_ui.py
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from picket.apiclient import ApiError, KubeClient
from picket_lab.api import Lab
from picket_lab.uiprobe import LabProber
from picket_operator.commands.explain import live_objects
from picket_operator.commands.explain import main as explain_main
from picket_operator.ui.server import UiServer, serve
from picket_operator.ui.store import ApiStore, policy_path
from tests.e2e.harness import E2E, expected
from tests.e2e.test_e2e_seeds import HAND
from tests.ui import procedures
from tests.ui.browser import wait_for
from tests.ui.conftest import EXAMPLES, chromium  # noqa: F401 (the browser fixture)
from tests.ui.pages import Page

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
NAMESPACES = ["project-a", "project-b"]
POLICIES = ["microsvc-users-api-allow", "database-access-api-only", "deny-restricted-egress"]


@pytest.fixture
def ui(lab: Lab, e2e: E2E) -> Iterator[UiServer]:
    client = KubeClient(lab.kubeconfig, user_agent="picket-ui")
    server = serve(ApiStore(client, live_objects, "the local cluster", refresh=0.5), prober=LabProber(lab))
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        for name in POLICIES:
            with contextlib.suppress(ApiError):
                client.delete(policy_path("project-a", name))


def test_seed004_procedures_in_the_browser_then_netcat(lab: Lab, e2e: E2E, ui: UiServer,
                                                       chromium: Any,  # noqa: F811
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    pods, _ = e2e.create_cluster(EXAMPLES / "seed004-microsvc-users-api-allow" / "cluster.yaml")
    page = Page(chromium, ui.url)
    page.open()

    procedures.procedure_1_microsvc_users_api_allow(page, counts=False)
    e2e.expect(expected(pods, HAND["seed004-microsvc-users-api-allow"]), port=None, namespaces=NAMESPACES)
    # The table's Applied column: the agent of users-api's node reports the compiled rule sets applied.
    wait_for(lambda: page.row("microsvc-users-api-allow").find_element(By.CSS_SELECTOR, "td.applied").text
             == "1/1 pods", timeout=30, what="Applied 1/1 in the table")
    page.open("#/matrix")
    page.type("Port", "8080")
    page.click("Probe")
    summary = page.wait_text("#probe-summary", "cell(s) differ", timeout=120)
    assert " 0 cell(s) differ" in summary, summary
    cell = page.d.find_element(By.CSS_SELECTOR, "td[data-src='project-a/restricted'][data-dst='project-a/users-api']")
    assert cell.text == "✗/✗"
    # The agents count the probes users-api's ingress dropped (at the end of the Kubernetes tier).
    drops = page.wait_text("#drops", "project-a/users-api ingress: tier kubernetes default")
    assert "packets" in drops
    page.screenshot("ui-probe-lab")

    page.open()
    procedures.procedure_3_disable_ingress_rules(page, counts=False)
    e2e.expect(expected(pods, HAND["seed004-ingress-disabled"]), port=None, namespaces=NAMESPACES)

    # Delete it from the table's context menu, then the two other procedures.
    page.open()
    procedures.open_network_policy_tab(page, "project-a")
    row = page.row("microsvc-users-api-allow")
    page.click("⋮", within=row)
    page.click("Delete", within=row)
    page.click("Delete", within="#dialog")
    page.wait_text("#policies", "No network policies here yet")

    procedures.procedure_2_database_access_api_only(page, counts=False)
    e2e.expect(expected(pods, HAND["seed004-database-access-api-only"]), port=None, namespaces=NAMESPACES)

    code = explain_main(["project-b/client", "project-a/mysql", "--port", "3306", "--live",
                         "--kubeconfig", str(lab.kubeconfig)])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("project-b/client -> project-a/mysql TCP/3306: BLOCKED")
    assert "NetworkPolicy project-a/database-access-api-only ingress rule 0 allows only pods with tier=api" in out

    procedures.procedure_4_deny_restricted_egress(page, counts=False)
    both = expected(pods, lambda s, d: HAND["seed004-database-access-api-only"](s, d)
                    and HAND["seed004-deny-restricted-egress"](s, d))
    e2e.expect(both, port=None, namespaces=NAMESPACES)
    managers = [m.get("manager") for m in
                e2e.kube.get(policy_path("project-a", "deny-restricted-egress"))["metadata"]["managedFields"]]
    assert "picket-ui" in managers, managers  # saved by server-side apply under the UI's field manager
