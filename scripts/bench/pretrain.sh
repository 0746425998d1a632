#!/usr/bin/env bash
# MoCo v2 training-step benchmark: chess-train (tch) against the PyTorch
# reference doing the same step, on the same device, alternating runs.
#
#   scripts/bench/pretrain.sh [--device cpu|cuda] [--arch resnet50] [--batch-size 32] [--size 224] [--steps 10] [--rounds 2] [--threads N]
#
# Prints one JSON line per run and the ratio of median step times.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$(scripts/setup.sh)"
export PATH="$VENV/bin:$PATH"

# Both sides get the same explicit intra-op thread count (default: all cores).
DEVICE=cpu ARCH=resnet50 BATCH=32 SIZE=224 STEPS=10 ROUNDS=2 QUEUE=4096 THREADS="$(nproc)"
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --arch) ARCH="$2"; shift 2 ;;
        --batch-size) BATCH="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --steps) STEPS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --queue) QUEUE="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

# PROFILE=release for an optimised build of the Rust side (the step's work
# is libtorch's either way; the dev profile only leaves the thin Rust glue
# unoptimised).
# CHESS_TRAIN_BIN=path uses a binary already built (e.g. by scripts/demo.sh).
PROFILE="${PROFILE:-dev}"
if [ -n "${CHESS_TRAIN_BIN:-}" ]; then
    BIN="$CHESS_TRAIN_BIN"
else
    cargo build -q --profile "$PROFILE" -p chess-train
    BIN=target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")/chess-train
fi
export LD_LIBRARY_PATH="$(readlink -f "$ROOT/.libtorch")/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
common=(--arch "$ARCH" --batch-size "$BATCH" --size "$SIZE" --queue "$QUEUE" --steps "$STEPS" --device "$DEVICE" --threads "$THREADS")
out=$(mktemp)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
for r in $(seq "$ROUNDS"); do
    "$BIN" bench "${common[@]}" | tee -a "$out"
    python scripts/bench/pretrain_reference.py "${common[@]}" | tee -a "$out"
done
python - "$out" <<'PY'
import json, sys, statistics
rows = [json.loads(l) for l in open(sys.argv[1])]
ours = statistics.median(r["median_step_s"] for r in rows if r["impl"].startswith("chess-train"))
ref = statistics.median(r["median_step_s"] for r in rows if r["impl"].startswith("pytorch"))
print(f"median step: chess-train {ours:.3f}s ({rows[0]['batch']/ours:.1f} img/s), pytorch {ref:.3f}s ({rows[0]['batch']/ref:.1f} img/s), ratio {ours/ref:.3f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
rm -f "$out"
