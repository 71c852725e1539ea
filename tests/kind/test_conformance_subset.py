"""CI's fixed subset of upstream's NetworkPolicy conformance suite, against picket on the kind tier.

Five tests of the unmodified ``[sig-network] Netpol`` suite (``conformance.CI_SUBSET``: TCP and UDP
default deny, a namespace selector, an egress named port, ipBlock with except), so the harness
(e2e.test and agnhost built from source, the image loaded into the nodes, the JUnit report) cannot
rot. The full suite is ``bash scripts/conformance.sh`` (README, "Conformance").
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from picket_lab.kind import conformance
from picket_lab.kind.e2ebuild import ensure_e2e_tools

pytestmark = pytest.mark.kind


def test_the_subset_is_five_tests_of_the_upstream_binary(tmp_path: Path) -> None:
    """The subset's focus selects exactly five specs of the e2e.test built here (names cannot drift)."""
    tools = ensure_e2e_tools()
    report = tmp_path / "dry"
    s = conformance.parse_settings(["--subset", "--report-dir", str(report)])
    argv = conformance.run_argv(s, tools.paths.binary("e2e.test"), tools.paths.binary("ginkgo"))[4:]  # no netns
    subprocess.run([*argv, "--ginkgo.dry-run"], cwd=tmp_path, capture_output=True, check=True, timeout=120)
    results = conformance.selected(conformance.parse_junit((report / "junit_01.xml").read_text()), s.focus)
    assert sorted(r.name.split(" [Feature:")[0] for r in results) == sorted(conformance.CI_SUBSET)


def test_upstream_netpol_subset_passes_against_picket_on_kind(request: pytest.FixtureRequest, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    # the kind tier's session fixture (tests/kind/conftest.py) brings the cluster up; without it, the
    # command itself says when the tier is not up
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("kind")
    code = conformance.main(["--subset", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, f"conformance subset failed (JUnit and e2e.log in {tmp_path}):\n{out[-6000:]}"
    assert "5 passed, 0 failed, 0 skipped" in out
