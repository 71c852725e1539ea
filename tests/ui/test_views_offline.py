"""The UI's other promises in Chromium, offline: the two-way YAML view, validation beside the
field, an API error on Save that loses nothing, the grouped matrix with explanations, and the
context menu from the keyboard."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from picket_operator.ui.server import serve
from picket_operator.ui.store import ApiStore
from tests.ui.browser import wait_for
from tests.ui.conftest import seed_objects
from tests.ui.pages import Page
from tests.ui.test_server import FakeKube


def test_yaml_and_form_follow_each_other(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow", with_policy=True)
    page = Page(chromium, server.url)
    page.open("#/edit/project-a/microsvc-users-api-allow")
    yaml = page.field("YAML")
    wait_for(lambda: "port: 8080" in yaml.get_attribute("value"), what="the YAML view")
    text = yaml.get_attribute("value").replace("port: 8080", "port: 9090")
    yaml.clear()
    yaml.send_keys(text)
    wait_for(lambda: page.field("Port", within="#ingress-rules").get_attribute("value") == "9090",
             what="the form to follow the YAML")
    page.type("ID Name", "renamed-policy")
    wait_for(lambda: "name: renamed-policy" in page.field("YAML").get_attribute("value"),
             what="the YAML to follow the form")
    yaml = page.field("YAML")
    yaml.send_keys("\n  nonsense: [")
    page.wait_text("#yaml-error", "the form keeps its last valid state")
    assert page.field("ID Name").get_attribute("value") == "renamed-policy"


def test_validation_is_shown_beside_the_field_and_save_keeps_the_form(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow")
    page = Page(chromium, server.url)
    page.open("#/new")
    page.type("ID Name", "Bad_Name")
    page.click("+ Add Ingress Rule")
    page.click("+ Add Port")
    page.type("Port", "70000", within="#ingress-rules")
    name = page.field("ID Name")
    wait_for(lambda: name.get_attribute("aria-invalid") == "true", what="ID Name marked invalid")
    error = page.d.find_element(By.ID, name.get_attribute("aria-describedby"))
    assert "is not a valid name" in error.text
    port = page.field("Port", within="#ingress-rules")
    wait_for(lambda: port.get_attribute("aria-invalid") == "true", what="Port marked invalid")
    page.click("Save")
    page.wait_text("#save-error", "Not saved: fix the fields marked first")
    assert page.field("ID Name").get_attribute("value") == "Bad_Name"
    assert page.field("Port", within="#ingress-rules").get_attribute("value") == "70000"
    assert server.store.workbench().find_policy("project-a", "Bad_Name") is None


def test_an_api_error_on_save_is_shown_inline_and_nothing_is_lost(chromium: Any) -> None:
    objects = seed_objects("seed004-microsvc-users-api-allow", True)
    server = serve(ApiStore(FakeKube(objects), lambda _: objects, "test user"))
    try:
        page = Page(chromium, server.url)
        page.open("#/new")
        page.type("ID Name", "p")
        page.type("Description", "typed by hand")
        page.click("Save")
        page.wait_text("#save-error", 'User "dev" cannot patch resource "networkpolicies"')
        assert page.field("ID Name").get_attribute("value") == "p"
        assert page.field("Description").get_attribute("value") == "typed by hand"
    finally:
        server.shutdown()
        server.server_close()


def test_the_matrix_groups_pods_expands_and_explains_a_cell(chromium: Any, offline_server: Any) -> None:
    extra = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"namespace": "project-b", "name": f"web-{i}",
                                                               "labels": {"app": "web"}},
              "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Running", "podIP": f"10.244.3.{i}"}}
             for i in range(1, 4)]
    server = offline_server("seed004-database-access-api-only", with_policy=True, extra=extra)
    page = Page(chromium, server.url)
    page.open("#/matrix")
    page.type("Port", "3306")
    page.click("Show")
    page.wait_text("#matrix", "project-b: app=web (3 pods)")
    page.screenshot("ui-matrix-grouped")
    page.d.find_element(By.CSS_SELECTOR, "th.rowhead button[aria-label='Expand project-b: app=web (3 pods)']").click()
    page.wait_text("#matrix", "project-b/web-2")
    cell = wait_for(lambda: page.d.find_element(
        By.CSS_SELECTOR, "td[data-src='project-b/web-2'][data-dst='project-a/mysql'] button"), what="the cell")
    assert cell.text == "✗"
    cell.click()
    text = page.wait_text("#explanation-text", "BLOCKED")
    assert "allows only pods with tier=api in namespace project-a" in text
    page.screenshot("ui-matrix")


def test_the_context_menu_works_from_the_keyboard(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow", with_policy=True)
    page = Page(chromium, server.url)
    page.open()
    row = page.row("microsvc-users-api-allow")
    menu_button = row.find_element(By.CSS_SELECTOR, "button[aria-haspopup='menu']")
    menu_button.send_keys(Keys.ENTER)
    wait_for(lambda: page.d.switch_to.active_element.text == "Edit", what="focus on Edit")
    page.d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    assert page.d.switch_to.active_element.text == "Duplicate"
    page.d.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait_for(lambda: page.d.switch_to.active_element == menu_button, what="focus back on the menu button")
    menu_button.send_keys(Keys.ENTER)
    wait_for(lambda: page.d.switch_to.active_element.text == "Edit", what="focus on Edit")
    page.d.switch_to.active_element.send_keys(Keys.ARROW_DOWN)
    page.d.switch_to.active_element.send_keys(Keys.ENTER)
    wait_for(lambda: page.field("ID Name").get_attribute("value") == "microsvc-users-api-allow-copy",
             what="the duplicate in the editor")
    page.click("Save")
    page.row("microsvc-users-api-allow-copy")


def test_probe_shows_predicted_vs_probed_and_marks_differences(chromium: Any) -> None:
    """A prober that finds project-b/client -> project-a/users-api blocked (the policy allows it)."""
    from picket.model import Protocol
    from picket_operator.ui.store import FileStore

    asked: list[tuple[str, str]] = []

    def prober(pairs: Any, protocol: Protocol, port: int) -> list[bool]:
        asked.extend(pairs)
        clients = {"project-a/client", "project-b/client"}
        return [(d != "project-a/users-api" or s in clients) and (s, d) != ("project-b/client", "project-a/users-api")
                for s, d in pairs]

    server = serve(FileStore(seed_objects("seed004-microsvc-users-api-allow", True), "probe"), prober=prober)
    try:
        page = Page(chromium, server.url)
        page.open("#/matrix")
        page.type("Port", "8080")
        page.click("Probe")
        summary = page.wait_text("#probe-summary", "cell(s) differ")
        assert "1 cell(s) differ" in summary
        cell = page.d.find_element(By.CSS_SELECTOR, "td[data-src='project-b/client'][data-dst='project-a/users-api']")
        assert "differ" in cell.get_attribute("class") and cell.text == "✓/✗!"
        # mysql declares only 3306: nothing is probed on 8080 towards it
        assert not [p for p in asked if p[1] == "project-a/mysql"]
        assert page.d.find_element(
            By.CSS_SELECTOR, "td[data-src='project-a/client'][data-dst='project-a/mysql']").text == "✓/\u2013"
        page.screenshot("ui-probe")
    finally:
        server.shutdown()
        server.server_close()
