"""Hand-packed entries and the byte-compared quick verify, fuzzed against the kernel (``pkt-agf-*``).

``tests/kernel/entries_fuzz.py`` runs Hypothesis inside ONE throwaway node namespace (set up
once for the whole run, not per example): random compiled states of every rule shape the
renderer emits are rendered and applied, and for each one every rule's ``entries.assemble``
bytes must equal python-iptables' build, ``iptables-legacy-save`` must read back exactly the
rendered text, the quick verify (``read_if_holding``, ``tableblob``) must read the same rules and
counters as ``iptables-legacy-save``, and it must give up after a random single-rule change
made with ``iptables-legacy`` in one of picket's chains. ``derandomize``: the same examples on
every run. ``PICKET_FUZZ_EXAMPLES`` sets how many (default 100, ~30 s on a loaded 2-core machine).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from picket.model import Direction
from tests.kernel.entries_fuzz import MUTATIONS
from tests.kernel.netns_topology import ENV, REPO, Topology, sh
from tests.unit.agent.agent_builders import compiled, ep, k8s, pod, rule

pytestmark = pytest.mark.kernel

EXAMPLES = int(os.environ.get("PICKET_FUZZ_EXAMPLES", "100"))


def in_fresh_node(*argv: str, timeout: float = 600, input: str | None = None) -> Any:
    topo = Topology("agf")
    try:
        topo.add_node("n1", "192.168.75.1")  # entries_fuzz.NODE_IP
        env = (f"PYTHONPATH={ENV['PYTHONPATH']}", f"PICKET_FUZZ_EXAMPLES={EXAMPLES}")
        cmd = ("ip", "netns", "exec", topo.ns("n1"), "env", "-C", str(REPO), *env, sys.executable, *argv)
        proc = sh(*cmd, check=False, timeout=timeout, input=input)
        assert proc.returncode == 0, proc.stderr[-20000:]
        return json.loads(proc.stdout)
    finally:
        topo.destroy()


# Shapes the renderer emits that the run must have met (else the strategies stopped reaching them).
SHAPES = {
    "p:tcp", "p:udp", "p:sctp", "p:icmp", "p:",
    "m:tcp", "m:udp", "m:sctp", "m:multiport", "m:multiport!", "m:set", "m:set!", "m:conntrack", "m:conntrack!",
    "set:src", "set:dst", "set:dst,dst", "set:src,dst", "multiport>1", "range",
    "goto", "nflog", "nflog+matches", "src/32", "dst/32", "src/cidr", "dst/cidr", "in", "out",
    "comment>255", "comment-quoted",
}


def test_fuzzed_states_assemble_read_back_and_drift_like_the_kernel_says() -> None:
    summary = in_fresh_node("-m", "tests.kernel.entries_fuzz")
    assert summary["examples"] >= EXAMPLES
    assert summary["rules compared"] > 20 * EXAMPLES
    missing = {s for s in SHAPES if not summary.get(f"shape {s}")}
    assert not missing, (missing, summary)
    assert any(summary.get(f"shape p:!{p}") for p in ("tcp", "udp", "sctp", "icmp")), summary
    assert summary.get("shape in+") or summary.get("shape out+"), summary  # an interface wildcard
    assert summary["examples with counters"] == summary["examples"]
    assert summary["owned rules with counters"] > 0
    for kind in ("insert", "delete", "replace port", "replace comment"):
        assert summary.get(f"drift {kind}"), (kind, summary)
    assert sum(1 for what in MUTATIONS if summary.get(f"drift replace {what}")) >= 5, summary


# Regressions the fuzzing found: minimal states, each checked like one fuzz example (no drift).
LONG_POLICY = "NetworkPolicy ns/" + "a" * 250  # a valid name (253 characters allowed): its rule's comment is 264 bytes
REGRESSIONS = {
    # The kernel keeps 255 bytes of a comment (xt_comment_info); the rule text had all of it, so
    # iptables-legacy-save never read back what was rendered (a rewrite, and lost counters, on
    # every full read) while the quick verify, comparing the truncated bytes, said it held.
    "comment over 255 bytes": (
        compiled([ep(pod("x/a", "10.0.0.2", "n1"), ingress=k8s(Direction.INGRESS, (LONG_POLICY, (rule(),))))]),
        {},
    ),
    # iptables-save prints no --nflog-group for group 0 (the kernel's default), the rule text did.
    "NFLOG group 0": (
        compiled([ep(pod("x/a", "10.0.0.2", "n1"), ingress=k8s(Direction.INGRESS))]),
        {"nflog_group": 0, "log_drops": True},
    ),
}


def test_regressions_found_by_fuzzing_read_back_as_rendered() -> None:
    cases = [[c.to_dict(), kwargs] for c, kwargs in REGRESSIONS.values()]
    failures = in_fresh_node("-m", "tests.kernel.entries_fuzz", "--cases", input=json.dumps(cases), timeout=120)
    assert dict(zip(REGRESSIONS, failures, strict=True)) == dict.fromkeys(REGRESSIONS)
