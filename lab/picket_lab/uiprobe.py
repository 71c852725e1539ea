"""``picket ui`` on a machine with the local cluster: the same UI, plus real probes.

The CLI routes ``picket ui`` here when picket-lab is installed. When the UI talks to the local
cluster (no ``--cluster`` file, and the kubeconfig in use is the lab's: ``--kubeconfig``,
``$KUBECONFIG`` or ``~/.kube/config`` naming it, or none of them set), the Matrix page's Probe
button runs netcat from inside each source pod (``probing.probe``, in parallel) against the
destination pod's IP for the cells on screen; the UI shows predicted vs probed and marks the
differences. Otherwise this is ``picket_operator.ui.command.main`` unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from picket.model import Protocol
from picket_lab import clusterfiles
from picket_lab.api import Lab
from picket_lab.drops import Counts, drop_counts
from picket_lab.probing import Target, probe
from picket_lab.shell import LabError
from picket_operator.commands.explain import default_kubeconfig
from picket_operator.ui import command


class LabProber:
    """Probes (source pod, destination pod) pairs of the running lab with netcat."""

    def __init__(self, lab: Lab, timeout: float = 1.0, parallel: int = 48) -> None:
        self.lab = lab
        self.timeout = timeout
        self.parallel = parallel

    def __call__(self, pairs: Sequence[tuple[str, str]], protocol: Protocol, port: int) -> list[bool]:
        keys = sorted({k for pair in pairs for k in pair})
        targets: dict[str, Target] = {t.key: t for t in clusterfiles.targets(self.lab, keys)}

        def one(pair: tuple[str, str]) -> bool:
            src, dst = targets.get(pair[0]), targets.get(pair[1])
            if src is None or dst is None:  # not a pod running on a lab node (a host endpoint, a finished pod)
                return False
            return probe(src, dst.ip, protocol.value, port, self.timeout)

        if not pairs:
            return []
        with ThreadPoolExecutor(max(1, min(self.parallel, len(pairs)))) as pool:
            return list(pool.map(one, pairs))


    def drop_snapshot(self) -> Counts:
        """The agents' drop counters now (empty when no agent answers: picket not deployed)."""
        try:
            return drop_counts(self.lab)
        except Exception:  # an agent not running or not answering: no drops to show, probes still work
            return {}

    @staticmethod
    def drop_lines(before: Counts, after: Counts) -> list[str]:
        """Drops counted while probing, as "endpoint direction: policy +N packets (node)"."""
        out = []
        for (node, name, labels), value in sorted(after.items()):
            grown = value - before.get((node, name, labels), 0.0)
            if grown <= 0 or "packets" not in name:
                continue
            fields = dict(part.split("=", 1) for part in labels.split(",") if "=" in part)
            out.append(f"{fields.get('endpoint', '?')} {fields.get('direction', '?')}: "
                       f"{fields.get('policy', '?')} +{grown:.0f} packets ({node})")
        return out


def lab_prober(argv: Sequence[str], env_kubeconfig: str | None) -> LabProber | None:
    """A prober when the UI will talk to the running local cluster, else None."""
    args, _ = command.parser().parse_known_args(list(argv))
    if args.cluster:
        return None
    try:
        lab = Lab.current()
    except LabError:
        return None
    chosen = default_kubeconfig(args.kubeconfig, env_kubeconfig)
    if not chosen.exists() and not args.kubeconfig and not env_kubeconfig:
        chosen = lab.kubeconfig
    if Path(chosen).resolve() != Path(lab.kubeconfig).resolve():
        return None
    return LabProber(lab)


def main(argv: Sequence[str]) -> int:
    argv = list(argv)
    env = os.environ.get("KUBECONFIG")
    prober = lab_prober(argv, env)
    if prober is not None and "--kubeconfig" not in argv and not env:
        argv += ["--kubeconfig", str(prober.lab.kubeconfig)]
    return command.main(argv, prober)
