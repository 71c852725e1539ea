"""``picket matrix --live``: probe every pod pair of the local cluster and compare with the prediction.

The live objects (Namespaces, Pods, NetworkPolicies) are read from the lab's API server and
compiled offline (``compiling.compile_cluster``, the same compiler the operator runs) into a
prediction (sender's egress AND receiver's ingress, ``picket.evaluating``). Every pair is then
probed with netcat from inside the source pod (``picket_lab.probing``, in parallel). The grid is the
offline one (``matrix_command.format_grid``) with the live result in each cell and ``!`` where
it differs from the prediction; the JSON form is the offline one plus ``predicted`` and
``differ``. ``--port`` probes one port everywhere; ``--service-ports`` probes each destination
on its own first declared containerPort (pods of different apps serve different ports).
Exit code 0 when live and predicted agree, 1 when some pair differs, 2 when the lab is not up.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from picket.apiclient import KubeClient
from picket.evaluating import connection_allowed
from picket.model import Protocol
from picket_lab import clusterfiles as labmodel
from picket_lab.api import Lab, LabNotRunning
from picket_lab.probing import Matrix, probe_matrix
from picket_operator.commands.matrix import format_grid

Ports = Mapping[str, tuple[str, int]]


def service_ports(objects: list[dict[str, Any]], keys: Sequence[str]) -> dict[str, tuple[str, int]]:
    """Each pod's first declared containerPort (protocol, port); TCP 80 for pods declaring none."""
    out: dict[str, tuple[str, int]] = {}
    for obj in objects:
        meta = obj.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        if obj.get("kind") != "Pod" or key not in keys:
            continue
        declared = [p for c in (obj.get("spec") or {}).get("containers", []) for p in c.get("ports", [])]
        first = declared[0] if declared else {}
        out[key] = (str(first.get("protocol", "TCP")), int(first.get("containerPort", 80)))
    return out


def predict(objects: list[dict[str, Any]], keys: Sequence[str], protocol: str, port: int,
            ports: Ports | None = None) -> Matrix:
    """The offline prediction for ``keys`` (pods the compiler does not know are left out)."""
    from picket_operator.compiler.compiling import compile_cluster

    compiled = compile_cluster(objects)
    known = [k for k in keys if k in compiled.endpoints]
    out: Matrix = {}
    for s in known:
        src = compiled.endpoints[s]
        out[s] = {}
        for d in known:
            dst = compiled.endpoints[d]
            proto, number = ports.get(d, (protocol, port)) if ports else (protocol, port)
            ok = s == d or connection_allowed(src, dst, src.endpoint.ips[0], dst.endpoint.ips[0], Protocol(proto),
                                              number, compiled.peer_sets)[0]
            out[s][d] = ok
    return out


def live_matrix(
    lab: Lab, kube: KubeClient, protocol: str, port: int | None, namespaces: Sequence[str] | None = None,
    timeout: float = 1.0,
) -> tuple[list[str], Matrix, Matrix]:
    """(pods, live, predicted) for the lab's pods; ``port=None``: each pod's service port."""
    objects = labmodel.live_objects(kube)
    keys = labmodel.pod_keys(objects, include_system=bool(namespaces))
    if namespaces:
        keys = [k for k in keys if k.split("/", 1)[0] in namespaces]
    targets = labmodel.targets(lab, keys)
    keys = [t.key for t in targets]
    ports = service_ports(objects, keys) if port is None else None
    predicted = predict(objects, keys, protocol, port or 0, ports)
    keys = [k for k in keys if k in predicted]
    live = probe_matrix([t for t in targets if t.key in keys], protocol, port or 0, timeout, ports=ports)
    return keys, live, predicted


def live_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="picket matrix --live", description="Probe the local cluster with netcat.")
    parser.add_argument("--live", action="store_true", required=True)
    parser.add_argument("--port", type=int, default=80)
    parser.add_argument("--protocol", default="TCP", choices=("TCP", "UDP"))
    parser.add_argument("--service-ports", action="store_true", help="probe each pod on its first containerPort")
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
    port = None if args.service_ports else args.port
    pods, live, predicted = live_matrix(lab, kube, args.protocol, port, args.namespace, args.timeout)
    differ = [[s, d] for s in pods for d in pods if live[s][d] != predicted[s][d]]
    what = "each pod's first containerPort" if port is None else f"port {port}/{args.protocol}"
    if args.format == "json":
        out = {"port": port, "protocol": args.protocol, "pods": pods, "allowed": live,
               "predicted": predicted, "differ": differ}
        print(json.dumps(out))
    else:
        print(f"{what}, live netcat probes (! = differs from the offline prediction)")
        print(format_grid(pods, live, predicted))
    return 1 if differ else 0
