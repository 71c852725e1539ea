"""crds/calico/ accepts every Calico document of seed 002 unchanged (examples/calico/), and rejects
documents the API server would reject.

The apiserver's CRD dialect is translated to JSON Schema for ``jsonschema``:
``x-kubernetes-int-or-string`` becomes ``anyOf integer|string``; objects with ``properties`` and
without ``x-kubernetes-preserve-unknown-fields`` get ``additionalProperties: false`` (kubectl's
strict field validation refuses unknown fields; a pruned field would mean "not accepted as
written"); ``metadata`` is left to the API server.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[5]
CRDS = REPO / "crds" / "calico"
EXAMPLES = REPO / "examples" / "calico"
SEED = Path("/work/shared/seeds")


def to_json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def load_crds() -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(p for p in CRDS.glob("*.yaml") if p.name != "kustomization.yaml"):
        crd = yaml.safe_load(path.read_text())
        assert crd["spec"]["group"] == "projectcalico.org"
        version = crd["spec"]["versions"][0]
        assert version["name"] == "v3"
        schema = version["schema"]["openAPIV3Schema"]
        out[crd["spec"]["names"]["kind"]] = {"scope": crd["spec"]["scope"], "schema": schema}
    return out


CRD_BY_KIND = load_crds()


def validate(doc: dict[str, Any]) -> None:
    assert doc["apiVersion"] == "projectcalico.org/v3"
    crd = CRD_BY_KIND[doc["kind"]]
    assert ("namespace" in doc["metadata"]) == (crd["scope"] == "Namespaced")
    jsonschema.validate(doc, to_json_schema(crd["schema"]))


def example_docs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{path.parent.name}/{path.name}#{i}", doc)
        for path in sorted(EXAMPLES.glob("*/*.yaml"))
        for i, doc in enumerate(yaml.safe_load_all(path.read_text()))
    ]


def test_every_calico_kind_has_a_crd() -> None:
    kinds = {"GlobalNetworkPolicy", "NetworkPolicy", "GlobalNetworkSet", "NetworkSet", "HostEndpoint",
             "StagedNetworkPolicy", "StagedGlobalNetworkPolicy", "StagedKubernetesNetworkPolicy"}
    assert set(CRD_BY_KIND) == kinds
    assert CRD_BY_KIND["NetworkPolicy"]["scope"] == CRD_BY_KIND["NetworkSet"]["scope"] == "Namespaced"


def test_schemas_are_structural() -> None:
    """Every schema node names its type (or is int-or-string / preserve-unknown), as v1 CRDs demand."""

    def walk(node: dict[str, Any], path: str) -> None:
        assert "type" in node or node.get("x-kubernetes-int-or-string"), path
        for name, child in node.get("properties", {}).items():
            walk(child, f"{path}.{name}")
        if "items" in node:
            walk(node["items"], f"{path}[]")

    for kind, crd in CRD_BY_KIND.items():
        walk(crd["schema"], kind)


@pytest.mark.parametrize(("name", "doc"), example_docs(), ids=[n for n, _ in example_docs()])
def test_every_example_is_accepted(name: str, doc: dict[str, Any]) -> None:
    validate(doc)


def test_both_approaches_are_there() -> None:
    kinds = {n.split("/")[0]: set() for n, _ in example_docs()}
    for name, doc in example_docs():
        kinds[name.split("/")[0]].add(doc["kind"])
    assert kinds["deny-list"] == {"GlobalNetworkPolicy", "HostEndpoint", "GlobalNetworkSet", "NetworkPolicy"}
    assert kinds["allow-list"] == {"GlobalNetworkPolicy", "HostEndpoint", "GlobalNetworkSet", "NetworkPolicy"}


def _gnp(**rule: Any) -> dict[str, Any]:
    return {
        "apiVersion": "projectcalico.org/v3",
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": "p"},
        "spec": {"selector": "all()", "ingress": [{"action": "Allow", **rule}]},
    }


@pytest.mark.parametrize(
    "rule",
    [
        {"action": "Block"},
        {"protocol": ["TCP"]},
        {"destination": {"ports": [{"port": 80}]}},
        {"source": {"selector": 7}},
        {"source": {"nets": "10.0.0.0/8"}},
        {"sauce": {}},
    ],
)
def test_malformed_rules_are_rejected(rule: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate(_gnp(**rule))


@pytest.mark.parametrize(
    "rule", [{"protocol": 6}, {"protocol": "UDP", "destination": {"ports": ["8000:9000", "http", 53]}}]
)
def test_int_or_string_fields_take_both(rule: dict[str, Any]) -> None:
    validate(_gnp(**rule))


def test_unknown_spec_field_is_rejected() -> None:
    doc = copy.deepcopy(_gnp())
    doc["spec"]["sellector"] = "all()"
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def _seed_docs() -> list[dict[str, Any]]:
    seeds = sorted(SEED.glob("002_*.txt"))
    if not seeds:
        pytest.skip("seed 002 is not on this machine")
    blocks = re.findall(r"```yaml\n(.*?)```", seeds[0].read_text(), re.S)
    docs = [d for b in blocks for d in yaml.safe_load_all(_dedent(b))]
    return [d for d in docs if d.get("apiVersion") == "projectcalico.org/v3"]


def _dedent(block: str) -> str:
    lines = block.splitlines()
    indent = len(lines[0]) - len(lines[0].lstrip())
    return "\n".join(line[indent:] for line in lines)


def test_examples_are_the_seed_documents_unchanged() -> None:
    seed = _seed_docs()
    examples = [doc for _, doc in example_docs()]
    assert len(seed) == len(examples) == 13
    assert all(doc in examples for doc in seed)
