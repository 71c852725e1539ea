"""manifests/: the deployable shape the issue asks for, and least-privilege RBAC, checked offline.

The RBAC is exercised for real by the end-to-end tests (operator and agents run with these
ServiceAccounts' tokens on the local cluster); these checks pin the shape and catch an accidental
widening (a wildcard, a write verb for the agent) before any cluster is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"


def docs() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(MANIFESTS.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return out


def find(kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs() if d["kind"] == kind and d["metadata"]["name"] == name)


def rules(kind: str, name: str) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in find(kind, name)["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


def test_kustomization_lists_every_manifest_and_the_crds() -> None:
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}
    assert files <= set(kust["resources"])
    assert "../crds" in kust["resources"]


def test_no_wildcards_anywhere() -> None:
    for d in docs():
        for rule in d.get("rules", []):
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], d["metadata"]["name"]


def test_agent_reads_compiled_objects_and_nodes_and_writes_only_status() -> None:
    granted = rules("ClusterRole", "picket-agent")
    read = ("compilednodes", "compiledrulesets", "compiledpeersets", "compiledendpoints")
    assert granted == {("picket.dev", r, v) for r in read for v in ("get", "list", "watch")} | {
        ("picket.dev", "compilednodes/status", "patch"),
        ("picket.dev", "compiledendpoints/status", "patch"),  # the previous form, while a cluster switches
        ("", "nodes", "get"),  # --pod-network: podCIDRs and InternalIPs
        ("", "nodes", "list"),
    }


def test_operator_writes_the_current_form_and_only_deletes_the_previous_one() -> None:
    granted = rules("ClusterRole", "picket-operator")
    for resource in ("compilednodes", "compiledrulesets", "compiledpeersets"):
        assert {"create", "patch", "delete"} <= {v for g, r, v in granted if (g, r) == ("picket.dev", resource)}
    assert {v for g, r, v in granted if (g, r) == ("picket.dev", "compiledendpoints")} == {
        "get", "list", "watch", "delete"}
    assert not any(r.endswith("/status") for g, r, v in granted if g == "picket.dev")


def test_operator_cannot_change_the_objects_it_watches() -> None:
    granted = rules("ClusterRole", "picket-operator")
    watched = (("", "pods"), ("", "namespaces"), ("networking.k8s.io", "networkpolicies"),
               ("projectcalico.org", "networkpolicies"), ("projectcalico.org", "globalnetworkpolicies"),
               ("projectcalico.org", "hostendpoints"), ("projectcalico.org", "globalnetworksets"),
               ("projectcalico.org", "networksets"))
    for group, resource in watched:
        verbs = {v for g, r, v in granted if (g, r) == (group, resource)}
        assert verbs == {"get", "list", "watch"}, resource


def test_agent_daemonset_runs_on_every_node_with_the_host_network() -> None:
    ds = find("DaemonSet", "picket-agent")["spec"]["template"]["spec"]
    assert ds["hostNetwork"] is True
    assert {"operator": "Exists"} in ds["tolerations"]
    container = ds["containers"][0]
    assert set(container["securityContext"]["capabilities"]["add"]) == {"NET_ADMIN", "NET_RAW"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "/run/xtables.lock" in mounts and mounts["/lib/modules"]["readOnly"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert {"name": "metrics", "containerPort": 9091, "hostPort": 9091} in container["ports"]


def test_operator_deployment_elects_a_leader_among_two_replicas() -> None:
    dep = find("Deployment", "picket-operator")["spec"]
    assert dep["replicas"] == 2
    assert "--leader-election" in dep["template"]["spec"]["containers"][0]["args"]


def test_operator_may_read_every_kind_it_watches() -> None:
    from picket_operator.compiler.frontends.registry import BUILTIN, OBJECT_KINDS
    from picket_operator.handlers import POLICY_RESOURCES

    watched = {(group, kind) for group, _, _, kind in POLICY_RESOURCES}
    calico = {(g, k) for g, k in [*BUILTIN, *OBJECT_KINDS] if g == "projectcalico.org"}
    assert calico <= watched  # every Calico kind the compiler takes is watched
    granted = rules("ClusterRole", "picket-operator")
    for group, _, plural, _ in POLICY_RESOURCES:
        assert {v for g, r, v in granted if (g, r) == (group, plural)} == {"get", "list", "watch"}, plural


def test_calico_crds_are_an_optional_component_not_installed_by_default() -> None:
    kust = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert not any("calico" in r for r in kust["resources"])
    component = MANIFESTS / "calico" / "kustomization.yaml"
    assert yaml.safe_load(component.read_text())["resources"] == ["../../crds/calico"]
    assert "NEVER" in component.read_text() and "real Calico" in component.read_text()
    crds = MANIFESTS.parent / "crds" / "calico"
    listed = yaml.safe_load((crds / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in crds.glob("*.yaml") if p.name != "kustomization.yaml")
