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
