"""Which iptables backend does this node use? Detected the way kube-proxy's wrapper does.

kube-proxy's image runs ``iptables-wrapper`` (kubernetes-sigs/iptables-wrappers): if the
kubelet's canary chains (``KUBE-IPTABLES-HINT``, ``KUBE-KUBELET-CANARY`` in the mangle table)
exist in the nft backend, the node is nft; if they exist in legacy, legacy; otherwise count the
rules (``^-`` lines) each backend's ``-save`` prints: 10 or more legacy rules, or at least as
many legacy as nft, means legacy. We ignore our own ``PICKET-`` lines when counting.

What we do about it: picket's chains go where the node's iptables lives, beside kube-proxy's.
On a legacy node python-iptables writes the IPv4 table (``iptables``) and ``ip6tables-legacy-restore``
the IPv6 one; on an nft node ``ip[6]tables-nft-restore`` writes both (``restore``), and any
legacy chains an earlier picket left there are removed in the same sync (``migration``).
``--iptables-backend legacy|nft`` (``PICKET_IPTABLES_BACKEND``) overrides the detection.
``main`` logs the mode and why once at start-up.

Detection never creates a legacy table: ``iptables-legacy-save -t mangle`` would (and a legacy
mangle table hooks every packet of the node from then on, five hooks, on an nft node too), so a
legacy table not listed in ``/proc/net/ip_tables_names`` is read as empty without running it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

CANARIES = (":KUBE-IPTABLES-HINT", ":KUBE-KUBELET-CANARY")
LEGACY_TABLES = Path("/proc/net/ip_tables_names")  # the legacy IPv4 tables that exist in this namespace


@dataclass(frozen=True)
class Backend:
    mode: str  # "legacy" or "nft"
    reason: str

    def advice(self) -> str:
        if self.mode == "legacy":
            return "picket writes iptables-legacy rules (inspect: iptables-legacy-save, ip6tables-legacy-save)"
        return "picket writes iptables-nft rules beside kube-proxy's (inspect: iptables-nft-save, ip6tables-nft-save)"


def choose(setting: str) -> Backend:
    """``auto`` detects; ``legacy`` or ``nft`` is taken as given."""
    if setting in ("legacy", "nft"):
        return Backend(setting, "set by --iptables-backend")
    return detect()


def decide(legacy_mangle: str, nft_mangle: str, legacy_all: str, nft_all: str) -> Backend:
    if any(line.startswith(CANARIES) for line in nft_mangle.splitlines()):
        return Backend("nft", "kubelet canary chains found in iptables-nft")
    if any(line.startswith(CANARIES) for line in legacy_mangle.splitlines()):
        return Backend("legacy", "kubelet canary chains found in iptables-legacy")
    legacy = _count(legacy_all)
    nft = _count(nft_all)
    if legacy >= 10 or legacy >= nft:
        return Backend("legacy", f"{legacy} legacy rules vs {nft} nft rules")
    return Backend("nft", f"{legacy} legacy rules vs {nft} nft rules")


def _count(save: str) -> int:
    return sum(1 for line in save.splitlines() if line.startswith("-") and "PICKET-" not in line)


def _save(tool: str, *args: str) -> str:
    try:
        proc = subprocess.run([tool, *args], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return proc.stdout


def _legacy_save(table: str, names: Path) -> str:
    """``iptables-legacy-save -t table``, or "" when the table does not exist (running it would create it)."""
    try:
        exists = table in names.read_text().split()
    except OSError:
        exists = False  # ip_tables not loaded: no legacy table
    return _save("iptables-legacy-save", "-t", table) if exists else ""


def detect(names: Path = LEGACY_TABLES) -> Backend:
    return decide(
        _legacy_save("mangle", names),
        _save("iptables-nft-save", "-t", "mangle"),
        _save("iptables-legacy-save") + _save("ip6tables-legacy-save"),
        _save("iptables-nft-save") + _save("ip6tables-nft-save"),
    )
