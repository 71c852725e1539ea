"""Operating picket: leader failover, restart recovery, and invalid input reported without harm.

These tests stop, kill and start operator processes of the session's deployment; each leaves one
operator running (the session fixture checks that every process it knows of is alive at the end).
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import Any

import pytest

from picket.apiclient import ApiError
from picket_lab.deploy import wait_until
from tests.e2e.harness import E2E, MODEL_PODS, events_about, expected, ns

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

P = MODEL_PODS
DENY_X = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-ingress, namespace: x}
spec: {podSelector: {}, policyTypes: [Ingress]}
"""


def lease_holder(e2e: E2E) -> str:
    try:
        lease = e2e.kube.get("/apis/coordination.k8s.io/v1/namespaces/picket-system/leases/picket-operator")
    except ApiError as exc:
        if exc.status == 404:  # no operator has run yet
            return ""
        raise
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


def test_leader_failover(e2e: E2E) -> None:
    d = e2e.deployment
    standby = d.start_operator("picket-operator-1")
    assert wait_until(lambda: lease_holder(e2e) in d.operators, 15), "no operator holds the lease"
    leader_name = lease_holder(e2e)
    assert leader_name in d.operators and leader_name != standby.name
    try:
        os.kill(d.operators[leader_name].pid, signal.SIGKILL)  # a crash: the lease is not released
        killed = time.monotonic()
        e2e.apply(DENY_X)
        took = e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"), deadline=60)
        assert lease_holder(e2e) == standby.name
        after = time.monotonic() - killed
        print(f"\nfailover: enforced {after:.1f}s after the leader was killed ({took:.1f}s polling)")
    finally:
        d.operators.pop(leader_name, None)
        d.start_operator(leader_name)  # back as the standby


def first_full_sync(log_text: str) -> dict[str, int]:
    match = re.search(r"sync \(full\): .*?-> (\d+) pps written, (\d+) prs written, (\d+) pcn written, "
                      r"(\d+) pcn deleted, .*?(\d+) pcep deleted", log_text)
    assert match, "the operator logged no full sync"
    return {"pps": int(match.group(1)), "prs": int(match.group(2)), "written": int(match.group(3)),
            "deleted": int(match.group(4)), "pcep deleted": int(match.group(5))}


def compiled_nodes(e2e: E2E) -> list[dict[str, Any]]:
    return list(e2e.kube.get("/apis/picket.dev/v1alpha1/compilednodes").get("items", []))


def rows(e2e: E2E) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every published endpoint: key -> (its node, its row in the CompiledNode)."""
    return {f"{r['namespace']}/{r['name']}": (o["metadata"]["name"], r) for o in compiled_nodes(e2e)
            for r in o["spec"]["endpoints"] if r["kind"] == "Pod"}


def test_operator_restart_recovers_from_the_api(e2e: E2E) -> None:
    d = e2e.deployment
    e2e.expect(expected(P, lambda s, dst: True))
    for spawned in d.operators.values():
        spawned.stop()
    d.operators.clear()
    e2e.apply(DENY_X)  # changed while no operator runs: nothing can enforce it yet
    e2e.expect(expected(P, lambda s, dst: True), deadline=2, prediction=False)
    restarted = d.start_operator("picket-operator-0")
    e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))
    # Recovery is diff-based: only the CompiledNodes of the nodes hosting x's pods were rewritten
    # (and the one rule set they now name, unless a previous test left it published), nothing deleted.
    marker = "picket operator picket-operator-0 starting"

    def this_run() -> str:
        return restarted.log.read_text().rsplit(marker, 1)[-1]

    assert wait_until(lambda: "sync (full)" in this_run(), 10)
    full = first_full_sync(this_run())
    published = rows(e2e)
    x_nodes = {published[k][0] for k in P if ns(k) == "x"}
    assert (full["written"], full["deleted"], full["pcep deleted"]) == (len(x_nodes), 0, 0), full
    assert full["prs"] <= 1, full
    assert set(published) >= set(P)


def test_applied_status_is_reported(e2e: E2E) -> None:
    e2e.apply(DENY_X)
    e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))

    def all_applied() -> bool:
        nodes = compiled_nodes(e2e)
        x_rows = [r for o in nodes for r in o["spec"]["endpoints"] if r.get("namespace") == "x"]
        return len(x_rows) == 3 and all(r.get("ingress") and not r.get("egress") for r in x_rows) and all(
            (o.get("status") or {}).get("appliedVersion") == o["spec"]["version"] for o in nodes)

    assert wait_until(all_applied, 20), "status.appliedVersion never caught up with spec.version on every node"
    table = e2e.kubectl("get", "pcn")
    for line in table.splitlines()[1:]:  # NAME ENDPOINTS ISOLATED RULESETS VERSION APPLIED AGE
        cells = line.split()
        assert cells[4] == cells[5], table
    # The per-pod view README documents: one line per pod with its node, IP and rule sets.
    view = e2e.kubectl("get", "pcn", "-o", "jsonpath=" + POD_VIEW)
    lines = {tuple(line.split("\t")[:2]) for line in view.splitlines()}
    assert {(p, published_node) for p, (published_node, _) in rows(e2e).items() if ns(p) == "x"} <= lines, view
    x_a = next(line.split("\t") for line in view.splitlines() if line.startswith("x/a\t"))
    assert x_a[3].startswith("ingress-") and x_a[4] == "", x_a
    # README's one-namespace variant (The compiled objects): a JSONPath filter over every node's rows.
    x_only = e2e.kubectl("get", "pcn", "-o", "jsonpath=" + NAMESPACE_VIEW)
    assert sorted(line.split("\t")[0] for line in x_only.splitlines()) == ["a", "b", "c"], x_only
    assert all(line.split("\t")[2].startswith("ingress-") for line in x_only.splitlines()), x_only


NAMESPACE_VIEW = ('{range .items[*].spec.endpoints[?(@.namespace=="x")]}{.name}{"\\t"}{.node}{"\\t"}{.ingress}'
                  '{"\\n"}{end}')
POD_VIEW = ('{range .items[*]}{range .spec.endpoints[*]}{.namespace}/{.name}{"\\t"}{.node}'
            '{"\\t"}{.ips[0]}{"\\t"}{.ingress}{"\\t"}{.egress}{"\\n"}{end}{end}')


BAD_GNP = """
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: pkt-bad-selector}
spec:
  selector: "pod == 'a' &&"
  types: [Ingress]
"""


def test_invalid_policy_gets_an_event_and_others_still_apply(e2e: E2E) -> None:
    e2e.apply(BAD_GNP)
    e2e.apply(DENY_X)
    e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))  # the valid policy is enforced; the bad one changes nothing

    def event() -> list[dict[str, Any]]:
        return events_about(e2e, "GlobalNetworkPolicy", "pkt-bad-selector", "default")

    found = wait_until(lambda: bool(event()), 20)
    assert found, "no Event on the invalid GlobalNetworkPolicy"
    ev = event()[0]
    assert ev["type"] == "Warning" and ev["reason"] == "InvalidPolicy"
    assert ev["message"].startswith("spec.selector"), ev["message"]


def test_invalid_namespace_annotation_gets_an_event(e2e: E2E) -> None:
    e2e.kubectl("annotate", "--overwrite", "namespace", "z", "net.beta.kubernetes.io/network-policy={not json")
    try:
        found = wait_until(lambda: bool(events_about(e2e, "Namespace", "z", "default")), 20)
        assert found, "no Event on the namespace with the malformed annotation"
        e2e.expect(expected(P, lambda s, dst: True))  # reported and ignored: z is not isolated
    finally:
        e2e.kubectl("annotate", "namespace", "z", "net.beta.kubernetes.io/network-policy-")


def api_cut(api: str, verb: str) -> list[list[str]]:
    """iptables commands (inside a node's namespace: the lab's, never the machine's) that drop all
    traffic between the node and the API server, established watch streams included."""
    tag = ["-m", "comment", "--comment", "pkt-e2e-api-cut", "-j", "DROP"]
    return [
        ["iptables-legacy", verb, "INPUT", "-s", api, "-p", "tcp", "--sport", "6443", *tag],
        ["iptables-legacy", verb, "OUTPUT", "-d", api, "-p", "tcp", "--dport", "6443", *tag],
    ]


def test_agents_keep_enforcing_while_the_api_server_is_unreachable(e2e: E2E) -> None:
    e2e.apply(DENY_X)
    e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"))
    api = e2e.lab.api_server_url_from_nodes.split("//", 1)[1].rsplit(":", 1)[0]
    for node in e2e.lab.nodes:
        for argv in api_cut(api, "-I"):
            e2e.lab.exec_in_node(node, argv, check=True)
    try:
        e2e.kubectl("delete", "networkpolicy", "-n", "x", "deny-ingress")
        time.sleep(3)  # give a (wrong) agent time to flush; the assertion is on the state, not on time
        e2e.expect(expected(P, lambda s, dst: ns(dst) != "x"), deadline=2, prediction=False)
    finally:
        for node in e2e.lab.nodes:
            for argv in api_cut(api, "-D"):
                e2e.lab.exec_in_node(node, argv)
    e2e.expect(expected(P, lambda s, dst: True), deadline=120)  # caught up once reachable again
