"""``picket explain SRC DST --port P``: whether one connection is allowed, and why, per direction.

SRC and DST are ``namespace/pod``, ``host/NAME`` or an IP address (an address that is no endpoint
of the cluster is outside picket's enforcement: its own direction is "not enforced here"). The
objects come from ``--cluster FILE`` (offline) or, with ``--live``, from the API server of the
user's kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``, then the local
cluster's). Both are compiled by the same compiler the operator runs, and
``compiler.explaining.Explainer`` walks the compiled rule sets rule by rule.

Text: one line with the verdict, then one line per direction (egress of the sender, ingress of the
receiver) with the deciding policy and rule, or why no rule matched, and the tier chain when there
is more than the Kubernetes tier. ``--format json``: ``Explanation.to_dict()``: ``{"allowed":
bool, "egress": {"allowed": bool, "summary": ..., "reasons": [...], "decidedBy": ..., "tiers":
[...]}, "ingress": {...}, ...}``. Audit mode: when a staged policy (``picket.dev/audit: "true"``,
Calico's Staged* kinds) selects SRC for egress or DST for ingress, the text gains a section
"staged (audit mode, ...)" with the verdict and both directions as the staged rule sets decide them,
and JSON a key ``"staged": {"allowed": bool, "egress": {...}, "ingress": {...}}`` (absent otherwise).
Exit code 0 for a verdict either way, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from picket.model import Protocol

LAB_KUBECONFIG = Path("/run/picket-lab/kubeconfig")
LIVE_KINDS = (
    ("/api/v1/namespaces", "Namespace", "v1"),
    ("/api/v1/pods", "Pod", "v1"),
    ("/apis/networking.k8s.io/v1/networkpolicies", "NetworkPolicy", "networking.k8s.io/v1"),
)
OPTIONAL_KINDS = (  # optional CRDs (picket's Calico-style ones, network-policy-api's): read when installed
    ("/apis/policy.networking.k8s.io/v1alpha2/clusternetworkpolicies", "ClusterNetworkPolicy",
     "policy.networking.k8s.io/v1alpha2"),
    ("/api/v1/nodes", "Node", "v1"),  # ClusterNetworkPolicy `nodes` peers (a user may not list nodes)
    ("/apis/projectcalico.org/v3/globalnetworkpolicies", "GlobalNetworkPolicy", "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/networkpolicies", "NetworkPolicy", "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/stagednetworkpolicies", "StagedNetworkPolicy", "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy", "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/stagedkubernetesnetworkpolicies", "StagedKubernetesNetworkPolicy",
     "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/globalnetworksets", "GlobalNetworkSet", "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/networksets", "NetworkSet", "projectcalico.org/v3"),
    ("/apis/projectcalico.org/v3/hostendpoints", "HostEndpoint", "projectcalico.org/v3"),
)


def default_kubeconfig(explicit: str | None = None, env: str | None = None) -> Path:
    """``--kubeconfig``, then ``$KUBECONFIG`` (its first file), ``~/.kube/config``, the local cluster's."""
    if explicit:
        return Path(explicit)
    if env:
        return Path(env.split(os.pathsep)[0])
    home = Path.home() / ".kube" / "config"
    return home if home.exists() else LAB_KUBECONFIG


def live_objects(kube: Any) -> list[dict[str, Any]]:
    """Namespaces, Pods, NetworkPolicies and (when their CRDs exist) Calico-style objects."""
    from picket.apiclient import ApiError

    out: list[dict[str, Any]] = []
    for path, kind, api in LIVE_KINDS:
        out += [{"apiVersion": api, "kind": kind, **item} for item in kube.get(path).get("items", [])]
    for path, kind, api in OPTIONAL_KINDS:
        try:
            items = kube.get(path).get("items", [])
        except ApiError as exc:
            if exc.status in (404, 403):
                continue
            raise
        out += [{"apiVersion": api, "kind": kind, **item} for item in items]
    return out


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="picket explain",
                                description="Whether SRC can connect to DST on a port, and which rule decides.")
    p.add_argument("source", metavar="SRC", help="namespace/pod, host/NAME or an IP address")
    p.add_argument("destination", metavar="DST", help="namespace/pod, host/NAME or an IP address")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--protocol", default="TCP", choices=("TCP", "UDP", "SCTP"))
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--cluster", help="a cluster file (multi-document YAML), offline")
    where.add_argument("--live", action="store_true", help="the cluster of your kubeconfig (or the local cluster)")
    p.add_argument("--kubeconfig", help="with --live (default: $KUBECONFIG, ~/.kube/config, the local cluster's)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--failsafe-inbound", help="host failsafe ports, e.g. tcp:22,udp:68 (default: Calico's)")
    p.add_argument("--failsafe-outbound", help="host failsafe ports, e.g. udp:53 (default: Calico's)")
    return p


def main(argv: Sequence[str]) -> int:
    args = parser().parse_args(list(argv))
    from picket.failsafe import parse_failsafe
    from picket_operator.commands.clusterfile import ClusterFileError, load_cluster_file
    from picket_operator.compiler.explaining import Explainer, ExplainError

    if not 0 < args.port <= 65535:
        print(f"picket explain: --port {args.port}: must be 1-65535", file=sys.stderr)
        return 2
    try:
        failsafe = parse_failsafe(args.failsafe_inbound, args.failsafe_outbound)
        if args.live:
            from picket.apiclient import ApiError, KubeClient

            try:
                kube = KubeClient(default_kubeconfig(args.kubeconfig, os.environ.get("KUBECONFIG")),
                                  user_agent="picket-explain")
                objects = live_objects(kube)
            except ApiError as exc:
                print(f"picket explain: the API server answered {exc}", file=sys.stderr)
                return 2
        else:
            objects = load_cluster_file(args.cluster)
        explainer = Explainer(objects, failsafe)
        explanation = explainer.explain(args.source, args.destination, Protocol(args.protocol), args.port)
    except (ClusterFileError, ExplainError, ValueError, OSError) as exc:
        print(f"picket explain: {exc}", file=sys.stderr)
        return 2
    for problem in explainer.compiled.problems:
        print(f"problem: {problem}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps(explanation.to_dict(), indent=2))
    else:
        print(explanation.to_text())
    return 0
