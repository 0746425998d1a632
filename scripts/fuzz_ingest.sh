#!/usr/bin/env bash
# Fuzzes chess-ingest's parse + decode + pixel pipeline for a bounded time.
#
#   scripts/fuzz_ingest.sh [SECONDS]     (default 60)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The corpus is seeded with the small DICOM files of ingest/tests/data and
# pydicom's test files;
# crashes land in ingest/fuzz/artifacts/ and make the script fail.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
cd "$ROOT/ingest"
command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }
CORPUS="fuzz/corpus/parse_decode_pipeline"
mkdir -p "$CORPUS"
# Seeds: the fixtures, the regression inputs of earlier runs (tests/data/fuzz,
# each a test in tests/lenient.rs), and pydicom's and pydicom-data's test
# files up to the input size limit (when the venv of scripts/setup.sh is there).
MAX_LEN=200000
cp -n tests/data/*.dcm tests/data/fuzz/*.dcm "$CORPUS"/ 2>/dev/null || true
PY="${CHESS_VENV:-$HOME/.cache/chess/venv}/bin/python"
if [ -x "$PY" ]; then
    for d in $("$PY" -c "import os, pydicom, sysconfig; print(os.path.dirname(pydicom.__file__) + '/data/test_files', sysconfig.get_paths()['purelib'] + '/data_store/data')"); do
        find "$d" -type f -size -${MAX_LEN}c -exec cp -n {} "$CORPUS"/ \; 2>/dev/null || true
    done
fi
# FUZZ_FLAGS: cargo-fuzz build flags, default -O (optimised, no debug
# assertions); FUZZ_FLAGS=-a adds debug assertions and overflow checks.
# AddressSanitizer is on either way.
# Findings, fixed: (2026-11) dicom-parser reserves an element's declared
# length (up to 4 GiB) before reading it; ingest/src/lengths.rs checks every
# declared length against the bytes left before parsing. (issue 14) VR bytes
# that name no VR (read by the parser with a 32-bit length), undefined-length
# UN sequences, and a panic in dicom-rs's RLE decoder (now caught silently).
#
# Memory: the per-file bound. An input of at most MAX_LEN bytes declares at
# most MAX_LEN × 512 decoded bytes (dicom::MAX_COMPRESSION; native pixel
# data are at most the file), i.e. ~100 MB; the worker holds the decoded
# frame, its i32 stored values (2× for 16-bit samples) and the pipeline's
# f32 copy (2×): ~5× = 500 MB, plus AddressSanitizer's quarantine (256 MB)
# and a base: -rss_limit_mb=1024, not 2048. 10 s per input (no hang).
cargo +nightly fuzz run ${FUZZ_FLAGS:--O} parse_decode_pipeline "$CORPUS" -- \
    -max_total_time="$SECS" -rss_limit_mb=1024 -timeout=10 -max_len=$MAX_LEN
