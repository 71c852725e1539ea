"""The examples/ directory: every seed policy with its cluster file, matrices pinned.

Each pinned matrix lists the BLOCKED (source, destination) pairs on the example's port; every
other pair must be allowed. The pins were worked out by hand from the policy text (the comment in
each policy.yaml says why), and the oracle must agree too. The CLI is exercised end to end: the
JSON form of ``picket matrix`` has the fixed shape, and ``picket compile`` prints problems.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from picket_operator.commands.clusterfile import ClusterFileError, load_cluster_file, parse_cluster_text
from picket_operator.commands.compile import compile_main
from picket_operator.commands.matrix import format_grid
from picket_operator.commands.matrix import main as matrix_main
from tests.unit.operator.compiler.oracle import Oracle

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"
SEED1_PODS = ["default/api", "default/scraper", "default/web", "kube-system/coredns",
              "longhorn-system/longhorn-manager", "monitoring/grafana", "monitoring/prometheus"]
NOT_FROM_KUBE_SYSTEM = [s for s in SEED1_PODS if s != "kube-system/coredns"]

PINNED: dict[str, tuple[int, set[tuple[str, str]]]] = {
    "seed001-web-deny-all": (80, {(s, "default/web") for s in SEED1_PODS if s != "default/web"}),
    "seed001-allow-kube-system-ingress": (80, {(s, d) for d in ("default/api", "default/scraper", "default/web")
                                               for s in NOT_FROM_KUBE_SYSTEM if s != d}),
    "seed001-allow-prometheus-longhorn-manager-ingress": (9500, {
        (s, "longhorn-system/longhorn-manager") for s in SEED1_PODS
        if s not in ("monitoring/prometheus", "longhorn-system/longhorn-manager")}),
    "seed001-grafana": (3000, {(s, "monitoring/grafana") for s in
                               ("default/api", "default/scraper", "default/web", "longhorn-system/longhorn-manager")}),
    "seed004-microsvc-users-api-allow": (8080, {(s, "project-a/users-api") for s in
                                                ("project-a/mysql", "project-a/restricted", "project-b/other")}),
    "seed004-database-access-api-only": (3306, {(s, "project-a/mysql") for s in
                                                ("project-a/client", "project-a/restricted", "project-b/client",
                                                 "project-b/other")}),
    "seed004-ingress-disabled": (8080, set()),
    "seed004-deny-restricted-egress": (8080, {("project-a/restricted", d) for d in
                                              ("project-a/client", "project-a/mysql", "project-a/users-api",
                                               "project-b/client", "project-b/other")}),
}


def test_every_example_directory_is_pinned() -> None:
    assert {p.name for p in EXAMPLES.glob("seed*")} == set(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_example_matrix(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    port, blocked = PINNED[name]
    cluster = EXAMPLES / name / "cluster.yaml"
    policy = yaml.safe_load((EXAMPLES / name / "policy.yaml").read_text())
    objects = load_cluster_file(cluster)
    assert objects[-1] == policy  # the cluster file carries exactly the example policy
    assert matrix_main(["--cluster", str(cluster), "--port", str(port), "--protocol", "TCP", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert list(data) == ["port", "protocol", "pods", "allowed"] and err == ""
    assert data["port"] == port and data["protocol"] == "TCP"
    got = {(s, d) for s in data["pods"] for d in data["pods"] if not data["allowed"][s][d]}
    assert got == blocked
    oracle = Oracle(objects)
    assert {(s, d) for s in data["pods"] for d in data["pods"] if not oracle.allowed(s, d, port, "TCP")} == blocked


def test_model_cluster_is_open_and_complete(capsys: pytest.CaptureFixture[str]) -> None:
    assert matrix_main(["--cluster", str(EXAMPLES / "model-cluster.yaml"), "--port", "81"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "port 81/TCP" and lines[-1] == "(. allowed, X blocked)"
    pods = ["x/a", "x/b", "x/c", "y/a", "y/b", "y/c", "z/a", "z/b", "z/c"]
    assert lines[1].split()[3:] == pods
    assert [line.split() for line in lines[2:-1]] == [[pod] + ["."] * 9 for pod in pods]


def test_format_grid_marks_cells_that_differ_from_the_prediction() -> None:
    pods = ["x/a", "x/b"]
    allowed = {"x/a": {"x/a": True, "x/b": False}, "x/b": {"x/a": True, "x/b": True}}
    predicted = {"x/a": {"x/a": True, "x/b": True}, "x/b": {"x/a": True, "x/b": True}}
    lines = format_grid(pods, allowed, predicted).splitlines()
    assert lines[1].split() == ["x/a", ".", "X!"] and lines[2].split() == ["x/b", ".", "."]
    assert "1 cell(s) differ" in lines[-1]
    assert "!" not in format_grid(pods, allowed)


def test_compile_prints_problems_on_stdout_and_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "b", "namespace": "x"},
           "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "nope"}}]}]}}
    path = tmp_path / "c.yaml"
    path.write_text((EXAMPLES / "model-cluster.yaml").read_text() + "---\n" + yaml.safe_dump(bad))
    assert compile_main(["--cluster", str(path), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["schemaVersion"] == 1 and len(data["endpoints"]) == 9
    assert data["problems"][0]["field"] == "spec.ingress[0].from[0].ipBlock.cidr"
    assert "NetworkPolicy x/b: spec.ingress[0].from[0].ipBlock.cidr" in err
    assert compile_main(["--cluster", str(tmp_path / "missing.yaml")]) == 2


def test_cluster_file_reader() -> None:
    objects = parse_cluster_text("---\nkind: List\nitems:\n- {kind: Namespace, metadata: {name: a}}\n---\n"
                                 "kind: Pod\nmetadata: {name: p}\n")
    assert [o["kind"] for o in objects] == ["Namespace", "Pod"]
    with pytest.raises(ClusterFileError, match="document 1"):
        parse_cluster_text("- just\n- a list\n")
    with pytest.raises(ClusterFileError, match="not valid YAML"):
        parse_cluster_text("a: [unclosed\n")
