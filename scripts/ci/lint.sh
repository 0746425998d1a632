#!/usr/bin/env bash
# The checks CI runs before the tests: formatting (rustfmt.toml), the
# trainer's import rule (check_layers.py), and clippy with warnings as
# errors over every crate and target. Needs scripts/setup.sh first (the
# trainer's build script compiles against the venv's libtorch).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

VENV="$(scripts/setup.sh)"
export PATH="$VENV/bin:$PATH"

echo "== cargo fmt --check"
cargo fmt --all --check

echo "== import rule (scripts/ci/check_layers.py)"
python3 scripts/ci/check_layers.py

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
