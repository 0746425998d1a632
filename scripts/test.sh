#!/usr/bin/env bash
# Runs the whole test suite: Rust unit and integration tests for every
# crate, then the Python interoperability and peer-agreement tests against
# the freshly built binaries. Installs what it needs first (scripts/setup.sh,
# cached). Extra arguments go to `cargo test`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$(scripts/setup.sh)"
export PATH="$VENV/bin:$PATH"
export CHESS_VENV="$VENV"

# Every binary first: tests of one crate run the tools of another
# (chess-ingest's tests call chess-shards), and pytest runs them all.
echo "== cargo build (workspace binaries)"
cargo build --workspace --bins
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
export CHESS_SHARDS_BIN="$TARGET/debug/chess-shards"
export CHESS_INGEST_BIN="$TARGET/debug/chess-ingest"
export CHESS_TRAIN_BIN="$TARGET/debug/chess-train"

echo "== cargo test (workspace)"
cargo test --workspace --bins --lib --tests "$@"

echo "== scripts/device/check.sh --dry-run (the GPU check, on the CPU, from a prepared bundle)"
BUNDLE="$(scripts/device/prepare.sh --from "$TARGET/debug" --out "$TARGET/device-bundle-dry")"
CHESS_TRAIN_BIN="" CHESS_SHARDS_BIN="" PYTHON="$VENV/bin/python" scripts/device/check.sh --dry-run --bundle "$BUNDLE"

echo "== pytest (tests/python)"
"$VENV/bin/python" -m pytest -q tests/python
