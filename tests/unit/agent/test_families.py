"""IPv6 and the nft backend, without a kernel: the restore script, IPv6 rendering and names,
the dispatch tree over 128 bits, inet6 ipset messages, the drop log's IPv6 packets, and the
order of an apply (new rules, then the legacy leftovers, then unused ipsets)."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from picket.evaluating import connection_allowed
from picket.model import Direction, EndpointRules, Protocol
from picket_agent.kernel import ipsetwire as wire
from picket_agent.kernel.applier import Applier
from picket_agent.kernel.droplog import describe_ipv4
from picket_agent.kernel.families import NodeDataplane
from picket_agent.kernel.restore import Generations, RestoreTables, restore_script
from picket_agent.rendering import naming
from picket_agent.rendering.desired import Desired, SetSpec
from picket_agent.rendering.diffing import ActualSet, TablePlan, plan_table
from picket_agent.rendering.iptrules import IptRule, Match, Param, SavedTable, parse_save
from picket_agent.rendering.renderer import render
from tests.unit.agent.agent_builders import compiled, ep, ip_set, k8s, net_set, pod, rule
from tests.unit.agent.chainsim import forward, to_node

ING, EGR = Direction.INGRESS, Direction.EGRESS


def test_restore_script_rewrites_with_counters_fixes_hooks_and_deletes_after_unhooking() -> None:
    saved = parse_save("*filter\n:FORWARD ACCEPT [0:0]\n:PICKET-A - [0:0]\n:PICKET-OLD - [0:0]\n"
                       "[1:2] -A FORWARD -j KUBE-FORWARD\n[3:4] -A FORWARD -j PICKET-OLD\n"
                       "[5:6] -A PICKET-A -p tcp -m tcp --dport 80 -j RETURN\n[7:8] -A PICKET-OLD -j DROP\nCOMMIT\n")
    port80 = IptRule("RETURN", (Match("tcp", (Param("dport", ("80",)),)),), protocol="tcp")
    plan = TablePlan(create=("PICKET-NEW",), rewrite={"PICKET-NEW": (IptRule("DROP"),),
                                                       "PICKET-A": (port80, IptRule("RETURN", protocol="tcp"))},
                     delete=("PICKET-OLD",), hook_inserts={"FORWARD": IptRule("PICKET-FORWARD", comment="hook")},
                     hook_removals={"FORWARD": (1,)})
    lines = restore_script(plan, saved).splitlines()
    assert lines[0] == "*filter" and lines[-1] == "COMMIT"
    assert lines[1:3] == [":PICKET-NEW - [0:0]", ":PICKET-A - [0:0]"]  # declared: created, or flushed (--noflush)
    assert lines.index("-D FORWARD 2") < lines.index('-I FORWARD 1 -m comment --comment hook -j PICKET-FORWARD')
    assert "[5:6] -A PICKET-A -p tcp -m tcp --dport 80 -j RETURN" in lines  # counters carried by text
    assert "[0:0] -A PICKET-A -p tcp -j RETURN" in lines
    assert lines.index("-F PICKET-OLD") < lines.index("-X PICKET-OLD") < lines.index("COMMIT")


def test_a_legacy_table_that_does_not_exist_is_read_as_empty_without_creating_it(tmp_path: Path) -> None:
    """``ip6tables-legacy-save -t filter`` would create the table, and a legacy filter table
    hooks every packet of the node (e.g. after ``--cleanup`` on an nft node): not run then."""
    names = tmp_path / "ip6_tables_names"
    names.write_text("mangle\n")
    ran: list[tuple[str, ...]] = []

    class Recording(RestoreTables):
        def _run(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
            ran.append(argv)
            return subprocess.CompletedProcess(argv, 0, "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n", "")

    legacy = Recording(6, "legacy", legacy_names=str(names))
    assert legacy.read().chains == {} and ran == []
    assert Recording(6, "legacy", legacy_names=str(tmp_path / "absent")).read().chains == {} and ran == []
    names.write_text("mangle\nfilter\n")
    assert "FORWARD" in legacy.read().chains and ran == [("ip6tables-legacy-save", "-c", "-t", "filter")]
    nft = Recording(6, "nft", legacy_names=str(tmp_path / "absent"))
    nft._generations = None
    assert "FORWARD" in nft.read().chains and len(ran) == 2  # nft: its own table, always read


def test_generations_trust_only_our_own_commits() -> None:
    g = Generations()
    g.ours(10, 11)
    g.ours(11, 12)
    assert g.unchanged_but_by_us(10, 12) and g.unchanged_but_by_us(12, 12)
    assert not g.unchanged_but_by_us(10, 13)  # someone else committed after us
    g.ours(20, 22)  # two steps: someone else committed in between; not ours
    assert not g.unchanged_but_by_us(20, 22)


DUAL = compiled(
    [ep(pod("x/a", "10.0.0.2", "node-1", "fd00::2"),
        ingress=k8s(ING, ("NetworkPolicy x/p", (rule(proto=Protocol.TCP, port=("80",), peers=("s",)),)))),
     ep(pod("x/b", "10.0.0.3", "node-1", "fd00::3")),
     ep(pod("x/c", "fd00::4"), egress=k8s(EGR))],
    [ip_set("s", "10.0.0.3", "fd00::3"), net_set("n", ("fd00::/16", "10.0.0.0/8"), ("fd00::4/128",))],
)


def test_dual_stack_renders_each_family_with_its_own_addresses_and_sets() -> None:
    d = render(DUAL)
    assert d.v6 is not None and set(d.versions) == {"x/a", "x/b", "x/c"}
    v4 = d.save_text().split("# IPv6")[0]
    v6 = d.v6.save_text()
    assert "-d 10.0.0.2/32" in v4 and "fd00::" not in v4  # x/c (IPv6 only) has no IPv4 chains
    assert "-d fd00::2/128" in v6 and "-s fd00::4/128" in v6 and "10.0.0" not in v6
    six = naming.set_name("s", "hash:ip", 6)
    assert six.startswith("picket-6-") and naming.set_family(six) == 6 and naming.is_owned_set(six, 6)
    assert d.v6.sets[six].members == ("fd00::3",) and d.v6.sets[six].family == 6
    assert d.sets[naming.set_name("s", "hash:ip")].members == ("10.0.0.3",)
    assert f"create {six} hash:ip family inet6" in d.save_text()
    # ND and MLD return before the INVALID drop (conntrack calls them INVALID) and before any
    # policy, in FORWARD (and INPUT/OUTPUT for host endpoints); other INVALID ICMPv6 is dropped
    for t in (130, 131, 132, 133, 134, 135, 136, 143):
        assert forward(d, "fd00::3", "fd00::2", Protocol.ICMP, None, state="INVALID", icmp_type=t)
        assert forward(d, "fd00::3", "fd00::2", Protocol.ICMP, None, state="NEW", icmp_type=t)  # x/a denies ICMP
    assert not forward(d, "fd00::3", "fd00::2", Protocol.ICMP, None, state="INVALID", icmp_type=128)
    assert not forward(d, "fd00::3", "fd00::2", Protocol.ICMP, None, state="NEW", icmp_type=128)
    assert forward(d, "fd00::3", "fd00::2", Protocol.ICMP, None, state="ESTABLISHED", icmp_type=129)


def test_ipv6_neighbour_discovery_rules_are_walked_by_icmpv6_only() -> None:
    """The eight ND/MLD RETURNs sit behind one ``-p ipv6-icmp`` goto: an established TCP packet
    walks the hook rule, that goto and the conntrack ACCEPT (it walked all eight before it, for
    every packet of every connection), and a new TCP connection none of them either."""
    d = render(DUAL)
    assert d.v6 is not None
    established: list[tuple[str, int]] = []
    assert forward(d, "fd00::3", "fd00::2", Protocol.TCP, 80, visited=established, state="ESTABLISHED")
    assert established == [(naming.FORWARD_CHAIN, 0), (naming.FORWARD_CHAIN, 1)]
    new: list[tuple[str, int]] = []
    assert forward(d, "fd00::3", "fd00::2", Protocol.TCP, 80, visited=new)
    walked = [d.v6.chains[chain][i].text() for chain, i in new]
    assert walked and not any("icmpv6-type" in t for t in walked)
    nd: list[tuple[str, int]] = []
    assert forward(d, "fd00::3", "fd00::2", Protocol.ICMP, None, visited=nd, state="INVALID", icmp_type=143)
    assert sum("icmpv6-type" in d.v6.chains[chain][i].text() for chain, i in nd) == 8  # the last: MLDv2 143


def test_ipv6_input_lets_neighbour_discovery_of_an_egress_isolated_pod_through() -> None:
    # A pod resolves its gateway (the node's veth, fe80::1) with NS sent to the node: INPUT. An
    # egress deny-all must not take its neighbours away, so ND/MLD RETURN before the pod's egress.
    d = render(compiled([ep(pod("x/a", "10.0.0.2", "node-1", "fd00::2"), egress=k8s(EGR))]))
    assert d.v6 is not None
    for t in (130, 131, 132, 133, 134, 135, 136, 143):
        assert to_node(d, "fd00::2", "fe80::1", Protocol.ICMP, None, state="INVALID", icmp_type=t)
        assert to_node(d, "fd00::2", "fe80::1", Protocol.ICMP, None, icmp_type=t)
    assert not to_node(d, "fd00::2", "fe80::1", Protocol.ICMP, None, icmp_type=128)  # an echo request
    sub = d.v6.chains[naming.icmpv6_chain(naming.INPUT_CHAIN)]  # ND before the pod's egress
    nd = [i for i, r in enumerate(sub) if "--icmpv6-type" in r.text()]
    pods = next(i for i, r in enumerate(sub) if r.text().endswith(f"-j {naming.POD_EGRESS_CHAIN}"))
    assert len(nd) == 8 and max(nd) < pods
    assert not to_node(d, "fd00::2", "fd00::1", Protocol.TCP, 22) and not to_node(d, "10.0.0.2", "10.0.0.1",
                                                                                   Protocol.TCP, 22)


def test_ipv4_only_nodes_have_no_ipv6_state() -> None:
    assert render(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING))])).v6 is None


@pytest.mark.parametrize(("src", "dst", "port"), [("fd00::3", "fd00::2", 80), ("fd00::9", "fd00::2", 80),
                                                  ("fd00::3", "fd00::2", 81), ("fd00::4", "fd00::3", 80),
                                                  ("10.0.0.3", "10.0.0.2", 80), ("10.0.0.9", "10.0.0.2", 80)])
def test_both_families_decide_as_the_evaluator(src: str, dst: str, port: int) -> None:
    by_ip = {ip: er for er in DUAL.endpoints.values() for ip in er.endpoint.ips}
    want, _, _ = connection_allowed(by_ip.get(src), by_ip.get(dst), src, dst, Protocol.TCP, port, DUAL.peer_sets)
    assert forward(render(DUAL), src, dst, Protocol.TCP, port) == want


def test_ipv6_dispatch_tree_reaches_every_pod() -> None:
    eps = [ep(pod(f"ns/p{i}", f"fd00:{i % 3}::{i:x}"), ingress=k8s(ING, *(
        (("NetworkPolicy p", (rule(),)),) if i % 2 else ()))) for i in range(60)]
    c = compiled(eps)
    d = render(c)
    assert d.v6 is not None and any(n.startswith("PICKET-DISP-") for n in d.v6.chains)
    assert all(len(r) <= 20 for r in d.v6.chains.values())
    for i in range(60):
        ip = f"fd00:{i % 3}::{i:x}"
        assert forward(d, "fd00:99::1", ip, Protocol.TCP, 80) == bool(i % 2), i


@pytest.mark.parametrize(("kind", "member", "nomatch"), [
    ("hash:ip", "fd00::1", False), ("hash:net", "fd00::/64", False), ("hash:net", "fd00::7/128", True),
    ("hash:ip,port", "fd00::1,tcp:80", False)])
def test_inet6_entries_round_trip(kind: str, member: str, nomatch: bool) -> None:
    packed = wire.entry_data(kind, member, nomatch)
    assert wire.entry_text(kind, wire.dumped_entry(kind, member, nomatch)) == (member, nomatch)
    assert socket.inet_pton(socket.AF_INET6, member.split(",")[0].split("/")[0]) in packed
    create = wire.create_message(7, "picket-6-x", kind, 1, 65536, 1, family=6)
    assert wire.attr(wire.A_FAMILY, bytes([wire.NFPROTO_IPV6])) in create


def test_drop_log_reads_ipv6_packets() -> None:
    header = struct.pack("!IHBB16s16s", 6 << 28, 20, 6, 64, socket.inet_pton(socket.AF_INET6, "fd00::3"),
                         socket.inet_pton(socket.AF_INET6, "fd00::2"))
    assert describe_ipv4(header + struct.pack("!HH", 40000, 80) + b"\0" * 16) == ("fd00::3", "fd00::2", "tcp/80")


class FakeTables:
    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name, self.table = log, name, SavedTable()

    def locked(self) -> object:
        return contextlib.nullcontext()

    def read(self) -> SavedTable:
        self.log.append(f"{self.name} read")
        return self.table

    def read_if_holding(self, chains: Mapping[str, tuple[IptRule, ...]], hooks: Mapping[str, IptRule]) -> None:
        return None

    def write(self, plan: TablePlan, saved: SavedTable) -> None:
        self.log.append(f"{self.name} write")

    def forget_sets(self, names: set[str]) -> None:
        pass


class FakeSets:
    def __init__(self, log: list[str], name: str, have: dict[str, ActualSet]) -> None:
        self.log, self.name, self.have = log, name, have

    def list_owned(self, expected: Mapping[str, SetSpec] | None = None) -> dict[str, ActualSet]:
        return dict(self.have)

    def create(self, specs: Sequence[SetSpec]) -> None:
        self.log.append(f"{self.name} create {len(specs)}")

    def replace(self, specs: Sequence[SetSpec]) -> None:
        self.log.append(f"{self.name} replace")

    def destroy_quietly(self, names: list[str] | tuple[str, ...]) -> list[str]:
        self.log += [f"{self.name} destroy {n}" for n in names]
        return []


class FakeLeftovers:
    def __init__(self, log: list[str]) -> None:
        self.log, self.left = log, True

    def present(self) -> bool:
        return self.left

    def remove(self) -> int:
        self.log.append("legacy removed")
        self.left = False
        return 3


def test_migration_removes_legacy_chains_after_the_new_commit_and_before_unused_sets_go() -> None:
    log: list[str] = []
    stale = {"picket-stale": ActualSet("hash:ip", frozenset())}
    v4 = Applier(FakeTables(log, "v4"), FakeSets(log, "v4", stale), FakeLeftovers(log))  # type: ignore[arg-type]
    v6 = Applier(FakeTables(log, "v6"), FakeSets(log, "v6", {}))  # type: ignore[arg-type]
    node = NodeDataplane(v4, v6)
    d = render(DUAL)
    report = node.apply(d)
    assert log.index("v4 write") < log.index("legacy removed") < log.index("v4 destroy picket-stale")
    assert "v6 write" in log and report.legacy_chains_removed == 3
    assert "legacy chains removed=3" in report.summary()
    log.clear()
    node.apply(d, d, verify=True)
    assert "legacy removed" not in log  # nothing left to migrate


def test_an_ipv4_only_state_leaves_ipv6_alone_once_it_is_known_clean() -> None:
    log: list[str] = []
    v4 = Applier(FakeTables(log, "v4"), FakeSets(log, "v4", {}))  # type: ignore[arg-type]
    v6 = Applier(FakeTables(log, "v6"), FakeSets(log, "v6", {}))  # type: ignore[arg-type]
    node = NodeDataplane(v4, v6)
    only4 = render(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING))]))
    node.apply(only4)
    assert "v6 read" in log  # the first sync looks for IPv6 leftovers
    log.clear()
    node.apply(only4, only4, verify=True)
    assert not [e for e in log if e.startswith("v6")]
    node.apply(render(DUAL), only4, verify=True)
    assert "v6 write" in log


def test_plan_of_an_ipv6_state_against_an_empty_table_creates_every_chain() -> None:
    d = render(DUAL).v6
    assert isinstance(d, Desired)
    plan = plan_table(d, SavedTable())
    assert set(plan.create) == set(d.chains) and set(plan.hook_inserts) == {"FORWARD", "INPUT", "OUTPUT"}


AUDITED = compiled(
    [EndpointRules(pod("x/a", "10.0.0.2", "node-1", "fd00::2"),
                   ingress=k8s(ING, ("NetworkPolicy x/allow-b", (rule(peers=("b",)),))),
                   staged_ingress=k8s(ING, ("NetworkPolicy x/allow-b", (rule(peers=("b",)),)),
                                      ("NetworkPolicy x/only-80", (rule(proto=Protocol.TCP, port=("80",)),)))),
     EndpointRules(pod("x/b", "10.0.0.3", "node-1", "fd00::3"), staged_egress=k8s(EGR)),
     ep(pod("x/c", "10.0.0.4"))],
    [ip_set("b", "10.0.0.3", "fd00::3")],
)


@pytest.mark.parametrize("family", [4, 6])
@pytest.mark.parametrize(("src", "dst", "port"), [("x/b", "x/a", 80), ("x/c", "x/a", 80), ("x/c", "x/a", 81),
                                                  ("x/b", "x/c", 80), ("x/c", "x/b", 80)])
def test_audit_chains_never_drop_and_enter_a_would_drop_chain_exactly_when_the_staged_rules_deny(
    src: str, dst: str, port: int, family: int
) -> None:
    if family == 6 and "x/c" in (src, dst):
        return  # x/c is IPv4 only
    d = render(AUDITED)
    ips = {k: next(ip for ip in e.endpoint.ips if (":" in ip) == (family == 6)) for k, e in AUDITED.endpoints.items()
           if any((":" in ip) == (family == 6) for ip in e.endpoint.ips)}
    s, t = AUDITED.endpoints[src], AUDITED.endpoints[dst]
    enforced, _, _ = connection_allowed(s, t, ips[src], ips[dst], Protocol.TCP, port, AUDITED.peer_sets)
    staged_view = AUDITED.staged()
    would, _, _ = connection_allowed(staged_view.endpoints[src], staged_view.endpoints[dst], ips[src], ips[dst],
                                        Protocol.TCP, port, AUDITED.peer_sets)
    trace: list[str] = []
    assert forward(d, ips[src], ips[dst], Protocol.TCP, port, trace) == enforced
    table = d.v6 if family == 6 else d
    assert table is not None
    audit_drops = {r.chain for r in table.drops.values() if r.audit}
    assert bool(audit_drops & set(trace)) == (not would), trace
    for chain in audit_drops:
        assert [r.target for r in table.chains[chain]] == ["NFLOG", "RETURN"]


def test_audit_drop_reasons_name_the_staged_policy() -> None:
    reasons = [r.reason for r in render(AUDITED).drops.values() if r.audit]
    assert "no policy of tier k8s allows it (staged: NetworkPolicy x/only-80)" in reasons
    assert all(not r.audit for r in render(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING))])).drops.values())


def test_backend_setting_from_flag_env_or_auto() -> None:
    from picket_agent.kernel.backend import choose
    from picket_agent.settings import SettingsError, parse_settings

    assert parse_settings([], {}).iptables_backend == "auto"
    assert parse_settings([], {"PICKET_IPTABLES_BACKEND": "nft"}).iptables_backend == "nft"
    assert parse_settings(["--iptables-backend", "legacy"], {"PICKET_IPTABLES_BACKEND": "nft"}).iptables_backend \
        == "legacy"
    with pytest.raises(SettingsError):
        parse_settings([], {"PICKET_IPTABLES_BACKEND": "bpf"})
    assert choose("nft").mode == "nft" and "iptables-nft-save" in choose("nft").advice()


def test_a_node_without_ip6tables_still_enforces_ipv4_and_fails_only_when_ipv6_is_needed() -> None:
    class Broken(FakeTables):
        def read(self) -> SavedTable:
            raise OSError("ip6tables-nft-save: not found")

    log: list[str] = []
    v4 = Applier(FakeTables(log, "v4"), FakeSets(log, "v4", {}))  # type: ignore[arg-type]
    v6 = Applier(Broken(log, "v6"), FakeSets(log, "v6", {}))  # type: ignore[arg-type]
    node = NodeDataplane(v4, v6)
    only4 = render(compiled([ep(pod("x/a", "10.0.0.2"), ingress=k8s(ING))]))
    report = node.apply(only4)
    assert "v4 write" in log and any("IPv6 table not checked" in p for p in report.problems)
    with pytest.raises(OSError):
        node.apply(render(DUAL), only4)
