"""Host endpoints, network sets and the failsafe frame, evaluated with picket.evaluating."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from picket.evaluating import verdict
from picket.failsafe import Failsafe
from picket.model import Action, Direction, PolicyRules, Protocol, Rule, Tier
from picket_operator.compiler.frontends.calico.hosts import host_rule_set, parse_host_endpoint, parse_network_set

EXAMPLES = Path(__file__).resolve().parents[5] / "examples" / "calico"


def docs(kind: str) -> list[dict[str, Any]]:
    every = [d for p in sorted(EXAMPLES.glob("*/*.yaml")) for d in yaml.safe_load_all(p.read_text())]
    return [d for d in every if d["kind"] == kind]


def test_seed_host_endpoints_parse() -> None:
    for doc in docs("HostEndpoint"):
        host, problems = parse_host_endpoint(doc)
        assert problems == () and host is not None
        assert host.endpoint.key == f"host/{doc['metadata']['name']}"
        assert host.endpoint.ips == tuple(doc["spec"]["expectedIPs"])
        assert host.endpoint.interface == "eth0"
        assert host.labels == {"running-calico": "true"}


def test_seed_network_sets_parse() -> None:
    for doc in docs("GlobalNetworkSet"):
        nset, problems = parse_network_set(doc)
        assert problems == () and nset is not None
        assert nset.namespace == "" and nset.nets == tuple(doc["spec"]["nets"])


@pytest.mark.parametrize(
    ("spec", "field"),
    [({"expectedIPs": ["10.0.0.1"]}, "spec.node"), ({"node": "n"}, "spec.expectedIPs"),
     ({"node": "n", "expectedIPs": ["10.0.0.999"]}, "spec.expectedIPs[0]"),
     ({"node": "n", "expectedIPs": ["10.0.0.1"], "ports": [{"name": "x"}]}, "spec.ports[0]")],
)
def test_bad_host_endpoints_are_problems(spec: dict[str, Any], field: str) -> None:
    host, problems = parse_host_endpoint({"kind": "HostEndpoint", "metadata": {"name": "h"}, "spec": spec})
    assert host is None and problems[0].field == field


def test_bad_network_set_is_a_problem() -> None:
    doc = {"kind": "NetworkSet", "metadata": {"name": "s", "namespace": "x"}, "spec": {"nets": ["nope"]}}
    nset, problems = parse_network_set(doc)
    assert nset is None and (problems[0].namespace, problems[0].field) == ("x", "spec.nets[0]")


def _host(profiles: list[str] | None = None) -> Any:
    spec = {"node": "n", "expectedIPs": ["10.0.0.1"], "profiles": profiles or []}
    host, _ = parse_host_endpoint({"kind": "HostEndpoint", "metadata": {"name": "h"}, "spec": spec})
    return host


DENY_ALL = (Tier("kubernetes", (PolicyRules("GlobalNetworkPolicy deny", (Rule(Action.DENY),)),)),)
PASS_ALL = (Tier("kubernetes", (PolicyRules("GlobalNetworkPolicy pass", (Rule(Action.PASS),)),)),)


@pytest.mark.parametrize(
    ("direction", "tiers", "profiles", "proto", "port", "ok"),
    [
        (Direction.INGRESS, (), None, Protocol.TCP, 22, True),  # failsafe inbound
        (Direction.INGRESS, (), None, Protocol.TCP, 80, False),  # no policy: default deny
        (Direction.INGRESS, DENY_ALL, None, Protocol.TCP, 6443, True),  # failsafe beats a deny-all policy
        (Direction.INGRESS, DENY_ALL, None, Protocol.UDP, 68, True),
        (Direction.EGRESS, DENY_ALL, None, Protocol.UDP, 53, True),
        (Direction.EGRESS, (), None, Protocol.TCP, 22, False),  # 22 is inbound only
        (Direction.INGRESS, PASS_ALL, None, Protocol.TCP, 80, False),  # Pass reaches the (deny) profile
        (Direction.INGRESS, PASS_ALL, ["projectcalico-default-allow"], Protocol.TCP, 80, True),
    ],
)
def test_host_rule_set_frame(
    direction: Direction, tiers: tuple[Tier, ...], profiles: list[str] | None, proto: Protocol, port: int, ok: bool
) -> None:
    rule_set = host_rule_set(direction, tiers, _host(profiles))
    assert verdict(rule_set, "192.168.0.1", proto, port, {}).allowed is ok


def test_failsafe_is_configurable() -> None:
    rule_set = host_rule_set(Direction.INGRESS, DENY_ALL, _host(), Failsafe(inbound=((Protocol.TCP, 2222),)))
    assert verdict(rule_set, "192.168.0.1", Protocol.TCP, 2222, {}).allowed
    assert not verdict(rule_set, "192.168.0.1", Protocol.TCP, 22, {}).allowed


SHAPES = st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.lists(st.text(max_size=3), max_size=2)


@settings(max_examples=200)
@given(st.dictionaries(st.sampled_from(["node", "expectedIPs", "ports", "profiles", "interfaceName", "nets"]), SHAPES),
       SHAPES)
def test_malformed_objects_are_problems_not_crashes(spec: dict[str, Any], labels: Any) -> None:
    meta = {"name": "x", "labels": labels}
    for parse in (parse_host_endpoint, parse_network_set):
        value, problems = parse({"kind": "HostEndpoint", "metadata": meta, "spec": spec})
        assert (value is None) == bool(problems)
