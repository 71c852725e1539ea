"""Policy rules, peers and peer sets in words, for ``explaining`` (and the UI through it).

``describe_ir_rule`` renders a rule as the user wrote it (an ``ir.Rule``, with the port numbers the
compiler resolved for one endpoint): "TCP 80 from pods with app=web in namespace x";
``describe_model_rule`` renders a compiled rule when its source is unknown (peer sets by their
description); ``peer_words`` / ``set_words`` / ``ports_text`` are the pieces. ``action_word`` is
how the policy's own API names a rule's action (ClusterNetworkPolicy: Accept / Deny / Pass).
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from picket.model import Action, Direction, PeerSet, PortRange, Protocol, Rule
from picket_operator.compiler import ir
from picket_operator.compiler.frontends.clusternetworkpolicy import ACTIONS as CNP_ACTIONS
from picket_operator.compiler.frontends.clusternetworkpolicy import KIND as CNP_KIND
from picket_operator.compiler.selectors import LabelSelector, PeerSelector

_CNP_WORDS = {action: word for word, action in CNP_ACTIONS.items()}


def action_word(action: Action, kind: str = "") -> str:
    """``Allow`` / ``Deny`` / ``Pass`` / ``Log``; a ClusterNetworkPolicy's own ``Accept`` / ``Deny`` / ``Pass``."""
    return _CNP_WORDS.get(action, action.value) if kind == CNP_KIND else action.value


def selector_words(selector: LabelSelector, what: str) -> str:
    if selector.is_empty():
        return f"all {what}"
    return f"{what} with {selector.canonical()}"


def peer_words(peer: ir.Peer, namespace: str) -> str:
    """An IR peer in words: "pods with tier=api in namespace project-a"."""
    parts: list[str] = []
    sel = peer.selector
    if isinstance(sel, PeerSelector):
        pods = selector_words(sel.pod_selector, "pods")
        if sel.namespace_selector is not None:
            scope = "all namespaces" if sel.namespace_selector.is_empty() else \
                f"namespaces with {sel.namespace_selector.canonical()}"
            parts.append(f"{pods} in {scope}")
        else:
            parts.append(f"{pods} in namespace {sel.namespace or namespace}")
    elif sel is not None:
        parts.append(f"endpoints matching {sel.canonical()}")
    if peer.nets:
        text = "addresses in " + ", ".join(peer.nets)
        if peer.excepts:
            text += " except " + ", ".join(peer.excepts)
        parts.append(text)
    return " within ".join(parts) if parts else "any peer"


def set_words(peer_set: PeerSet | None, name: str) -> str:
    if peer_set is None:
        return f"peer set {name} (empty)"
    desc = peer_set.description
    if desc.startswith("sel(k8s:") and " & " not in desc:
        return _k8s_canonical_words(desc[len("sel(k8s:"):-1])
    if desc.startswith("nets("):
        return "addresses in " + desc.replace("nets(", "").replace(") & except(", " except ").rstrip(")")
    return desc or name


def _k8s_canonical_words(text: str) -> str:
    """``ns=x;nss=[a=b];pods=[c=d]`` (``PeerSelector.canonical``) in words."""
    fields = dict(part.split("=", 1) for part in text.split(";") if "=" in part)
    pods = fields.get("pods", "[]")[1:-1]
    pod_words = f"pods with {pods}" if pods else "all pods"
    if "nss" in fields:
        nss = fields["nss"][1:-1]
        return f"{pod_words} in " + (f"namespaces with {nss}" if nss else "all namespaces")
    return f"{pod_words} in namespace {fields.get('ns', '?')}"


def ports_text(rule: Rule, sets: Mapping[str, PeerSet]) -> str:
    proto = rule.protocol.value if rule.protocol else "any protocol"
    parts = [r.to_str() for r in rule.ports]
    if rule.named_ports:
        named = sets.get(rule.named_ports)
        names = named.description.split(":")[-1] if named else rule.named_ports
        parts.append(f"named port(s) {names}")
    return f"port {', '.join(parts)}/{proto}" if len(parts) == 1 else f"ports {', '.join(parts)}/{proto}"


def _ports_words(protocol: Protocol | None, ports: Iterable[PortRange], named: Iterable[str]) -> str:
    numbers = [p.to_str() for p in ports] + [f"'{n}'" for n in named]
    proto = protocol.value if protocol else ""
    if not numbers:
        return f"all {proto} ports" if proto else "all ports"
    return f"{proto} {', '.join(numbers)}".strip()


def describe_ir_rule(rule: ir.Rule, direction: Direction, compiled: Rule, namespace: str,
                     action_prefix: bool = True) -> str:
    """A rule as written, with the numbers the compiler resolved for this endpoint (and, unless
    ``action_prefix`` is off, "Deny: " etc. before a rule that does not allow)."""
    ports = _ports_words(rule.protocol, compiled.ports or rule.ports,
                         rule.named_ports if not compiled.ports else ())
    word = "from" if direction is Direction.INGRESS else "to"
    peers = " or ".join(peer_words(p, namespace) for p in rule.peers) or "anywhere"
    text = f"{ports} {word} {peers}"
    if rule.not_peers:
        text += " except " + " or ".join(peer_words(p, namespace) for p in rule.not_peers)
    if action_prefix and rule.action is not Action.ALLOW:
        text = f"{rule.action.value}: {text}"
    return text


def describe_model_rule(rule: Rule, direction: Direction, sets: Mapping[str, PeerSet]) -> str:
    ports = _ports_words(rule.protocol, rule.ports, ())
    word = "from" if direction is Direction.INGRESS else "to"
    peers = " or ".join(set_words(sets.get(n), n) for n in rule.peers) or "anywhere"
    text = f"{ports} {word} {peers}"
    if rule.action is not Action.ALLOW:
        text = f"{rule.action.value}: {text}"
    return text
