"""Seed 004's four procedures, click by click, in Chromium, against ``picket ui --cluster FILE``.

Each procedure starts from the seed example's namespaces and pods (``examples/seed004-*``), follows
the seed's steps with the seed's words (ID Name, Description, Pod Selector > Match Label, Key,
Value, Policy Types, + Add Ingress Rule, + Add Port, + Add Source, Select All Namespaces, + Add Pod
Selector, Save, the row's context menu > Edit), checks the live preview before saving, and after
saving checks that the cluster's compiled matrix equals the one of the seed example's own policy
(what ``picket matrix`` pins for it). The steps are in ``procedures`` (shared with the lab test).
"""

from __future__ import annotations

from typing import Any

from picket.evaluating import matrix
from picket.model import Protocol
from picket_operator.commands.matrix import matrix_keys
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.ui.server import UiServer
from tests.ui import procedures
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


def test_procedure_1_microsvc_users_api_allow(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow")
    page = Page(chromium, server.url)
    page.open()
    procedures.procedure_1_microsvc_users_api_allow(page, counts=True)
    assert_enforces_like_the_example(server, "seed004-microsvc-users-api-allow")


def test_procedure_2_database_access_api_only(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-database-access-api-only")
    page = Page(chromium, server.url)
    page.open()
    procedures.procedure_2_database_access_api_only(page, counts=True)
    assert_enforces_like_the_example(server, "seed004-database-access-api-only")


def test_procedure_3_disable_but_do_not_delete_ingress_rules(chromium: Any, offline_server: Any) -> None:
    server = offline_server("seed004-microsvc-users-api-allow", with_policy=True)
    page = Page(chromium, server.url)
    page.open()
    procedures.procedure_3_disable_ingress_rules(page, counts=True)
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
    procedures.procedure_4_deny_restricted_egress(page, counts=True)
    assert_enforces_like_the_example(server, "seed004-deny-restricted-egress")
