"""Python loaders on the same 512x512 uint16 images, each in its own format:
chess_shards.torch.StreamingDataset + StreamingDataLoader (a DataLoader; our shards), webdataset +
DataLoader (the same shards, chess_shards.decode), Mosaic `streaming` (MDS
shards, uncompressed ndarray columns) and `litdata` (its optimized chunks,
uncompressed). Batch 64, shuffled, one epoch per repeat, best of REPEATS.

  python_loader.py convert DATASET_DIR OUT_DIR     # MDS and litdata copies of the dataset (once)
  python_loader.py run PEER DATASET_DIR OUT_DIR WORKERS REPEATS SHUFFLE
      PEER: chess | webdataset | mosaic | litdata

`run` prints one JSON object: samples, samples/s (wall), the CPU seconds of
the best epoch (this process and its DataLoader workers, from getrusage of
self and waited children, without start-up and imports), samples per CPU
second, and the peak of the summed proportional set size (PSS: shared pages
split among the processes sharing them) of this process and its workers,
sampled every 20 ms.
"""
import json
import os
import pathlib
import resource
import shutil
import sys
import threading
import time

import numpy as np


def tree_pss(pid):
    """PSS in bytes of `pid` and all its descendants."""
    total = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
            for task in os.listdir(f"/proc/{p}/task"):
                stack.extend(int(c) for c in open(f"/proc/{p}/task/{task}/children").read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


class PeakPss:
    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = os.getpid()
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_pss(me))
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def cpu_seconds():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def images(root):
    """(key, array) of every sample, by the Rust random-access reader."""
    import chess_shards

    ds = chess_shards.Dataset(root)
    for key in ds.keys():
        yield key, ds.sample(key)[0]


def convert(root, out):
    out = pathlib.Path(out)
    mds, lit = out / "mds", out / "litdata"
    if not (mds / "index.json").exists():
        from streaming import MDSWriter

        shutil.rmtree(mds, ignore_errors=True)
        first = next(images(root))[1]
        h, w = first.shape
        with MDSWriter(out=str(mds), columns={"image": f"ndarray:uint16:{h},{w}"}, size_limit=64 << 20) as wr:
            for _, a in images(root):
                wr.write({"image": a})
    if not (lit / "index.json").exists():
        import chess_shards
        import litdata

        shutil.rmtree(lit, ignore_errors=True)
        keys = chess_shards.Dataset(root).keys()

        litdata.optimize(fn=_lit_item, inputs=[(str(root), k) for k in keys], output_dir=str(lit),
                         chunk_bytes="64MB", num_workers=1, mode="overwrite")


def _lit_item(item):
    import chess_shards

    root, key = item
    return {"image": chess_shards.Dataset(root).sample(key)[0]}


def epoch_loader(peer, root, out, workers, shuffle, epoch):
    import torch

    root, out = pathlib.Path(root), pathlib.Path(out)
    if peer == "chess":
        from chess_shards.torch import StreamingDataLoader, StreamingDataset

        threads = max(1, (os.cpu_count() or 1) // max(workers, 1))
        ds = StreamingDataset(root, batch_size=64, seed=0, shuffle_buffer=shuffle, threads=threads)
        ds.set_epoch(epoch)
        return (b["image"] for b in StreamingDataLoader(ds, num_workers=workers))
    if peer == "webdataset":
        import webdataset as wds

        import chess_shards

        shards = sorted(str(p) for p in (root / "shards").glob("*.tar"))
        ds = (wds.WebDataset(shards, shardshuffle=len(shards), empty_check=False, seed=epoch)
              .shuffle(shuffle).decode(chess_shards.decode).to_tuple("npy.zst").map(lambda s: torch.from_numpy(s[0])))
        return iter(torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers))
    if peer == "mosaic":
        from streaming import StreamingDataset
        from streaming.base.util import clean_stale_shared_memory

        clean_stale_shared_memory()
        ds = StreamingDataset(local=str(out / "mds"), shuffle=True, shuffle_seed=epoch, batch_size=64)
        return (b["image"] for b in torch.utils.data.DataLoader(ds, batch_size=64, num_workers=workers))
    if peer == "litdata":
        import litdata

        ds = litdata.StreamingDataset(input_dir=str(out / "litdata"), shuffle=True, seed=epoch)
        return (b["image"] for b in litdata.StreamingDataLoader(ds, batch_size=64, num_workers=workers))
    raise SystemExit(f"unknown peer {peer}")


def run(peer, root, out, workers, repeats, shuffle):
    import torch

    torch.set_num_threads(1)
    best, best_cpu, n, dtype, shape = float("inf"), 0.0, 0, None, None
    with PeakPss() as pss:
        for r in range(repeats):
            t, c = time.perf_counter(), cpu_seconds()
            count = 0
            for batch in epoch_loader(peer, root, out, workers, shuffle, r):
                count += batch.shape[0]
                dtype, shape = batch.dtype, tuple(batch.shape[1:])
            elapsed, used = time.perf_counter() - t, cpu_seconds() - c
            n = count
            if elapsed < best:
                best, best_cpu = elapsed, used
    print(json.dumps({"peer": peer, "workers": workers, "samples": n, "samples_per_s": n / best, "seconds": best,
                      "cpu_seconds": best_cpu, "samples_per_cpu_s": n / best_cpu if best_cpu else None,
                      "peak_pss": pss.peak, "dtype": str(dtype), "shape": shape}))


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "run":
        run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]))
    else:
        raise SystemExit(__doc__)
