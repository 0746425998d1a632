#!/usr/bin/env bash
# Python loader benchmark: samples/s of chess_shards.torch.StreamingDataset +
# DataLoader against webdataset + DataLoader, Mosaic `streaming` and `litdata`
# on the same 512x512 uint16 images (each in its own format, converted once),
# batch 64, every run pinned to the same cores; CPU seconds and peak PSS.
# Prints a Markdown table (scripts/bench/python_loader.py measures).
#   scripts/bench/python_loader.sh [SAMPLES] [REPEATS] [WORKERS] [CORES]
# Mosaic streaming and litdata are installed here, not by setup.sh, into a
# separate venv ($CHESS_CACHE/bench-venv) that sees the project venv's
# packages through a .pth file, so the project venv is never changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$(scripts/setup.sh)"
N="${1:-1024}"
REPEATS="${2:-3}"
WORKERS="${3:-2}"
CORES="${4:-0-$(($(nproc) - 1))}"
SHUFFLE=256
CACHE="${CHESS_CACHE:-$HOME/.cache/chess}"
BENCH_VENV="$CACHE/bench-venv"
OUT="$ROOT/target/bench/python-loader"
DS="$OUT/ds-$N"

if ! "$BENCH_VENV/bin/python" -c "import streaming, litdata" 2>/dev/null; then
    echo "python loader bench: installing mosaicml-streaming and litdata into $BENCH_VENV" >&2
    [ -x "$BENCH_VENV/bin/python" ] || "$VENV/bin/python" -m venv "$BENCH_VENV"
    site="$(echo "$BENCH_VENV"/lib/python3*/site-packages)"
    echo "$(echo "$VENV"/lib/python3*/site-packages)" > "$site/chess-venv.pth"
    "$BENCH_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "mosaicml-streaming==0.13.0" "litdata==0.2.76" >&2
fi
PY="$BENCH_VENV/bin/python"

cargo build --release -q -p chess-shards
BIN="$ROOT/target/release/chess-shards"
mkdir -p "$OUT"
if [ ! -f "$DS/dataset.json" ]; then
    rm -rf "$DS"
    "$BIN" -q demo --out "$DS" --count "$N" --size 512 --shard-samples 128 >&2
    rm -rf "$DS/.staging"
fi
"$PY" scripts/bench/python_loader.py convert "$DS" "$OUT/formats-$N" >&2
cat "$DS"/shards/*.tar "$OUT/formats-$N"/mds/* "$OUT/formats-$N"/litdata/* > /dev/null  # warm the page cache

results="$OUT/results.jsonl"
: > "$results"
for peer in chess webdataset mosaic litdata; do
    for w in 0 "$WORKERS"; do
        echo "python loader bench: $peer, $w workers, cores $CORES" >&2
        taskset -c "$CORES" "$PY" scripts/bench/python_loader.py run "$peer" "$DS" "$OUT/formats-$N" "$w" "$REPEATS" \
            "$SHUFFLE" >> "$results"
    done
done

"$PY" - "$results" "$CORES" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
wds = {r["workers"]: r for r in rows if r["peer"] == "webdataset"}
print(f"| loader (cores {sys.argv[2]}) | workers | samples/s | CPU s | samples per CPU-s | vs webdataset per CPU-s | peak PSS |")
print("|---|---:|---:|---:|---:|---:|---:|")
names = {"chess": "chess_shards StreamingDataset", "webdataset": "webdataset + chess_shards.decode",
         "mosaic": "Mosaic streaming (MDS)", "litdata": "litdata"}
for r in rows:
    base = wds[r["workers"]]["samples_per_cpu_s"]
    print(f"| {names[r['peer']]} | {r['workers']} | {r['samples_per_s']:.0f} | {r['cpu_seconds']:.2f} | "
          f"{r['samples_per_cpu_s']:.0f} | {r['samples_per_cpu_s'] / base:.2f}x | {r['peak_pss'] / 2**20:.0f} MB |")
PYEOF
