#!/usr/bin/env bash
# Fuzzes chess-ingest's parse + decode + pixel pipeline for a bounded time.
#
#   scripts/fuzz_ingest.sh [SECONDS]     (default 60)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
# The corpus is seeded with the small DICOM fixtures of ingest/tests/data;
# crashes land in ingest/fuzz/artifacts/ and make the script fail.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECS="${1:-60}"
cd "$ROOT/ingest"
command -v cargo-fuzz >/dev/null 2>&1 || { echo "cargo-fuzz not found: cargo install cargo-fuzz" >&2; exit 1; }
CORPUS="fuzz/corpus/parse_decode_pipeline"
mkdir -p "$CORPUS"
cp -n tests/data/*.dcm "$CORPUS"/ 2>/dev/null || true
# FUZZ_FLAGS: cargo-fuzz build flags, default -O (optimised, no debug
# assertions); FUZZ_FLAGS=-a adds debug assertions and overflow checks.
# AddressSanitizer is on either way.
# Finding (2026-11), fixed: dicom-parser reserves an element's declared
# length (up to 4 GiB) before reading it, so a small file with a bogus length
# asked malloc for gigabytes (libFuzzer: out-of-memory). ingest/src/lengths.rs
# now checks every declared length against the bytes left before parsing.
# Limits: 2 GB RSS (no unbounded allocation), 10 s per input (no hang).
cargo +nightly fuzz run ${FUZZ_FLAGS:--O} parse_decode_pipeline "$CORPUS" -- \
    -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 -max_len=200000
