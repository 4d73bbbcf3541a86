#!/usr/bin/env bash
# Installs audionas and everything it needs on a fresh machine. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# torch first, pinned, so that no later requirement pulls the CUDA build on a CPU machine.
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  "$PY" -m pip install -q "torch==2.13.0"
fi
# espeak-ng speaks the synthetic keyword set; sox is not needed.
if ! command -v espeak-ng >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng >/dev/null
  else
    echo "setup: espeak-ng is missing; install it with your package manager" >&2
  fi
fi
"$PY" -m pip install -q -e ".[dev]"
