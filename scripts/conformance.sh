#!/usr/bin/env bash
# Upstream's NetworkPolicy conformance suite ([sig-network] Netpol e2e tests, unmodified) against
# picket on kind, in one command (README, "Conformance"): the kind tier up with picket deployed
# (`picket kind up`, idempotent: a healthy cluster is kept), then e2e.test, agnhost and ginkgo
# built from the Go module proxy (cached), the agnhost image loaded into the nodes, and the suite.
# Arguments go to the suite runner: --subset (CI's 5 tests), --focus REGEX, --procs N, --report-dir DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
picket kind up
PYTHONPATH="$PWD/lab${PYTHONPATH:+:$PYTHONPATH}" exec python3 -m picket_lab.kind.conformance "$@"
