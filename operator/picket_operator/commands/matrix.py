"""``picket matrix``: who can reach whom on one port, as a grid or as JSON.

Offline (the default): ``--cluster FILE`` is compiled with the full compiler and the **compiled**
rule sets are evaluated with ``picket.evaluating.matrix`` (sender's egress AND receiver's
ingress), never a separate oracle, so the grid shows what the agent will enforce. ``picket
matrix --live`` is routed by the CLI to ``picket_lab.live.live_main`` (probes in the local
cluster), which reuses ``format_grid`` to mark cells where the probe disagrees with the prediction.

JSON form (fixed contract): ``{"port": 80, "protocol": "TCP", "pods": ["x/a", ...],
"allowed": {"x/a": {"x/b": true, ...}, ...}}`` with ``allowed[source][destination]``. When the
cluster file has Calico HostEndpoints, they take part as ``host/<name>`` rows and columns (listed
after the pods, in ``pods`` too, so the shape stays the same): a pod reaching a host needs the
pod's egress and the host's ingress, failsafe ports included. ``--failsafe-inbound`` /
``--failsafe-outbound`` (``tcp:22,udp:68``; default Calico's) set the host failsafe ports.

Audit mode: when staged policies (``picket.dev/audit: "true"``, Calico's ``StagedNetworkPolicy``,
``StagedGlobalNetworkPolicy``, ``StagedKubernetesNetworkPolicy``) select some endpoint, a second
grid shows the staged verdicts (what would hold with the staged policies enforced too), ``!``
marking the cells a staged policy would change; JSON gains ``"staged": {source: {destination:
bool}}`` (absent without staged policies, so the contract above is unchanged).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence

from picket.evaluating import matrix
from picket.model import Compiled, EndpointKind, Protocol

ALLOWED, BLOCKED, DIFFERS = ".", "X", "!"


def format_grid(
    pods: Sequence[str],
    allowed: Mapping[str, Mapping[str, bool]],
    predicted: Mapping[str, Mapping[str, bool]] | None = None,
) -> str:
    """Rows are sources, columns destinations; ``.`` allowed, ``X`` blocked.

    With ``predicted``, a cell whose value differs from the prediction is suffixed with ``!`` and a
    summary line counts them.
    """
    corner = "from \\ to"
    first = max([len(p) for p in pods] + [len(corner)]) + 2
    widths = {p: max(len(p), 3) + 2 for p in pods}
    lines = [corner.ljust(first) + "".join(p.ljust(widths[p]) for p in pods)]
    differ = 0
    for src in pods:
        cells = []
        for dst in pods:
            ok = allowed[src][dst]
            cell = ALLOWED if ok else BLOCKED
            if predicted is not None and predicted[src][dst] != ok:
                cell += DIFFERS
                differ += 1
            cells.append(cell.ljust(widths[dst]))
        lines.append(src.ljust(first) + "".join(cells))
    lines.append(f"({ALLOWED} allowed, {BLOCKED} blocked)")
    if predicted is not None:
        lines.append(f"{differ} cell(s) differ from the prediction (marked {DIFFERS})")
    return "\n".join(line.rstrip() for line in lines)


def matrix_keys(compiled: Compiled) -> list[str]:
    """Pods (sorted), then host endpoints (sorted): the rows and columns of the matrix."""
    by_kind = {kind: sorted(k for k, e in compiled.endpoints.items() if e.endpoint.kind is kind)
               for kind in (EndpointKind.POD, EndpointKind.HOST)}
    return by_kind[EndpointKind.POD] + by_kind[EndpointKind.HOST]


def main(argv: Sequence[str]) -> int:
    args_list = list(argv)
    parser = argparse.ArgumentParser(prog="picket matrix", description="Who can reach whom, from a cluster file.")
    parser.add_argument("--cluster", required=True, help="multi-document YAML of Namespaces, Pods and policies")
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--protocol", default="TCP", choices=("TCP", "UDP", "SCTP"))
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--live", action="store_true", help="probe the local cluster instead (needs picket-lab)")
    parser.add_argument("--failsafe-inbound", help="host failsafe ports, e.g. tcp:22,udp:68 (default: Calico's)")
    parser.add_argument("--failsafe-outbound", help="host failsafe ports, e.g. udp:53 (default: Calico's)")
    args = parser.parse_args(args_list)
    # The compiler lives in the operator package; imported here so `--live` never loads it.
    from picket.failsafe import parse_failsafe
    from picket_operator.commands.clusterfile import ClusterFileError, load_cluster_file
    from picket_operator.compiler.compiling import compile_cluster

    try:
        failsafe = parse_failsafe(args.failsafe_inbound, args.failsafe_outbound)
        compiled = compile_cluster(load_cluster_file(args.cluster), failsafe)
    except (ClusterFileError, ValueError) as exc:
        print(f"picket matrix: {exc}", file=sys.stderr)
        return 2
    for problem in compiled.problems:
        print(f"problem: {problem}", file=sys.stderr)
    pods = matrix_keys(compiled)
    allowed = matrix(compiled, pods, Protocol(args.protocol), args.port)
    staged = matrix(compiled.staged(), pods, Protocol(args.protocol), args.port) if compiled.has_staged() else None
    if args.format == "json":
        out: dict[str, object] = {"port": args.port, "protocol": args.protocol, "pods": pods, "allowed": allowed}
        if staged is not None:
            out["staged"] = staged
        print(json.dumps(out))
    else:
        print(f"port {args.port}/{args.protocol}")
        print(format_grid(pods, allowed))
        if staged is not None:
            print("\nstaged (audit mode: with the staged policies enforced too; "
                  "! = a staged policy changes it)")
            print(format_grid(pods, staged, allowed).rsplit("\n", 1)[0])
    return 0
