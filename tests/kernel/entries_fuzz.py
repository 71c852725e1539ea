"""Fuzz ``entries`` and ``tableblob`` against the kernel: run INSIDE a throwaway node namespace.

``tests/kernel/test_agent_entries_fuzz.py`` starts ``python -m tests.kernel.entries_fuzz`` in a
``pkt-agf-*`` namespace (made once per test), so every example below talks to a private filter
table and private ipsets; nothing here touches the machine's own namespace. Hypothesis runs in
this process (``derandomize``: the same examples on every run; no example database) and each
example:

1. draws a random but valid compiled state from the renderer's real input types (pods, some
   dual-stack; host endpoints with interfaces, ``+`` wildcards and addresses; tiers with every
   default; Allow/Deny/Pass/Log rules with every protocol, ``notProtocol``, single ports, ranges,
   port lists long enough for several multiport matches, ``notPorts``, named ports, peer and
   ``notPeers`` ipsets of every kind with members and excepts of both families; staged (audit)
   rule sets; policy, pod and host names up to the Kubernetes lengths, or free text with quotes
   and backslashes; sometimes a crowd of pods, so the dispatch tree's CIDR rules appear) and
   random settings (drop logging, NFLOG group, host rules on FORWARD);
2. empties the table and the ipsets, renders the state and applies it (``Applier``);
3. checks every rule: ``entries.assemble`` == python-iptables' own build, byte for byte (an NFLOG
   rule is compared with an ACCEPT target: python-iptables corrupts its heap building NFLOG,
   and the process crashes later; the kernel checks below cover the NFLOG target's bytes);
4. checks the kernel holds exactly the rendered text (``iptables-legacy-save``), then, after a
   possible foreign FORWARD rule and some counted packets, that the quick verify
   (``read_if_holding``, one ``IPT_SO_GET_ENTRIES`` compared as bytes) reads the same rules and
   counters as ``iptables-legacy-save``;
5. makes one random change in one of picket's chains with ``iptables-legacy`` (insert a rule,
   delete one, or replace one with a copy differing in one field: a port, the comment, an
   address, the interface, the protocol, the verdict, goto/jump), confirms with
   ``iptables-legacy-save`` that the chain now differs, and checks the quick verify gives up (None).

On success prints a JSON summary (examples, rules compared, the shapes seen) for the parent
test to check coverage; a failure raises with Hypothesis' shrunk example.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from picket.model import (
    Action,
    Compiled,
    Direction,
    Endpoint,
    EndpointKind,
    EndpointRules,
    PeerSet,
    PeerSetKind,
    PolicyRules,
    PortRange,
    Protocol,
    Rule,
    RuleSet,
    Tier,
)
from picket_agent.rendering import naming
from picket_agent.rendering.desired import Desired, RenderSettings
from picket_agent.rendering.iptrules import IptRule
from picket_agent.rendering.renderer import render

NODE_IP = "192.168.75.1"  # the test gives the node namespace this address (on lo)
SAVE = "iptables-legacy-save"
TOOL = "iptables-legacy"
EMPTY_FILTER = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"

# --- the compiled state ---------------------------------------------------------------------

_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_FREE = _LOWER + "ABCXYZ -_./:#\"'\\"  # free text: spaces, quotes, backslashes (quoted by iptables-save)


def _name(max_size: int, alphabet: str = _LOWER + "-.") -> st.SearchStrategy[str]:
    """A Kubernetes-like name: short usually, sometimes up to the limit (long comments)."""
    short = st.text(alphabet, min_size=1, max_size=12)
    long = st.integers(max(1, max_size - 40), max_size).flatmap(lambda n: st.text(alphabet, min_size=n, max_size=n))
    return st.one_of(short, short, long)


_policy_names = st.one_of(
    st.builds("{} {}/{}".format, st.sampled_from(["NetworkPolicy", "StagedNetworkPolicy"]), _name(63, _LOWER + "-"),
              _name(253)),
    st.builds("{} {}".format, st.sampled_from(["GlobalNetworkPolicy", "ClusterNetworkPolicy"]), _name(253)),
    st.text(_FREE, min_size=1, max_size=60),
)
_v4_ints = st.integers(0x0A000001, 0x0AFFFFFE)  # 10.0.0.0/8
_v4 = _v4_ints.map(lambda n: str(ipaddress.IPv4Address(n)))
_v6 = st.integers(1, 2**112 - 1).map(lambda n: str(ipaddress.IPv6Address((0xFD00 << 112) | n)))
_v4_net = st.builds(lambda a, p: str(ipaddress.IPv4Network((a, p), strict=False)),
                    st.integers(0, 2**32 - 1), st.integers(0, 32))
_v6_net = st.builds(lambda a, p: str(ipaddress.IPv6Network((a, p), strict=False)),
                    st.integers(0, 2**128 - 1), st.integers(0, 128))
_port_ranges = st.builds(lambda a, span: PortRange(a, min(65535, a + span)), st.integers(1, 65535),
                         st.one_of(st.just(0), st.just(0), st.integers(1, 3000)))
_port_lists = st.one_of(
    st.just(()), st.just(()),
    st.lists(_port_ranges, min_size=1, max_size=3).map(tuple),
    st.lists(_port_ranges, min_size=12, max_size=24).map(tuple),  # several multiport matches (15 slots each)
)
PEERS = ("ips", "ips2", "net", "net2", "np", "missing")
_protocols = st.sampled_from([None, None, Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.ICMP])
_PORT_PROTOCOLS = (Protocol.TCP, Protocol.UDP, Protocol.SCTP)
_rules = st.builds(
    Rule,
    action=st.sampled_from(list(Action)),
    protocol=_protocols,
    ports=_port_lists,
    named_ports=st.sampled_from([None, None, None, "np", "missing"]),
    peers=st.lists(st.sampled_from(PEERS), max_size=2, unique=True).map(tuple),
    not_protocol=st.sampled_from([None, None, None, None, *Protocol]),
    not_ports=st.one_of(st.just(()), st.just(()), st.just(()), _port_lists),
    not_peers=st.lists(st.sampled_from(PEERS), max_size=2, unique=True).map(tuple),
).map(lambda r: r if r.protocol in _PORT_PROTOCOLS or len(r.not_ports) % 4 != 1 else replace(r, not_ports=()))
# (notPorts needs a port protocol; a few rules without one stay: their endpoint is reported and skipped)
_policies = st.builds(PolicyRules, _policy_names, st.lists(_rules, max_size=3).map(tuple))
_tiers = st.builds(Tier, st.one_of(st.sampled_from(["admin", "k8s", "default"]), _name(40)),
                   st.lists(_policies, max_size=2).map(tuple),
                   st.sampled_from([Action.DENY, Action.ALLOW, Action.PASS]))


def _rule_sets(direction: Direction) -> st.SearchStrategy[RuleSet | None]:
    built = st.builds(RuleSet, st.just(direction), st.lists(_tiers, min_size=1, max_size=2).map(tuple))
    return st.one_of(st.none(), built, built)


_ifaces = st.builds(lambda name, wild: name[:14] + "+" if wild else name,
                    st.text(_LOWER + "-.", min_size=1, max_size=15), st.booleans())


@st.composite
def _endpoints(draw: st.DrawFn) -> list[EndpointRules]:
    out: list[EndpointRules] = []
    v4s = draw(st.lists(_v4, min_size=1, max_size=3, unique=True))
    for ip in v4s:
        ns, name = draw(_name(63, _LOWER + "-")), draw(_name(253))
        ips = (ip, draw(_v6)) if draw(st.booleans()) else (ip,)
        staged = draw(st.booleans())
        out.append(EndpointRules(
            Endpoint(EndpointKind.POD, ns, name, "n1", ips),
            draw(_rule_sets(Direction.INGRESS)), draw(_rule_sets(Direction.EGRESS)),
            draw(_rule_sets(Direction.INGRESS)) if staged else None,
            draw(_rule_sets(Direction.EGRESS)) if staged else None,
        ))
    for _ in range(draw(st.integers(0, 2))):
        iface = draw(st.one_of(st.just(""), _ifaces))
        ips = tuple(draw(st.lists(st.one_of(_v4, st.just(NODE_IP)), max_size=2, unique=True)))
        out.append(EndpointRules(Endpoint(EndpointKind.HOST, "", draw(_name(253)), "n1", ips, iface),
                                 draw(_rule_sets(Direction.INGRESS)), draw(_rule_sets(Direction.EGRESS))))
    if draw(st.integers(0, 3)) == 0:  # a crowd: more pods than a dispatch chain holds (CIDR block rules)
        base = draw(st.integers(0x0A000000, 0x0AFFF000)) & ~0xFFF
        offsets = draw(st.lists(st.integers(1, 0xFFE), min_size=17, max_size=40, unique=True))
        ingress = draw(st.booleans())  # blocks by destination (ingress) or by source (egress)
        deny = RuleSet(Direction.INGRESS if ingress else Direction.EGRESS, (Tier("k8s", (), Action.DENY),))
        for n, offset in enumerate(offsets):
            ip = str(ipaddress.IPv4Address(base + offset))
            if ip not in v4s:
                crowd = Endpoint(EndpointKind.POD, "crowd", f"p{n}", "n1", (ip,))
                out.append(EndpointRules(crowd, deny, None) if ingress else EndpointRules(crowd, None, deny))
    return out


@st.composite
def states(draw: st.DrawFn) -> tuple[Compiled, RenderSettings]:
    endpoints = draw(_endpoints())
    pod_ips = [ip for e in endpoints for ip in e.endpoint.ips]
    addresses = st.one_of(st.sampled_from(pod_ips), _v4, _v6)
    nets = st.one_of(_v4_net, _v6_net)
    ports = st.builds("{},{}:{}".format, addresses, st.sampled_from(["tcp", "udp", "sctp"]), st.integers(1, 65535))
    candidates = [
        PeerSet("ips", PeerSetKind.IP, tuple(draw(st.lists(addresses, max_size=5, unique=True)))),
        PeerSet("ips2", PeerSetKind.IP, tuple(draw(st.lists(addresses, max_size=3, unique=True)))),
        PeerSet("net", PeerSetKind.NET, tuple(draw(st.lists(nets, max_size=4, unique=True))),
                tuple(draw(st.lists(nets, max_size=3, unique=True)))),
        PeerSet("net2", PeerSetKind.NET, tuple(draw(st.lists(nets, max_size=2, unique=True)))),
        PeerSet("np", PeerSetKind.IP_PORT, tuple(draw(st.lists(ports, max_size=4, unique=True)))),
    ]
    sets = [s for s in candidates if draw(st.booleans()) or s.name == "np"]  # "missing" never exists
    settings_ = RenderSettings(nflog_group=draw(st.integers(0, 65535)), log_drops=draw(st.booleans()),
                               host_apply_on_forward=draw(st.booleans()))
    return Compiled({e.endpoint.key: e for e in endpoints}, {s.name: s for s in sets}), settings_


# --- one example against the kernel -------------------------------------------------------------


def sh(*argv: str, input: str | None = None) -> str:
    proc = subprocess.run(list(argv), capture_output=True, text=True, input=input, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def argv_of(rule: IptRule) -> list[str]:
    """``iptables`` arguments for ``rule`` (built from its fields, no text quoting involved)."""
    out: list[str] = []
    for flag, value in (("-s", rule.src), ("-d", rule.dst), ("-i", rule.in_iface), ("-o", rule.out_iface)):
        if value:
            out += [flag, value]
    if rule.protocol:
        out += [*(["!"] if rule.not_protocol else []), "-p", rule.protocol]
    for m in rule.matches:
        out += ["-m", m.name]
        for p in m.params:
            out += [*(["!"] if p.negated else []), f"--{p.option}", *p.values]
    if rule.comment:
        out += ["-m", "comment", "--comment", rule.comment]
    out += ["-g" if rule.goto else "-j", rule.target]
    for p in rule.target_params:
        out += [f"--{p.option}", *p.values]
    return out


def shapes(rule: IptRule) -> set[str]:
    """Tags for the coverage summary."""
    tags = {f"p:{'!' if rule.not_protocol else ''}{rule.protocol}"}
    tags |= {f"m:{m.name}{'!' if any(p.negated for p in m.params) else ''}" for m in rule.matches}
    tags |= {f"set:{p.values[1]}" for m in rule.matches if m.name == "set" for p in m.params}
    tags |= {"multiport>1" for m in rule.matches if m.name == "multiport" and "," in m.params[0].values[0]}
    tags |= {"range" for m in rule.matches for p in m.params if ":" in p.values[0] and m.name != "set"}
    if rule.goto:
        tags.add("goto")
    if rule.target == "NFLOG":
        tags.add("nflog+matches" if rule.matches or rule.comment else "nflog")
    for field, value in (("src", rule.src), ("dst", rule.dst)):
        if value:
            tags.add(f"{field}/{'cidr' if '/' in value else '32'}")
    for field, value in (("in", rule.in_iface), ("out", rule.out_iface)):
        if value:
            tags.add(f"{field}{'+' if value.endswith('+') else ''}")
    if len(rule.comment.encode()) > 255:
        tags.add("comment>255")
    if any(c in rule.comment for c in "\"'\\"):
        tags.add("comment-quoted")
    return tags



MUTATIONS = ("port", "comment", "src", "dst", "in", "proto", "verdict", "goto")


def _port_matches(rule: IptRule) -> list[int]:
    return [i for i, m in enumerate(rule.matches) if m.params[0].option in ("dport", "dports")]


def mutable(what: str, rule: IptRule) -> bool:
    """Whether ``rule`` can take mutation ``what`` and stay a rule iptables accepts."""
    if what == "port":
        return bool(_port_matches(rule))
    if what == "proto":
        return not rule.protocol and not rule.matches
    if what == "verdict":
        return rule.target in ("ACCEPT", "DROP", "RETURN")
    if what == "goto":
        return rule.target not in ("ACCEPT", "DROP", "RETURN", "NFLOG")
    return True


def mutated(what: str, rule: IptRule, draw: Callable[[st.SearchStrategy[Any]], Any]) -> IptRule:
    """``rule`` with ONE field changed (the kernel's bytes and the save text must both differ)."""
    if what == "comment":
        return replace(rule, comment=draw(st.text(_FREE, min_size=1, max_size=40).filter(lambda t: t != rule.comment)))
    if what in ("src", "dst"):
        current = getattr(rule, what)
        # (never a /0: "-s 0.0.0.0/0" is the same rule as no -s at all)
        address = draw(st.one_of(_v4, _v4_net.filter(lambda a: not a.endswith("/0")))
                       .filter(lambda a: a.split("/")[0] != current.split("/")[0]))
        return replace(rule, **{what: address})
    if what == "in":
        return replace(rule, in_iface=draw(_ifaces.filter(lambda i: i != rule.in_iface)), out_iface="")
    if what == "port":
        index = draw(st.sampled_from(_port_matches(rule)))
        match = rule.matches[index]
        port = draw(st.integers(1, 65535).map(str).filter(lambda p: p != match.params[0].values[0]))
        changed = replace(match, params=(replace(match.params[0], values=(port,)), *match.params[1:]))
        return replace(rule, matches=(*rule.matches[:index], changed, *rule.matches[index + 1:]))
    if what == "proto":
        return replace(rule, protocol=draw(st.sampled_from(["tcp", "udp", "sctp", "icmp"])))
    if what == "verdict":
        verdicts = [v for v in ("ACCEPT", "DROP", "RETURN") if v != rule.target]
        return replace(rule, target=draw(st.sampled_from(verdicts)))
    return replace(rule, goto=not rule.goto)


class Run:
    """The per-process state: the python-iptables modules (imported once) and the summary."""

    def __init__(self, tmp: str) -> None:
        from picket_agent.kernel import entries
        from picket_agent.kernel.applier import Applier
        from picket_agent.kernel.ipsets import IpsetIO
        from picket_agent.kernel.iptables import IptablesIO

        self.entries, self.Applier, self.IpsetIO, self.IptablesIO = entries, Applier, IpsetIO, IptablesIO
        self.tmp = tmp
        self.lock = os.path.join(tmp, "xtables.lock")  # our own: the table is private, others' runs never wait
        self.summary: Counter[str] = Counter()

    def reset(self) -> None:
        sh("iptables-legacy-restore", input=EMPTY_FILTER)
        sh("ipset", "destroy")

    def example(self, compiled: Compiled, settings_: RenderSettings, data: st.DataObject) -> None:
        note(json.dumps(compiled.to_dict()))
        note(repr(settings_))
        foreign = data.draw(st.sampled_from(["none", "first", "last"]), label="foreign FORWARD rule")
        io, desired = self.check(compiled, settings_, foreign)
        self.check_drift(io, desired, data)

    def check(self, compiled: Compiled, settings_: RenderSettings, foreign: str = "none") -> tuple[Any, Desired]:
        """Steps 2-4 of the module docstring for one state (raises AssertionError on a mismatch)."""
        self.reset()
        desired = render(compiled, settings_)
        io = self.IptablesIO(self.lock)
        sets = self.IpsetIO()
        try:
            self.Applier(io, sets).apply(desired)
        finally:
            sets.close()
        self.summary["examples"] += 1
        self.summary["failed endpoints"] += len(desired.failed)
        self.compare_entries(io, desired)
        self.check_kernel_holds(io, desired)
        self.check_quick_verify(io, desired, foreign)
        return io, desired

    def compare_entries(self, io: Any, desired: Desired) -> None:
        for rule in [r for rules in desired.chains.values() for r in rules] + list(desired.hooks.values()):
            self.summary.update(f"shape {t}" for t in shapes(rule))
            if rule.target == "NFLOG":  # python-iptables corrupts its heap building NFLOG (a crash later)
                rule = replace(rule, target="ACCEPT", target_params=())
            assembled, built = self.entries.assemble(rule, io._match_bytes), bytes(io._build(rule).rule)
            assert assembled == built, f"{rule.text()!r}: assembled\n{assembled.hex()}\n!= built\n{built.hex()}"
            self.summary["rules compared"] += 1

    def check_kernel_holds(self, io: Any, desired: Desired) -> None:
        exact = io.read()
        owned = {c for c in exact.chains if naming.is_owned_chain(c)}
        assert owned == set(desired.chains), sorted(owned ^ set(desired.chains))
        for chain, rules in desired.chains.items():
            assert exact.rules(chain) == [r.text() for r in rules], (chain, exact.rules(chain))
        for hook, rule in desired.hooks.items():
            assert exact.rules(hook) == [rule.text()], (hook, exact.rules(hook))

    def check_quick_verify(self, io: Any, desired: Desired, foreign: str) -> None:
        if foreign != "none":
            where = ["-I", "FORWARD", "1"] if foreign == "first" else ["-A", "FORWARD"]
            sh(TOOL, *where, "-m", "comment", "--comment", "foreign", "-j", "RETURN")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:  # counted in OUTPUT and INPUT
            for address in ("127.0.0.1", NODE_IP):
                sock.sendto(b"picket", (address, 9))
        quick, exact = io.read_if_holding(desired.chains, desired.hooks), io.read()
        assert quick is not None, "the quick verify gave up on an unchanged table"
        for chain in desired.chains:
            assert quick.chains[chain] == exact.chains[chain], (chain, quick.chains[chain], exact.chains[chain])
        for builtin, hook in desired.hooks.items():
            q, e = quick.chains[builtin], exact.chains[builtin]
            assert [c for c, _ in q] == [c for c, _ in e], (builtin, q, e)
            assert [t == hook.text() for _, t in q] == [t == hook.text() for _, t in e], (builtin, q, e)
        counted = [c for rules in exact.chains.values() for c, _ in rules if c != (0, 0)]
        self.summary["examples with counters"] += bool(counted)
        self.summary["owned rules with counters"] += sum(
            1 for chain in desired.chains for c, _ in exact.chains[chain] if c != (0, 0))

    def check_drift(self, io: Any, desired: Desired, data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["replace", "delete", "insert"]), label="drift")
        if kind == "insert":
            chain = data.draw(st.sampled_from(sorted(desired.chains)), label="chain")
            position = data.draw(st.integers(1, len(desired.chains[chain]) + 1), label="position")
            extra = IptRule(data.draw(st.sampled_from(["ACCEPT", "DROP", "RETURN"])),
                            comment=data.draw(st.one_of(st.just(""), st.text(_FREE, max_size=30))),
                            src=data.draw(st.one_of(st.just(""), _v4)),
                            protocol=data.draw(st.sampled_from(["", "udp"])))
            sh(TOOL, "-I", chain, str(position), *argv_of(extra))
        else:
            what = data.draw(st.sampled_from(MUTATIONS), label="mutation") if kind == "replace" else ""
            spots = [(c, i) for c in sorted(desired.chains) for i, r in enumerate(desired.chains[c], 1)
                     if not what or mutable(what, r)]
            if not spots:  # e.g. no rule with a port: a comment then (any rule takes one)
                what = "comment"
                spots = [(c, i) for c in sorted(desired.chains) for i in range(1, len(desired.chains[c]) + 1)]
            chain, position = data.draw(st.sampled_from(spots), label="rule")
            if kind == "delete":
                sh(TOOL, "-D", chain, str(position))
            else:
                kind = f"replace {what}"
                sh(TOOL, "-R", chain, str(position), *argv_of(mutated(what, desired.chains[chain][position - 1],
                                                                      data.draw)))
        self.summary[f"drift {kind}"] += 1
        rules = [r.text() for r in desired.chains[chain]]
        assert io.read().rules(chain) != rules, f"{kind} of {chain}:{position} changed nothing"
        assert io.read_if_holding(desired.chains, desired.hooks) is None, f"{kind} of {chain}:{position} not seen"


def cases() -> None:
    """``--cases``: the checks (no drift) for each state on stdin, ``[[compiled, settings], ...]``
    (settings as ``RenderSettings`` keyword arguments); prints the failure of each, or null."""
    run = Run(tempfile.mkdtemp(prefix="pkt-agf-"))
    out: list[str | None] = []
    try:
        for state, kwargs in json.load(sys.stdin):
            try:
                run.check(Compiled.from_dict(state), RenderSettings(**kwargs))
                out.append(None)
            except AssertionError as exc:
                out.append(str(exc))
    finally:
        run.reset()
        shutil.rmtree(run.tmp, ignore_errors=True)
    print(json.dumps(out))


def main() -> None:
    if sys.argv[1:] == ["--cases"]:
        return cases()
    examples = int(os.environ.get("PICKET_FUZZ_EXAMPLES", "100"))
    run = Run(tempfile.mkdtemp(prefix="pkt-agf-"))

    shrink = os.environ.get("PICKET_FUZZ_SHRINK", "1") != "0"  # 0: report the first failure as found (faster)
    phases = [p for p in Phase if shrink or p is not Phase.shrink]

    @settings(max_examples=examples, deadline=None, derandomize=True, database=None, print_blob=False,
              suppress_health_check=list(HealthCheck), phases=phases)
    @given(states(), st.data())
    def fuzz(state: tuple[Compiled, RenderSettings], data: st.DataObject) -> None:
        run.example(*state, data)

    try:
        fuzz()
    finally:
        run.reset()
        shutil.rmtree(run.tmp, ignore_errors=True)
    print(json.dumps(dict(run.summary)))


if __name__ == "__main__":
    sys.exit(main())
