#!/usr/bin/env bash
# Journal benchmark: resuming a chess-ingest run from an N-line journal
# (default 4.8 M, the paper's scale). Writes the journal once (not timed),
# then measures wall time and peak RSS (/usr/bin/time -v) of what a resumed
# run does before its first new file: read the journal, rebuild the
# de-duplication state against the complete shards' keys. Prints a Markdown
# table row and the example's own step times.
#   scripts/bench/journal.sh [--rows N] [--out DIR]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
ROWS=4800000
OUT="$ROOT/target/bench/journal"
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "journal.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
[ -x /usr/bin/time ] || { echo "journal.sh: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 1; }
cd "$ROOT"
# JOURNAL_BIN: an already built example binary to measure instead of building it.
if [ -n "${JOURNAL_BIN:-}" ]; then
    BIN="$JOURNAL_BIN"
else
    cargo build --release -q -p chess-ingest --example journal_resume
    BIN="$ROOT/target/release/examples/journal_resume"
fi
mkdir -p "$OUT"
"$BIN" write "$ROWS" "$OUT"
/usr/bin/time -v -o "$OUT/resume.time" "$BIN" resume "$ROWS" "$OUT" | tee "$OUT/resume.out"
rss="$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$OUT/resume.time")"
wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, p, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.1f", s}' "$OUT/resume.time")"
bytes="$(stat -c %s "$OUT/journal.jsonl")"
printf '| journal lines | journal MB | resume wall s | resume peak RSS MB | RSS bytes per line |\n|---:|---:|---:|---:|---:|\n'
awk -v n="$ROWS" -v b="$bytes" -v w="$wall" -v r="$rss" \
    'BEGIN { printf "| %d | %.0f | %s | %s | %.0f |\n", n, b / 1e6, w, r, r * 1048576 / n }'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
