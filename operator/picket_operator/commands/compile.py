"""``picket compile --cluster FILE [--format yaml|json]``: print what the compiler makes of a file.

Loads the cluster file (``clusterfile``), runs the full compile (``compiling.compile_cluster``)
and prints ``Compiled.to_dict()``: every endpoint's rule sets, every peer set, and the problems
found (which also go to stderr, one line each, so they are seen when stdout is piped). Exit code
0 when the file compiled (even with problems in some objects), 2 when it could not be read.
``--failsafe-inbound`` / ``--failsafe-outbound`` (``tcp:22,udp:68``; default Calico's ports) set
the failsafe ports that open every host endpoint's rule sets.
Wired into the ``picket`` dispatcher as ``compile``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import yaml

from picket.failsafe import parse_failsafe
from picket_operator.commands.clusterfile import ClusterFileError, load_cluster_file
from picket_operator.compiler.compiling import compile_cluster


def compile_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="picket compile", description="Compile a cluster file's policies.")
    parser.add_argument("--cluster", required=True, help="multi-document YAML of Namespaces, Pods, policies, ...")
    parser.add_argument("--format", choices=("yaml", "json"), default="yaml")
    parser.add_argument("--failsafe-inbound", help="host failsafe ports, e.g. tcp:22,udp:68 (default: Calico's)")
    parser.add_argument("--failsafe-outbound", help="host failsafe ports, e.g. udp:53 (default: Calico's)")
    args = parser.parse_args(list(argv))
    try:
        failsafe = parse_failsafe(args.failsafe_inbound, args.failsafe_outbound)
        objects = load_cluster_file(args.cluster)
    except (ClusterFileError, ValueError) as exc:
        print(f"picket compile: {exc}", file=sys.stderr)
        return 2
    compiled = compile_cluster(objects, failsafe)
    for problem in compiled.problems:
        print(f"problem: {problem}", file=sys.stderr)
    data = compiled.to_dict()
    if args.format == "json":
        print(json.dumps(data, indent=2))
    else:
        print(yaml.safe_dump(data, sort_keys=False), end="")
    return 0
