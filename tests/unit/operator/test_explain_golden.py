"""Golden outputs of ``picket explain`` for seed 004's examples (text and JSON), and its CLI errors.

Regenerate after a deliberate wording change with ``PICKET_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from picket.cli import main as picket
from picket_operator.commands.explain import default_kubeconfig

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden_explain"
CASES = [
    # (example, src, dst, port)
    ("seed004-microsvc-users-api-allow", "project-b/client", "project-a/users-api", 8080),
    ("seed004-microsvc-users-api-allow", "project-a/restricted", "project-a/users-api", 8080),
    ("seed004-microsvc-users-api-allow", "project-b/client", "project-a/users-api", 9090),
    ("seed004-database-access-api-only", "project-a/users-api", "project-a/mysql", 3306),
    ("seed004-database-access-api-only", "project-b/client", "project-a/mysql", 3306),
    ("seed004-ingress-disabled", "project-a/restricted", "project-a/users-api", 8080),
    ("seed004-deny-restricted-egress", "project-a/restricted", "project-a/users-api", 8080),
    ("seed004-deny-restricted-egress", "10.244.1.52", "project-a/restricted", 8080),
    # Calico-style (seed 002): tiers, host endpoints, Deny rules
    ("calico/cluster-deny-list.yaml", "default/client", "calico-system/calico-kube-controllers", 9094),
    ("calico/cluster-deny-list.yaml", "monitoring/prometheus", "host/kubeadm-node-0.eth0", 9100),
    ("calico/cluster-allow-list.yaml", "default/web", "host/kubeadm-node-0.eth0", 9100),
]


def _name(case: tuple[str, str, str, int]) -> str:
    example, src, dst, port = case
    example = example.removeprefix("seed004-").removesuffix(".yaml")
    return f"{example}--{src}--{dst}--{port}".replace("/", "_")


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("case", CASES, ids=_name)
def test_explain_matches_its_golden_output(case: tuple[str, str, str, int], fmt: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    example, src, dst, port = case
    cluster = ROOT / "examples" / (example if example.endswith(".yaml") else f"{example}/cluster.yaml")
    code = picket(["explain", src, dst, "--port", str(port), "--cluster", str(cluster), "--format", fmt])
    assert code == 0
    out = capsys.readouterr().out
    golden = GOLDEN / f"{_name(case)}.{'txt' if fmt == 'text' else 'json'}"
    if os.environ.get("PICKET_UPDATE_GOLDEN"):
        golden.write_text(out)
    assert out == golden.read_text()
    if fmt == "json":
        data = json.loads(out)
        assert data["allowed"] == (data["egress"]["allowed"] and data["ingress"]["allowed"])


def test_the_seed_reasons_read_as_the_issue_asks(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = ROOT / "examples" / "seed004-database-access-api-only" / "cluster.yaml"
    picket(["explain", "project-b/client", "project-a/mysql", "--port", "3306", "--cluster", str(cluster)])
    out = capsys.readouterr().out
    assert "BLOCKED" in out.splitlines()[0]
    assert "not isolated: no policy selects project-b/client for Egress" in out
    assert ("isolated by NetworkPolicy project-a/database-access-api-only; no rule matches: "
            "NetworkPolicy project-a/database-access-api-only ingress rule 0 allows only pods with tier=api in "
            "namespace project-a (project-b/client has service.corp/users-api-role=client") in out


def test_an_unknown_endpoint_is_an_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    cluster = ROOT / "examples" / "seed004-database-access-api-only" / "cluster.yaml"
    code = picket(["explain", "project-a/nosuch", "project-a/mysql", "--port", "3306", "--cluster", str(cluster)])
    assert code == 2
    assert "source 'project-a/nosuch': no such endpoint" in capsys.readouterr().err


def test_live_kubeconfig_defaults_to_the_flag_then_the_environment(tmp_path: Path) -> None:
    assert default_kubeconfig("/x/config", "/y/config") == Path("/x/config")
    assert default_kubeconfig(None, f"/y/config{os.pathsep}/z/config") == Path("/y/config")
