"""The chess_shards Python module (py/, built and installed by scripts/setup.sh).

Exact epochs across 2 emulated DDP ranks x 2 DataLoader workers; resume
mid-epoch equals the uninterrupted order (one loader, and StreamingDataLoader
across 2 ranks x 2 workers); S3 on loopback (s3s-fs) equals local;
a corrupt sample is skipped and reported; arrays equal the writer's pixel hash,
`chess-shards export` and Dataset.sample; batches are the Rust buffer (no copy);
the manifest tools give the files `chess-shards` writes.
"""
import collections
import json
import os
import pathlib
import shutil
import socket
import subprocess
import time

import blake3
import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import chess_shards


def make_dataset(bin_path, out, count, size=32, shard_samples=5, bit_depth="16", paired=False):
    cmd = [bin_path, "demo", "--out", str(out), "--count", str(count), "--size", str(size),
           "--shard-samples", str(shard_samples), "--bit-depth", bit_depth, "--quiet"]
    if paired:
        cmd.append("--paired")
    subprocess.run(cmd, check=True)
    shutil.rmtree(out / ".staging", ignore_errors=True)
    return out


def all_batches(loader):
    return [(list(b["keys"]), b["image"].copy()) for b in loader]


@pytest.fixture(scope="module")
def ds24(tmp_path_factory, chess_shards_bin):
    return make_dataset(chess_shards_bin, tmp_path_factory.mktemp("ds24") / "ds", 24)


def test_import_and_errors_carry_the_rust_message(tmp_path):
    assert chess_shards.__version__
    with pytest.raises(chess_shards.ChessShardsError, match=r"nope.*dataset\.json"):
        chess_shards.Loader(str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="remainder"):
        chess_shards.Loader(str(tmp_path), remainder="sometimes")


@pytest.mark.parametrize("remainder,count", [("drop", 24), ("pad", 26)])
def test_exact_epoch_across_two_ranks_and_two_workers(tmp_path, chess_shards_bin, monkeypatch, remainder, count):
    import torch
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    from chess_shards.torch import StreamingDataset

    root = make_dataset(chess_shards_bin, tmp_path / "ds", count)
    every = set(chess_shards.Dataset(root).keys())
    per_epoch = []
    for epoch in (0, 1):
        seen = collections.Counter()
        for rank in (0, 1):
            # An emulated DDP rank: what torch.distributed answers in rank `rank` of 2.
            monkeypatch.setattr(dist, "is_initialized", lambda: True)
            monkeypatch.setattr(dist, "get_rank", lambda rank=rank: rank)
            monkeypatch.setattr(dist, "get_world_size", lambda: 2)
            ds = StreamingDataset(root, batch_size=4, seed=9, remainder=remainder, threads=1)
            ds.set_epoch(epoch)
            assert ds.consumer() == (rank, 2, 0, 1)
            for batch in DataLoader(ds, batch_size=None, num_workers=2):
                assert isinstance(batch["image"], torch.Tensor) and batch["image"].dtype == torch.uint16
                assert batch["image"].shape[0] == len(batch["keys"])
                seen.update(batch["keys"])
        if remainder == "drop":
            assert set(seen) == every and all(n == 1 for n in seen.values()), seen
        else:
            # 26 over 4 consumers: 7 each, the first two of the epoch's order twice.
            assert set(seen) == every and sum(seen.values()) == 28
            assert sorted(seen.values()) == [1] * 24 + [2] * 2
        per_epoch.append(seen)
    # set_epoch reaches the workers: the split differs between epochs.
    orders = []
    for epoch in (0, 1):
        monkeypatch.setattr(dist, "is_initialized", lambda: True)
        monkeypatch.setattr(dist, "get_rank", lambda: 0)
        monkeypatch.setattr(dist, "get_world_size", lambda: 2)
        ds = StreamingDataset(root, batch_size=4, seed=9, remainder=remainder, threads=1)
        ds.set_epoch(epoch)
        orders.append([k for b in DataLoader(ds, batch_size=None, num_workers=2) for k in b["keys"]])
    assert orders[0] != orders[1]


def emulate_rank(monkeypatch, rank, world):
    """What torch.distributed answers in rank `rank` of `world` (DataLoader's forked workers inherit it)."""
    import torch.distributed as dist

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_rank", lambda: rank)
    monkeypatch.setattr(dist, "get_world_size", lambda: world)


def test_streaming_dataloader_resumes_across_workers(ds24, monkeypatch):
    """2 emulated ranks x 2 DataLoader workers: stopped after an odd number of batches
    (the round-robin stops mid-turn), saved as JSON, resumed twice in fresh DataLoaders:
    every rank's batches come in the uninterrupted order, and the ranks together
    deliver the epoch's samples exactly once."""
    from chess_shards.torch import StreamingDataLoader, StreamingDataset

    def fresh():
        ds = StreamingDataset(ds24, batch_size=2, seed=7, shuffle_buffer=6, threads=1)
        ds.set_epoch(3)
        return ds, StreamingDataLoader(ds, num_workers=2)

    def take(loader, n=None):
        got = []
        for batch in loader:
            got.append((list(batch["keys"]), batch["image"].clone()))
            if n is not None and len(got) == n:
                break
        return got

    seen = collections.Counter()
    for rank in (0, 1):
        emulate_rank(monkeypatch, rank, 2)
        _, loader = fresh()
        whole = take(loader)
        assert len(whole) == 6  # 24 samples / 4 consumers / batch 2
        assert loader.state_dict()["workers"] == 2

        _, loader = fresh()
        got = take(loader, 3)
        state = json.loads(json.dumps(loader.state_dict()))  # as saved with a checkpoint
        assert state["epoch"] == 3 and state["batches"] == 3
        # Worker 0 gave batches 1 and 3, worker 1 batch 2.
        assert [c["batches"] for c in state["consumers"]] == [2, 1]

        ds, loader = fresh()  # a new process would build these again
        loader.load_state_dict(state)
        ds.set_epoch(3)  # the training loop's call keeps a state of the same epoch
        got += take(loader, 2)
        state = json.loads(json.dumps(loader.state_dict()))
        assert state["batches"] == 5

        _, loader = fresh()
        loader.load_state_dict(state)
        got += take(loader)
        assert [k for k, _ in got] == [k for k, _ in whole]
        for (_, a), (_, b) in zip(got, whole):
            assert torch_equal(a, b)
        assert loader.state_dict()["batches"] == 6
        seen.update(k for keys, _ in got for k in keys)
    assert set(seen) == set(chess_shards.Dataset(ds24).keys()) and set(seen.values()) == {1}

    # Another num_workers than the saved run's is refused with a clear message.
    emulate_rank(monkeypatch, 0, 2)
    ds, loader = fresh()
    take(loader, 1)
    state = loader.state_dict()
    ds, _ = fresh()
    ds.load_state_dict(state)
    with pytest.raises(ValueError, match="2 loader worker"):
        list(iter(ds))  # num_workers=0: one worker per rank


def test_streaming_dataset_resumes_in_the_main_process(ds24):
    """num_workers=0 (a plain DataLoader, the dataset in the main process): the
    dataset records its own position."""
    from torch.utils.data import DataLoader

    from chess_shards.torch import StreamingDataset

    def fresh():
        ds = StreamingDataset(ds24, batch_size=5, seed=1, threads=1, rank=0, world=1)
        ds.set_epoch(2)
        return ds

    whole = [list(b["keys"]) for b in DataLoader(fresh(), batch_size=None)]
    ds = fresh()
    head = []
    for b in DataLoader(ds, batch_size=None):
        head.append(list(b["keys"]))
        if len(head) == 2:
            break
    state = ds.state_dict()
    assert state["workers"] == 1 and state["batches"] == 2
    again = fresh()
    again.load_state_dict(json.loads(json.dumps(state)))
    rest = [list(b["keys"]) for b in DataLoader(again, batch_size=None)]
    assert head + rest == whole and len(whole) == 5  # 24 samples, batch 5: the last one short
    # The state is used once: the next iteration of the same epoch starts over.
    assert [list(b["keys"]) for b in DataLoader(again, batch_size=None)] == whole


def torch_equal(a, b):
    import torch

    return bool(torch.equal(a, b))


@pytest.mark.parametrize("access", ["shards", "ranges"])
def test_resume_mid_epoch_equals_uninterrupted(ds24, access):
    settings = dict(seed=5, epoch=1, rank=1, world=2, batch_size=3, shuffle_buffer=8, access=access, threads=2)
    whole = all_batches(chess_shards.Loader(ds24, **settings))
    assert sum(len(k) for k, _ in whole) == 12 and len(whole) == 4

    first = chess_shards.Loader(ds24, **settings)
    it = iter(first)
    head = [next(it), next(it)]
    head = [(list(b["keys"]), b["image"].copy()) for b in head]
    state = json.loads(json.dumps(first.state_dict()))  # as saved with a checkpoint
    assert state["batches"] == 2 and state["delivered"] == 6

    again = chess_shards.Loader(ds24, **settings)
    again.load_state_dict(state)
    rest = all_batches(again)
    got = head + rest
    assert [k for k, _ in got] == [k for k, _ in whole]
    for (_, a), (_, b) in zip(got, whole):
        np.testing.assert_array_equal(a, b)
    report = again.report()
    assert report["accounted"] and report["delivered"] == 12 and report["expected"] == 12

    other = chess_shards.Loader(ds24, **dict(settings, batch_size=4))
    other.load_state_dict(state)
    with pytest.raises(chess_shards.ChessShardsError, match="cannot resume"):
        list(other)


def s3s_fs():
    path = os.environ.get("CHESS_S3S_FS") or os.path.join(
        os.environ.get("CHESS_CACHE", os.path.expanduser("~/.cache/chess")), "s3s", "bin", "s3s-fs")
    if not os.path.exists(path):
        pytest.fail(f"s3s-fs not found at {path}: run scripts/setup.sh (it builds s3s-fs 0.14.1) "
                    "or point CHESS_S3S_FS at an s3s-fs binary")
    return path


@pytest.fixture
def s3_server(tmp_path):
    """An s3s-fs process on loopback serving tmp/s3 (buckets are its subdirectories)."""
    root = tmp_path / "s3"
    root.mkdir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([s3s_fs(), "--host", "127.0.0.1", "--port", str(port), "--access-key", "ak-test",
                             "--secret-key", "sk-test", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.time() < deadline, "s3s-fs did not start"
            time.sleep(0.05)
    storage = {"endpoint": f"http://127.0.0.1:{port}", "allow_http": "true", "access_key_id": "ak-test",
               "secret_access_key": "sk-test", "region": "us-east-1"}
    yield root, storage, proc.pid
    proc.kill()
    proc.wait()


def test_s3_on_loopback_equals_local(s3_server, chess_shards_bin):
    root, storage, _ = s3_server
    local = make_dataset(chess_shards_bin, root / "bkt" / "ds", 17, shard_samples=4)
    settings = dict(seed=2, batch_size=4, shuffle_buffer=6, threads=2)
    from_disk = all_batches(chess_shards.Loader(local, **settings))
    remote = chess_shards.Loader("s3://bkt/ds", storage=storage, **settings)
    from_s3 = all_batches(remote)
    assert [k for k, _ in from_s3] == [k for k, _ in from_disk] and len(from_s3) == 5
    for (_, a), (_, b) in zip(from_s3, from_disk):
        np.testing.assert_array_equal(a, b)
    assert remote.report()["accounted"] and remote.report()["bytes_read"] > 0

    ds = chess_shards.Dataset("s3://bkt/ds", storage=storage)
    assert len(ds) == 17 and ds.info["sample_count"] == 17
    assert ds.manifest.num_rows == 17
    key = ds.keys()[11]
    a, meta = ds.sample(key)
    b, meta_local = chess_shards.Dataset(local).sample(key)
    np.testing.assert_array_equal(a, b)
    assert meta == meta_local and meta["key"] == key


def test_corrupt_sample_is_skipped_and_reported(tmp_path, chess_shards_bin):
    root = make_dataset(chess_shards_bin, tmp_path / "ds", 20)
    table = pq.read_table(root / "manifest.parquet").to_pylist()
    bad = table[7]
    with open(root / bad["shard"], "r+b") as f:  # the image's zstd frame is garbage
        f.seek(bad["offset"])
        f.write(b"junk")
    loader = chess_shards.Loader(root, batch_size=6, seed=1, threads=2)
    keys = [k for b in loader for k in b["keys"]]
    report = loader.report()
    assert report["skipped"] == 1 and report["delivered"] == 19 and report["expected"] == 20, report
    assert report["accounted"]
    (skipped,) = report["skipped_samples"]
    assert skipped["key"] == bad["key"] and skipped["shard"] == bad["shard"]
    assert bad["key"] not in keys and len(set(keys)) == 19
    with pytest.raises(chess_shards.ChessShardsError) as err:
        chess_shards.Dataset(root).sample(bad["key"])
    assert bad["shard"] in str(err.value) and f"{bad['key']}.npy.zst" in str(err.value)


def display_u8(a):
    """ops::to_display_u8: linear from the image's min to its max, rounded half away from zero."""
    lo, hi = int(a.min()), int(a.max())
    span = float(max(hi - lo, 1))
    return np.floor((a.astype(np.float64) - lo) / span * 255.0 + 0.5).astype(np.uint8)


@pytest.mark.parametrize("bit_depth", ["8", "16"])
def test_arrays_equal_the_writer_and_export(tmp_path, chess_shards_bin, bit_depth):
    root = make_dataset(chess_shards_bin, tmp_path / "ds", 9, size=40, bit_depth=bit_depth, paired=True)
    ds = chess_shards.Dataset(root)
    dtype = np.uint8 if bit_depth == "8" else np.uint16
    rows = {r["key"]: r for r in ds.manifest.to_pylist()}
    loader = chess_shards.Loader(root, batch_size=4, seed=3, fields=["image", "target"], threads=2)
    seen = 0
    for batch in loader:
        assert batch["image"].dtype == dtype and batch["image"].shape[1:] == (40, 40)
        for i, key in enumerate(batch["keys"]):
            image, meta = ds.sample(key)
            target, _ = ds.sample(key, field="target")
            np.testing.assert_array_equal(batch["image"][i], image)
            np.testing.assert_array_equal(batch["target"][i], target)
            # The writer's BLAKE3 of the array bytes (little-endian, C order).
            assert blake3.blake3(image.astype(image.dtype.newbyteorder("<")).tobytes()).hexdigest() == \
                rows[key]["pixel_hash"] == meta["pixel_hash"]
            expected = rows[key]["Cardiomegaly"]
            got = batch["labels"]["Cardiomegaly"][i]
            assert got == expected or (got is None and expected is None)
            seen += 1
    assert seen == 9  # one consumer: every sample, the last batch short
    key = ds.keys()[4]
    png = tmp_path / "x.png"
    subprocess.run([chess_shards_bin, "export", str(root), key, str(png)], check=True)
    np.testing.assert_array_equal(np.asarray(Image.open(png)), display_u8(ds.sample(key)[0]))


def test_batches_are_the_rust_buffer(ds24):
    import torch

    from chess_shards.torch import StreamingDataset

    batch = next(iter(chess_shards.Loader(ds24, batch_size=8, threads=1)))
    image = batch["image"]
    # The array owns no data: its base is the batch's Rust Vec, moved into a BatchBuffer,
    # and its data pointer is that Vec's.
    assert not image.flags.owndata and type(image.base) is chess_shards._chess_shards.BatchBuffer
    assert image.base.address == image.__array_interface__["data"][0] and len(image.base) == image.nbytes
    assert image.flags.c_contiguous and image.flags.writeable
    tensor = next(iter(StreamingDataset(ds24, batch_size=8, threads=1)))["image"]
    assert tensor.dtype == torch.uint16 and tensor.shape == (8, 32, 32)
    # torch.from_numpy of the same kind of array: one buffer, no copy.
    shared = torch.from_numpy(image)
    assert shared.data_ptr() == image.__array_interface__["data"][0]


def test_large_batch_buffers_are_mapped_for_huge_pages(tmp_path, chess_shards_bin):
    """Batch buffers of 4 MiB and more come from the module's allocator, 2 MiB aligned
    (advised for transparent huge pages); the pixels are still the samples'."""
    root = make_dataset(chess_shards_bin, tmp_path / "ds", 40, size=256, shard_samples=20)
    ds = chess_shards.Dataset(root)
    loader = chess_shards.Loader(root, batch_size=32, seed=1, threads=2)  # 32 x 256 x 256 x 2 B = 4 MiB
    batches = 0
    for batch in loader:
        image = batch["image"]
        if len(batch["keys"]) == 32:
            assert image.base.address % (2 << 20) == 0, hex(image.base.address)
            batches += 1
        for j, key in enumerate(batch["keys"]):
            np.testing.assert_array_equal(image[j], ds.sample(key)[0])
    assert batches == 1 and loader.report()["delivered"] == 40


def test_batch_buffers_are_recycled_only_when_their_arrays_die(tmp_path, chess_shards_bin):
    """A batch whose arrays (and tensors) are gone hands its buffers back to the
    pipeline; one still referenced is never refilled: every kept batch still
    holds its own samples at the end."""
    import torch

    root = make_dataset(chess_shards_bin, tmp_path / "ds", 40, paired=True)
    ds = chess_shards.Dataset(root)
    settings = dict(batch_size=4, seed=2, threads=2, fields=["image", "target"])

    dropped = chess_shards.Loader(root, **settings)
    for batch in dropped:
        torch.from_numpy(batch["image"]).float().sum()  # used, then gone
    assert dropped.recycled >= 5, dropped.recycled  # of 10 batches

    kept_loader = chess_shards.Loader(root, **settings)
    kept = []
    for i, batch in enumerate(kept_loader):
        if i % 2 == 0:
            kept.append((batch["keys"], batch["image"], torch.from_numpy(batch["target"])))
    assert kept_loader.recycled >= 2
    for keys, image, target in kept:
        for j, key in enumerate(keys):
            np.testing.assert_array_equal(image[j], ds.sample(key)[0])
            np.testing.assert_array_equal(target[j].numpy(), ds.sample(key, field="target")[0])


def test_manifest_tools_write_what_the_command_writes(tmp_path, chess_shards_bin):
    root = make_dataset(chess_shards_bin, tmp_path / "ds", 30)

    def same(a, b):
        ta, tb = pq.read_table(a), pq.read_table(b)
        assert ta.equals(tb), (a, b)
        assert ta.schema.metadata == tb.schema.metadata
        return ta.num_rows

    subprocess.run([chess_shards_bin, "fractions", str(root), "--fractions", "0.5,1", "--repeats", "2",
                    "--labels", "Cardiomegaly", "--views", "all", "--out", str(tmp_path / "cli-f"), "--quiet"],
                   check=True)
    summaries = chess_shards.fractions(root, tmp_path / "py-f", fractions=[0.5, 1.0], repeats=2,
                                       labels=["Cardiomegaly"], views="all")
    names = sorted(p.name for p in (tmp_path / "cli-f").glob("*.parquet"))
    assert names == sorted(p.name for p in (tmp_path / "py-f").glob("*.parquet")) and len(names) >= 3
    for name in names:
        same(tmp_path / "cli-f" / name, tmp_path / "py-f" / name)
    for s in summaries:
        assert pq.read_table(s["path"]).num_rows == s["images"]

    subprocess.run([chess_shards_bin, "balance", str(root), "--label-column", "Cardiomegaly", "--mode", "undersample",
                    "--seed", "4", "--out", str(tmp_path / "cli-b.parquet")], check=True, capture_output=True)
    result = chess_shards.balance(root, tmp_path / "py-b.parquet", column="Cardiomegaly", mode="undersample", seed=4)
    n = same(tmp_path / "cli-b.parquet", tmp_path / "py-b.parquet")
    assert n == sum(c["selected"] for c in result["classes"])
    assert len({c["selected"] for c in result["classes"]}) == 1

    where = "sex = 'F' and age_years >= 40"
    subprocess.run([chess_shards_bin, "subset", str(root), "--where", where, "--out", str(tmp_path / "cli-s.parquet")],
                   check=True, capture_output=True)
    written = chess_shards.subset(root, tmp_path / "py-s.parquet", where=where)
    assert written == same(tmp_path / "cli-s.parquet", tmp_path / "py-s.parquet") > 0
    # A subset manifest streams through the loader by byte ranges, resolving its recorded root.
    sub = chess_shards.Loader(tmp_path / "py-s.parquet", batch_size=5, threads=1)
    assert sorted(k for b in sub for k in b["keys"]) == sorted(pq.read_table(tmp_path / "py-s.parquet")["key"]
                                                                .to_pylist())
    with pytest.raises(chess_shards.ChessShardsError, match="not in"):
        chess_shards.subset(root, tmp_path / "x.parquet", keys=["no-such-key"])


def test_webdataset_decoder_moved_into_the_package(ds24):
    import webdataset as wds

    shard = sorted(pathlib.Path(ds24, "shards").glob("*.tar"))[0]
    samples = list(wds.WebDataset([str(shard)], shardshuffle=False, empty_check=False).decode(chess_shards.decode))
    ds = chess_shards.Dataset(ds24)
    assert samples
    for s in samples:
        np.testing.assert_array_equal(s["npy.zst"], ds.sample(s["__key__"])[0])


def test_the_gil_is_released_while_the_loader_waits(s3_server, chess_shards_bin):
    import signal
    import threading

    root, storage, server = s3_server
    make_dataset(chess_shards_bin, root / "bkt" / "ds", 8, shard_samples=8)
    loader = chess_shards.Loader("s3://bkt/ds", storage=storage, batch_size=8, threads=1)
    os.kill(server, signal.SIGSTOP)  # the server accepts connections but answers nothing
    # Resumed by another process after a second, so a held GIL could not deadlock the test.
    waker = subprocess.Popen(["sh", "-c", f"sleep 1; kill -CONT {server}"])
    try:
        it = iter(loader)
        times = {}
        done = threading.Event()

        def consume():
            times["start"] = time.perf_counter()
            times["batch"] = next(it)
            times["end"] = time.perf_counter()
            done.set()

        ticks = []
        t = threading.Thread(target=consume)
        t.start()
        while not done.wait(0.001):
            ticks.append(time.perf_counter())
        t.join()
    finally:
        waker.wait()
        os.kill(server, signal.SIGCONT)
    assert sorted(times["batch"]["keys"]) == sorted(chess_shards.Dataset(root / "bkt" / "ds").keys())
    start, end = times["start"], times["end"]
    assert end - start > 0.5, "the batch did not wait for the stopped server"
    # This thread kept running Python while the other one was inside next().
    during = [x for x in ticks if start + 0.1 < x < end - 0.1]
    assert len(during) > 50, (len(during), end - start)
