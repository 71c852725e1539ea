"""The front end's pure logic (``ui/static/policyform.js``) under Node's own test runner."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def test_policyform_unit_tests_pass_under_node() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is missing (scripts/setup.sh installs nodejs)")
    result = subprocess.run([node, "--test", str(HERE / "js" / "policyform.test.mjs")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 13" in result.stdout
