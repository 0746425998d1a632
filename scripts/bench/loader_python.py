"""Python peer of the loader benchmark: what a user would otherwise run.

webdataset streams the same shards (the repository's decoder,
scripts/python/chess_shards.py, gives uint16 arrays), a shuffle buffer of the
same size, and torch.utils.data.DataLoader batches them (batch 64, uint16
tensors [64, H, W]) with NUM_WORKERS worker processes. Prints one JSON object:
best-of-REPEATS samples/s in steady state (from the first batch to the last,
the first batch's samples not counted: pipeline and worker start-up left out,
as for every row of the benchmark), the CPU seconds of that part (this
process and its DataLoader workers) and the peak RSS of the main process and
of the workers.

Usage: loader_python.py DATASET_DIR NUM_WORKERS REPEATS SHUFFLE_BUFFER
"""
import json
import pathlib
import resource
import sys
import time

import torch
import webdataset as wds

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
import chess_shards  # noqa: E402


def peak_rss_self():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def proc_cpu(pid):
    """CPU seconds of a live process (user + system, 10 ms ticks)."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100.0
    except (OSError, IndexError, ValueError):
        return 0.0


def to_tensor(sample):
    (image,) = sample
    return torch.from_numpy(image)


def main():
    root = pathlib.Path(sys.argv[1])
    workers = int(sys.argv[2])
    repeats = int(sys.argv[3])
    shuffle = int(sys.argv[4])
    shards = sorted(str(p) for p in (root / "shards").glob("*.tar"))
    torch.set_num_threads(1)

    def epoch():
        ds = (
            wds.WebDataset(shards, shardshuffle=len(shards), empty_check=False, seed=0)
            .shuffle(shuffle)
            .decode(chess_shards.decode)
            .to_tuple("npy.zst")
            .map(to_tensor)
        )
        loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers, persistent_workers=False)
        n = 0
        dtype = None
        first = None
        it = iter(loader)
        for batch in it:
            if first is None:
                # Steady state starts here; live workers' CPU so far is left out
                # (it is counted when they are reaped at the end).
                pids = [w.pid for w in getattr(it, "_workers", [])]
                first = (time.perf_counter(), cpu() - sum(proc_cpu(p) for p in pids))
            else:
                n += batch.shape[0]
            dtype = batch.dtype
        end = time.perf_counter()
        del it  # workers are joined and reaped: their CPU is counted now
        return n, dtype, first, end

    def cpu():
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    best, best_cpu = float("inf"), float("inf")
    n = 0
    for _ in range(repeats):
        n, dtype, (t, c), end = epoch()
        elapsed, used = end - t, cpu() - c
        if elapsed < best:
            best, best_cpu = elapsed, used
    assert dtype == torch.uint16, dtype
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({
        "samples": n,
        "workers": workers,
        "samples_per_s": n / best,
        "seconds": best,
        "cpu_seconds": best_cpu,
        "peak_rss_main": peak_rss_self(),
        "peak_rss_worker": children,
    }))


if __name__ == "__main__":
    main()
