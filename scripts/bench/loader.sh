#!/usr/bin/env bash
# Loader benchmark: local shards → batches of 64 uint16 512x512 images, in
# samples/s per core (wall clock and per CPU-second), against Python's
# webdataset + torch DataLoader on the same shards and the same cores; then
# the same dataset served by s3s-fs on loopback (rate relative to local
# disk), and peak RSS for two dataset sizes; plus Mosaic `streaming` (MDS,
# uncompressed and zstd) and `litdata` (uncompressed and zstd:3) converted
# from the same images (scripts/bench/loader_peers.py). Prints a Markdown
# table (scripts/bench/loader_bench.py measures).
#   scripts/bench/loader.sh [SAMPLES] [REPEATS]
# Installs torch==2.11.0 into the venv if it is missing (about 4.7 GB), and
# mosaicml-streaming and litdata (benchmark peers only; not in setup.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# CHESS_VENV: an existing venv (skips scripts/setup.sh).
VENV="${CHESS_VENV:-$(scripts/setup.sh)}"
PY="$VENV/bin/python"
N="${1:-2048}"
REPEATS="${2:-3}"
SHUFFLE=256
OUT="$ROOT/target/bench/loader"
DS="$OUT/ds-$N"
CACHE="${CHESS_CACHE:-$HOME/.cache/chess}"
S3S_FS="${CHESS_S3S_FS:-$CACHE/s3s/bin/s3s-fs}"

if ! "$PY" -c "import torch" 2>/dev/null; then
    echo "loader bench: installing torch==2.11.0 into $VENV (about 4.7 GB)" >&2
    "$PY" -m pip install -q --disable-pip-version-check "torch==2.11.0" >&2
fi

# CHESS_PEERS_VENV: a venv for the Mosaic/litdata peers (they pin their own
# numpy and friends; default: the main venv).
PEERS_PY="${CHESS_PEERS_VENV:-$VENV}/bin/python"
if ! "$PEERS_PY" -c "import streaming, litdata" 2>/dev/null; then
    echo "loader bench: installing mosaicml-streaming and litdata into ${CHESS_PEERS_VENV:-$VENV}" >&2
    "$PEERS_PY" -m pip install -q --disable-pip-version-check mosaicml-streaming litdata >&2
fi

cargo build --release -q -p chess-shards --bin chess-shards --example bench_loader
BIN="$ROOT/target/release/chess-shards"
mkdir -p "$OUT"
SMALL="$OUT/ds-$((N / 4))"
for d in "$DS:$N" "$SMALL:$((N / 4))"; do
    if [ ! -f "${d%%:*}/dataset.json" ]; then
        rm -rf "${d%%:*}"
        "$BIN" -q demo --out "${d%%:*}" --count "${d##*:}" --size 512 --shard-samples 128 >&2
    fi
done
PEERS="$OUT/peers-$N"
if [ ! -f "$PEERS/done" ]; then
    rm -rf "$PEERS" && mkdir -p "$PEERS"
    "$PEERS_PY" scripts/bench/loader_peers.py convert "$DS" "$PEERS" >&2
    touch "$PEERS/done"
fi
cat "$DS"/shards/*.tar "$SMALL"/shards/*.tar > /dev/null   # warm the page cache
find "$PEERS" -type f -exec cat {} + > /dev/null

# The same dataset through S3 on loopback (s3s-fs serving hard links of the shards).
if [ ! -x "$S3S_FS" ]; then
    echo "loader bench: s3s-fs not found at $S3S_FS (scripts/setup.sh builds it)" >&2
    exit 1
fi
S3ROOT="$OUT/s3root"
rm -rf "$S3ROOT" && mkdir -p "$S3ROOT/bkt"
cp -al "$DS" "$S3ROOT/bkt/ds"
rm -rf "$S3ROOT/bkt/ds/.staging"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$S3S_FS" --host 127.0.0.1 --port "$PORT" --access-key AK --secret-key SK "$S3ROOT" >/dev/null 2>&1 &
S3PID=$!
trap 'kill $S3PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

"$PY" scripts/bench/loader_bench.py "$BIN" "$DS" "$SMALL" "$REPEATS" "$SHUFFLE" "http://127.0.0.1:$PORT" "$PEERS" "$PEERS_PY"
