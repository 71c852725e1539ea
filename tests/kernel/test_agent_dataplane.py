"""The applier's promises, checked in the kernel of a throwaway node namespace (``pkt-agd-*``).

No-op resync writes nothing and keeps counters; drift is repaired and logged; ipset contents
change by swap (rules and their counters untouched); the xtables lock is honoured; foreign
rules and chains survive every sync; a bad endpoint keeps its last good rules; an unknown
schema version changes nothing; the kernel prints every rule exactly as the renderer does.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time

import pytest

from picket.model import Action, Compiled, Direction, Protocol
from picket_agent.rendering.renderer import RenderSettings, render
from tests.kernel.netns_topology import BACKENDS, ENV, Topology
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, net_set, pod, port_set, rule, tier, tiers

pytestmark = pytest.mark.kernel
ING, EGR = Direction.INGRESS, Direction.EGRESS
A, B = "10.72.1.2", "10.72.1.3"


@pytest.fixture(params=BACKENDS)
def topo(request: pytest.FixtureRequest) -> Topology:
    t = Topology("agd", request.param)
    try:
        t.add_node("n1", "192.168.73.1")
        t.add_pod("x/a", A, "n1")
        t.add_pod("x/b", B, "n1")
        t.listen("x/a", tcp=(80,))
        yield t
    finally:
        t.destroy()


def state(members: tuple[str, ...] = (B,), extra_pod: bool = False) -> Compiled:
    eps = [
        ep(
            pod("x/a", A, "n1"),
            ingress=k8s(
                ING, ("NetworkPolicy x/web", (rule(proto=Protocol.TCP, port=("80",), peers=("web-clients",)),))
            ),
        ),
        ep(pod("x/b", B, "n1"), egress=k8s(EGR, ("NetworkPolicy x/out", (rule(),)))),
    ]
    if extra_pod:
        eps.append(ep(pod("x/e", "10.72.1.9", "n1"), ingress=k8s(ING)))
    return compiled(eps, [ip_set("web-clients", *members)])


def save(topo: Topology) -> str:
    return topo.save("n1")


def picket_lines(text: str) -> list[str]:
    """Our rules with their counters ("[packets:bytes] -A CHAIN ...")."""
    return [line for line in text.splitlines() if "PICKET" in line and " -A " in line]


def test_noop_resync_writes_nothing_and_keeps_counters(topo: Topology) -> None:
    topo.agent("n1", state())
    assert topo.probe("x/b", "x/a", "tcp", 80)
    time.sleep(1.0)  # the probe connection's last packets (FIN/ACK) must be counted before "before"
    before = picket_lines(save(topo))
    assert any(not line.startswith("[0:0]") for line in before), "the probe must have counted packets"
    out = topo.agent("n1", state())
    assert "sync: 2 endpoints" in out.stderr and "nothing to write" in out.stderr
    assert picket_lines(save(topo)) == before  # same rules, same counters


def test_changed_chain_is_rewritten_and_unchanged_chains_keep_counters(topo: Topology) -> None:
    topo.agent("n1", state())
    assert topo.probe("x/b", "x/a", "tcp", 80)
    counted = [line for line in picket_lines(save(topo)) if "-A PICKET-POD-INGRESS" in line]
    out = topo.agent("n1", state(extra_pod=True))
    assert "chains written=" in out.stderr
    after = picket_lines(save(topo))
    # The dispatch chain was rewritten for the new pod, and x/a's unchanged rule in it carried its
    # counters over; x/a's own tier chain was not touched at all.
    assert counted and not counted[0].startswith("[0:0]") and counted[0] in after
    assert any("-d 10.72.1.9/32" in line and line.startswith("[0:0]") for line in after)
    kept = [line for line in after if "NetworkPolicy x/web" in line]
    assert kept and not kept[0].startswith("[0:0]")


def test_drift_is_repaired_and_logged(topo: Topology, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(state().to_dict()))
    agent = topo.spawn_agent("n1", rules, "--resync-seconds", "0.5")
    try:
        _wait_for(lambda: "PICKET-POD-INGRESS" in save(topo))
        chain = next(line[1:].split()[0] for line in save(topo).splitlines() if line.startswith(":PICKET-TIER"))
        topo.in_node("n1", topo.tool(), "-I", chain, "1", "-j", "RETURN")  # someone opens x/a up
        topo.in_node("n1", topo.tool(), "-D", "FORWARD", "1")  # and unhooks us
        _wait_for(lambda: f"-A {chain} -j RETURN" not in save(topo) and "-j PICKET-FORWARD" in save(topo))
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=10)
    assert "repaired drift" in err and chain in err and "hook rule in FORWARD was missing" in err


def test_ipset_membership_changes_by_swap_without_touching_rules(topo: Topology) -> None:
    topo.agent("n1", state(members=("10.72.1.200",)))
    assert not topo.probe("x/b", "x/a", "tcp", 80)
    rules_before = [line.split("] ", 1)[1] for line in picket_lines(save(topo))]
    out = topo.agent("n1", state(members=(B,)))
    assert "swapped=1" in out.stderr and "chains written=0" in out.stderr
    assert [line.split("] ", 1)[1] for line in picket_lines(save(topo))] == rules_before
    assert topo.probe("x/b", "x/a", "tcp", 80)
    sets = topo.in_node("n1", "ipset", "list", "-n").stdout.split()
    assert all(not s.endswith("-t") for s in sets), "the temporary set is destroyed after the swap"


def test_foreign_rules_and_chains_survive(topo: Topology) -> None:
    topo.in_node("n1", topo.tool(), "-N", "FOREIGN")
    topo.in_node("n1", topo.tool(), "-A", "FOREIGN", "-p", "tcp", "--dport", "9", "-j", "DROP")
    topo.in_node("n1", topo.tool(), "-A", "FORWARD", "-j", "FOREIGN")
    topo.in_node("n1", "ipset", "create", "foreign-set", "hash:ip")
    topo.agent("n1", state())
    topo.agent("n1", compiled([]))  # everything of ours removed again
    text = save(topo)
    assert "-A FORWARD -j FOREIGN" in text and "-A FOREIGN -p tcp -m tcp --dport 9 -j DROP" in text
    assert "foreign-set" in topo.in_node("n1", "ipset", "list", "-n").stdout
    assert not any(line.startswith(":PICKET-TIER") for line in text.splitlines())


def test_the_xtables_lock_is_respected(topo: Topology) -> None:
    fd = os.open("/run/xtables.lock", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, prefix="pkt-rules-") as f:
            json.dump(state().to_dict(), f)
        proc = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                topo.ns("n1"),
                sys.executable,
                "-m",
                "picket.cli",
                "agent",
                "--rules",
                f.name,
                "--iptables-backend",
                topo.backend,
                "--once",
            ],
            env=ENV,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert proc.poll() is None, "the agent must wait for the lock"
        assert "PICKET-POD-INGRESS" not in save(topo)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert proc.wait(timeout=30) == 0
    os.unlink(f.name)
    assert "PICKET-POD-INGRESS" in save(topo)


def test_bad_endpoint_keeps_its_last_good_rules(topo: Topology, tmp_path) -> None:  # type: ignore[no-untyped-def]
    rules = tmp_path / "rules.json"
    good = state().to_dict()
    rules.write_text(json.dumps(good))
    agent = topo.spawn_agent("n1", rules, "--resync-seconds", "60")
    try:
        _wait_for(lambda: "NetworkPolicy x/web" in save(topo))
        bad = json.loads(json.dumps(good))
        bad["endpoints"][0]["ingress"]["tiers"][0]["policies"][0]["rules"][0]["ports"] = ["eighty"]
        bad["endpoints"][1]["egress"] = None  # x/b's update must still go through
        rules.write_text(json.dumps(bad))
        _wait_for(lambda: "NetworkPolicy x/out" not in save(topo))
        assert "NetworkPolicy x/web" in save(topo), "x/a keeps its last good rules"
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=10)
    assert "endpoint x/a" in err and "skipped" in err


def test_unknown_schema_version_changes_nothing(topo: Topology) -> None:
    topo.agent("n1", state())
    before = picket_lines(save(topo))
    proc = topo.agent("n1", {**state().to_dict(), "schemaVersion": 99}, check=False)
    assert proc.returncode == 1 and "unsupported schemaVersion 99" in proc.stderr
    assert picket_lines(save(topo)) == before


def test_kernel_prints_every_rule_as_rendered(topo: Topology) -> None:
    """The diff is exact only if <backend>-save prints what the renderer prints (incl. SCTP)."""
    rich = compiled(
        [
            ep(
                pod("x/a", A, "n1"),
                ingress=tiers(
                    ING,
                    tier(
                        "admin",
                        Action.PASS,
                        (
                            'GNP a "quoted" it\'s',
                            (
                                rule(Action.LOG, port=("22", "80")),
                                rule(Action.DENY, proto=Protocol.SCTP, port=("99", "100-200")),
                                rule(Action.PASS, peers=("net",), not_peers=("ips",)),
                                rule(Action.ALLOW, proto=Protocol.ICMP),
                                rule(Action.ALLOW, not_proto=Protocol.UDP),
                                rule(Action.ALLOW, proto=Protocol.TCP, not_ports=("25",)),
                            ),
                        ),
                    ),
                    tier("k8s", Action.DENY),
                ),
                egress=k8s(
                    EGR, ("NetworkPolicy x/e", (rule(named="np"), rule(proto=Protocol.SCTP, port=("5000-5010",))))
                ),
            )
        ],
        [
            ip_set("ips", B),
            net_set("net", ("10.0.0.0/8",), ("10.72.0.0/16",)),
            port_set("np", f"{B},tcp:80", f"{B},sctp:9"),
        ],
    )
    topo.agent("n1", rich, "--log-drops")
    desired = render(rich.for_node("n1"), RenderSettings(log_drops=True))
    want = sorted(line for line in desired.save_text().splitlines() if line.startswith("-A"))
    have = sorted(
        line
        for line in topo.save("n1", counters=False).splitlines()
        if line.startswith("-A")
    )
    assert have == want
    members = topo.in_node("n1", "ipset", "list").stdout
    assert "10.72.0.0/16 nomatch" in members and f"{B},sctp:9" in members


def _wait_for(cond, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")
