#!/usr/bin/env bash
# network-policy-api's conformance suite (v0.2.0, profile ClusterNetworkPolicy with the named-ports
# and node-peers features, unmodified) against picket on kind, in one command (README,
# "ClusterNetworkPolicy" > "Conformance"): the kind tier up with picket deployed (`picket kind up`,
# idempotent: a healthy cluster is kept), then the suite built through the Go module proxy, the CRD of
# the same release installed (the operator restarted when it predates it), agnhost:2.45 loaded into
# the nodes, and the run. Arguments go to the runner: --subset (CI's 5 tests), --run EXPR, --skip EXPR,
# --report-dir DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
picket kind up
PYTHONPATH="$PWD/lab${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m picket_lab.kind.cnpconformance "$@"
