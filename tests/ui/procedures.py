"""Seed 004's four procedures as written, click by click, shared by the offline and the lab tests.

The seed writes the label values as "API"; its pods carry ``api`` (labels are case-sensitive),
so where the seed says "API" the procedure types it, checks that the live preview warns that
nothing matches, and corrects it. ``counts``: also check the preview's changed-cell counts (they
depend on which other pods the cluster has: the seed example's pods only, offline).
"""

from __future__ import annotations

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from tests.ui.browser import wait_for
from tests.ui.pages import Page

POD_SELECTOR = "fieldset[data-path='spec.podSelector']"


def policy_types(row: WebElement) -> str:
    """The Policy Types cell of a row of the policies table."""
    return str(row.find_element(By.CSS_SELECTOR, "td.types").text)


def open_network_policy_tab(page: Page, namespace: str) -> None:
    page.d.find_element(By.ID, "nav-policies").click()
    page.choose("Namespace", namespace, within="main .toolbar")


def add_network_policy(page: Page, namespace: str) -> None:
    open_network_policy_tab(page, namespace)
    page.click("+ Add Network Policy")
    wait_for(lambda: page.field("ID Name"), what="the editor")


def general_information(page: Page, name: str, description: str, key: str, value: str) -> None:
    page.type("ID Name", name)
    page.type("Description", description)
    page.click("Match Label", within=POD_SELECTOR)  # "Select Add under Pod Selector and then select Match Label"
    page.type("Key", key, within=POD_SELECTOR)
    page.type("Value", value, within=POD_SELECTOR)


def procedure_1_microsvc_users_api_allow(page: Page, counts: bool) -> None:
    add_network_policy(page, "project-a")
    # Configure the general information
    general_information(page, "microsvc-users-api-allow",
                        "Allow Users microservice clients to reach the APIs provided in this namespace",
                        "service.corp/users-api-role", "API")
    page.wait_text("#preview-warnings", "selects no pod")
    page.type("Value", "api", within=POD_SELECTOR)
    page.wait_text("#preview-selected", "project-a/users-api")
    # Create an Ingress rule
    assert page.checkbox("Default", within="#policy-types").is_selected()  # "Leave Policy Types set to Default"
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
    # The live preview before saving: the AND warning, the YAML, the impact.
    page.wait_text("#preview-impact", "Into the changed pods, TCP/8080")
    if counts:  # mysql, restricted and project-b/other lose 8080 to users-api
        page.wait_text("#preview-impact", "TCP/8080: 3 cells change")
    page.wait_text("#preview-warnings", "Pod Selector AND Namespace Selector")
    assert "service.corp/users-api-role: client" in page.field("YAML").get_attribute("value")
    page.screenshot("ui-editor")
    page.click("Save")  # "Scroll up and select Save"
    row = page.row("microsvc-users-api-allow")
    # Offline the table shows "Default (Ingress)"; a real API server writes the default (policyTypes: [Ingress]).
    assert "1 pod" in row.text and policy_types(row) in ("Default (Ingress)", "Ingress")
    assert "Allow Users microservice clients" in row.text


def procedure_2_database_access_api_only(page: Page, counts: bool) -> None:
    add_network_policy(page, "project-a")
    general_information(page, "database-access-api-only", "Allow MySQL access only from API pods in this namespace",
                        "tier", "database")
    page.wait_text("#preview-selected", "project-a/mysql")
    assert page.checkbox("Default", within="#policy-types").is_selected()  # "Select Default for the Policy Types"
    page.click("+ Add Ingress Rule")
    page.click("+ Add Port")
    page.type("Port", "3306", within="#ingress-rules")
    assert page.field("Protocol", within="#ingress-rules").get_attribute("value") == "TCP"  # "leave ... TCP"
    page.click("+ Add Source")
    page.click("+ Add Pod Selector", within="#ingress-rules")
    page.click("Match Label", within="#ingress-rules")
    page.type("Key", "tier", within="#ingress-rules")
    page.type("Value", "API", within="#ingress-rules")
    if counts:
        page.wait_text("#preview-impact", "TCP/3306: 5 cells change")  # "API" matches no pod: nobody gets in
    page.type("Value", "api", within="#ingress-rules")
    if counts:
        page.wait_text("#preview-impact", "TCP/3306: 4 cells change")  # users-api keeps it
    page.wait_text("#preview-impact", "Into the changed pods, TCP/3306")
    page.click("Save")
    assert "1 pod" in page.row("database-access-api-only").text


def procedure_3_disable_ingress_rules(page: Page, counts: bool) -> None:
    open_network_policy_tab(page, "project-a")
    row = page.row("microsvc-users-api-allow")
    page.click("⋮", within=row)  # "click the context menu at the right of the row and select Edit"
    page.click("Edit", within=row)
    wait_for(lambda: page.field("ID Name").get_attribute("value") == "microsvc-users-api-allow", what="the policy")
    # "Update the Policy Types [so] only Egress is selected", "add an empty rule to allow all egress traffic"
    page.checkbox("Egress", within="#policy-types").click()
    if page.checkbox("Ingress", within="#policy-types").is_selected():  # the API server wrote policyTypes: [Ingress]
        page.checkbox("Ingress", within="#policy-types").click()
    assert not page.checkbox("Default", within="#policy-types").is_selected()
    assert not page.checkbox("Ingress", within="#policy-types").is_selected()
    page.wait_text("#preview-warnings", "Egress is selected with no egress rules")
    page.click("+ Add Egress Rule")
    wait_for(lambda: "Egress is selected with no egress rules" not in page.text("#preview-warnings"),
             what="the empty egress rule to reach the preview")
    assert "its 1 ingress rule(s) are kept but ignored" in page.text("#preview-warnings")
    if counts:
        page.wait_text("#preview-impact", "TCP/8080: 3 cells change")
    page.click("Save")
    assert policy_types(page.row("microsvc-users-api-allow")) == "Egress"


def procedure_4_deny_restricted_egress(page: Page, counts: bool) -> None:
    add_network_policy(page, "project-a")  # "select + Add Network Policy"
    general_information(page, "deny-restricted-egress", "Deny egress traffic from restricted pods",
                        "access", "restricted")
    page.wait_text("#preview-selected", "project-a/restricted")
    page.checkbox("Egress", within="#policy-types").click()  # "only Egress is selected. Do not add any egress rules."
    warnings = page.wait_text("#preview-warnings", "Egress isolation without DNS")
    assert "Egress deny-all" in warnings
    page.wait_text("#preview-impact", "Out of the changed pods")
    page.click("Save")
    assert "deny-restricted-egress" in page.row("deny-restricted-egress").text
