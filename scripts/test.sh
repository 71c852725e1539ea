#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command (what CI's .ci/run calls): all set-up
# (scripts/setup.sh, idempotent), then lint, types, layer contracts and pytest (unit, kernel and
# local-cluster tests; the last two need root), then the kind tier (tests/kind/, a real kind cluster).
# Extra arguments go to pytest (one run, as given).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff";          ruff check picket operator agent lab tests benchmarks
echo "== mypy --strict"; mypy picket operator/picket_operator agent/picket_agent lab/picket_lab
echo "== import-linter"; lint-imports
if [ "$#" -gt 0 ]; then
  echo "== pytest";      python3 -m pytest "$@"
else
  echo "== pytest";      python3 -m pytest -m "not kind"
  # the kind tier last: a real kind cluster in a Docker engine of its own (tests/kind/, 'picket kind')
  echo "== pytest: kind tier"; python3 -m pytest -m kind tests/kind
fi
