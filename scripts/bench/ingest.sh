#!/usr/bin/env bash
# Benchmark: chess-ingest vs a Python peer (pydicom + pylibjpeg/gdcm, numpy,
# Pillow, multiprocessing) doing the same pipeline on the same files and cores.
#
#   scripts/bench/ingest.sh [IMAGES] [THREADS] [ROUNDS]   (defaults: 42, all cores, 3)
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
ROUNDS="${3:-3}"
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

# Interleaved rounds (Rust, Python, Rust, ...): on a shared machine both see
# the same background load; the best round of each is compared.
for round in $(seq 1 "$ROUNDS"); do
    rm -rf "$WORK/rust" "$WORK/py"
    /usr/bin/time -f "%e %M" -o "$WORK/rust.$round.time" "$BIN" "$ARCH/export" --out "$WORK/rust" --threads "$THREADS" > "$WORK/rust.$round.out"
    /usr/bin/time -f "%e %M" -o "$WORK/py.$round.time" "$VENV/bin/python" scripts/python/ingest_peer.py "$ARCH/export" "$WORK/py" --workers "$THREADS" > "$WORK/py.$round.json"
done
"$VENV/bin/python" - "$WORK" "$ROUNDS" <<'PY'
import json, re, sys
work, rounds = sys.argv[1], int(sys.argv[2])
rust, py = [], []
for r in range(1, rounds + 1):
    secs, kb = open(f"{work}/rust.{r}.time").read().split()
    out = open(f"{work}/rust.{r}.out").read()
    n = int(re.search(r"(\d+) samples", out).group(1))
    share = re.search(r"worker time.*", out)
    rust.append((float(secs), int(kb), n, share.group(0) if share else ""))
    secs, kb = open(f"{work}/py.{r}.time").read().split()
    py.append((float(secs), json.load(open(f"{work}/py.{r}.json"))))
for r, (a, b) in enumerate(zip(rust, py), 1):
    print(f"round {r}: chess-ingest {a[2] / a[0]:.2f} images/s, python peer {b[1]['images'] / b[0]:.2f} images/s")
rs, rkb, rn, rshare = min(rust)
ps, pj = min(py, key=lambda t: t[0])
rr, pr = rn / rs, pj["images"] / ps
print(f"chess-ingest : {rn} images in {rs:.2f} s = {rr:.2f} images/s (best of {rounds}), peak RSS {max(k for _, k, _, _ in rust)/1024:.0f} MB (one process); {rshare}")
print(f"python peer  : {pj['images']} images in {ps:.2f} s = {pr:.2f} images/s (best of {rounds}), decode share {pj['decode_share']:.0%}, "
      f"peak RSS parent {pj['parent_max_rss_mb']:.0f} MB + {pj['workers']} workers x {pj['worker_max_rss_mb']:.0f} MB")
print(f"speed-up     : {rr / pr:.2f}x")
PY
