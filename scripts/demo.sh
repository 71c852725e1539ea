#!/usr/bin/env bash
# The main job on a fresh machine, in one command: all set-up (Debian packages, picket and its
# Python dependencies, the local cluster's binaries, built once and cached), then `picket demo`.
# Idempotent: a second run skips what is done. Extra arguments go to `picket demo` (e.g. --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "demo: building the local cluster's binaries if missing (cached; ~7 min once on 2 cores)"
picket lab build
exec picket demo "$@"
