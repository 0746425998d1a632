#!/usr/bin/env bash
# What data-parallel training through c10d costs: `chess-train pretrain` as
# one plain process against the same run as a world of one under torchrun
# (every collective runs: key gather and shuffle broadcast, the bucketed
# gradient all-reduce, gathered keys), on the same device and data,
# alternating runs. Step time is the median over the steps after the first
# two (metrics.jsonl, one line per step).
#
#   scripts/bench/dist.sh [--device cpu|cuda] [--arch resnet18] [--batch-size 16] [--size 128]
#                         [--steps 12] [--rounds 2] [--threads N] [--backend auto|gloo|nccl]
#
# On a GPU machine: --device cuda --arch resnet50 --size 512 --batch-size 64
# (auto picks NCCL). Prints one JSON line per run and the ratio of medians.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$(scripts/setup.sh)"
export PATH="$VENV/bin:$PATH"

DEVICE=cpu ARCH=resnet18 BATCH=16 SIZE=128 STEPS=12 ROUNDS=2 THREADS="$(nproc)" BACKEND=auto
while [ $# -gt 0 ]; do
    case "$1" in
        --device) DEVICE="$2"; shift 2 ;;
        --arch) ARCH="$2"; shift 2 ;;
        --batch-size) BATCH="$2"; shift 2 ;;
        --size) SIZE="$2"; shift 2 ;;
        --steps) STEPS="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --backend) BACKEND="$2"; shift 2 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

PROFILE="${PROFILE:-dev}"
cargo build -q --profile "$PROFILE" -p chess-train -p chess-shards
DIR="target/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# Enough images that no run reaches an epoch end (no checkpoint inside the timing).
"$DIR/chess-shards" demo --out "$WORK/data" --count $(( BATCH * (STEPS + 1) )) --size "$SIZE" --bit-depth 8 --quiet
common=(pretrain "$WORK/data" --arch "$ARCH" --batch-size "$BATCH" --size "$SIZE" --queue $(( BATCH * 16 ))
        --steps "$STEPS" --device "$DEVICE" --threads "$THREADS" --no-augment --quiet)

median_step() {  # median seconds per step over steps 3.. of a run's metrics.jsonl
    "$VENV/bin/python" - "$1" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(statistics.median(r["seconds"] - p["seconds"] for p, r in zip(rows[2:], rows[3:])))
PY
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores" >&2
declare -A times
for r in $(seq "$ROUNDS"); do
    for mode in single world1; do
        run="$WORK/$mode-$r"
        if [ "$mode" = single ]; then
            env -u RANK -u WORLD_SIZE "$DIR/chess-train" "${common[@]}" --out "$run"
        else
            torchrun --no-python --nproc-per-node 1 --master-addr 127.0.0.1 --master-port $(( 20000 + RANDOM % 20000 )) \
                "$DIR/chess-train" "${common[@]}" --out "$run" --dist-backend "$BACKEND" 2> "$WORK/torchrun.log" \
                || { cat "$WORK/torchrun.log" >&2; exit 1; }
        fi
        t=$(median_step "$run/metrics.jsonl")
        times[$mode]="${times[$mode]:-} $t"
        echo "{\"mode\":\"$mode\",\"round\":$r,\"device\":\"$DEVICE\",\"arch\":\"$ARCH\",\"batch\":$BATCH,\"size\":$SIZE,\"median_step_s\":$t}"
    done
done
"$VENV/bin/python" - "${times[single]}" "${times[world1]}" <<'PY'
import statistics, sys
s = statistics.median(map(float, sys.argv[1].split()))
w = statistics.median(map(float, sys.argv[2].split()))
print(f"median step: single {s*1000:.1f} ms, world of one through c10d {w*1000:.1f} ms, ratio {w/s:.3f}")
PY
