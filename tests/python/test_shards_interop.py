"""Python interoperability of the dataset format.

A dataset written by the Rust tool is read in Python both ways — streamed by
the `webdataset` library with the ten-line decoder in scripts/python, and
row by row from the manifest with `pyarrow` plus byte-range reads — and
every pixel and every row is compared: the arrays of both paths must be
equal and hash to the BLAKE3 the writer computed from its in-memory image,
and every manifest field must equal the sample's .json member.
"""
import io
import json
import pathlib
import subprocess
import tarfile as tarlib

import blake3
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds
import zstandard

import chess_shards

REPO = pathlib.Path(__file__).resolve().parents[2]


def make_dataset(bin_path, out, bit_depth):
    subprocess.run(
        [bin_path, "demo", "--out", str(out), "--count", "11", "--size", "48",
         "--bit-depth", bit_depth, "--shard-samples", "4", "--paired", "--quiet"],
        check=True,
    )
    return out


@pytest.mark.parametrize("bit_depth,dtype", [("16", np.uint16), ("8", np.uint8)])
def test_webdataset_and_pyarrow_agree_with_the_writer(tmp_path, chess_shards_bin, bit_depth, dtype):
    root = make_dataset(chess_shards_bin, tmp_path / "ds", bit_depth)
    table = pq.read_table(root / "manifest.parquet")
    rows = table.to_pylist()
    assert len(rows) == 11
    info = json.loads((root / "dataset.json").read_text())
    assert info["sample_count"] == 11 and info["pixel_dtype"] == np.dtype(dtype).name
    # Every .npy.zst member is counted once, as compressed or raw-block frame.
    frames = info["provenance"]["npy_zst_frames"]
    members = sum(1 for p in (root / "shards").glob("*.tar") for m in tarlib.open(p) if m.name.endswith(".npy.zst"))
    assert frames["compressed"] + frames["raw"] == members
    assert frames["min_saving"] == pytest.approx(0.10)

    # The committed schema file describes exactly these columns and types.
    schema_doc = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
    required = [c["name"] for c in schema_doc["required_columns"]]
    assert table.column_names[: len(required)] == required
    pa_types = {"utf8": "string", "uint64": "uint64", "uint32": "uint32", "float32": "float", "float64": "double"}
    for col in schema_doc["required_columns"]:
        assert str(table.schema.field(col["name"]).type) == pa_types[col["type"]], col["name"]

    # 1. Stream every shard with webdataset.
    shards = sorted(str(p) for p in (root / "shards").glob("*.tar"))
    streamed = {}
    order = []
    for sample in wds.WebDataset(shards, shardshuffle=False, empty_check=False).decode(chess_shards.decode):
        order.append(sample["__key__"])
        streamed[sample["__key__"]] = sample
    assert order == [r["key"] for r in rows], "shards hold the samples in manifest order"

    # 2. Random access from each manifest row: one byte-range read.
    for row in rows:
        with open(root / row["shard"], "rb") as f:
            f.seek(row["offset"])
            member = f.read(row["size"])
        by_range = np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(member)))
        sample = streamed[row["key"]]
        image = sample["npy.zst"]
        assert image.dtype == dtype and image.shape == (row["height"], row["width"])
        assert image.flags["C_CONTIGUOUS"]
        np.testing.assert_array_equal(image, by_range)
        assert blake3.blake3(image.tobytes()).hexdigest() == row["pixel_hash"]
        target = sample["target.npy.zst"]
        assert target.shape == image.shape and not np.array_equal(target, image)
        assert row["extra_fields"] == "target"

        # Every row field equals the sample's .json member.
        meta = sample["json"]
        for field in ["key", "height", "width", "dtype", "patient_id", "study_id", "series_id",
                      "view_position", "sex", "modality", "pixel_hash", "split"]:
            assert meta.get(field) == row[field], field
        assert meta.get("age_years") == pytest.approx(row["age_years"])
        assert meta.get("clip_value") == row["clip_value"]
        assert meta["labels"]["Cardiomegaly"] == row["Cardiomegaly"]
        assert row["Cardiomegaly"] in (None, -1.0, 0.0, 1.0)

    # Whole-sample byte ranges cover exactly the sample's members.
    row = rows[5]
    with open(root / row["shard"], "rb") as f:
        f.seek(row["sample_offset"])
        blob = f.read(row["sample_size"])
    import tarfile
    names = tarfile.open(fileobj=io.BytesIO(blob + b"\0" * 1024)).getnames()
    assert names == [f"{row['key']}.npy.zst", f"{row['key']}.target.npy.zst", f"{row['key']}.json"]


def test_python_written_subset_manifest_is_read_by_rust(tmp_path, chess_shards_bin):
    """pyarrow can write a subset manifest (pandas-style, all nullable) that the Rust tool verifies."""
    root = make_dataset(chess_shards_bin, tmp_path / "ds", "16")
    table = pq.read_table(root / "manifest.parquet")
    keep = table.filter(np.array([s == "F" for s in table.column("sex").to_pylist()]))
    # As pandas writes it: every column nullable, no schema metadata.
    loose = keep.cast(pa.schema([f.with_nullable(True) for f in keep.schema]))
    pq.write_table(loose, root / "female.parquet")
    out = subprocess.run([chess_shards_bin, "verify", str(root / "female.parquet")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{keep.num_rows} samples" in out.stderr


def test_dataset_written_by_python_verifies_in_rust(tmp_path, chess_shards_bin):
    """The reverse direction: numpy's .npy, Python's tarfile (pax format) and
    pyarrow's Parquet, assembled by hand from the format description, pass
    `chess-shards verify`, and a flipped pixel does not."""
    import tarfile

    schema_doc = json.loads((REPO / "schemas" / "manifest.schema.json").read_text())
    pa_types = {"utf8": pa.string(), "uint64": pa.uint64(), "uint32": pa.uint32(),
                "float32": pa.float32(), "float64": pa.float64()}
    root = tmp_path / "py"
    (root / "shards").mkdir(parents=True)
    rng = np.random.default_rng(7)
    rows = []
    shard_rel = "shards/py-000000.tar"
    cctx = zstandard.ZstdCompressor(level=5)
    with tarfile.open(root / shard_rel, "w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(5):
            key = f"py{i:03d}"
            arr = rng.integers(0, 65535, size=(20 + i, 30), dtype=np.uint16)
            buf = io.BytesIO()
            np.save(buf, arr)
            data = cctx.compress(buf.getvalue())
            meta = {"key": key, "height": arr.shape[0], "width": arr.shape[1], "dtype": "uint16",
                    "pixel_hash": blake3.blake3(arr.tobytes()).hexdigest()}
            sample_offset = tar.offset
            for name, payload in [(f"{key}.npy.zst", data), (f"{key}.json", json.dumps(meta).encode())]:
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                if name.endswith(".npy.zst"):
                    data_offset = tar.offset - ((len(payload) + 511) // 512) * 512
            rows.append({**{c["name"]: None for c in schema_doc["required_columns"]}, **meta,
                         "shard": shard_rel, "offset": data_offset, "size": len(data),
                         "sample_offset": sample_offset, "sample_size": tar.offset - sample_offset})
    fields = [pa.field(c["name"], pa_types[c["type"]], c["nullable"]) for c in schema_doc["required_columns"]]
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), root / "manifest.parquet")
    (root / "dataset.json").write_text(json.dumps({
        "format_version": 1, "manifest_schema_version": 1, "tool_version": "python test",
        "pixel_dtype": "uint16", "image_size": None, "sample_count": 5, "shard_count": 1,
        "shard_name": "py", "deid_method": "synthetic"}))

    ok = subprocess.run([chess_shards_bin, "verify", str(root)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # Change one pixel, keep the manifest: verify must name the sample.
    blob = bytearray((root / shard_rel).read_bytes())
    r = rows[2]
    arr = np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(bytes(blob[r["offset"]:r["offset"] + r["size"]]))))
    arr[3, 4] ^= 1
    buf = io.BytesIO()
    np.save(buf, arr)
    # Random pixels are stored as raw zstd blocks, so the new frame has the
    # same length and every offset stays valid.
    new = zstandard.ZstdCompressor(level=5).compress(buf.getvalue())
    assert len(new) == r["size"]
    blob[r["offset"]:r["offset"] + r["size"]] = new
    (root / shard_rel).write_bytes(bytes(blob))
    bad = subprocess.run([chess_shards_bin, "verify", str(root)], capture_output=True, text=True)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"MISMATCH {shard_rel}: py002: pixel hash" in bad.stdout, bad.stdout
