"""The agent's pod network (``--pod-network``): CNI configuration and routes from Node objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from picket_agent import podnetwork
from picket_agent.podnetfeed import unforwarded, write_conflist
from picket_agent.settings import SettingsError, parse_settings


def node(name: str, ip: str | None, *cidrs: str, legacy: str | None = None, ip6: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cidrs:
        spec["podCIDRs"] = list(cidrs)
    if legacy:
        spec["podCIDR"] = legacy
    addresses = [{"type": "Hostname", "address": name}] + ([{"type": "InternalIP", "address": ip}] if ip else [])
    addresses += [{"type": "InternalIP", "address": ip6}] if ip6 else []
    return {"metadata": {"name": name}, "spec": spec, "status": {"addresses": addresses}}


V6 = "fc00:f853:ccd:e793::"  # kind's docker network's IPv6 ULA prefix (derived from the name "kind")


@pytest.mark.parametrize(("n", "expected"), [
    (node("a", "172.18.0.2", "10.244.1.0/24"), ["10.244.1.0/24"]),
    (node("a", "172.18.0.2", legacy="10.244.1.0/24"), ["10.244.1.0/24"]),
    (node("a", "172.18.0.2", "10.244.1.0/24", "fd00:10:244:1::/64"), ["10.244.1.0/24", "fd00:10:244:1::/64"]),
    (node("a", "172.18.0.2", "fd00:10:244:1::/64", "10.244.1.0/24"), ["fd00:10:244:1::/64", "10.244.1.0/24"]),
    (node("a", None, "fd00:10:244:1::/64", ip6=V6 + "2"), ["fd00:10:244:1::/64"]),  # IPv6 single stack
    (node("a", "172.18.0.2", "not-a-cidr", "10.244.1.0/24"), ["10.244.1.0/24"]),
    (node("a", "172.18.0.2"), []),
])
def test_pod_cidrs(n: dict[str, Any], expected: list[str]) -> None:
    assert podnetwork.pod_cidrs(n) == expected


def test_routes_go_to_every_other_node_with_an_address_and_a_pod_cidr() -> None:
    nodes = [node("cp", "172.18.0.3", "10.244.0.0/24"), node("w1", "172.18.0.4", "10.244.1.0/24"),
             node("w2", "172.18.0.2", "10.244.2.0/24"), node("new", None, "10.244.3.0/24"), node("bare", "172.18.0.9")]
    assert podnetwork.desired_routes(nodes, "w1") == {"10.244.0.0/24": "172.18.0.3", "10.244.2.0/24": "172.18.0.2"}


def test_internal_ip_per_family_in_canonical_form() -> None:
    n = node("a", "172.18.0.2", ip6="FC00:f853:0ccd:e793:0:0:0:2")
    assert (podnetwork.internal_ip(n), podnetwork.internal_ip(n, 6)) == ("172.18.0.2", V6 + "2")
    assert podnetwork.internal_ip(node("a", "172.18.0.2"), 6) is None
    assert podnetwork.internal_ip(node("a", None, ip6=V6 + "2")) is None
    assert podnetwork.internal_ip(node("a", "not-an-ip", ip6=V6 + "2"), 6) == V6 + "2"


def test_dual_stack_routes_go_per_family_to_the_same_familys_internal_ip() -> None:
    nodes = [node("cp", "172.18.0.3", "10.244.0.0/24", "fd00:10:244::/64", ip6=V6 + "3"),
             node("w1", "172.18.0.4", "10.244.1.0/24", "fd00:10:244:1::/64", ip6=V6 + "4"),
             node("w2", "172.18.0.2", "fd00:10:244:2::/64", "10.244.2.0/24", ip6=V6 + "2"),  # IPv6 first
             node("v4only", "172.18.0.5", "10.244.3.0/24", "fd00:10:244:3::/64"),  # no IPv6 InternalIP (yet)
             node("v6only", None, "10.244.4.0/24", "fd00:10:244:4::/64", ip6=V6 + "6")]
    assert podnetwork.desired_routes(nodes, "w1") == {
        "10.244.0.0/24": "172.18.0.3", "fd00:10:244::/64": V6 + "3",
        "10.244.2.0/24": "172.18.0.2", "fd00:10:244:2::/64": V6 + "2",
        "10.244.3.0/24": "172.18.0.5",
        "fd00:10:244:4::/64": V6 + "6"}


def test_single_stack_ipv4_routes_are_unchanged_by_ipv6_internal_ips_without_ipv6_pod_cidrs() -> None:
    nodes = [node("cp", "172.18.0.3", "10.244.0.0/24", ip6=V6 + "3"), node("w1", "172.18.0.4", "10.244.1.0/24")]
    assert podnetwork.desired_routes(nodes, "w1") == {"10.244.0.0/24": "172.18.0.3"}


def test_conflist_gives_ptp_veths_addresses_from_the_pod_cidr() -> None:
    conf = podnetwork.conflist(["10.244.1.0/24"])
    ptp = conf["plugins"][0]
    assert (conf["name"], ptp["type"], ptp["ipMasq"]) == ("picket", "ptp", False)
    assert ptp["ipam"] == {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
                           "routes": [{"dst": "0.0.0.0/0"}]}


def test_single_stack_conflist_is_byte_identical_to_before_dual_stack(tmp_path: Path) -> None:
    write_conflist(tmp_path, ["10.244.1.0/24"])
    assert (tmp_path / podnetwork.CONF_NAME).read_text() == SINGLE_STACK_CONFLIST


def test_dual_stack_conflist_has_a_range_set_and_a_default_route_per_family() -> None:
    ipam = podnetwork.conflist(["10.244.1.0/24", "fd00:10:244:1::/64"])["plugins"][0]["ipam"]
    assert ipam == {"type": "host-local",
                    "ranges": [[{"subnet": "10.244.1.0/24"}], [{"subnet": "fd00:10:244:1::/64"}]],
                    "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}
    ipam = podnetwork.conflist(["fd00:10:244:1::/64"])["plugins"][0]["ipam"]
    assert (ipam["ranges"], ipam["routes"]) == ([[{"subnet": "fd00:10:244:1::/64"}]], [{"dst": "::/0"}])


def test_forwarding_is_needed_per_family_present(tmp_path: Path) -> None:
    assert podnetwork.forwarding_sysctls(["10.244.1.0/24"]) == ["net.ipv4.ip_forward"]
    assert podnetwork.forwarding_sysctls(["fd00:10:244:1::/64", "10.244.1.0/24"]) == [
        "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"]
    (tmp_path / "net/ipv4").mkdir(parents=True)
    (tmp_path / "net/ipv6/conf/all").mkdir(parents=True)
    (tmp_path / "net/ipv4/ip_forward").write_text("1\n")
    (tmp_path / "net/ipv6/conf/all/forwarding").write_text("0\n")
    assert unforwarded(["10.244.1.0/24"], tmp_path) == []
    assert unforwarded(["10.244.1.0/24", "fd00:10:244:1::/64"], tmp_path) == ["net.ipv6.conf.all.forwarding"]
    (tmp_path / "net/ipv6/conf/all/forwarding").unlink()  # unreadable: no warning
    assert unforwarded(["10.244.1.0/24", "fd00:10:244:1::/64"], tmp_path) == []


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


# What write_conflist wrote for a single-stack IPv4 node before dual stack (commit a6c3345): must not change.
SINGLE_STACK_CONFLIST = """{
  "cniVersion": "0.4.0",
  "name": "picket",
  "plugins": [
    {
      "ipMasq": false,
      "ipam": {
        "ranges": [
          [
            {
              "subnet": "10.244.1.0/24"
            }
          ]
        ],
        "routes": [
          {
            "dst": "0.0.0.0/0"
          }
        ],
        "type": "host-local"
      },
      "type": "ptp"
    },
    {
      "capabilities": {
        "portMappings": true
      },
      "type": "portmap"
    }
  ]
}
"""
