#!/usr/bin/env bash
# Scale benchmark: the paper's 4.8 M-row dataset (tiny synthetic samples, so
# the manifest, not the pixels, is what is measured), then wall time and peak
# RSS (/usr/bin/time -v) of each command on it. Prints a Markdown table.
#   scripts/bench/scale.sh [--rows N] [--verify-rows N] [--parts P] [--part-rows N] [--out DIR]
# Defaults: 4,800,000 rows in shards of 10,000; verify on the first 200,000
# (a subset manifest; SCALE_FULL_VERIFY=1 adds the whole dataset); merge of
# 48 partitions of 100,000 rows.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROWS=4800000
VERIFY_ROWS=200000
PARTS=48
PART_ROWS=100000
OUT="$ROOT/target/bench/scale"
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --verify-rows) VERIFY_ROWS="$2"; shift 2 ;;
        --parts) PARTS="$2"; shift 2 ;;
        --part-rows) PART_ROWS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "scale.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "scale.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
cd "$ROOT"
# CHESS_SHARDS_BIN: a binary to measure instead of building the release one.
if [ -n "${CHESS_SHARDS_BIN:-}" ]; then
    BIN="$CHESS_SHARDS_BIN"
else
    cargo build --release -q -p chess-shards
    BIN="$ROOT/target/release/chess-shards"
fi
mkdir -p "$OUT"
DS="$OUT/ds-$ROWS"
LOG="$OUT/times"
mkdir -p "$LOG"
TABLE="$OUT/table-$ROWS.md"
printf '| step | rows | wall s | peak RSS MB |\n|---|---:|---:|---:|\n' > "$TABLE"

# measure NAME ROWS CMD...: runs CMD under /usr/bin/time -v, appends a row.
measure() {
    local name="$1" rows="$2"
    shift 2
    /usr/bin/time -v -o "$LOG/$name.txt" "$@" > "$LOG/$name.out" 2> "$LOG/$name.err" || {
        echo "scale.sh: $name failed; see $LOG/$name.err" >&2
        exit 1
    }
    local rss wall
    rss="$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$LOG/$name.txt")"
    wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s}' "$LOG/$name.txt")"
    printf '| %s | %s | %s | %s |\n' "$name" "$rows" "$wall" "$rss" | tee -a "$TABLE" >&2
}

rm -rf "$DS"
measure "write (demo --no-verify)" "$ROWS" \
    "$BIN" -q demo --out "$DS" --count "$ROWS" --size 16 --bit-depth 8 --shard-samples 10000 --no-verify
measure "inspect --limit 1" "$ROWS" "$BIN" -q inspect "$DS" --limit 1
measure "stream plan + rank 0 of 64" "$ROWS" "$BIN" -q stream "$DS" --world 64 --rank 0 --batch 64
measure "subset --where view_position == 'PA'" "$ROWS" \
    "$BIN" -q subset "$DS" --where "view_position == 'PA'" --out "$OUT/pa.parquet"
seq -f 'demo%06g' 0 $((VERIFY_ROWS - 1)) > "$OUT/verify-keys.txt"
"$BIN" -q subset "$DS" --keys "$OUT/verify-keys.txt" --out "$OUT/verify-subset.parquet"
measure "verify (subset manifest)" "$VERIFY_ROWS" "$BIN" -q verify "$OUT/verify-subset.parquet"
if [ "${SCALE_FULL_VERIFY:-0}" = 1 ]; then
    measure "verify (whole dataset)" "$ROWS" "$BIN" -q verify "$DS"
fi
measure "fractions 0.01,0.1 x2" "$ROWS" "$BIN" -q fractions "$DS" --fractions 0.01,0.1 --repeats 2 \
    --labels Cardiomegaly --out "$OUT/fractions"
measure "balance view_position (undersample)" "$ROWS" "$BIN" -q balance "$DS" --label-column view_position \
    --mode undersample --per-class 1000 --out "$OUT/balanced.parquet"

# merge: P partitions of N rows each with distinct keys (demo --start), written first, not timed.
PARTDIR="$OUT/parts-$PARTS-$PART_ROWS"
if [ ! -f "$PARTDIR/done" ]; then
    rm -rf "$PARTDIR" && mkdir -p "$PARTDIR"
    for p in $(seq 0 $((PARTS - 1))); do
        "$BIN" -q demo --out "$PARTDIR/p$p" --start $((p * PART_ROWS)) --count "$PART_ROWS" --size 16 \
            --bit-depth 8 --shard-samples 10000 --no-verify
    done
    touch "$PARTDIR/done"
fi
rm -rf "$OUT/merged"
measure "merge $PARTS x $PART_ROWS" "$((PARTS * PART_ROWS))" "$BIN" -q merge "$PARTDIR"/p* --out "$OUT/merged"
cat "$TABLE"
