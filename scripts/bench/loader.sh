#!/usr/bin/env bash
# Loader benchmark: local shards → batches of 64 uint16 512x512 images, in
# samples/s per core, against Python's webdataset + torch DataLoader on the
# same shards and the same cores; then the same dataset served by s3s-fs on
# loopback (rate relative to local disk), and peak RSS. Prints a Markdown
# table.
#   scripts/bench/loader.sh [SAMPLES] [REPEATS]
# Installs torch==2.11.0 into the venv if it is missing (about 4.7 GB).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
VENV="$(scripts/setup.sh)"
PY="$VENV/bin/python"
N="${1:-1024}"
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

cargo build --release -q -p chess-shards
BIN="$ROOT/target/release/chess-shards"
mkdir -p "$OUT"
if [ ! -f "$DS/dataset.json" ]; then
    rm -rf "$DS"
    "$BIN" -q demo --out "$DS" --count "$N" --size 512 --shard-samples 128 >&2
fi
cat "$DS"/shards/*.tar > /dev/null   # warm the page cache

# best samples/s and the peak RSS (MB) of REPEATS runs of `chess-shards stream`
rust_run() {   # CPUS THREADS SOURCE [env...]
    local cpus="$1" threads="$2" src="$3"; shift 3
    local best=0 rss=0 line
    for _ in $(seq "$REPEATS"); do
        line="$(env "$@" taskset -c "$cpus" "$BIN" -q --threads "$threads" stream "$src" --batch 64 --shuffle-buffer "$SHUFFLE")"
        best="$(awk -v a="$best" -v l="$line" 'BEGIN { split(l, f, ": "); split(f[2], g, " "); b = g[1] + 0; print (b > a ? b : a) }')"
        rss="$(echo "$line" | sed -E 's/.*peak RSS ([0-9.]+) MB.*/\1/')"
    done
    echo "$best $rss"
}

read -r rust1 rss1 < <(rust_run 0 1 "$DS")
read -r rust2 rss2 < <(rust_run 0,1 2 "$DS")
py0="$(taskset -c 0 "$PY" scripts/bench/loader_python.py "$DS" 0 "$REPEATS" "$SHUFFLE")"
py1="$(taskset -c 0 "$PY" scripts/bench/loader_python.py "$DS" 1 "$REPEATS" "$SHUFFLE")"
py2="$(taskset -c 0,1 "$PY" scripts/bench/loader_python.py "$DS" 2 "$REPEATS" "$SHUFFLE")"

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
S3ENV=(AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true AWS_ACCESS_KEY_ID=AK AWS_SECRET_ACCESS_KEY=SK AWS_DEFAULT_REGION=us-east-1)
read -r s3_2 s3rss < <(rust_run 0,1 2 "s3://bkt/ds" "${S3ENV[@]}")

"$PY" - "$N" "$rust1" "$rss1" "$rust2" "$rss2" "$s3_2" "$s3rss" "$py0" "$py1" "$py2" "$SHUFFLE" <<'PY'
import json, platform, sys
n = int(sys.argv[1])
rust1, rss1, rust2, rss2, s3, s3rss = map(float, sys.argv[2:8])
py0, py1, py2 = (json.loads(a) for a in sys.argv[8:11])
shuffle = sys.argv[11]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
mb = lambda b: b / 1e6
py1core = max(py0, py1, key=lambda d: d["samples_per_s"])
print(f"{n} samples of 512x512 uint16 (synthetic phantoms, zstd-3), batch 64, shuffle buffer {shuffle}, "
      f"page cache warm; {cpu}; best of the runs\n")
print("| pipeline | cores | samples/s | samples/s per core | MB/s decoded | peak RSS |")
print("|---|---:|---:|---:|---:|---:|")
row = lambda name, cores, sps, rss: print(f"| {name} | {cores} | {sps:.0f} | {sps / cores:.0f} | {sps * 512 * 512 * 2 / 1e6:.0f} | {rss:.0f} MB |")
row("Rust loader, local shards (`chess-shards stream --threads 1`)", 1, rust1, rss1)
row("Rust loader, local shards (`--threads 2`)", 2, rust2, rss2)
row(f"Python webdataset + DataLoader, num_workers={py1core['workers']}", 1, py1core["samples_per_s"],
    mb(py1core["peak_rss_main"] + py1core["peak_rss_worker"]))
other = py1 if py1core is py0 else py0
row(f"Python webdataset + DataLoader, num_workers={other['workers']}", 1, other["samples_per_s"],
    mb(other["peak_rss_main"] + other["peak_rss_worker"]))
row("Python webdataset + DataLoader, num_workers=2", 2, py2["samples_per_s"],
    mb(py2["peak_rss_main"] + 2 * py2["peak_rss_worker"]))
row("Rust loader, S3 on loopback (s3s-fs on the same 2 cores)", 2, s3, s3rss)
print()
print(f"- Rust / Python per core: {rust1 / py1core['samples_per_s']:.2f}x on 1 core, "
      f"{rust2 / py2['samples_per_s']:.2f}x on 2 cores (target: 3x).")
print(f"- S3 on loopback / local disk (2 cores): {s3 / rust2:.2f}x.")
print("- Python peak RSS: main process + workers (each worker's own peak; "
      "num_workers=2 counts the largest worker twice).")
PY
