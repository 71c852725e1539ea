"""The fixed layout must not shadow the standard library's ``operator`` module."""

import operator
import sysconfig
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_operator_is_the_standard_library() -> None:
    assert operator.itemgetter(1)([0, 7]) == 7
    origin = Path(operator.__spec__.origin or "").resolve()
    assert origin.parent == Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert REPO not in origin.parents


def test_packages_import_from_their_folders() -> None:
    import picket
    import picket_agent
    import picket_operator

    assert Path(picket.__file__ or "").parent == REPO / "picket"
    assert Path(picket_operator.__file__ or "").parent == REPO / "operator" / "picket_operator"
    assert Path(picket_agent.__file__ or "").parent == REPO / "agent" / "picket_agent"
