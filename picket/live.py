"""``picket matrix --live``: probe every pod pair of the local cluster and compare with the prediction.

The live objects (Namespaces, Pods, NetworkPolicies) are read from the lab's API server and
compiled offline (``compiling.compile_cluster``, the same compiler the operator runs) into a
prediction (``picket.evaluating.matrix``). Every pair is then probed with netcat from inside the
source pod (``picket.probing``, in parallel). The grid is the offline one
(``matrix_command.format_grid``) with the live result in each cell and ``!`` where the live
result differs from the prediction; the JSON form is the offline one plus ``predicted`` and
``differ``. Exit code 0 when they agree, 1 when some pair differs, 2 when the lab is not up.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from picket import labmodel
from picket.evaluating import matrix
from picket.kube import KubeClient
from picket.lab.api import Lab, LabNotRunning
from picket.matrix_command import format_grid
from picket.model import Compiled, Protocol
from picket.probing import Matrix, probe_matrix


def predict(objects: list[dict[str, object]], keys: list[str], protocol: str, port: int) -> tuple[Matrix, Compiled]:
    from picket_operator.compiling import compile_cluster

    compiled = compile_cluster(objects)
    known = [k for k in keys if k in compiled.endpoints]
    predicted = matrix(compiled, known, Protocol(protocol), port)
    return predicted, compiled


def live_matrix(
    lab: Lab, kube: KubeClient, protocol: str, port: int, namespaces: Sequence[str] | None = None,
    timeout: float = 1.0,
) -> tuple[list[str], Matrix, Matrix]:
    """(pods, live, predicted) for the lab's pods (optionally only those of ``namespaces``)."""
    objects = labmodel.live_objects(kube)
    keys = labmodel.pod_keys(objects)
    if namespaces:
        keys = [k for k in keys if k.split("/", 1)[0] in namespaces]
    targets = labmodel.targets(lab, keys)
    keys = [t.key for t in targets]
    predicted, _ = predict(objects, keys, protocol, port)  # type: ignore[arg-type]
    keys = [k for k in keys if k in predicted]
    live = probe_matrix([t for t in targets if t.key in keys], protocol, port, timeout)
    return keys, live, predicted


def live_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="picket matrix --live", description="Probe the local cluster with netcat.")
    parser.add_argument("--live", action="store_true", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--protocol", default="TCP", choices=("TCP", "UDP"))
    parser.add_argument("--namespace", "-n", action="append", help="only pods of these namespaces (repeatable)")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds before a probe counts as blocked")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    args = parser.parse_args(list(argv))
    try:
        lab = Lab.current()
    except LabNotRunning as exc:
        print(f"picket matrix --live: {exc}", file=sys.stderr)
        return 2
    kube = KubeClient(lab.kubeconfig, user_agent="picket-matrix")
    pods, live, predicted = live_matrix(lab, kube, args.protocol, args.port, args.namespace, args.timeout)
    differ = [[s, d] for s in pods for d in pods if live[s][d] != predicted[s][d]]
    if args.format == "json":
        out = {"port": args.port, "protocol": args.protocol, "pods": pods, "allowed": live,
               "predicted": predicted, "differ": differ}
        print(json.dumps(out))
    else:
        print(f"port {args.port}/{args.protocol}, live netcat probes (! = differs from the offline prediction)")
        print(format_grid(pods, live, predicted))
    return 1 if differ else 0
