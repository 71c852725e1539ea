"""Legacy (v1beta1) NetworkPolicy: the isolation annotation and ``picket convert``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from picket.evaluating import connection_allowed
from picket.model import Protocol
from picket_operator.commands.convert import convert_main
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.compiler.frontends.legacy import (
    ANNOTATION,
    ANNOTATION_FIELD,
    convert_documents,
    convert_policy,
    legacy_isolation,
)

REPO = Path(__file__).resolve().parents[3]
LEGACY = REPO / "examples" / "legacy"


def make_namespace(name: str = "ns", annotation: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotation is not None:
        meta["annotations"] = {ANNOTATION: annotation}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def make_policy(ns: str = "ns", name: str = "p", **spec: Any) -> dict[str, Any]:
    spec.setdefault("podSelector", {"matchLabels": {"role": "db"}})
    return {"apiVersion": "extensions/v1beta1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


DEFAULT_DENY = json.dumps({"ingress": {"isolation": "DefaultDeny"}})


@pytest.mark.parametrize(
    ("annotation", "isolated", "problem"),
    [
        (None, False, None),
        (DEFAULT_DENY, True, None),
        ('{\n  "ingress": {\n    "isolation": "DefaultDeny"\n  }\n}\n', True, None),
        ("{}", False, None),
        ('{"ingress": {}}', False, None),
        ("{ingress: DefaultDeny}", False, "not valid JSON"),
        ('["DefaultDeny"]', False, "expected a JSON object"),
        ('{"ingress": "DefaultDeny"}', False, "ingress: expected an object"),
        ('{"ingress": {"isolation": "Deny"}}', False, "is not 'DefaultDeny'"),
    ],
)
def test_legacy_isolation(annotation: str | None, isolated: bool, problem: str | None) -> None:
    got, prob = legacy_isolation(make_namespace("team", annotation))
    assert got is isolated
    if problem is None:
        assert prob is None
    else:
        assert prob is not None
        assert (prob.kind, prob.name, prob.field) == ("Namespace", "team", ANNOTATION_FIELD)
        assert problem in prob.message


def test_lowercase_protocols_are_fixed_and_reported() -> None:
    policy = make_policy(ingress=[{"ports": [{"protocol": "tcp", "port": 80}, {"protocol": "UDP", "port": 53}]}])
    out, notes = convert_policy(policy)
    assert out is not None
    assert out["apiVersion"] == "networking.k8s.io/v1"
    assert [p["protocol"] for p in out["spec"]["ingress"][0]["ports"]] == ["TCP", "UDP"]
    assert [n.field for n in notes] == ["spec.ingress[0].ports[0].protocol"]
    assert policy["spec"]["ingress"][0]["ports"][0]["protocol"] == "tcp"  # input untouched


def test_unknown_protocol_is_an_error_and_nothing_is_emitted() -> None:
    out, notes = convert_policy(make_policy(ingress=[{"ports": [{"protocol": "icmp"}]}]))
    assert out is None
    assert notes[0].message.startswith("error")


@pytest.mark.parametrize(
    ("spec", "types"),
    [
        ({}, ["Ingress"]),
        ({"ingress": [{}]}, ["Ingress"]),
        ({"egress": [{}]}, ["Ingress", "Egress"]),
        ({"policyTypes": ["Egress"], "egress": [{}]}, ["Egress"]),
    ],
)
def test_policy_types_are_written_out(spec: dict[str, Any], types: list[str]) -> None:
    out, _ = convert_policy(make_policy(**spec))
    assert out is not None
    assert out["spec"]["policyTypes"] == types


def _names(docs: list[dict[str, Any]]) -> list[str]:
    policies = [d["metadata"] for d in docs if d["kind"] == "NetworkPolicy"]
    return [f"{m.get('namespace', '')}/{m['name']}" for m in policies]


def test_isolated_namespace_gets_default_deny() -> None:
    out, warnings = convert_documents([make_namespace("ns", DEFAULT_DENY), make_policy()])
    assert _names(out) == ["ns/p", "ns/default-deny-ingress"]
    deny = out[-1]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert any("isolated" in w for w in warnings)


def test_isolated_by_flag() -> None:
    out, _ = convert_documents([make_policy(name="a"), make_policy(name="b")], isolated=["ns"])
    assert _names(out) == ["ns/a", "ns/b", "ns/default-deny-ingress"]


@pytest.mark.parametrize("docs", [[make_namespace("ns"), make_policy()], [make_policy()]])
def test_not_isolated_namespace_keeps_everything_open(docs: list[dict[str, Any]]) -> None:
    out, warnings = convert_documents(docs)
    assert _names(out) == ["ns/p", "ns/allow-all-ingress"]
    assert out[-1]["spec"]["ingress"] == [{}]
    assert sum("no effect" in w for w in warnings) == 1


def test_other_documents_pass_through_and_v1_policies_are_untouched() -> None:
    v1 = {**make_policy(name="v1"), "apiVersion": "networking.k8s.io/v1"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x", "namespace": "ns"}}
    out, warnings = convert_documents([pod, v1])
    assert out == [pod, v1]
    assert warnings == []


def test_seed_003_cluster_conversion_is_pinned(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "out.yaml"
    assert convert_main([str(LEGACY / "cluster.yaml"), "-o", str(target)]) == 0
    assert list(yaml.safe_load_all(target.read_text())) == list(
        yaml.safe_load_all((LEGACY / "cluster-v1.yaml").read_text())
    )
    err = capsys.readouterr().err
    assert "'tcp' -> 'TCP'" in err
    assert "default-deny-ingress" in err


def test_seed_003_policy_alone_with_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert convert_main([str(LEGACY / "network-policy.yaml"), "--isolated-namespaces", "default"]) == 0
    out = list(yaml.safe_load_all(capsys.readouterr().out))
    assert _names(out) == ["default/test-network-policy", "default/default-deny-ingress"]
    assert out[0]["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 6379}]


def test_unreadable_file_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    assert convert_main([str(bad)]) == 2
    assert "cannot read" in capsys.readouterr().err


# Seed 003's old-model meaning, by hand: "default" is isolated; the policy lets role=frontend pods
# of "default" and pods of namespaces labelled project=myproject reach role=db pods on TCP 6379.
SEED_003_ALLOWED = {
    ("default/frontend", "default/db", 6379): True,
    ("myproject/client", "default/db", 6379): True,
    ("default/other", "default/db", 6379): False,
    ("elsewhere/client", "default/db", 6379): False,
    ("default/frontend", "default/db", 80): False,
    ("default/db", "default/frontend", 80): False,  # isolated namespace, no policy allows it
    ("elsewhere/client", "default/other", 80): False,
    ("default/frontend", "myproject/client", 80): True,  # other namespaces stay open
    ("default/db", "elsewhere/client", 80): True,
}


@pytest.mark.parametrize(("src", "dst", "port"), list(SEED_003_ALLOWED))
def test_seed_003_converted_output_is_enforced_with_the_old_meaning(src: str, dst: str, port: int) -> None:
    docs = list(yaml.safe_load_all((LEGACY / "cluster-v1.yaml").read_text()))
    for doc in docs:  # v1 alone must carry the meaning: drop the (v1-meaningless) annotation
        doc.get("metadata", {}).pop("annotations", None)
    compiled = compile_cluster(docs)
    assert compiled.problems == ()
    s, d = compiled.endpoints[src], compiled.endpoints[dst]
    ok, _, _ = connection_allowed(s, d, s.endpoint.ips[0], d.endpoint.ips[0], Protocol.TCP, port, compiled.peer_sets)
    assert ok is SEED_003_ALLOWED[(src, dst, port)]
