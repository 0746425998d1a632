#!/usr/bin/env bash
# The main job on a built-in default: builds the tools, writes a small
# dataset, verifies it, and shows what is in it (statistics, a chart and one
# image as PNG). Outputs go to ./chess-demo-out (replaced on each run).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh >/dev/null

OUT="${1:-$ROOT/chess-demo-out}"
cargo build --release -q -p chess-shards
BIN="$ROOT/target/release"

rm -rf "$OUT"
mkdir -p "$OUT"
echo "== chess-shards demo: 64 synthetic 512x512 radiograph phantoms, paired with bone-free targets"
"$BIN/chess-shards" demo --out "$OUT/dataset" --count 64 --paired
echo "== chess-shards verify"
"$BIN/chess-shards" verify "$OUT/dataset"
echo "== chess-shards stats"
"$BIN/chess-shards" stats "$OUT/dataset" --png "$OUT/stats.png"
echo "== chess-shards subset (PA views) and export"
"$BIN/chess-shards" subset "$OUT/dataset" --where "view_position = 'PA'" --out "$OUT/pa.parquet"
"$BIN/chess-shards" export "$OUT/dataset" demo000000 "$OUT/demo000000.png"
echo "outputs in $OUT: dataset/, stats.png, pa.parquet, demo000000.png"
