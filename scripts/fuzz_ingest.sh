#!/usr/bin/env bash
# Fuzzes chess-ingest's parse + decode + pixel pipeline for a bounded time,
# with libFuzzer's RSS limit at the per-file memory bound (issue 14, item 2).
#
#   scripts/fuzz_ingest.sh [SECONDS]     (default 60)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`) and a nightly toolchain
# (`+nightly`; without one, FUZZ_TOOLCHAIN=stable uses RUSTC_BOOTSTRAP=1,
# which lets stable accept the -Z flags cargo-fuzz passes).
# The corpus is seeded with the small DICOM files of ingest/tests/data, the
# regression inputs of earlier runs and pydicom's test files; crashes, OOMs
# and timeouts land in ingest/fuzz/artifacts/ and make the script fail.
#
# Findings, fixed, each a regression input in ingest/tests/data/fuzz/ with a
# test in ingest/tests/lenient.rs: (2026-11) dicom-parser reserves an
# element's declared length (up to 4 GiB) before reading it (lengths.rs
# checks every declared length against the bytes left); (issue 14) VR bytes
# that name no VR (read by the parser with a 32-bit length), undefined-length
# UN sequences, an item longer than its sequence, a numeric VR's length its
# value size does not divide, and a panic in dicom-rs's RLE decoder (now
# caught silently; RLE is since decoded by dicom/rle.rs); (issue 14, the
# 15-minute run at this RSS limit) an undefined-length OW under a tag other
# than (7FE0,0010), whose items dicom-parser reads as data sets and the
# length check had skipped as fragments. The run after that fix: clean.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
cd "$ROOT/ingest"
command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
if [ "$TOOLCHAIN" = stable ]; then export RUSTC_BOOTSTRAP=1; fi
CORPUS="fuzz/corpus/parse_decode_pipeline"
mkdir -p "$CORPUS"
MAX_LEN=100000
# Seeds: the fixtures, the regression inputs (tests/data/fuzz), and pydicom's
# and pydicom-data's test files up to MAX_LEN (when the venv of
# scripts/setup.sh is there).
cp -n tests/data/*.dcm tests/data/fuzz/*.dcm "$CORPUS"/ 2>/dev/null || true
PY="${CHESS_VENV:-$HOME/.cache/chess/venv}/bin/python"
if [ -x "$PY" ]; then
    for d in $("$PY" -c "import os, pydicom, sysconfig; print(os.path.dirname(pydicom.__file__) + '/data/test_files', sysconfig.get_paths()['purelib'] + '/data_store/data')"); do
        find "$d" -type f -size -${MAX_LEN}c -exec cp -n {} "$CORPUS"/ \; 2>/dev/null || true
    done
fi

# The per-file memory bound, for an input of at most MAX_LEN bytes:
# - the largest image it may declare: native Pixel Data must be in the file;
#   an encapsulated frame may decode to at most MAX_COMPRESSION (512) times
#   its encoded bytes plus RATIO_MARGIN (1 MiB) (ingest/src/dicom.rs);
#   deflate inflates to at most that too (checked before parsing continues).
# - held per decoded byte, worst case 8-bit samples: the decoder's output
#   (OpenJPEG: one i32 per sample, 4 B), the i32 stored values (4 B), the
#   pipeline's f32 copy (4 B) — 12 B per decoded byte, of which at most two
#   are alive at once plus the decoder's working buffers; 12 is the bound.
# - a fixed base: the binary, libFuzzer's corpus in memory (MAX_LEN × the
#   seeds), the allocator: 128 MiB.
# No sanitizer (`-s none`): AddressSanitizer's shadow memory and quarantine
# add ~700 MB of RSS that no input causes, so under ASan an RSS limit cannot
# test this bound; memory errors are what Rust's safety and the
# quiet::catch'ed decoders are for, and OOMs/leaks are what this run checks.
DECODED=$((MAX_LEN * 512 + (1 << 20)))
RSS_MB=$(((DECODED * 12 >> 20) + 128))
echo "fuzz: $SECS s, max_len $MAX_LEN, rss_limit_mb $RSS_MB (the per-file bound), no sanitizer" >&2
# FUZZ_FLAGS: cargo-fuzz build flags, default -O (optimised, no debug
# assertions); FUZZ_FLAGS=-a adds debug assertions and overflow checks.
# 10 s per input: a hang fails.
cargo "+$TOOLCHAIN" fuzz run -s none ${FUZZ_FLAGS:--O} parse_decode_pipeline "$CORPUS" -- \
    -max_total_time="$SECS" -rss_limit_mb="$RSS_MB" -timeout=10 -max_len=$MAX_LEN
