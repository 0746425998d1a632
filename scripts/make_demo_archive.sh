#!/usr/bin/env bash
# Builds a small PACS-like export of real radiographs (made-up identifying
# values, several transfer syntaxes, archives and junk) for chess-ingest.
#
#   scripts/make_demo_archive.sh OUT_DIR [--images N] [--no-junk]
#
# Uses the venv from scripts/setup.sh (pydicom, pydicom-data, gdcmconv).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$("$ROOT/scripts/setup.sh")"
exec "$VENV/bin/python" "$ROOT/scripts/python/ingest_make_demo_archive.py" "$@"
