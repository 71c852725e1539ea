#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command (what CI's .ci/run calls): all set-up
# (scripts/setup.sh, idempotent), then lint, types, layer contracts and pytest (unit, kernel and
# local-cluster tests; the last two need root). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== ruff";          ruff check picket operator agent lab tests benchmarks
echo "== mypy --strict"; mypy picket operator/picket_operator agent/picket_agent lab/picket_lab
echo "== import-linter"; lint-imports
echo "== pytest";        python3 -m pytest "$@"
