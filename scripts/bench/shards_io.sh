#!/usr/bin/env bash
# Shard I/O benchmark: write/read throughput per core for 512x512 uint16
# samples, next to raw zstd decompression and the Python peer (webdataset +
# zstandard) on the same shards, in the same run. Prints a Markdown table.
#   scripts/bench/shards_io.sh [SAMPLES] [REPEATS]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$(scripts/setup.sh)"
N="${1:-256}"
REPEATS="${2:-5}"
OUT="$ROOT/target/bench/shards_io"
mkdir -p "$(dirname "$OUT")"

cargo build --release -q -p chess-shards --example bench_io
rust_json="$(taskset -c 0 "$ROOT/target/release/examples/bench_io" "$OUT" "$N" "$REPEATS")"
py_json="$(taskset -c 0 "$VENV/bin/python" scripts/bench/shards_io_python.py "$OUT" "$REPEATS")"

"$VENV/bin/python" - "$rust_json" "$py_json" <<'PY'
import json, platform, subprocess, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
print(f"{r['samples']} samples of {r['image']}, one core ({cpu}); zstd level 3 compresses {r['compression_ratio']:.2f}x\n")
print("| operation (1 core) | samples/s | MB/s (decoded) | time vs raw zstd |")
print("|---|---:|---:|---:|")
def row(name, d, vs=None):
    print(f"| {name} | {d['samples_per_s']:.0f} | {d['mb_per_s']:.0f} | {vs if vs else ''} |")
row("write (npy + zstd-3 + tar + manifest)", r["write"])
row("raw zstd decompression (Rust, in memory)", r["raw_zstd_decompress"], "1.00x")
row("read shard, streaming (tar + zstd + npy)", r["stream_read"], f"{r['stream_read']['time_vs_raw']:.2f}x")
row("read by manifest row (pread + zstd + npy)", r["random_read"], f"{r['random_read']['time_vs_raw']:.2f}x")
row("Python: webdataset stream + chess_shards.decode", p["webdataset_stream"])
row("Python: raw zstandard decompression", p["python_raw_zstd_decompress"])
ratio = r["stream_read"]["samples_per_s"] / p["webdataset_stream"]["samples_per_s"]
print(f"\nRust streaming read / Python webdataset read: {ratio:.2f}x")
ok = r["stream_read"]["time_vs_raw"] <= 1.5
print(f"streaming read within 1.5x of raw decompression: {'yes' if ok else 'NO'}")
sys.exit(0 if ok else 1)
PY
