"""Seed 004's four procedures, click by click, in Chromium, against ``picket ui --cluster FILE``.

Each procedure starts from the seed example's namespaces and pods (``examples/seed004-*``), follows
the seed's steps with the seed's words (ID Name, Description, Pod Selector > Match Label, Key,
Value, Policy Types, + Add Ingress Rule, + Add Port, + Add Source, Select All Namespaces, + Add Pod
Selector, Save, the row's context menu > Edit), checks the live preview before saving, and after
saving checks that the cluster's compiled matrix equals the one of the seed example's own policy
(what ``picket matrix`` pins for it). The seed writes the label values as "API"; its pods carry
``api`` (labels are case-sensitive), so the procedures first type "API" and the preview must warn
that the policy selects no pod, then the value is corrected.
"""

from __future__ import annotations

from typing import Any

from picket.evaluating import matrix
from picket.model import Protocol
from picket_operator.commands.matrix import matrix_keys
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.ui.server import UiServer
from tests.ui.browser import wait_for
from tests.ui.conftest import seed_objects
from tests.ui.pages import Page

PORTS = [(Protocol.TCP, 8080), (Protocol.TCP, 3306), (Protocol.TCP, 80)]


def assert_enforces_like_the_example(server: UiServer, example: str) -> None:
    expected = compile_cluster(seed_objects(example, with_policy=True))
    got = server.store.workbench().compiled
    keys = matrix_keys(expected)
    assert matrix_keys(got) == keys
    for protocol, port in PORTS:
        assert matrix(got, keys, protocol, port) == matrix(expected, keys, protocol, port), (protocol, port)


def new_policy(page: Page, namespace: str) -> None:
    page.click("Network Policy") if False else page.d.find_element("id", "nav-policies").click()
    page.choose("Namespace", namespace, within="main .toolbar")
    page.click("+ Add Network Policy")
    wait_for(lambda: page.field("ID Name"), what="the editor")


def selected_pods(page: Page) -> str:
    return page.text("#preview-selected")


def test_procedure_1_microsvc_users_api_allow(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow")
    page = Page(chromium, server.url)
    page.open()
    # Configure the general information
    new_policy(page, "project-a")
    page.type("ID Name", "microsvc-users-api-allow")
    page.type("Description", "Allow Users microservice clients to reach the APIs provided in this namespace")
    page.click("Match Label", within="fieldset[data-path='spec.podSelector']")
    page.type("Key", "service.corp/users-api-role", within="fieldset[data-path='spec.podSelector']")
    page.type("Value", "API", within="fieldset[data-path='spec.podSelector']")
    page.wait_text("#preview-warnings", "selects no pod")
    page.type("Value", "api", within="fieldset[data-path='spec.podSelector']")
    page.wait_text("#preview-selected", "project-a/users-api")
    # Create an Ingress rule
    assert page.checkbox("Default", within="#policy-types").is_selected()
    page.click("+ Add Ingress Rule")
    page.click("+ Add Port")
    page.type("Port", "8080", within="#ingress-rules")
    page.choose("Protocol", "TCP", within="#ingress-rules")
    # Add Sources
    page.click("+ Add Source")
    page.checkbox("Select All Namespaces", within="#ingress-rules").click()
    page.click("+ Add Pod Selector", within="#ingress-rules")
    page.click("Match Label", within="#ingress-rules")
    page.type("Key", "service.corp/users-api-role", within="#ingress-rules")
    page.type("Value", "client", within="#ingress-rules")
    # The preview: clients of both namespaces keep 8080, the others lose it.
    impact = page.wait_text("#preview-impact", "TCP/8080: 3 cells change")
    assert "Pod Selector AND Namespace Selector" in page.text("#preview-warnings")
    assert "service.corp/users-api-role: client" in page.field("YAML").get_attribute("value")
    assert impact
    page.screenshot("ui-editor")
    page.click("Save")
    row = page.row("microsvc-users-api-allow")
    assert "1 pod" in row.text and "Default (Ingress)" in row.text
    assert "Allow Users microservice clients" in row.text
    assert_enforces_like_the_example(server, "seed004-microsvc-users-api-allow")


def test_procedure_2_database_access_api_only(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-database-access-api-only")
    page = Page(chromium, server.url)
    page.open()
    new_policy(page, "project-a")
    page.type("ID Name", "database-access-api-only")
    page.type("Description", "Allow MySQL access only from API pods in this namespace")
    page.click("Match Label", within="fieldset[data-path='spec.podSelector']")
    page.type("Key", "tier", within="fieldset[data-path='spec.podSelector']")
    page.type("Value", "database", within="fieldset[data-path='spec.podSelector']")
    page.wait_text("#preview-selected", "project-a/mysql")
    assert page.checkbox("Default", within="#policy-types").is_selected()
    page.click("+ Add Ingress Rule")
    page.click("+ Add Port")
    page.type("Port", "3306", within="#ingress-rules")
    assert page.field("Protocol", within="#ingress-rules").get_attribute("value") == "TCP"
    page.click("+ Add Source")
    page.click("+ Add Pod Selector", within="#ingress-rules")
    page.click("Match Label", within="#ingress-rules")
    page.type("Key", "tier", within="#ingress-rules")
    page.type("Value", "API", within="#ingress-rules")
    page.wait_text("#preview-impact", "TCP/3306: 5 cells change")  # nobody may reach mysql: "API" matches no pod
    page.type("Value", "api", within="#ingress-rules")
    page.wait_text("#preview-impact", "TCP/3306: 4 cells change")  # users-api keeps it
    page.click("Save")
    row = page.row("database-access-api-only")
    assert "1 pod" in row.text
    assert_enforces_like_the_example(server, "seed004-database-access-api-only")


def test_procedure_3_disable_but_do_not_delete_ingress_rules(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow", with_policy=True)
    page = Page(chromium, server.url)
    page.open()
    page.d.find_element("id", "nav-policies").click()
    row = page.row("microsvc-users-api-allow")
    page.click("⋮", within=row)
    page.click("Edit", within=row)
    wait_for(lambda: page.field("ID Name").get_attribute("value") == "microsvc-users-api-allow", what="the policy")
    # Update the Policy Types so only Egress is selected; add an empty rule to allow all egress.
    page.checkbox("Egress", within="#policy-types").click()
    assert not page.checkbox("Default", within="#policy-types").is_selected()
    assert not page.checkbox("Ingress", within="#policy-types").is_selected()
    page.wait_text("#preview-warnings", "Egress is selected with no egress rules")
    page.click("+ Add Egress Rule")
    wait_for(lambda: "Egress is selected with no egress rules" not in page.text("#preview-warnings"),
             what="the empty egress rule to reach the preview")
    assert "its 1 ingress rule(s) are kept but ignored" in page.text("#preview-warnings")
    page.wait_text("#preview-impact", "TCP/8080: 3 cells change")
    page.click("Save")
    row = page.row("microsvc-users-api-allow")
    assert "Egress" in row.text and "Default" not in row.text
    assert_enforces_like_the_example(server, "seed004-ingress-disabled")
    saved = server.store.workbench().find_policy("project-a", "microsvc-users-api-allow")
    assert saved is not None and saved["spec"]["ingress"], "the ingress rules are kept"


def test_procedure_3_through_the_context_menus_disable_ingress(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow", with_policy=True)
    page = Page(chromium, server.url)
    page.open()
    row = page.row("microsvc-users-api-allow")
    page.click("⋮", within=row)
    page.screenshot("ui-policies")
    page.click("Disable ingress", within=row)
    page.wait_text("#pending-note", "an empty egress rule allows all egress traffic")
    page.wait_text("#preview-impact", "TCP/8080: 3 cells change")
    page.click("Save")
    page.row("microsvc-users-api-allow")
    assert_enforces_like_the_example(server, "seed004-ingress-disabled")


def test_procedure_4_deny_restricted_egress(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-deny-restricted-egress")
    page = Page(chromium, server.url)
    page.open()
    new_policy(page, "project-a")
    page.type("ID Name", "deny-restricted-egress")
    page.type("Description", "Deny egress traffic from restricted pods")
    page.click("Match Label", within="fieldset[data-path='spec.podSelector']")
    page.type("Key", "access", within="fieldset[data-path='spec.podSelector']")
    page.type("Value", "restricted", within="fieldset[data-path='spec.podSelector']")
    page.wait_text("#preview-selected", "project-a/restricted")
    page.checkbox("Egress", within="#policy-types").click()
    warnings = page.wait_text("#preview-warnings", "Egress isolation without DNS")
    assert "Egress deny-all" in warnings
    page.wait_text("#preview-impact", "Out of the changed pods")
    page.click("Save")
    row = page.row("deny-restricted-egress")
    assert "Egress" in row.text and "0" in row.text
    assert_enforces_like_the_example(server, "seed004-deny-restricted-egress")
