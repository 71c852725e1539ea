"""The fixed layout must not shadow the standard library's ``operator`` module."""

import operator
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_operator_is_the_standard_library() -> None:
    assert operator.itemgetter(1)([0, 7]) == 7
    origin = Path(operator.__spec__.origin or "").resolve()
    assert origin.parent == Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert REPO not in origin.parents


def test_packages_import_from_their_folders() -> None:
    import picket
    import picket_agent
    import picket_lab
    import picket_operator

    assert Path(picket.__file__ or "").parent == REPO / "picket"
    assert Path(picket_operator.__file__ or "").parent == REPO / "operator" / "picket_operator"
    assert Path(picket_agent.__file__ or "").parent == REPO / "agent" / "picket_agent"
    assert Path(picket_lab.__file__ or "").parent == REPO / "lab" / "picket_lab"


def test_the_production_distribution_holds_no_lab_code(tmp_path: Path) -> None:
    """`pip install .` (what the Dockerfile runs) ships picket, the operator and the agent only."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("picket-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names if "/" in n and ".dist-info" not in n}
    assert tops == {"picket", "picket_operator", "picket_agent"}
    metadata = next(zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("METADATA"))
    assert "cryptography" not in metadata


def test_lab_commands_say_how_to_get_the_lab_when_it_is_missing(monkeypatch: object) -> None:
    import subprocess
    import sys

    code = ("import sys, builtins; real = builtins.__import__\n"
            "def imp(name, *a, **k):\n"
            "    if name.startswith('picket_lab'): raise ModuleNotFoundError(name=name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = imp\n"
            "from picket.cli import main; sys.exit(main(['lab', 'status']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 2
    assert "scripts/setup.sh" in out.stderr
