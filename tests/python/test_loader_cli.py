"""The Rust streaming loader, checked against an independent reader.

`chess-shards stream --keys` is run for several world sizes on a dataset
written by the Rust tool (16- and 8-bit); the keys all ranks deliver must be
exactly the keys that `webdataset` finds in the shards and `pyarrow` in the
manifest, each once, every rank must deliver as many, and a second run must
repeat the order exactly.
"""
import subprocess

import pyarrow.parquet as pq
import pytest
import webdataset as wds


def stream_keys(bin_path, root, *args):
    out = subprocess.run(
        [bin_path, "stream", str(root), "--keys", "--batch", "5", "--seed", "9", *args],
        check=True, capture_output=True, text=True,
    )
    return out.stdout.split()


@pytest.mark.parametrize("bit_depth", ["16", "8"])
def test_stream_delivers_every_sample_once_across_ranks(tmp_path, chess_shards_bin, bit_depth):
    root = tmp_path / "ds"
    subprocess.run(
        [chess_shards_bin, "demo", "--out", str(root), "--count", "23", "--size", "32",
         "--bit-depth", bit_depth, "--shard-samples", "5", "--quiet"],
        check=True,
    )
    shards = sorted(str(p) for p in (root / "shards").glob("*.tar"))
    in_shards = [s["__key__"] for s in wds.WebDataset(shards, shardshuffle=False, empty_check=False)]
    in_manifest = pq.read_table(root / "manifest.parquet").column("key").to_pylist()
    assert sorted(in_shards) == sorted(in_manifest)

    for world in (1, 2, 3):
        for epoch in ("0", "1"):
            per_rank = [
                stream_keys(chess_shards_bin, root, "--world", str(world), "--rank", str(r),
                            "--epoch", epoch, "--remainder", "pad")
                for r in range(world)
            ]
            assert len({len(keys) for keys in per_rank}) == 1, "every rank delivers as many samples"
            delivered = [k for keys in per_rank for k in keys]
            padded = -len(in_manifest) % world
            assert len(delivered) == len(in_manifest) + padded
            assert set(delivered) == set(in_manifest)
            assert per_rank[0] == stream_keys(chess_shards_bin, root, "--world", str(world), "--rank", "0",
                                              "--epoch", epoch, "--remainder", "pad")
    # Epochs are different permutations of the same samples.
    e0, e1 = (stream_keys(chess_shards_bin, root, "--epoch", e) for e in ("0", "1"))
    assert e0 != e1 and sorted(e0) == sorted(e1) == sorted(in_manifest)
