"""Driver of the loader benchmark (run by scripts/bench/loader.sh).

Runs the Rust loader (shards/examples/bench_loader.rs, next to BIN's
folder), the pread floor and the Python peer (loader_python.py) as child
processes pinned with taskset, in REPEATS interleaved rounds (so that all
see the same machine load), and records for the best run of each, in steady
state (from the first batch to the last, measured inside each process):
samples/s, CPU seconds (Rust: the process; Python: the epoch including its
DataLoader workers), so "per core" is also given as samples per CPU-second,
which other work on the machine distorts less, and peak RSS. Prints a
Markdown table.

Mosaic `streaming` and `litdata` stores converted from the same images
(PEERS_DIR, made by loader_peers.py) run on one core with no worker
processes, in the same rounds.

Usage: loader_bench.py BIN DATASET SMALL_DATASET REPEATS SHUFFLE S3_ENDPOINT [PEERS_DIR [PEERS_PYTHON]]
"""
import json
import os
import platform
import resource
import subprocess
import sys
import time

BIN, DS, SMALL, REPEATS, SHUFFLE, ENDPOINT = sys.argv[1:7]
PEERS = sys.argv[7] if len(sys.argv) > 7 else None
PEERS_PY = sys.argv[8] if len(sys.argv) > 8 else sys.executable
REPEATS = int(REPEATS)
HERE = os.path.dirname(os.path.abspath(__file__))


def timed(cmd, env=None):
    """Runs cmd; returns (stdout, wall seconds, CPU seconds incl. descendants)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, wall, cpu


def best(runs):
    return max(runs, key=lambda r: r["samples_per_s"])


EXAMPLE = os.path.join(os.path.dirname(BIN), "examples", "bench_loader")
EPOCHS = "3"


def rust(cpus, threads, src, env=None, floor=None):
    """The loader (or a floor: "pread", "memcpy") through shards/examples/bench_loader.rs, in steady state.
    RSS: the loader's own memory (largest RssAnon, sampled every 8th batch); mapped shard pages (RssFile, the page
    cache's) apart."""
    flag = {"pread": ["--floor"], "memcpy": ["--floor-memcpy"], None: []}[floor]
    cmd = ["taskset", "-c", cpus, EXAMPLE, src, "--threads", str(threads), "--epochs", EPOCHS,
           "--shuffle-buffer", SHUFFLE] + flag
    out, wall, _ = timed(cmd, env)
    d = json.loads(out)
    return {"samples": d["samples"], "samples_per_s": d["samples_per_s"], "cpu_per_sample": d["cpu_seconds"] / d["samples"],
            "rss_mb": d["rss_anon_bytes"] / 1e6, "file_mb": d["rss_file_bytes"] / 1e6, "wall": wall}


def python(cpus, workers):
    out, wall, cpu = timed(["taskset", "-c", cpus, sys.executable, os.path.join(HERE, "loader_python.py"),
                            DS, str(workers), "1", SHUFFLE])
    d = json.loads(out)
    # CPU of the epoch itself, measured inside the peer (its start-up and
    # `import torch` would otherwise count against it).
    return {"samples": d["samples"], "samples_per_s": d["samples_per_s"], "cpu_per_sample": d["cpu_seconds"] / d["samples"],
            "rss_mb": (d["peak_rss_main"] + workers * d["peak_rss_worker"]) / 1e6, "wall": wall}


def peer(kind):
    out, wall, cpu = timed(["taskset", "-c", "0", PEERS_PY, os.path.join(HERE, "loader_peers.py"), "read", kind,
                            os.path.join(PEERS, kind), "1"])
    d = json.loads(out)
    return {"samples": d["samples"], "samples_per_s": d["samples_per_s"], "cpu_per_sample": d["cpu_seconds"] / d["samples"],
            "rss_mb": d["peak_rss_main"] / 1e6, "wall": wall}


PEER_NAMES = {
    "mds-none": "Mosaic streaming, MDS uncompressed, DataLoader num_workers=0",
    "mds-zstd": "Mosaic streaming, MDS zstd, DataLoader num_workers=0",
    "lit-none": "litdata, uncompressed, StreamingDataLoader num_workers=0",
    "lit-zstd": "litdata, zstd:3, StreamingDataLoader num_workers=0",
}

env = dict(os.environ, AWS_ENDPOINT_URL=ENDPOINT, AWS_ALLOW_HTTP="true", AWS_ACCESS_KEY_ID="AK",
           AWS_SECRET_ACCESS_KEY="SK", AWS_DEFAULT_REGION="us-east-1")
configs = {
    "floor": lambda: rust("0", 1, DS, floor="pread"),
    "floor_memcpy": lambda: rust("0", 1, DS, floor="memcpy"),
    "rust1_pread": lambda: rust("0", 1, DS, dict(os.environ, CHESS_LOADER_MMAP="0")),
    "rust1": lambda: rust("0", 1, DS),
    "py0": lambda: python("0", 0),
    "py1": lambda: python("0", 1),
    "rust2": lambda: rust("0,1", 2, DS),
    "py2": lambda: python("0,1", 2),
    "s3": lambda: rust("0,1", 2, "s3://bkt/ds", env),
    "rust_small": lambda: rust("0,1", 2, SMALL),
}
if PEERS:
    for kind in PEER_NAMES:
        if os.path.exists(os.path.join(PEERS, kind, "index.json")):
            configs[kind] = lambda kind=kind: peer(kind)
        else:
            print(f"loader bench: no {kind} store in {PEERS} (its conversion failed); left out", file=sys.stderr)
# Interleaved rounds, so that Rust and Python see the same machine load;
# the best run of each configuration counts (CPU figures from that run).
runs = {k: [] for k in configs}
load_start = os.getloadavg()[0]
for _ in range(REPEATS):
    for k, f in configs.items():
        if k in PEER_NAMES:
            try:
                runs[k].append(f())
            except (subprocess.CalledProcessError, ValueError, KeyError) as e:
                print(f"loader bench: peer {k} failed ({e}); left out", file=sys.stderr)
        else:
            runs[k].append(f())
results = {k: best(v) for k, v in runs.items() if v}

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
load = os.getloadavg()[0]
N_DS = json.load(open(os.path.join(DS, "dataset.json")))["sample_count"]
print(f"{N_DS} samples of 512x512 uint16 (synthetic phantoms, members as the writer stores them: raw-block zstd frames for these, see dataset.json npy_zst_frames; 128 per shard), batch 64, shuffle buffer {SHUFFLE}, "
      f"page cache warm, steady state (from the first batch to the last; Rust: {EPOCHS} epochs per run, others one), "
      f"best of {REPEATS} interleaved rounds; {cpu}; load average {load_start:.1f} at the start, {load:.1f} when done\n")
print("| pipeline | cores | samples/s (wall) | per core (wall) | samples per CPU-second | peak RSS |")
print("|---|---:|---:|---:|---:|---:|")


def row(name, cores, r):
    print(f"| {name} | {cores} | {r['samples_per_s']:.0f} | {r['samples_per_s'] / cores:.0f} | "
          f"{1 / r['cpu_per_sample']:.0f} | {r['rss_mb']:.0f} MB |")


row("Floor: one `pread` per sample into a batch slot, nothing else", 1, results["floor"])
row("Floor: one `memcpy` per sample into a batch slot from the shards held in memory", 1, results["floor_memcpy"])
row("Rust loader, local shards, `--threads 1`", 1, results["rust1"])
row("Rust loader, local shards, `--threads 1`, `CHESS_LOADER_MMAP=0` (pread)", 1, results["rust1_pread"])
row("Rust loader, local shards, `--threads 2`", 2, results["rust2"])
row("Python webdataset + DataLoader, num_workers=0", 1, results["py0"])
row("Python webdataset + DataLoader, num_workers=1", 1, results["py1"])
row("Python webdataset + DataLoader, num_workers=2", 2, results["py2"])
row("Rust loader, S3 on loopback (s3s-fs, same 2 cores)", 2, results["s3"])
for kind, name in PEER_NAMES.items():
    if kind in results:
        row(name, 1, results[kind])
small = results["rust_small"]
print()
py1 = max(results["py0"], results["py1"], key=lambda r: r["samples_per_s"])
print(f"- Rust / Python per core, wall clock: {results['rust1']['samples_per_s'] / py1['samples_per_s']:.2f}x on one core "
      f"(best Python setting), {results['rust2']['samples_per_s'] / results['py2']['samples_per_s']:.2f}x on two.")
print(f"- Rust / Python in samples per CPU-second: "
      f"{results['py1']['cpu_per_sample'] / results['rust1']['cpu_per_sample']:.2f}x (1 core, vs num_workers=1), "
      f"{results['py0']['cpu_per_sample'] / results['rust1']['cpu_per_sample']:.2f}x (vs num_workers=0), "
      f"{results['py2']['cpu_per_sample'] / results['rust2']['cpu_per_sample']:.2f}x (2 cores).")
print(f"- S3 on loopback / local disk, 2 cores: {results['s3']['samples_per_s'] / results['rust2']['samples_per_s']:.2f}x "
      f"(wall), {results['rust2']['cpu_per_sample'] / results['s3']['cpu_per_sample']:.2f}x (per CPU-second of the loader; "
      f"the server's CPU is not counted).")
print(f"- The loader's own memory does not grow with the dataset: {small['rss_mb']:.0f} MB for {small['samples']} samples, "
      f"{results['rust2']['rss_mb']:.0f} MB for {results['rust2']['samples']} (2 cores); Rust RSS is RssAnon (largest seen, "
      f"sampled every 8th batch). Mapped shard pages (RssFile: the page cache's own pages, shared and reclaimable, kept mapped across "
      f"epochs up to half the machine's memory) come on top: {results['rust1']['file_mb']:.0f} MB with `--threads 1`, "
      f"{results['rust1_pread']['file_mb']:.0f} MB with pread.")
print("- Python peak RSS: main process plus each worker's peak.")
r1 = results["rust1"]
for f, what in (("floor", "pread floor"), ("floor_memcpy", "memcpy floor")):
    print(f"- Rust `--threads 1` / {what}: {r1['samples_per_s'] / results[f]['samples_per_s']:.2f} (wall), "
          f"{results[f]['cpu_per_sample'] / r1['cpu_per_sample']:.2f} (per CPU-second).")
print(f"- Rust `--threads 1` mapped / pread: {r1['samples_per_s'] / results['rust1_pread']['samples_per_s']:.2f} (wall), "
      f"{results['rust1_pread']['cpu_per_sample'] / r1['cpu_per_sample']:.2f} (per CPU-second).")
print(f"- Rust `--threads 2` / `--threads 1`: {results['rust2']['samples_per_s'] / r1['samples_per_s']:.2f} (wall).")
for kind, name in PEER_NAMES.items():
    if kind in results:
        p = results[kind]
        print(f"- Rust `--threads 1` / {name}: {r1['samples_per_s'] / p['samples_per_s']:.2f}x per core (wall), "
              f"{p['cpu_per_sample'] / r1['cpu_per_sample']:.2f}x per CPU-second.")
