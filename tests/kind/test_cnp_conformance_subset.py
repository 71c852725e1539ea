"""CI's fixed subset of network-policy-api's conformance suite (v0.2.0, profile ClusterNetworkPolicy),
unmodified, against picket on the kind tier.

Five tests (``cnpconformance.CI_SUBSET``: Admin-tier TCP and UDP ingress, a Baseline-tier TCP
egress, the priority field, an ingress named port), so the harness (the suite built through the Go
module proxy, the CRD of the same release, the operator restart, the agnhost:2.45 image, the
test2json results) cannot rot. The whole profile is ``bash scripts/cnp-conformance.sh`` (README,
"ClusterNetworkPolicy", "Conformance").
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from picket_lab import netpolapi
from picket_lab.kind import cnpconformance

pytestmark = pytest.mark.kind


def test_the_suite_lists_exactly_the_tests_the_runner_knows() -> None:
    """The names the subset and the SCTP skip rely on are the binary's (they cannot drift)."""
    binary = netpolapi.build_conformance(netpolapi.conformance_dir())
    listed = subprocess.run([str(binary), "-test.list", ".*"], capture_output=True, text=True, check=True,
                            timeout=120).stdout.split()
    assert "TestConformanceProfiles" in listed
    from_source = _short_names(netpolapi.module_dir() / "conformance" / "tests")
    assert sorted(from_source) == sorted(cnpconformance.TEST_NAMES)
    assert set(cnpconformance.CI_SUBSET) <= set(from_source)


def _short_names(tests_dir: Path) -> list[str]:
    import re

    found = []
    for path in tests_dir.glob("*.go"):
        found += re.findall(r'ShortName:\s*"(\w+)"', path.read_text())
    return found


def test_cnp_conformance_subset_passes_against_picket_on_kind(request: pytest.FixtureRequest, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # the kind tier's session fixture (tests/kind/conftest.py) brings the cluster up; without it, the
    # command itself says when the tier is not up
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("kind")
    code = cnpconformance.main(["--subset", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, f"ClusterNetworkPolicy conformance subset failed (events in {tmp_path}):\n{out[-6000:]}"
    assert f"{len(cnpconformance.CI_SUBSET)} passed, 0 failed, 0 skipped" in out
    assert (tmp_path / "conformance-report.yaml").is_file()
