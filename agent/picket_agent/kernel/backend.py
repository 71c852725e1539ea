"""Which iptables backend does this node use? Detected the way kube-proxy's wrapper does.

kube-proxy's image runs ``iptables-wrapper`` (kubernetes-sigs/iptables-wrappers): if the
kubelet's canary chains (``KUBE-IPTABLES-HINT``, ``KUBE-KUBELET-CANARY`` in the mangle table)
exist in the nft backend, the node is nft; if they exist in legacy, legacy; otherwise count the
rules (``^-`` lines) each backend's ``-save`` prints: 10 or more legacy rules, or at least as
many legacy as nft, means legacy. We ignore our own ``PICKET-`` lines when counting.

What we do about it: python-iptables (libiptc) only speaks legacy, so picket's rules are
always legacy rules. The kernel evaluates both backends' hooks; a packet must get through
both, so a drop in either wins and our drops hold on an nft node too. Someone inspecting an nft
node with the default ``iptables`` will not see them: use ``iptables-legacy-save``. ``main``
logs the detected mode and this consequence once at start-up.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

CANARIES = (":KUBE-IPTABLES-HINT", ":KUBE-KUBELET-CANARY")


@dataclass(frozen=True)
class Backend:
    mode: str  # "legacy" or "nft"
    reason: str

    def advice(self) -> str:
        if self.mode == "legacy":
            return "node uses iptables-legacy; picket writes legacy rules alongside (inspect: iptables-legacy-save)"
        return ("node uses iptables-nft; picket writes iptables-legacy rules (python-iptables speaks legacy only); "
                "the kernel evaluates both and a drop in either wins; inspect picket's rules with iptables-legacy-save")


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


def detect() -> Backend:
    return decide(
        _save("iptables-legacy-save", "-t", "mangle"),
        _save("iptables-nft-save", "-t", "mangle"),
        _save("iptables-legacy-save") + _save("ip6tables-legacy-save"),
        _save("iptables-nft-save") + _save("ip6tables-nft-save"),
    )
