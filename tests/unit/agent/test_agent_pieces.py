"""Feed parsing, settings, backend detection, naming limits, drop-log decoding, the sync loop."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import pytest

from picket.model import Direction, ModelError
from picket_agent.kernel.applier import ApplyReport
from picket_agent.kernel.backend import decide
from picket_agent.kernel.droplog import DropLog, describe_ipv4, parse_packet
from picket_agent.loop import SyncLoop
from picket_agent.rendering import naming
from picket_agent.rendering.renderer import render
from picket_agent.rulesfile import merge_last_good, parse_compiled
from picket_agent.settings import AgentSettings, SettingsError, parse_settings
from tests.unit.agent.agent_builders import compiled, ep, k8s, pod

GOOD = compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(Direction.INGRESS)), ep(pod("x/b", "10.0.0.3"))])


def test_feed_skips_only_the_malformed_endpoint() -> None:
    data = GOOD.to_dict()
    data["endpoints"][0]["ingress"]["tiers"][0]["default"] = "Explode"
    feed = parse_compiled(data)
    assert set(feed.compiled.endpoints) == {"x/b"} and feed.broken_endpoints == {"x/a"}
    assert "endpoint x/a" in feed.problems[0]
    merged = merge_last_good(feed, GOOD)
    assert merged.endpoints["x/a"] == GOOD.endpoints["x/a"]


@pytest.mark.parametrize(
    "data", [{"schemaVersion": 2}, {"endpoints": []}, [], {"schemaVersion": 1, "endpoints": {"x": 1}}]
)
def test_feed_rejects_unknown_versions_and_shapes(data: object) -> None:
    with pytest.raises(ModelError):
        parse_compiled(data)


def test_settings_report_every_problem_at_once() -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings(["--metrics-port", "70000", "--resync-seconds", "0", "--failsafe-inbound", "tcp:x"], {})
    assert len(err.value.problems) == 3


def test_settings_from_env() -> None:
    s = parse_settings(["--failsafe-outbound", "UDP:53"], {"NODE_NAME": "n7", "PICKET_METRICS_PORT": "9400"})
    assert (s.node, s.metrics_port, s.render.failsafe_outbound) == ("n7", 9400, ("udp:53",))


@pytest.mark.parametrize(
    ("legacy_mangle", "nft_mangle", "legacy", "nft", "mode"),
    [
        ("", ":KUBE-KUBELET-CANARY - [0:0]", "-A X\n" * 20, "", "nft"),
        (":KUBE-IPTABLES-HINT - [0:0]", "", "", "-A X\n" * 20, "legacy"),
        ("", "", "-A X\n" * 10, "-A Y\n" * 50, "legacy"),
        ("", "", "-A X\n" * 2, "-A Y\n" * 5, "nft"),
        ("", "", "-A PICKET-FORWARD x\n" * 30, "-A Y\n" * 5, "nft"),  # our own rules do not count
        ("", "", "", "", "legacy"),
    ],
)
def test_backend_detection_like_kube_proxy(
    legacy_mangle: str, nft_mangle: str, legacy: str, nft: str, mode: str
) -> None:
    assert decide(legacy_mangle, nft_mangle, legacy, nft).mode == mode


def test_backend_detection_never_creates_a_legacy_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``iptables-legacy-save -t mangle`` creates the legacy mangle table (hooked into every
    packet's path from then on): run only when the table exists."""
    from picket_agent.kernel import backend

    ran: list[tuple[str, ...]] = []
    monkeypatch.setattr(backend, "_save", lambda *argv: ran.append(argv) or "")
    names = tmp_path / "ip_tables_names"
    names.write_text("filter\n")
    backend.detect(names)
    assert ("iptables-legacy-save", "-t", "mangle") not in ran and ("iptables-nft-save", "-t", "mangle") in ran
    backend.detect(tmp_path / "absent")
    assert ("iptables-legacy-save", "-t", "mangle") not in ran
    names.write_text("filter\nmangle\n")
    backend.detect(names)
    assert ("iptables-legacy-save", "-t", "mangle") in ran


def test_names_fit_kernel_limits() -> None:
    long_key = "a-very-long-namespace-name-indeed/" + "p" * 200
    for name in (
        naming.tier_chain(long_key, "Ingress", 12),
        naming.drop_chain(long_key, "Egress", "x" * 300),
        naming.rule_chain(long_key, "Ingress", 1, "y"),
        naming.log_chain(long_key, "Ingress", 1, "y"),
    ):
        assert len(name) <= naming.MAX_CHAIN and naming.is_owned_chain(name)
    set_name = naming.set_name("s" * 500, "hash:net")
    assert len(naming.temp_set_name(set_name)) <= naming.MAX_SET and naming.is_owned_set(set_name)
    assert naming.tier_chain("x/a", "Ingress", 0) != naming.tier_chain("x/a", "Egress", 0)


def _nflog_body(prefix: str, payload: bytes) -> bytes:
    def attr(kind: int, value: bytes) -> bytes:
        raw = struct.pack("=HH", 4 + len(value), kind) + value
        return raw + b"\0" * (-len(raw) % 4)

    return struct.pack("=BBH", socket.AF_INET, 0, 0) + attr(10, prefix.encode() + b"\0") + attr(9, payload)


def test_drop_log_line_names_pods_port_direction_and_reason() -> None:
    ip = bytes([0x45, 0, 0, 40, 0, 0, 0, 0, 64, 6, 0, 0]) + socket.inet_aton("10.0.0.3") + socket.inet_aton("10.0.0.2")
    packet = ip + struct.pack("!HH", 40000, 80) + b"\0" * 16
    body = _nflog_body("picket:" + next(iter(render(GOOD).drops)), packet)
    assert parse_packet(body)[1] == packet and describe_ipv4(packet) == ("10.0.0.3", "10.0.0.2", "tcp/80")

    class Loop:
        last_desired = render(GOOD)
        last_good = GOOD

    log = DropLog(AgentSettings(), Loop())
    message = struct.pack("=IHHII", 16 + len(body), 4 << 8, 0, 0, 0) + body
    assert log.lines(message) == ["DROP x/b -> x/a tcp/80 ingress: no policy of tier k8s allows it"]


class FakeApplier:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.applied: list[object] = []

    def apply(self, desired, previous=None, verify=True):  # type: ignore[no-untyped-def]
        if self.fail:
            raise RuntimeError("kernel says no")
        self.applied.append(desired)
        return ApplyReport(chains_written=1)


def test_loop_coalesces_reports_versions_and_keeps_last_good_on_failure() -> None:
    applier = FakeApplier()
    seen: list[dict[str, str]] = []
    loop = SyncLoop(AgentSettings(), applier, on_applied=seen.append)  # type: ignore[arg-type]
    for _ in range(5):
        loop.submit(compiled([]))
    loop.submit(GOOD)  # latest wins
    assert loop.sync().ok and len(applier.applied) == 1
    assert set(seen[-1]) == {"x/a", "x/b"}
    assert loop.sync(force_read=False).skipped  # nothing new, no resync due: the kernel is not touched
    applier.fail = True
    loop.submit(compiled([]))
    result = loop.sync()
    assert not result.ok and "kernel says no" in result.error
    assert loop.last_desired is applier.applied[-1]  # the last good state stays


def test_loop_run_stops_and_syncs_submissions() -> None:
    applier = FakeApplier()
    loop = SyncLoop(AgentSettings(min_sync_interval=0), applier)  # type: ignore[arg-type]
    stop = threading.Event()
    thread = threading.Thread(target=loop.run, args=(stop,))
    thread.start()
    loop.submit(GOOD)
    for _ in range(100):
        if applier.applied:
            break
        threading.Event().wait(0.02)
    stop.set()
    loop.wake()
    thread.join(timeout=5)
    assert applier.applied and not thread.is_alive()


def test_a_rules_text_has_the_comment_and_nflog_group_as_iptables_save_reads_them_back() -> None:
    """Found by fuzzing against the kernel (``tests/kernel/test_agent_entries_fuzz.py``): the kernel
    keeps 255 bytes of a comment, and iptables-save prints no ``--nflog-group`` for group 0."""
    from picket_agent.kernel import entries
    from picket_agent.rendering.desired import RenderSettings
    from picket_agent.rendering.iptrules import IptRule

    long = IptRule("RETURN", comment="NetworkPolicy ns/" + "a" * 250)
    assert long.text() == '-m comment --comment "NetworkPolicy ns/' + "a" * 238 + '" -j RETURN'
    assert entries.comment_match(long.comment)[32:] == b"NetworkPolicy ns/" + b"a" * 238 + b"\0"
    wide = IptRule("RETURN", comment="é" * 200)  # cut at a character, never inside one
    assert wide.text() == '-m comment --comment "' + "é" * 127 + '" -j RETURN'
    group0 = render(GOOD, RenderSettings(nflog_group=0, log_drops=True))
    nflogs = [r.text() for rules in group0.chains.values() for r in rules if r.target == "NFLOG"]
    assert nflogs and not any("--nflog-group" in t for t in nflogs)
    group9 = render(GOOD, RenderSettings(nflog_group=9, log_drops=True))
    assert all("--nflog-group 9" in r.text() for rules in group9.chains.values() for r in rules if r.target == "NFLOG")
