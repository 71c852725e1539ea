"""Pure parts of the live tooling: cluster files adapted to the lab, prediction, probe commands, drop text."""

from __future__ import annotations

from pathlib import Path

from picket_lab import clusterfiles as labmodel
from picket_lab.drops import format_drops, parse_drops
from picket_lab.live import predict, service_ports
from picket_lab.probing import differences, nc_argv

REPO = Path(__file__).resolve().parents[3]


def test_for_lab_maps_nodes_drops_status_and_splits_policies() -> None:
    objs = labmodel.load(REPO / "examples" / "seed004-ingress-disabled" / "cluster.yaml")
    base, policies = labmodel.for_lab(objs, ["pkt-node-1", "pkt-node-2"])
    pods = [o for o in base if o["kind"] == "Pod"]
    assert {o["spec"]["nodeName"] for o in pods} == {"pkt-node-1", "pkt-node-2"}
    assert all("status" not in o for o in pods)
    assert [p["kind"] for p in policies] == ["NetworkPolicy"]
    assert objs[2].get("status"), "the input is not modified"


def test_prediction_per_destination_service_port() -> None:
    objs = labmodel.load(REPO / "examples" / "seed004-database-access-api-only" / "cluster.yaml")
    keys = labmodel.pod_keys(objs, include_system=True)
    ports = service_ports(objs, keys)
    assert ports["project-a/mysql"] == ("TCP", 3306) and ports["project-a/client"] == ("TCP", 8080)
    got = predict(objs, keys, "TCP", 0, ports)
    assert got["project-a/users-api"]["project-a/mysql"] is True
    assert got["project-a/client"]["project-a/mysql"] is False
    assert got["project-a/client"]["project-b/other"] is True


def test_nc_commands() -> None:
    assert nc_argv("10.0.0.1", "TCP", 80, 1.0) == ["nc", "-z", "-w", "1", "10.0.0.1", "80"]
    assert nc_argv("10.0.0.1", "UDP", 53, 2.0) == ["nc", "-u", "-w", "2", "10.0.0.1", "53"]
    assert nc_argv("10.0.0.1", "TCP", 80, 0.5)[:2] == ["timeout", "0.50"]


def test_differences_name_every_pair() -> None:
    want = {"a": {"a": True, "b": False}, "b": {"a": True, "b": True}}
    live = {"a": {"a": True, "b": True}, "b": {"a": True}}
    assert differences(live, want) == [
        "a -> b: expected blocked, live allowed",
        "b -> b: expected allowed, live not probed",
    ]


METRICS = """# HELP picket_dropped_packets_total Dropped packets
# TYPE picket_dropped_packets_total counter
picket_dropped_packets_total{direction="ingress",endpoint="x/a",policy="tier kubernetes default"} 17.0
picket_dropped_bytes_total{direction="ingress",endpoint="x/a",policy="tier kubernetes default"} 1020.0
picket_syncs_total 3.0
"""


def test_drop_counters_and_their_growth() -> None:
    counts = parse_drops("n1", METRICS)
    assert list(counts.values()) == [17.0]
    before = {k: 10.0 for k in counts}
    assert "+7" in format_drops(counts, before)
    assert format_drops(counts, counts).endswith("none")
