"""Host failsafe ports are ONE setting for operator and agent, and a disagreement is reported.

The operator frames every host rule set with a "failsafe" tier of its ports; the agent accepts
its own ports before any host policy. Both read ``--failsafe-*`` or ``PICKET_FAILSAFE_*`` (and
manifests/ sets those from one ConfigMap for both). Checked here: the same names and defaults on
both sides, the ConfigMap reaching both workloads, and the agent's renderer reporting a compiled
rule set whose failsafe ports differ from its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from picket.failsafe import FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT, parse_failsafe
from picket_agent.rendering.desired import RenderSettings
from picket_agent.rendering.renderer import render
from picket_agent.settings import SettingsError
from picket_agent.settings import parse_settings as agent_settings
from picket_operator.compiler.compiling import compile_cluster
from picket_operator.main import parse_settings as operator_settings

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"
HOST = {"apiVersion": "projectcalico.org/v3", "kind": "HostEndpoint",
        "metadata": {"name": "n1.eth0", "labels": {"running-calico": "true"}},
        "spec": {"node": "n1", "interfaceName": "eth0", "expectedIPs": ["10.9.0.1"]}}


def _operator(tmp_path: Path, argv: list[str], env: dict[str, str]) -> Any:
    kc = tmp_path / "kubeconfig"
    kc.write_text("{}")
    return operator_settings(argv, {"KUBECONFIG": str(kc), **env})


def _as_text(ports: tuple[tuple[Any, int], ...]) -> tuple[str, ...]:
    return tuple(f"{proto.value.lower()}:{port}" for proto, port in ports)


def _configmap() -> dict[str, str]:
    doc = yaml.safe_load((MANIFESTS / "failsafe-config.yaml").read_text())
    assert (doc["kind"], doc["metadata"]["name"]) == ("ConfigMap", "picket-failsafe")
    return dict(doc["data"])


def test_same_variable_names_on_both_sides() -> None:
    from picket_operator import main
    assert (main.FAILSAFE_ENV_IN, main.FAILSAFE_ENV_OUT) == (FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT)
    assert set(_configmap()) == {FAILSAFE_ENV_IN, FAILSAFE_ENV_OUT}


def test_defaults_agree_and_the_configmap_holds_them(tmp_path: Path) -> None:
    op = _operator(tmp_path, [], {}).failsafe
    ag = agent_settings([], {}).render
    assert _as_text(op.inbound) == ag.failsafe_inbound and _as_text(op.outbound) == ag.failsafe_outbound
    assert "tcp:22" in ag.failsafe_inbound and "tcp:22" not in ag.failsafe_outbound  # Calico's lists
    env = _configmap()
    assert agent_settings([], env).render == ag  # the shipped ConfigMap is Calico's defaults
    assert _operator(tmp_path, [], env).failsafe == op


@pytest.mark.parametrize(
    ("argv", "env", "inbound", "outbound"),
    [
        ([], {FAILSAFE_ENV_IN: "tcp:22,tcp:2222", FAILSAFE_ENV_OUT: "udp:53"}, ("tcp:22", "tcp:2222"), ("udp:53",)),
        (["--failsafe-inbound", "tcp:9"], {FAILSAFE_ENV_IN: "tcp:22"}, ("tcp:9",), None),  # the flag wins
        ([], {FAILSAFE_ENV_IN: ""}, (), None),  # empty: no failsafe ports at all
    ],
)
def test_both_read_the_environment_alike(
    tmp_path: Path, argv: list[str], env: dict[str, str], inbound: tuple[str, ...], outbound: tuple[str, ...] | None
) -> None:
    op = _operator(tmp_path, argv, env).failsafe
    ag = agent_settings(argv, env).render
    assert _as_text(op.inbound) == ag.failsafe_inbound == inbound
    assert _as_text(op.outbound) == ag.failsafe_outbound
    if outbound is not None:
        assert ag.failsafe_outbound == outbound


def test_bad_ports_are_refused_by_both(tmp_path: Path) -> None:
    env = {FAILSAFE_ENV_OUT: "tcp:notaport"}
    with pytest.raises(SystemExit, match=FAILSAFE_ENV_OUT):
        _operator(tmp_path, [], env)
    with pytest.raises(SettingsError):
        agent_settings([], env)


def test_both_workloads_take_the_configmap() -> None:
    for path in ("operator-deployment.yaml", "agent-daemonset.yaml"):
        doc = yaml.safe_load((MANIFESTS / path).read_text())
        container = doc["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": "picket-failsafe"}} in container["envFrom"], path
        assert not any("failsafe" in arg for arg in container["args"]), path  # no flag overriding one side


@pytest.mark.parametrize(
    ("operator_in", "agent_in", "reported"),
    [
        (None, None, False),
        ("tcp:22,udp:68", "tcp:22,udp:68", False),
        ("tcp:22,tcp:2222", "tcp:22", True),
        ("", "tcp:22", True),
    ],
)
def test_renderer_reports_failsafe_ports_the_operator_compiled_differently(
    operator_in: str | None, agent_in: str | None, reported: bool
) -> None:
    compiled = compile_cluster([HOST], parse_failsafe(operator_in, None))
    settings = agent_settings(["--failsafe-inbound", agent_in] if agent_in is not None else [], {}).render
    problems = [p for p in render(compiled, settings).problems if "failsafe ports differ" in p]
    assert bool(problems) is reported, problems
    if reported:
        assert "host/n1.eth0 ingress" in problems[0]


def test_default_render_settings_match_the_compiler() -> None:
    problems = render(compile_cluster([HOST]), RenderSettings()).problems
    assert not [p for p in problems if "failsafe" in p]
