"""The agent's pod network (``--pod-network``): CNI configuration and routes from Node objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from picket_agent import podnetwork
from picket_agent.podnetfeed import write_conflist
from picket_agent.settings import SettingsError, parse_settings


def node(name: str, ip: str | None, *cidrs: str, legacy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cidrs:
        spec["podCIDRs"] = list(cidrs)
    if legacy:
        spec["podCIDR"] = legacy
    addresses = [{"type": "Hostname", "address": name}] + ([{"type": "InternalIP", "address": ip}] if ip else [])
    return {"metadata": {"name": name}, "spec": spec, "status": {"addresses": addresses}}


@pytest.mark.parametrize(("n", "expected"), [
    (node("a", "172.18.0.2", "10.244.1.0/24"), ["10.244.1.0/24"]),
    (node("a", "172.18.0.2", legacy="10.244.1.0/24"), ["10.244.1.0/24"]),
    (node("a", "172.18.0.2", "10.244.1.0/24", "fd00:10:244:1::/64"), ["10.244.1.0/24"]),  # IPv4 only
    (node("a", "172.18.0.2"), []),
])
def test_pod_cidrs(n: dict[str, Any], expected: list[str]) -> None:
    assert podnetwork.pod_cidrs(n) == expected


def test_routes_go_to_every_other_node_with_an_address_and_a_pod_cidr() -> None:
    nodes = [node("cp", "172.18.0.3", "10.244.0.0/24"), node("w1", "172.18.0.4", "10.244.1.0/24"),
             node("w2", "172.18.0.2", "10.244.2.0/24"), node("new", None, "10.244.3.0/24"), node("bare", "172.18.0.9")]
    assert podnetwork.desired_routes(nodes, "w1") == {"10.244.0.0/24": "172.18.0.3", "10.244.2.0/24": "172.18.0.2"}


def test_conflist_gives_ptp_veths_addresses_from_the_pod_cidr() -> None:
    conf = podnetwork.conflist(["10.244.1.0/24"])
    ptp = conf["plugins"][0]
    assert (conf["name"], ptp["type"], ptp["ipMasq"]) == ("picket", "ptp", False)
    assert ptp["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
                           "routes": [{"dst": "0.0.0.0/0"}]}


def test_other_cni_configurations_are_noticed_and_ours_is_not() -> None:
    names = ["10-picket.conflist", ".10-picket.conflist.tmp", "10-kindnet.conflist", "87-podman.conf", "README"]
    assert podnetwork.foreign_configs(names) == ["10-kindnet.conflist", "87-podman.conf"]


def test_conflist_is_written_only_when_it_changes(tmp_path: Path) -> None:
    assert write_conflist(tmp_path / "net.d", ["10.244.1.0/24"])
    assert not write_conflist(tmp_path / "net.d", ["10.244.1.0/24"])
    assert write_conflist(tmp_path / "net.d", ["10.244.7.0/24"])
    assert "10.244.7.0/24" in (tmp_path / "net.d" / podnetwork.CONF_NAME).read_text()
    assert [p.name for p in (tmp_path / "net.d").iterdir()] == [podnetwork.CONF_NAME]


def test_pod_network_needs_api_mode_and_a_node(tmp_path: Path) -> None:
    assert parse_settings(["--pod-network", "auto"], {"NODE_NAME": "w1"}).pod_network == "auto"
    assert parse_settings([], {}).pod_network == "off"
    rules = tmp_path / "rules.json"
    rules.write_text("{}")
    with pytest.raises(SettingsError):
        parse_settings(["--pod-network", "on", "--rules", str(rules), "--node", "w1"], {})
    with pytest.raises(SettingsError):
        parse_settings(["--pod-network", "on"], {})
