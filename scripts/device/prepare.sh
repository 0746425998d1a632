#!/usr/bin/env bash
# Prepares what scripts/device/check.sh needs on a GPU machine that has
# nothing installed: chess-train and chess-shards, stripped (and gzipped when
# they would not fit), in a git-ignored folder that stays under the 64 MiB
# a device run may carry.
#
#   scripts/device/prepare.sh [--from DIR] [--out DIR]
#
#   --from DIR   take the binaries from DIR (e.g. target/debug) instead of
#                building them (`cargo build --release`, once)
#   --out DIR    the folder to fill (default: device-bundle/, git-ignored)
#
# The binaries find libtorch through LD_LIBRARY_PATH, which check.sh takes
# from the machine's own `python3 -c "import torch"`: the same torch 2.11.0
# they were built against (tch 0.24), with CUDA there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
FROM="" OUT="$ROOT/device-bundle"
LIMIT=$((64 * 1024 * 1024 - 1024 * 1024))   # 63 MiB: room for the scripts' own files
while [ $# -gt 0 ]; do
    case "$1" in
        --from) FROM="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "prepare.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$FROM" ]; then
    cargo build -q --release -p chess-train -p chess-shards --bins
    FROM="${CARGO_TARGET_DIR:-$ROOT/target}/release"
fi
for b in chess-train chess-shards; do
    [ -x "$FROM/$b" ] || { echo "prepare.sh: $FROM/$b not found (build it, or pass --from)" >&2; exit 3; }
done
rm -rf "$OUT"
mkdir -p "$OUT"
for b in chess-train chess-shards; do
    strip -o "$OUT/$b" "$FROM/$b"
done
size() { du -cb "$OUT"/* | tail -1 | cut -f1; }
total=$(size)
if [ "$total" -gt "$LIMIT" ]; then
    # gzip: python3's own gzip module unpacks it on the device machine.
    for b in chess-train chess-shards; do gzip -6 "$OUT/$b"; done
    total=$(size)
fi
if [ "$total" -gt "$LIMIT" ]; then
    echo "prepare.sh: $OUT holds $total bytes, over the $LIMIT a device run carries" >&2
    exit 4
fi
ls -l "$OUT" >&2
echo "prepare.sh: $OUT, $((total / 1024 / 1024)) MiB ($total bytes)" >&2
echo "$OUT"
