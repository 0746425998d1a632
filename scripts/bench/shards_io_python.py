"""Python peer for the shard I/O benchmark: what a user would otherwise run.

Streams the same shards with webdataset and the repository's decoder
(scripts/python/chess_shards.py), one process, and times raw zstandard
decompression of the same members. Prints one JSON object.

Usage: shards_io_python.py DATASET_DIR [REPEATS]
"""
import json
import pathlib
import sys
import time

import pyarrow.parquet as pq
import webdataset as wds
import zstandard

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
import chess_shards  # noqa: E402


def best_of(repeats, fn):
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main():
    root = pathlib.Path(sys.argv[1])
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    rows = pq.read_table(root / "manifest.parquet").to_pylist()
    shards = sorted(str(p) for p in (root / "shards").glob("*.tar"))
    members = []
    for r in rows:
        with open(root / r["shard"], "rb") as f:
            f.seek(r["offset"])
            members.append(f.read(r["size"]))

    def stream():
        n = 0
        for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode(chess_shards.decode):
            n += sample["npy.zst"].nbytes
        return n

    dctx = zstandard.ZstdDecompressor()

    def raw():
        return sum(len(dctx.decompress(m)) for m in members)

    stream_s, _ = best_of(repeats, stream)
    raw_s, _ = best_of(repeats, raw)
    n = len(rows)
    mb = n * 512 * 512 * 2 / 1e6
    print(json.dumps({
        "samples": n,
        "webdataset_stream": {"samples_per_s": n / stream_s, "mb_per_s": mb / stream_s},
        "python_raw_zstd_decompress": {"samples_per_s": n / raw_s, "mb_per_s": mb / raw_s},
    }))


if __name__ == "__main__":
    main()
