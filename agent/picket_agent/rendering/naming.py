"""Deterministic kernel names for everything the agent owns: the one place names are made.

Chains are ``PICKET-<KIND>-<hash>`` within iptables' 28 characters, ipsets ``picket-<hash>``
within ipset's 31. The hash is ``picket.model.stable_hash`` of what the object stands for (an
endpoint key, a direction, a tier index, a peer set name and kind), so the same input always
gives the same name across restarts and nodes, and a name never depends on rule *content*:
a changed rule set rewrites a chain in place instead of renaming it.

The renderer calls these functions; the applier uses ``is_owned_chain``/``is_owned_set`` to
decide what it may touch (only names with our prefixes).
"""

from __future__ import annotations

from functools import lru_cache

from picket.model import stable_hash

CHAIN_PREFIX = "PICKET-"
SET_PREFIX = "picket-"
MAX_CHAIN = 28  # XT_EXTENSION_MAXNAMELEN - 1 (29 with the NUL) minus iptables' reserve
MAX_SET = 31  # IPSET_MAXNAMELEN - 1

# Fixed top-level chains: hooked from the built-in chains of the filter table.
FORWARD_CHAIN = "PICKET-FORWARD"
INPUT_CHAIN = "PICKET-INPUT"
OUTPUT_CHAIN = "PICKET-OUTPUT"
POD_EGRESS_CHAIN = "PICKET-POD-EGRESS"  # dispatch by source IP to egress tier chains
POD_INGRESS_CHAIN = "PICKET-POD-INGRESS"  # dispatch by destination IP to ingress tier chains
AUDIT_EGRESS_CHAIN = "PICKET-AUDIT-EGRESS"  # audit mode: staged rule sets, by source IP (never drops)
AUDIT_INGRESS_CHAIN = "PICKET-AUDIT-INGRESS"  # ... by destination IP
HOOKS = {"FORWARD": FORWARD_CHAIN, "INPUT": INPUT_CHAIN, "OUTPUT": OUTPUT_CHAIN}
ICMPV6_SUFFIX = "-ICMPV6"  # IPv6: a hook chain's ICMPv6 packets, ND/MLD first (``icmpv6_chain``)

_KINDS = ("TIER", "DROP", "RULE", "LOG", "DISP")
_HASH_LEN = 16
_TEMP_SUFFIX = "-t"
_V6_SET = "6-"


@lru_cache(maxsize=65536)
def _chain(kind: str, *parts: object) -> str:
    if kind not in _KINDS:
        raise ValueError(f"unknown chain kind {kind!r}")
    name = f"{CHAIN_PREFIX}{kind}-{stable_hash([kind, *map(str, parts)], _HASH_LEN)}"
    assert len(name) <= MAX_CHAIN, name
    return name


def icmpv6_chain(hook_chain: str) -> str:
    """IPv6: where ``hook_chain`` (``PICKET-FORWARD``, ``-INPUT``, ``-OUTPUT``) sends ICMPv6, so
    that only ICMPv6 packets walk the neighbour discovery and MLD exemptions."""
    return hook_chain + ICMPV6_SUFFIX


def audit_key(endpoint_key: str) -> str:
    """The key a staged (audit) rule set's chains are named by: apart from the enforced ones."""
    return f"{endpoint_key} (staged)"


def tier_chain(endpoint_key: str, direction: str, tier_index: int) -> str:
    """The chain of one tier of one endpoint's rule set in one direction."""
    return _chain("TIER", endpoint_key, direction, tier_index)


def drop_chain(endpoint_key: str, direction: str, reason: str) -> str:
    """The counting (and optionally logging) drop path for one endpoint, direction and reason."""
    return _chain("DROP", endpoint_key, direction, reason)


def rule_chain(endpoint_key: str, direction: str, tier_index: int, position: str) -> str:
    """A sub-chain for one LOG rule that expands to several iptables rules (logs once)."""
    return _chain("RULE", endpoint_key, direction, tier_index, position)


def log_chain(endpoint_key: str, direction: str, tier_index: int, position: str) -> str:
    """The NFLOG target chain a LOG rule's sub-chain jumps to."""
    return _chain("LOG", endpoint_key, direction, tier_index, position)


def dispatch_chain(direction: str, block: str) -> str:
    """The pod dispatch chain of one address block (``dispatch``), e.g. ``10.90.0.16/28``."""
    return _chain("DISP", direction, block)


def drop_id(chain: str) -> str:
    """The short id carried in the NFLOG prefix of a drop chain (maps back to the reason)."""
    return chain.rsplit("-", 1)[-1]


@lru_cache(maxsize=65536)
def set_name(peer_set: str, kind: str, family: int = 4) -> str:
    """The ipset for a compiled peer set; the kind is hashed in because a swap needs equal types.
    A peer set's IPv6 members go to a set of family inet6: ``picket-6-<hash>`` (a hash is hex,
    so the family can be read back from the name: ``set_family``)."""
    if family == 6:
        name = f"{SET_PREFIX}{_V6_SET}{stable_hash([peer_set, kind, 'inet6'], _HASH_LEN)}"
    else:
        name = f"{SET_PREFIX}{stable_hash([peer_set, kind], _HASH_LEN)}"
    assert len(name) + len(_TEMP_SUFFIX) <= MAX_SET, name
    return name


def temp_set_name(name: str) -> str:
    """Where a set's new contents are built before ``ipset swap``."""
    return name + _TEMP_SUFFIX


def is_owned_chain(name: str) -> bool:
    return name.startswith(CHAIN_PREFIX)


def set_family(name: str) -> int:
    return 6 if name.startswith(SET_PREFIX + _V6_SET) else 4


def is_owned_set(name: str, family: int | None = None) -> bool:
    """Ours (of any family, or of ``family``)."""
    return name.startswith(SET_PREFIX) and (family is None or set_family(name) == family)
