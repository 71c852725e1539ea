"""Pod dispatch as a tree of address-block chains: every pod still reaches exactly its own rule
set (walked with ``chainsim`` against ``picket.evaluating``), no chain on the path is long, and
a small node keeps the flat layout."""

from __future__ import annotations

from picket.evaluating import connection_allowed
from picket.model import Direction, Protocol
from picket_agent.rendering import dispatch, naming
from picket_agent.rendering.renderer import render
from tests.unit.agent.agent_builders import compiled, ep, k8s, pod, rule
from tests.unit.agent.chainsim import forward

OUTSIDE = "192.168.200.7"


def ip_of(i: int) -> str:
    return f"10.{60 + i // 100}.{(i // 50) % 2}.{i % 50 * 5}"  # spread over two /16s and several /24s


def node(pods: int) -> tuple:  # type: ignore[type-arg]
    """Pods with alternating ingress verdicts (allow all / deny all) and egress on every third."""
    eps = []
    for i in range(pods):
        allow = (("NetworkPolicy p", (rule(),)),) if i % 2 else ()
        egress = k8s(Direction.EGRESS) if i % 3 == 0 else None
        eps.append(ep(pod(f"ns/p{i}", ip_of(i)), ingress=k8s(Direction.INGRESS, *allow), egress=egress))
    return compiled(eps), [ip_of(i) for i in range(pods)]


def test_every_pod_reaches_its_own_rule_set_through_the_tree() -> None:
    c, ips = node(230)
    desired = render(c)
    assert any(name.startswith("PICKET-DISP-") for name in desired.chains)
    for i, ip in enumerate(ips):
        ep_ = c.endpoints[f"ns/p{i}"]
        for src, dst, src_ep, dst_ep in ((OUTSIDE, ip, None, ep_), (ip, OUTSIDE, ep_, None)):
            want, _, _ = connection_allowed(src_ep, dst_ep, src, dst, Protocol.TCP, 80, c.peer_sets)
            assert forward(desired, src, dst, Protocol.TCP, 80) == want, (i, src, dst)


def test_no_dispatch_chain_is_long() -> None:
    desired = render(node(230)[0])
    dispatch_chains = [n for n in desired.chains if n.startswith("PICKET-DISP-")]
    for name in [naming.POD_INGRESS_CHAIN, naming.POD_EGRESS_CHAIN, *dispatch_chains]:
        assert len(desired.chains[name]) <= dispatch.LEAF, name


def test_a_small_node_keeps_one_rule_per_pod() -> None:
    desired = render(node(dispatch.LEAF)[0])
    assert len(desired.chains[naming.POD_INGRESS_CHAIN]) == dispatch.LEAF
    assert not any(name.startswith("PICKET-DISP-") for name in desired.chains)


def test_adding_a_pod_rewrites_only_its_block() -> None:
    before = render(node(120)[0]).chains
    after = render(node(121)[0]).chains
    changed = {n for n in after if after[n] != before.get(n)} - {n for n in after if n not in before}
    dispatch_changed = {n for n in changed if n.startswith("PICKET-DISP-") or n.startswith("PICKET-POD-")}
    assert len(dispatch_changed) <= 2  # the new pod's block in each direction it is isolated in


def _dispatch_rules_walked(desired, src: str, dst: str) -> int:  # type: ignore[no-untyped-def]
    visited: list[tuple[str, int]] = []
    forward(desired, src, dst, Protocol.TCP, 80, visited=visited)
    return sum(1 for chain, _ in visited if chain.startswith(("PICKET-DISP-", "PICKET-POD-")))


def test_a_new_connection_walks_few_dispatch_rules() -> None:
    """110 pods of one /24 (the benchmark's node, both families): the first packet of a
    connection from outside to any pod walks at most 13 dispatch rules (a 4-ary trie), 9 on
    average; a 4-bit stride with 16-rule leaves walked up to 22 (12.3 on average): each rule
    is work on every new connection."""
    ips4 = [f"10.90.0.{i}" for i in range(110)]
    ips6 = [f"fd00:90::{i:x}" for i in range(110)]
    eps = [ep(pod(f"ns{i % 10}/pod{i}", ips4[i], "n1", ips6[i]), ingress=k8s(Direction.INGRESS)) for i in range(110)]
    desired = render(compiled(eps))
    for outside, ips in (("192.168.1.1", ips4), ("fd00:1::1", ips6)):
        walked = [_dispatch_rules_walked(desired, outside, ip) for ip in ips]
        assert not any(forward(desired, outside, ip, Protocol.TCP, 80) for ip in ips)  # each reached its deny-all
        assert max(walked) <= 13 and sum(walked) / len(walked) <= 9, (outside, max(walked), sum(walked) / len(walked))
