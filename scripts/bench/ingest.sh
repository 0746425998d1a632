#!/usr/bin/env bash
# Benchmark: chess-ingest vs a Python peer (pydicom + pylibjpeg/gdcm, numpy,
# Pillow, multiprocessing) doing the same pipeline on the same files and cores.
#
#   scripts/bench/ingest.sh [IMAGES] [THREADS]     (defaults: 42, all cores)
#
# The archive is made by scripts/make_demo_archive.sh --no-junk: full-size
# real chest CRs (1955x1841 RG1 crops) rotated through 7 transfer syntaxes
# (explicit/implicit LE, deflate, JPEG lossless, JPEG-LS, RLE, JPEG 2000),
# some inside zip / tar.gz. Prints images/s, the speed-up, the share of
# worker time spent decoding, and peak RSS. Not a test.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
IMAGES="${1:-42}"
THREADS="${2:-$(nproc)}"
VENV="$(scripts/setup.sh)"
CACHE="${CHESS_CACHE:-$HOME/.cache/chess}"
ARCH="$CACHE/bench-ingest-$IMAGES"
if [ ! -d "$ARCH/export" ]; then
    "$VENV/bin/python" scripts/python/ingest_make_demo_archive.py "$ARCH" --images "$IMAGES" --no-junk >/dev/null
fi
cargo build --release -q -p chess-ingest
BIN="${CARGO_TARGET_DIR:-target}/release/chess-ingest"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "archive: $IMAGES chest CRs (1955x1841 crops) in 7 syntaxes, $(du -sh "$ARCH/export" | cut -f1); $THREADS threads; $(nproc) cores"

# Warm the page cache so both read from memory.
cat $(find "$ARCH/export" -type f) > /dev/null

/usr/bin/time -f "%e %M" -o "$WORK/rust.time" "$BIN" "$ARCH/export" --out "$WORK/rust" --threads "$THREADS" > "$WORK/rust.out"
read -r RUST_S RUST_KB < "$WORK/rust.time"
RUST_N=$(grep -oE '[0-9]+ samples' "$WORK/rust.out" | grep -oE '[0-9]+')
grep "worker time" "$WORK/rust.out" | sed 's/^/chess-ingest: /'

/usr/bin/time -f "%e %M" -o "$WORK/py.time" "$VENV/bin/python" scripts/python/ingest_peer.py "$ARCH/export" "$WORK/py" --workers "$THREADS" > "$WORK/py.json"
read -r PY_S PY_KB < "$WORK/py.time"
"$VENV/bin/python" - "$RUST_N" "$RUST_S" "$RUST_KB" "$PY_S" "$WORK/py.json" <<'PY'
import json, sys
rn, rs, rkb, ps, pj = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), json.load(open(sys.argv[5]))
rr, pr = rn / rs, pj["images"] / ps
print(f"chess-ingest : {rn} images in {rs:.2f} s = {rr:.2f} images/s, peak RSS {rkb/1024:.0f} MB (one process)")
print(f"python peer  : {pj['images']} images in {ps:.2f} s = {pr:.2f} images/s, decode share {pj['decode_share']:.0%}, "
      f"peak RSS parent {pj['parent_max_rss_mb']:.0f} MB + {pj['workers']} workers x {pj['worker_max_rss_mb']:.0f} MB")
print(f"speed-up     : {rr / pr:.2f}x")
PY
