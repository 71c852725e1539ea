"""The Dockerfile, read offline: python-iptables is source-only, so wherever picket's dependencies are
built a C compiler must be installed first; the image that ships keeps no compiler.

The image is built for real from this Dockerfile by the kind tier (tests/kind/test_kind_image.py);
that build runs offline with a base that already carries the Debian packages, so only this test
can tell that an online build from python:3.11-slim (which has no gcc) installs one.
"""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[3] / "Dockerfile"


def stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return out


BUILDS_FROM_SOURCE = re.compile(r"\bpip3? (wheel|install)\b[^&]*\s\.(\s|$)")


def _builds_dependencies(instruction: str) -> bool:
    return instruction.startswith("RUN") and BUILDS_FROM_SOURCE.search(instruction) is not None


def _apt_installs(instruction: str, package: str) -> bool:
    return instruction.startswith("RUN") and "apt-get install" in instruction and re.search(
        rf"(\s|\"){re.escape(package)}(\s|\"|;|$)", instruction) is not None


def test_the_stage_that_builds_dependencies_installs_a_c_compiler_first() -> None:
    building = [s for s in stages() if any(_builds_dependencies(i) for i in s)]
    assert building, "no stage runs 'pip wheel .' or 'pip install .'"
    for stage in building:
        build_at = next(n for n, i in enumerate(stage) if _builds_dependencies(i))
        assert any(_apt_installs(i, "gcc") for i in stage[:build_at]), stage


def test_the_shipped_image_has_no_compiler_and_installs_only_wheels() -> None:
    final = stages()[-1]
    assert not any(_apt_installs(i, "gcc") for i in final)
    pip = [i for i in final if i.startswith("RUN") and "pip install" in i]
    assert pip and all("--no-index" in i for i in pip)
    assert any(i.startswith("COPY --from=") for i in final)


def test_base_image_is_python_slim_unless_told_otherwise() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.MULTILINE)
    assert all(s[0] == "FROM ${BASE_IMAGE}" or s[0].startswith("FROM ${BASE_IMAGE} AS ") for s in stages())
