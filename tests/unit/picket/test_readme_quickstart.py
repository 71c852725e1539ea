"""README's quick start is two commands on a fresh machine, and CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def quick_start_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "the quick start has a bash block"
    return [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.split("#", 1)[0].strip()]


def test_two_commands_one_for_the_main_job_one_for_the_tests() -> None:
    demo, tests = quick_start_commands()
    assert demo == "bash scripts/demo.sh" and tests == "bash scripts/test.sh"
    assert "picket demo" in (REPO / "scripts" / "demo.sh").read_text()
    for script in ("demo.sh", "test.sh"):  # each does all the set-up itself
        assert "bash scripts/setup.sh" in (REPO / "scripts" / script).read_text()


def test_ci_runs_exactly_the_readme_test_command() -> None:
    run = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
           if line.strip() and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert run == [quick_start_commands()[1]]
