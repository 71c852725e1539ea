"""The hand-packed ipset messages against the kernel, both families (``pkt-agi-*``).

``ipsetwire`` packs CREATE/ADD messages and parses LIST dumps itself (see its docstring for why).
Inside a throwaway namespace, random members of every set kind and family (seeded, a few
hundred entries, ``nomatch`` excepts included) are created through ``IpsetIO``; what the
``ipset`` tool then lists must be exactly those members, and ``IpsetIO.list_owned`` must read
back exactly the same, both when comparing packed entries with the expected spec and when
decoding every entry (no spec).
"""

from __future__ import annotations

import json
import sys

import pytest

from tests.kernel.netns_topology import ENV, Topology, sh

pytestmark = pytest.mark.kernel

SCRIPT = r"""
import ipaddress, json, random, subprocess
from picket.model import PeerSetKind
from picket_agent.kernel.ipsets import IpsetIO
from picket_agent.rendering.desired import SetSpec
from picket_agent.rendering import naming

rnd = random.Random(14)
def addr(family):
    if family == 4:
        return str(ipaddress.IPv4Address(rnd.randrange(1, 2**32 - 1)))
    return str(ipaddress.IPv6Address(rnd.randrange(1, 2**128 - 1)))
def net(family):
    prefix = rnd.randrange(8, 33 if family == 4 else 129)
    return str(ipaddress.ip_network(f"{addr(family)}/{prefix}", strict=False))
results = []
for family in (4, 6):
    io = IpsetIO(family)
    specs = []
    for kind in PeerSetKind:
        for n in range(3):
            if kind is PeerSetKind.IP:
                members = {addr(family) for _ in range(40)}
            elif kind is PeerSetKind.NET:
                members = {net(family) for _ in range(40)}
            else:
                members = {f"{addr(family)},{rnd.choice(['tcp', 'udp', 'sctp'])}:{rnd.randrange(1, 65536)}"
                           for _ in range(40)}
            nomatch = tuple(sorted({net(family) for _ in range(5)} - members)) if kind is PeerSetKind.NET else ()
            name = naming.set_name(f"fuzz-{kind.value}-{n}", kind.value, family)
            specs.append(SetSpec(name, kind, tuple(sorted(members)), nomatch, "fuzz", family))
    io.create(specs)
    listed = subprocess.run(["ipset", "save"], capture_output=True, text=True, check=True).stdout.splitlines()
    for spec in specs:
        tool = {l.split(" ", 2)[2] for l in listed if l.startswith(f"add {spec.name} ")}
        want = set(spec.members) | {f"{m} nomatch" for m in spec.nomatch}
        # ipset prints a host route of hash:net without its prefix
        full = "/32" if family == 4 else "/128"
        tool = {t.replace(full, "") if spec.kind is PeerSetKind.NET else t for t in tool}
        want = {w.replace(full, "") if spec.kind is PeerSetKind.NET else w for w in want}
        created = any(l.startswith(f"create {spec.name} ") and ("inet6" in l) == (family == 6) for l in listed)
        results.append({"name": spec.name, "tool_agrees": tool == want and created})
    decoded = io.list_owned()
    compared = io.list_owned({s.name: s for s in specs})
    for spec in specs:
        results.append({"name": spec.name,
                        "decoded": decoded[spec.name].members == frozenset(spec.members)
                        and decoded[spec.name].nomatch == frozenset(spec.nomatch),
                        "compared": compared[spec.name].members == frozenset(spec.members)})
    if any(naming.set_family(n) != family for n in decoded):
        results.append({"name": "family filter", "wrong": sorted(decoded)})
print(json.dumps(results))
"""


def test_packed_messages_of_both_families_equal_what_the_kernel_and_the_ipset_tool_hold() -> None:
    topo = Topology("agi")
    try:
        topo.add_node("n1", "192.168.79.1")
        argv = ("ip", "netns", "exec", topo.ns("n1"), "env", f"PYTHONPATH={ENV['PYTHONPATH']}", sys.executable, "-c",
                SCRIPT)
        results = json.loads(sh(*argv, timeout=120).stdout)
    finally:
        topo.destroy()
    assert len(results) == 2 * 2 * 9
    bad = [r for r in results if not all(v is True for k, v in r.items() if k != "name")]
    assert not bad, bad


ZERO_SCRIPT = r"""
import json
from picket.model import Direction, PeerSet, PeerSetKind
from picket_agent.kernel.ipsets import IpsetError, IpsetIO
from picket_agent.rendering import naming
from picket_agent.rendering.desired import SetSpec
from picket_agent.rendering.renderer import render
from tests.unit.agent.agent_builders import compiled, ep, k8s, pod, rule

c = compiled([ep(pod("x/a", "10.0.0.2", "node-1", "fd00::2"),
                 egress=k8s(Direction.EGRESS, ("NetworkPolicy x/p", (rule(peers=("all",)),))))],
             [PeerSet("all", PeerSetKind.NET, ("0.0.0.0/0", "::/0"), ())])
d = render(c)
out = {}
for family, state in ((4, d), (6, d.v6)):
    spec = state.sets[naming.set_name("all", "hash:net", family)]
    IpsetIO(family).create([spec])
    out[f"rendered{family}"] = list(spec.members)
    out[f"listed{family}"] = sorted(IpsetIO(family).list_owned()[spec.name].members)
raw = SetSpec(naming.set_name("raw", "hash:net"), PeerSetKind.NET, ("0.0.0.0/0",), (), "raw", 4)
try:
    IpsetIO(4).create([raw])
    out["raw_zero"] = "accepted"
except IpsetError as exc:
    out["raw_zero"] = str(exc)
print(json.dumps(out))
"""


def test_a_zero_prefix_peer_set_is_accepted_by_the_kernel_as_two_halves() -> None:
    """ipset's hash:net refuses a /0 (IPSET_ERR_INVALID_CIDR, 4104): the renderer's /1 halves go in."""
    topo = Topology("agz")
    try:
        topo.add_node("n1", "192.168.79.1")
        argv = ("ip", "netns", "exec", topo.ns("n1"), "env", f"PYTHONPATH={ENV['PYTHONPATH']}", sys.executable, "-c",
                ZERO_SCRIPT)
        out = json.loads(sh(*argv, timeout=120).stdout)
    finally:
        topo.destroy()
    assert out["rendered4"] == out["listed4"] == ["0.0.0.0/1", "128.0.0.0/1"]
    assert out["rendered6"] == out["listed6"] == ["8000::/1", "::/1"]
    assert "4104" in out["raw_zero"], out["raw_zero"]  # the kernel's refusal the halves avoid
