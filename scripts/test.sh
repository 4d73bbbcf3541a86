#!/usr/bin/env bash
# Sets up and runs the test suite (what CI runs); arguments name the tests to run instead of all of tests/.
set -euo pipefail
# A relative $PYTHON names a file from where the script was called, not from the repository root.
if [[ "${PYTHON:-}" == */* ]]; then PYTHON=$(realpath -ms -- "$PYTHON"); export PYTHON; fi
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/python.sh
"$PY" -m ruff check audionas tests benchmarks
if [ $# -gt 0 ]; then
  "$PY" -m pytest -q "$@"
else
  "$PY" -m pytest -q tests
fi
