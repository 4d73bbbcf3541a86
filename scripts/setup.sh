#!/usr/bin/env bash
# Installs audionas and everything it needs on a fresh machine. Idempotent.
set -euo pipefail
# A relative $PYTHON names a file from where the script was called, not from the repository root.
if [[ "${PYTHON:-}" == */* ]]; then PYTHON=$(realpath -ms -- "$PYTHON"); export PYTHON; fi
cd "$(dirname "$0")/.."
source scripts/python.sh
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
can_apt() { command -v apt-get >/dev/null 2>&1 && { [ -z "$SUDO" ] || command -v sudo >/dev/null 2>&1; }; }
if [ -z "${PYTHON:-}" ] && [ "$PY" = python3 ] && externally_managed python3; then
  echo "setup: $(command -v python3) is an externally managed system Python: installing into .venv" >&2
  if ! python3 -m venv .venv 2>/dev/null; then  # Debian ships venv's ensurepip apart
    rm -rf .venv  # venv leaves a .venv without pip when ensurepip is missing
    if can_apt; then
      { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv >/dev/null; } || true
    fi
    python3 -m venv .venv || { rm -rf .venv; echo "setup: cannot make .venv: install python3-venv" \
                                 "(or set PYTHON to a Python pip may install into) and rerun" >&2; exit 1; }
  fi
  PY=.venv/bin/python
fi
# torch first, pinned, so that no later requirement pulls another build. On Linux without an NVIDIA GPU the
# CPU build: PyPI's is the CUDA one (gigabytes of CUDA wheels), so PyTorch's CPU index is added when pip's
# own sources offer no CPU build (a machine with a local CPU wheel, as this project's CI, needs no network).
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
  extra=()
  if [ "$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then
    found=$("$PY" -m pip install -q --dry-run --no-deps --report - "torch==2.13.0" 2>/dev/null \
            | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["install"][0]["metadata"]["version"])' \
            2>/dev/null || true)
    [[ "$found" == *+cpu ]] || extra=(--extra-index-url https://download.pytorch.org/whl/cpu)
  fi
  "$PY" -m pip install -q "torch==2.13.0" ${extra[@]+"${extra[@]}"}
fi
# espeak-ng speaks the synthetic keyword set (the demo); the tests that need it are skipped without it.
if ! command -v espeak-ng >/dev/null 2>&1; then
  if can_apt; then
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq espeak-ng >/dev/null; } \
      || echo "setup: apt-get could not install espeak-ng (see its messages above)" >&2
  fi
  if ! command -v espeak-ng >/dev/null 2>&1; then
    echo "setup: warning: espeak-ng is missing; install it with your package manager: the synthetic" \
         "keyword set (audionas data synth-speech-commands, scripts/demo.sh) needs it" >&2
  fi
fi
"$PY" -m pip install -q -e ".[dev]"
