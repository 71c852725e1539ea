"""Per-pod dispatch as a shallow tree of chains by address prefix, so a new connection's first
packet does not walk one rule per pod of the node.

``PICKET-POD-INGRESS`` (by destination) and ``PICKET-POD-EGRESS`` (by source) hold one goto rule
per pod address. With more than ``LEAF`` of them a packet of the last pod walked them all (110
rules, each with a comment match: ~5 us per new connection). ``tree`` splits them like a trie
with a 2-bit stride at fixed boundaries (/2, /4, ... /30): a chain whose rules would exceed
``LEAF`` (4) gets one rule per non-empty child block (at most 4), ``-d 10.90.0.16/28 -g
PICKET-DISP-<h>``, and the block's chain holds its pods' own rules (or splits again): a 4-ary
trie, no chain longer than 4 rules. A block with a single child block is skipped (path
compression), a block with a single pod is dispatched directly. 110 pods of one /24 take at
most 13 dispatch rules on any path (8.6 on average), where a 4-bit stride with 16-rule leaves
took up to 22 (12.3): every rule a new connection's first packet walks costs, and a 2-vCPU
node opens a connection between two of its pods in ~17 us. IPv6 addresses split the same way
over 128 bits (one family per tree: the IPv4 and IPv6 tables are rendered apart).

Semantics are unchanged: every step is a goto, so falling off a block chain or RETURNing from a
pod's tiers goes straight back to the caller (``PICKET-FORWARD``, or ``PICKET-INPUT`` for a pod's
traffic to its own node), exactly like falling off the flat chain.
Names come from ``naming.dispatch_chain(direction, block)``: adding a pod rewrites its block's
chain only (and the parent when the block is new). Pure; called by ``rendering``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from picket_agent.rendering import naming
from picket_agent.rendering.iptrules import IptRule

LEAF = 4  # rules a dispatch chain may hold before it is split into blocks (a 4-ary trie)
STRIDE = 2  # bits per level: at most 4 block rules per chain

Chains = dict[str, tuple[IptRule, ...]]


def tree(root: str, rules: Sequence[IptRule], ingress: bool) -> Chains:
    """``root``'s rules plus the block chains under it; ``rules`` are per-address gotos (``-d`` for
    ingress, ``-s`` for egress), in priority order; rules without an address stay in the root."""
    out: Chains = {}
    by_address = [(_address(r, ingress), r) for r in rules]
    if len(rules) <= LEAF or any(a is None for a, _ in by_address):
        out[root] = tuple(rules)
        return out
    bits = 128 if any(a is not None and a.version == 6 for a, _ in by_address) else 32
    entries = [(int(a), r) for a, r in by_address if a is not None]
    out[root] = tuple(_node(entries, 0, ingress, out, bits))
    return out


def _node(
    entries: list[tuple[int, IptRule]], depth: int, ingress: bool, out: Chains, bits: int = 32
) -> list[IptRule]:
    """The rules of a chain holding ``entries`` (all within one block of prefix length ``depth``)."""
    if len(entries) <= LEAF or depth >= bits:
        return [r for _, r in entries]
    children: dict[int, list[tuple[int, IptRule]]] = {}
    for address, rule in entries:
        children.setdefault(_block(address, depth + STRIDE, bits), []).append((address, rule))
    if len(children) == 1:
        return _node(entries, depth + STRIDE, ingress, out, bits)  # one child block: no chain for this level
    rules: list[IptRule] = []
    for block in sorted(children):
        members = children[block]
        if len({a for a, _ in members}) == 1:
            rules += [r for _, r in members]  # one address: its own rule(s), no chain
            continue
        start = ipaddress.IPv4Address(block) if bits == 32 else ipaddress.IPv6Address(block)
        cidr = f"{start}/{depth + STRIDE}"
        chain = naming.dispatch_chain("Ingress" if ingress else "Egress", cidr)
        out[chain] = tuple(_node(members, depth + STRIDE, ingress, out, bits))
        comment = f"picket: {'ingress' if ingress else 'egress'} dispatch {cidr}"
        if ingress:
            rules.append(IptRule(chain, goto=True, comment=comment, dst=cidr))
        else:
            rules.append(IptRule(chain, goto=True, comment=comment, src=cidr))
    return rules


def _block(address: int, prefix: int, bits: int = 32) -> int:
    full = (1 << bits) - 1
    return address & (full << (bits - prefix)) & full


def _address(rule: IptRule, ingress: bool) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = rule.dst if ingress else rule.src
    if not text or "/" in text or rule.in_iface or rule.out_iface:
        return None
    return ipaddress.ip_address(text)
