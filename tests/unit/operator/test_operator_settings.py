"""``picket operator`` settings: flags and environment read once, every error reported together."""

from __future__ import annotations

from pathlib import Path

import pytest

from picket_operator.main import parse_settings


def test_defaults_from_environment(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text("{}")
    s = parse_settings(["--leader-election"], {"KUBECONFIG": str(kc), "POD_NAME": "op-0"})
    assert (s.kubeconfig, s.identity, s.leader_election) == (kc, "op-0", True)
    assert (s.lease_duration, s.lease_renew) == (4, 1.0)


def test_all_errors_at_once(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as err:
        parse_settings(
            ["--kubeconfig", str(tmp_path / "missing"), "--workers", "0", "--lease-duration", "1"], {}
        )
    text = str(err.value)
    assert "no such file" in text and "--workers" in text and "--lease-duration" in text
