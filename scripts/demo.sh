#!/usr/bin/env bash
# Sets up audionas and runs the main job on the built-in default data (the synthetic keyword set):
#   1. synthesise Speech Commands with espeak-ng (data/speech_commands_synth)
#   2. train, evaluate and export the TC-ResNet14-1.5 baseline (CPU preset)
#   3. DARTS: search NAS1 cells (small CPU preset), retrain the found cell from scratch
#   4. one-shot: FairNAS supernet, NSGA-II and random search, Figure 4, retrain the best front member
#   5. print the KWS paper's Table 2 for these runs
# Every stage resumes or is skipped when its output is already complete, so the script can be re-run.
# DEMO_STAGES="baseline darts oneshot" selects stages (default: all); Table 2 holds every demo run finished
# so far, so stages run one at a time add up.
set -euo pipefail
# A relative $PYTHON names a file from where the script was called, not from the repository root.
if [[ "${PYTHON:-}" == */* ]]; then PYTHON=$(realpath -ms -- "$PYTHON"); export PYTHON; fi
# So do relative DATA and RUNS; their defaults are below the repository root.
if [[ -n "${DATA:-}" ]]; then DATA=$(realpath -ms -- "$DATA"); fi
if [[ -n "${RUNS:-}" ]]; then RUNS=$(realpath -ms -- "$RUNS"); fi
cd "$(dirname "$0")/.."
STAGES=${DEMO_STAGES:-baseline darts oneshot}
STAGES=${STAGES//,/ }
for stage in $STAGES; do
  case $stage in
    baseline|darts|oneshot) ;;
    *) echo "demo: DEMO_STAGES: unknown stage '$stage'; expected baseline, darts and/or oneshot" >&2; exit 2 ;;
  esac
done
bash scripts/setup.sh
source scripts/python.sh
audionas() { "$PY" -m audionas "$@"; }  # the Python setup installed into, whatever is first on PATH
DATA=${DATA:-data/speech_commands_synth}
RUNS=${RUNS:-runs}
has() { [[ " $STAGES " == *" $1 "* ]]; }
say() { printf '\n== %s\n' "$*" >&2; }

say "synthetic Speech Commands -> $DATA"
audionas data synth-speech-commands --out "$DATA"

if has baseline; then
  say "baseline: tc-resnet14-1.5"
  audionas train --preset kws-tc-resnet-cpu --data "$DATA" --out "$RUNS/tc-resnet14-1.5"
  audionas evaluate "$RUNS/tc-resnet14-1.5" --data "$DATA" --split test --json
  audionas export "$RUNS/tc-resnet14-1.5" --waveform  # waveforms in, class probabilities out (.pt2)
fi

if has darts; then
  say "DARTS search (NAS1, CPU preset)"
  audionas search darts --preset kws-nas1-cpu --data "$DATA" --out "$RUNS/darts-search"
  say "DARTS retrain of the found cell"
  audionas train --preset kws-darts-retrain-cpu --data "$DATA" --out "$RUNS/darts-nas1" \
    --genotype "$RUNS/darts-search/genotype.json"
fi

if has oneshot; then
  say "FairNAS supernet (KWS space, CPU preset)"
  audionas search supernet --preset kws-fairnas-cpu --data "$DATA" --out "$RUNS/supernet"
  say "NSGA-II and random search with the same number of evaluations"
  # Eq. 1 exploits only from generation 15 and reaches 0.8 at 70: keep the 70 generations, shrink P; score
  # every candidate on the same 256 evenly spaced validation clips. Random search in batches of P at the same
  # seed draws NSGA-II's random candidates, so the two differ only by what NSGA-II breeds.
  audionas search nsga2 --supernet "$RUNS/supernet" --out "$RUNS/nsga2" --population 8 --generations 70 \
    --val-limit 256
  audionas search random --supernet "$RUNS/supernet" --out "$RUNS/random" --evaluations 560 --batch 8 \
    --val-limit 256
  audionas plot-search "$RUNS/nsga2" "$RUNS/random" --out "$RUNS/figure4"
  say "retrain the most accurate NSGA-II front member from scratch"
  best=$("$PY" -c "import json,sys; f=json.load(open(sys.argv[1]))['front']; \
print(max(range(len(f)), key=lambda i: f[i]['score']))" "$RUNS/nsga2/pareto.json")
  audionas train --preset kws-oneshot-retrain-cpu --data "$DATA" --out "$RUNS/oneshot-best" \
    --chromosome "$RUNS/nsga2/pareto.json#$best"
fi

say "Table 2"
table_runs=()
for run in tc-resnet14-1.5 darts-nas1 oneshot-best; do
  if [ -f "$RUNS/$run/final.pt" ]; then table_runs+=("$RUNS/$run"); fi
done
audionas report "${table_runs[@]}" --out "$RUNS/report"
