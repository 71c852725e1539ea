#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, types, layer contracts, then pytest (unit, kernel
# and local-cluster tests; the last two need root). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff";          ruff check picket operator agent tests benchmarks
echo "== mypy --strict"; mypy picket operator/picket_operator agent/picket_agent
echo "== import-linter"; lint-imports
echo "== pytest";        python3 -m pytest "$@"
