#!/usr/bin/env bash
# Sets up and runs the test suite (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m ruff check audionas tests benchmarks
python3 -m pytest -q tests "$@"
