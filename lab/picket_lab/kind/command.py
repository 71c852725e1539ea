"""``picket kind ...``: the kind tier's command line (one engine, one cluster ``picket`` per machine).

up [--repo DIR] [--keep-image] [--ip-family ipv4|dual] | down | status | shell [-- COMMAND...]
``--ip-family dual`` creates the cluster from manifests/kind/kind-config-dual.yaml (kind's
``ipFamily: dual``; a running cluster of the other family is created again, see ``cluster.up``).
``shell`` runs COMMAND (or an interactive bash) where kind, kubectl and docker talk to the tier:
inside the engine's network namespace, with DOCKER_HOST, KUBECONFIG and PATH set. Failures print
one paragraph naming what failed and exit 1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from picket_lab.build import BuildError
from picket_lab.kind import cluster, images
from picket_lab.kind.layout import NETNS, KindError, layout

USAGE = """usage: picket kind COMMAND
  up [--repo DIR] [--keep-image] [--ip-family ipv4|dual]
                                   engine, node image, cluster 'picket', picket's image built and deployed
                                   (idempotent; --keep-image: do not rebuild picket:dev on a running cluster;
                                   --ip-family dual: a dual-stack cluster, manifests/kind/kind-config-dual.yaml)
  down                             delete the cluster, stop the engine, remove its network namespace
  status                           engine, nodes, picket's pods; exit code 0 only when ready
  shell [-- COMMAND...]            run COMMAND (default: bash) with kind, kubectl and docker pointed at the tier"""


def _say(message: str) -> None:
    print(message, flush=True)


def _repo(given: str | None) -> Path:
    repo = Path(given or os.getcwd()).resolve()
    if not (repo / "manifests" / "kind" / "kind-config.yaml").is_file() or not (repo / "Dockerfile").is_file():
        raise KindError(f"{repo} is not a picket checkout (no manifests/kind/kind-config.yaml or Dockerfile); "
                        "run from the repository or pass --repo")
    return repo


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    lay = layout()
    command, rest = argv[0], argv[1:]
    try:
        if command == "up":
            parser = argparse.ArgumentParser(prog="picket kind up")
            parser.add_argument("--repo")
            parser.add_argument("--keep-image", action="store_true")
            parser.add_argument("--ip-family", choices=cluster.IP_FAMILIES, default="ipv4")
            opts = parser.parse_args(rest)
            began = time.monotonic()
            timings = cluster.up(_repo(opts.repo), lay, _say, rebuild_picket=not opts.keep_image,
                                 ip_family=opts.ip_family)
            _say(f"picket kind ({opts.ip_family}) is up in {time.monotonic() - began:.0f}s ({timings.text()}).\n"
                 f"  picket kind shell -- kubectl get nodes -o wide\n  picket kind shell     # kind, kubectl, docker "
                 f"in namespace {NETNS}\n  picket kind down")
            return 0
        if command == "down":
            cluster.down(lay, _say)
            return 0
        if command == "status":
            ok, text = cluster.status(lay)
            print(text)
            return 0 if ok else 1
        if command == "shell":
            cmd = rest[1:] if rest[:1] == ["--"] else rest
            cluster.link_clients(lay)
            return subprocess.call(["ip", "netns", "exec", NETNS, *(cmd or ["bash"])], env=images.client_env(lay))
    except (KindError, BuildError) as exc:
        print(f"picket kind: {exc}", file=sys.stderr)
        return 1
    print(f"picket kind: unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2
