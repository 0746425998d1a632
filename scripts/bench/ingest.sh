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
#
#   scripts/bench/ingest.sh --per-syntax [IMAGES] [ROUNDS]   (defaults: 42, 3)
#
# groups the archive's plain files by transfer syntax (6 each, 3 deflate),
# adds JPEG Extended 12-bit (.51) and HTJ2K (.201) transcodes of its
# explicit-LE images (scripts/python/ingest_bench_syntaxes.py), and times each
# syntax with one thread / one worker on one core (taskset -c 0), interleaved
# rounds, best of each; the
# peer's interpreter start-up is measured (an empty folder) and subtracted.
#
#   scripts/bench/ingest.sh --half-lossless [IMAGES] [THREADS] [ROUNDS]
#
# as the first mode on an archive that is half JPEG lossless (.70), half
# explicit-LE uncompressed (the demo archive maker's
# `--syntaxes jpeg-lossless,explicit-le`).
#
# All modes run chess-ingest with `--burned-in keep` (CHESS_BENCH_ARGS adds
# to it): the peer does no burned-in text handling, and `reject` would drop
# images the peer keeps. With `keep` the detector does not scan (only a
# --burned-in-rules file's regions would be blanked); the "worker time"
# line's burned-in share says so. What the scan adds is measured by
# scripts/bench/burned_in.py --time-only.
set -euo pipefail
OURS_ARGS="--burned-in keep ${CHESS_BENCH_ARGS:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
if [ "${1:-}" = "--per-syntax" ]; then
    IMAGES="${2:-42}"
    ROUNDS="${3:-3}"
    VENV="${CHESS_BENCH_VENV:-$(scripts/setup.sh)}"
    CACHE="${CHESS_CACHE:-$HOME/.cache/chess}"
    ARCH="$CACHE/bench-ingest-$IMAGES"
    [ -d "$ARCH/export" ] || "$VENV/bin/python" scripts/python/ingest_make_demo_archive.py "$ARCH" --images "$IMAGES" --no-junk >/dev/null
    [ -n "${CHESS_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p chess-ingest
    BIN="${CARGO_TARGET_DIR:-target}/release/chess-ingest"
    WORK="$(mktemp -d)"
    trap 'rm -rf "$WORK"' EXIT
    "$VENV/bin/python" scripts/python/ingest_bench_syntaxes.py "$ARCH/export" "$WORK/syn" 6 >/dev/null
    mkdir -p "$WORK/empty"
    cat $(find "$WORK/syn" -type f) > /dev/null
    # One core for both: "one worker" is not one core for the peer, whose
    # OpenJPEG decodes with a thread per core (measured: its JPEG 2000 folder
    # took 1.87 s unpinned and 3.36 s pinned on 2 cores).
    PIN=""; command -v taskset >/dev/null 2>&1 && PIN="taskset -c 0"
    # Seconds a command took; a command that fails stops the benchmark (a
    # failed run is fast, and would read as a speed-up).
    t() {
        local s; s=$(date +%s.%N)
        "$@" > /dev/null 2>&1 || { echo "ingest.sh: failed (exit $?): $*" >&2; return 1; }
        echo "$(date +%s.%N) - $s" | bc
    }
    start=9; for r in $(seq 1 "$ROUNDS"); do
        x=$(t $PIN "$VENV/bin/python" scripts/python/ingest_peer.py "$WORK/empty" "$WORK/pe$r" --workers 1) || exit 1
        start=$(echo "if ($x < $start) $x else $start" | bc)
    done
    echo "peer start-up (empty folder, best of $ROUNDS): $start s; one thread / one worker, ${PIN:-unpinned}; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); chess-ingest $OURS_ARGS"
    echo "| syntax | images | chess-ingest | Python peer | ratio |"
    echo "|---|---:|---:|---:|---:|"
    # One row: chess-ingest (with extra arguments $3...) and the peer on the
    # folder $2, alternating, best of ROUNDS each.
    row() {
        local label="$1" d="$2"; shift 2
        local n rb=999 pb=999 x pn
        n=$(ls "$d" | wc -l)
        for r in $(seq 1 "$ROUNDS"); do
            rm -rf "$WORK/r" "$WORK/p"
            x=$(t $PIN "$BIN" "$d" --out "$WORK/r" --threads 1 --quiet $OURS_ARGS "$@") || exit 1; rb=$(echo "if ($x < $rb) $x else $rb" | bc)
            x=$(t $PIN "$VENV/bin/python" scripts/python/ingest_peer.py "$d" "$WORK/p" --workers 1) || exit 1; pb=$(echo "if ($x < $pb) $x else $pb" | bc)
        done
        pn=$(echo "$pb - $start" | bc)
        printf '| %s | %d | %.2f s | %.2f s | %.2fx |\n' "$label" "$n" "$rb" "$pn" "$(echo "$pn / $rb" | bc -l)"
    }
    for d in "$WORK"/syn/*; do
        row "$(basename "$d")" "$d"
    done
    # The opt-in reduced-resolution JPEG 2000 decode (not bit-identical).
    for uid in 1.2.840.10008.1.2.4.90 1.2.840.10008.1.2.4.201; do
        [ -d "$WORK/syn/$uid" ] && row "$uid --j2k-reduce" "$WORK/syn/$uid" --j2k-reduce
    done
    exit 0
fi
SYNTAX_ARGS=()
KIND="7 syntaxes"
SUFFIX=""
if [ "${1:-}" = "--half-lossless" ]; then
    shift
    SYNTAX_ARGS=(--syntaxes jpeg-lossless,explicit-le)
    KIND="half JPEG lossless (.70), half explicit LE"
    SUFFIX="-jpll-plain"
fi
IMAGES="${1:-42}"
THREADS="${2:-$(nproc)}"
ROUNDS="${3:-3}"
VENV="${CHESS_BENCH_VENV:-$(scripts/setup.sh)}"
CACHE="${CHESS_CACHE:-$HOME/.cache/chess}"
ARCH="$CACHE/bench-ingest-$IMAGES$SUFFIX"
if [ ! -d "$ARCH/export" ]; then
    "$VENV/bin/python" scripts/python/ingest_make_demo_archive.py "$ARCH" --images "$IMAGES" --no-junk "${SYNTAX_ARGS[@]}" >/dev/null
fi
[ -n "${CHESS_BENCH_NO_BUILD:-}" ] || cargo build --release -q -p chess-ingest
BIN="${CARGO_TARGET_DIR:-target}/release/chess-ingest"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
echo "archive: $IMAGES chest CRs (1955x1841 crops) in $KIND, $(du -sh "$ARCH/export" | cut -f1); $THREADS threads; $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); chess-ingest $OURS_ARGS"

# Warm the page cache so both read from memory.
cat $(find "$ARCH/export" -type f) > /dev/null

# Interleaved rounds (Rust, Python, Rust, ...): on a shared machine both see
# the same background load; the best round of each is compared.
for round in $(seq 1 "$ROUNDS"); do
    rm -rf "$WORK/rust" "$WORK/py"
    /usr/bin/time -f "%e %M" -o "$WORK/rust.$round.time" "$BIN" "$ARCH/export" --out "$WORK/rust" --threads "$THREADS" $OURS_ARGS > "$WORK/rust.$round.out"
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
