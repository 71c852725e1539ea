"""The published form: builders validated against the CRD schemas in crds/, and read back by the agent.

The CRDs' openAPIV3Schema is turned into JSON Schema (``nullable`` -> a ``null`` type) and every
object the builders make for every example is validated. The schemas must also be structural
(every node typed), which the API server requires of apiextensions.k8s.io/v1 CRDs.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from picket.model import Compiled, Endpoint, EndpointKind, EndpointRules
from picket_agent import published
from picket_operator.commands.clusterfile import load_cluster_file
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.publishing import objects as publishing
from picket_operator.publishing.intake import CompilerFeed

REPO = Path(__file__).resolve().parents[4]
CRDS = {"CompiledEndpoint": "picket.dev_compiledendpoints.yaml", "CompiledPeerSet": "picket.dev_compiledpeersets.yaml",
        "CompiledRuleSet": "picket.dev_compiledrulesets.yaml", "CompiledNode": "picket.dev_compilednodes.yaml"}
SHAPES = {  # kind -> (plural, short name, scope, printer columns, status subresource)
    "CompiledEndpoint": (publishing.ENDPOINT_PLURAL, publishing.ENDPOINT_SHORT, "Namespaced",
                         ["IP", "Node", "Ingress", "Egress", "Rules", "Applied", "Age"], True),
    "CompiledPeerSet": (publishing.PEER_SET_PLURAL, publishing.PEER_SET_SHORT, "Cluster",
                        ["Kind", "Members", "Description"], False),
    "CompiledRuleSet": (publishing.RULE_SET_PLURAL, publishing.RULE_SET_SHORT, "Cluster",
                        ["Direction", "Rules", "Policies", "Age"], False),
    "CompiledNode": (publishing.NODE_PLURAL, publishing.NODE_SHORT, "Cluster",
                     ["Endpoints", "Isolated", "RuleSets", "Version", "Applied", "Age"], True),
}
EXAMPLE_FILES = [*sorted(REPO.glob("examples/seed*/cluster.yaml")), REPO / "examples/model-cluster.yaml",
                 *sorted(REPO.glob("examples/calico/cluster-*.yaml")), REPO / "examples/legacy/cluster.yaml"]


def crd(kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "crds" / CRDS[kind]).read_text())
    return doc


def json_schema(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: json_schema(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable"):
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [json_schema(v) for v in node]
    return node


def validator(kind: str) -> jsonschema.Draft7Validator:
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return jsonschema.Draft7Validator(json_schema(copy.deepcopy(schema)))


def untyped(node: Any, path: str = "") -> list[str]:
    if not isinstance(node, dict):
        return []
    missing = [] if "type" in node else [path or "<root>"]
    for name, child in (node.get("properties") or {}).items():
        missing += untyped(child, f"{path}.{name}")
    if "items" in node:
        missing += untyped(node["items"], f"{path}[]")
    return missing


def compiled_examples() -> list[Compiled]:
    return [compile_cluster(load_cluster_file(p)) for p in EXAMPLE_FILES]


@pytest.mark.parametrize("kind", sorted(CRDS))
def test_crd_is_structural_and_matches_the_published_names(kind: str) -> None:
    doc = crd(kind)
    assert doc["apiVersion"] == "apiextensions.k8s.io/v1" and doc["spec"]["group"] == publishing.GROUP
    version = doc["spec"]["versions"][0]
    assert version["name"] == publishing.VERSION
    assert untyped(version["schema"]["openAPIV3Schema"]) == []
    names = doc["spec"]["names"]
    plural, short, scope, columns, status = SHAPES[kind]
    assert (names["kind"], names["plural"], names["shortNames"], doc["spec"]["scope"]) == (kind, plural, [short], scope)
    assert [c["name"] for c in version["additionalPrinterColumns"]] == columns
    assert ("subresources" in version) is status
    kust = yaml.safe_load((REPO / "crds" / "kustomization.yaml").read_text())
    assert CRDS[kind] in kust["resources"]


def node_objects(compiled: Compiled) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """What the operator publishes for ``compiled``: CompiledNodes and CompiledRuleSets, by the feed."""
    feed = CompilerFeed()
    nodes: dict[str, list[dict[str, Any]]] = {}
    rule_sets: dict[str, dict[str, Any]] = {}
    for er in compiled.endpoints.values():
        names = []
        for rs in (er.ingress, er.egress, er.staged_ingress, er.staged_egress):
            if rs is not None:
                name, obj = feed._rule_set(rs)
                rule_sets[name] = obj
            names.append(publishing.rule_set_name(rs) if rs is not None else None)
        nodes.setdefault(er.endpoint.node, []).append(publishing.binding_row(er, *names))
    return [publishing.node_object(n, rows) for n, rows in sorted(nodes.items())], rule_sets


def test_compiled_nodes_and_rule_sets_of_every_example_validate_and_read_back_exactly() -> None:
    check_node, check_rs = validator("CompiledNode"), validator("CompiledRuleSet")
    shared = False
    for compiled in compiled_examples():
        nodes, rule_sets = node_objects(compiled)
        parsed = {name: published.parse_rule_set(obj) for name, obj in rule_sets.items()}
        for name, obj in rule_sets.items():
            check_rs.validate(obj)
            assert obj["metadata"]["name"] == name == publishing.rule_set_name(parsed[name])
        read: dict[str, EndpointRules] = {}
        for obj in nodes:
            check_node.validate(obj)
            assert obj["metadata"]["labels"][publishing.NODE_LABEL] == obj["metadata"]["name"]
            resolution = published.resolve(published.parse_node(obj), parsed, {}, {})
            assert not resolution.pending
            read.update(resolution.endpoints)
        assert read == dict(compiled.endpoints)  # the agent reads back exactly what was compiled
        isolated = sum(1 for er in compiled.endpoints.values() for rs in (er.ingress, er.egress) if rs)
        shared |= len(rule_sets) < isolated
    assert shared  # some example has endpoints sharing one rule set


def test_published_objects_of_every_example_validate_and_read_back() -> None:
    endpoints, peer_sets = validator("CompiledEndpoint"), validator("CompiledPeerSet")
    seen_isolated = False
    for compiled in compiled_examples():
        for er in compiled.endpoints.values():
            obj = publishing.endpoint_object(er)
            endpoints.validate(obj)
            assert obj["metadata"]["labels"][publishing.NODE_LABEL] == er.endpoint.node
            assert publishing.endpoint_from_object(obj) == er
            seen_isolated |= obj["spec"]["summary"]["ingress"] == "isolated"
        for ps in compiled.peer_sets.values():
            obj = publishing.peer_set_object(ps)
            peer_sets.validate(obj)
            assert obj["spec"]["size"] == len(ps.members)
            assert publishing.peer_set_from_object(obj) == ps
    assert seen_isolated


def test_version_changes_with_content_and_host_endpoints_live_in_picket_system() -> None:
    host = EndpointRules(Endpoint(EndpointKind.HOST, "", "node-1.eth0", "node-1", ("192.168.1.1",)))
    obj = publishing.endpoint_object(host)
    assert (obj["metadata"]["namespace"], obj["metadata"]["name"]) == ("picket-system", "host-node-1.eth0")
    validator("CompiledEndpoint").validate(obj)
    moved = EndpointRules(Endpoint(EndpointKind.HOST, "", "node-1.eth0", "node-1", ("192.168.1.2",)))
    assert publishing.endpoint_object(moved)["spec"]["version"] != obj["spec"]["version"]


def test_schema_rejects_what_the_agent_could_not_read() -> None:
    compiled = compile_cluster(load_cluster_file(REPO / "examples/seed001-web-deny-all/cluster.yaml"))
    obj = publishing.endpoint_object(compiled.endpoints["default/web"])
    obj["spec"]["ingress"]["tiers"][0]["default"] = "Maybe"
    with pytest.raises(jsonschema.ValidationError):
        validator("CompiledEndpoint").validate(obj)
