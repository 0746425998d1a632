"""Mosaic `streaming` and `litdata` peers of the loader benchmark.

  loader_peers.py convert DATASET_DIR OUT_DIR
      Converts the dataset's images (decoded with webdataset and the
      repository's decoder, in manifest-independent shard order) into four
      stores under OUT_DIR: mds-none, mds-zstd (Mosaic MDS, uncompressed and
      zstd), lit-none, lit-zstd (litdata chunks, uncompressed and zstd:3).
  loader_peers.py read KIND STORE_DIR REPEATS
      One epoch (best of REPEATS) of the store through the library's own
      dataset and a DataLoader of batch 64 with no worker processes (so the
      CPU seconds are this process's), shuffled, timed in steady state like
      every row of the benchmark: from the first batch to the last, the first
      batch's samples not counted (the library's set-up, index reading and,
      for compressed MDS, the first shard's decompression left out). Prints
      one JSON object like loader_python.py: samples, samples_per_s,
      cpu_seconds, peak RSS.
"""
import json
import pathlib
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))


def images(root):
    import webdataset as wds

    import chess_shards

    shards = sorted(str(p) for p in (pathlib.Path(root) / "shards").glob("*.tar"))
    for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode(chess_shards.decode):
        yield np.ascontiguousarray(sample["npy.zst"])


def convert(root, out):
    out = pathlib.Path(out)
    arrays = list(images(root))
    h, w = arrays[0].shape
    from streaming import MDSWriter

    for comp in ("none", "zstd"):
        target = out / f"mds-{comp}"
        shutil.rmtree(target, ignore_errors=True)
        with MDSWriter(out=str(target), columns={"image": f"ndarray:uint16:{h},{w}"},
                       compression=None if comp == "none" else "zstd", size_limit=1 << 26) as writer:
            for a in arrays:
                writer.write({"image": a})
    import litdata

    # litdata's workers get one small input each: the path of one image as .npy.
    with tempfile.TemporaryDirectory(prefix="chess-lit-") as tmp:
        paths = []
        for i, a in enumerate(arrays):
            paths.append(f"{tmp}/{i:06d}.npy")
            np.save(paths[-1], a)
        for comp in ("none", "zstd"):
            target = out / f"lit-{comp}"
            shutil.rmtree(target, ignore_errors=True)
            litdata.optimize(fn=_lit_item, inputs=paths, output_dir=str(target), chunk_bytes="64MB",
                             compression=None if comp == "none" else "zstd:3", num_workers=1)


def _lit_item(path):
    """litdata's worker (a spawned process): one image."""
    return {"image": np.load(path)}


def peak_rss_self():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu():
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def read(kind, store, repeats):
    import torch

    torch.set_num_threads(1)
    cache = tempfile.mkdtemp(prefix="chess-peer-")

    def epoch(seed):
        if kind.startswith("mds"):
            from streaming import StreamingDataset
            from streaming.base.util import clean_stale_shared_memory

            clean_stale_shared_memory()
            # Uncompressed: read in place. zstd: the library decompresses shards into `local`.
            local = store if kind == "mds-none" else f"{cache}/mds-{seed}"
            ds = StreamingDataset(local=local, remote=None if kind == "mds-none" else store, shuffle=True,
                                  shuffle_seed=seed, batch_size=64)
            loader = torch.utils.data.DataLoader(ds, batch_size=64, num_workers=0)
            key = "image"
        else:
            import litdata

            ds = litdata.StreamingDataset(input_dir=store, shuffle=True, seed=seed)
            loader = litdata.StreamingDataLoader(ds, batch_size=64, num_workers=0)
            key = "image"
        n = 0
        first = None
        for batch in loader:
            x = batch[key]
            x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
            if first is None:
                first = (time.perf_counter(), cpu())
            else:
                n += x.shape[0]
        return n, first, (time.perf_counter(), cpu())

    best, best_cpu, n = float("inf"), float("inf"), 0
    for r in range(repeats):
        n, (t, c), (t_end, c_end) = epoch(r)
        elapsed, used = t_end - t, c_end - c
        if elapsed < best:
            best, best_cpu = elapsed, used
    shutil.rmtree(cache, ignore_errors=True)
    print(json.dumps({"samples": n, "workers": 0, "samples_per_s": n / best, "seconds": best, "cpu_seconds": best_cpu,
                      "peak_rss_main": peak_rss_self(), "peak_rss_worker": 0}))


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3])
    else:
        read(sys.argv[2], sys.argv[3], int(sys.argv[4]))
