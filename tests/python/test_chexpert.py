"""chess-ingest chexpert, read from Python: a CheXpert-layout folder whose
images are written by Pillow (libjpeg: baseline, progressive, optimised,
RGB 4:2:0; 8- and 16-bit PNG), imported, then read back the way a PyTorch
user would: pyarrow for the manifest, webdataset + chess_shards.decode for
the shards. Labels must equal the CSV cells (blank -> null), the label column
names must be CheXpert's, and each <key>.json must carry the same values.
"""
import csv
import json
import os
import pathlib
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest
import webdataset as wds
from PIL import Image

import chess_shards

REPO = pathlib.Path(__file__).resolve().parents[2]
HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
          "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia",
          "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]
OBS = HEADER[5:]
ROOT = "CheXpert-v1.0-small"


@pytest.fixture(scope="module")
def ingest_bin():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = pathlib.Path(os.environ.get("CHESS_INGEST_BIN", target / "debug" / "chess-ingest"))
    if not path.exists():
        pytest.fail(f"{path} not found: build it first (cargo build -p chess-ingest; scripts/test.sh does)")
    return str(path)


def save(path, n):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    g = (rng.random((40, 32)) * 200 + np.linspace(0, 55, 32)).astype(np.uint8)
    kind = n % 5
    if kind == 0:
        Image.fromarray(g).save(path, "JPEG", quality=90)
    elif kind == 1:
        Image.fromarray(g).save(path, "JPEG", quality=85, progressive=True, optimize=True)
    elif kind == 2:
        Image.fromarray(g).convert("RGB").save(path, "JPEG", quality=90, subsampling=2)
    elif kind == 3:
        Image.fromarray(g).save(path, "PNG")
    else:
        Image.fromarray(g.astype(np.uint16) * 257).save(path, "PNG")


@pytest.fixture(scope="module")
def imported(tmp_path_factory, ingest_bin):
    base = tmp_path_factory.mktemp("cx")
    root = base / ROOT
    root.mkdir()
    cells = ["1.0", "0.0", "-1.0", ""]
    rows = {}
    n = 0
    for split, patients in [("train", range(1, 9)), ("valid", range(9, 11)), ("test", range(11, 13))]:
        with open(root / f"{split}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(HEADER)
            for p in patients:
                for s in (1, 2):
                    for v, view in ((1, "frontal"), (2, "lateral")):
                        ext = "png" if n % 5 >= 3 else "jpg"
                        rel = f"{ROOT}/{split}/patient{p:05d}/study{s}/view{v}_{view}.{ext}"
                        save(base / rel, n)
                        row = [rel, ["Male", "Female", "Unknown"][n % 3], str(20 + n) if n % 7 else "",
                               view.capitalize(), ["AP", "PA"][n % 2] if view == "frontal" else ""]
                        row += [cells[(n + k) % 4] for k in range(14)]
                        w.writerow(row)
                        rows[f"{split}_patient{p:05d}_study{s}_view{v}_{view}"] = (split, row)
                        n += 1
    out = base / "out"
    subprocess.run([ingest_bin, "chexpert", str(root), "--out", str(out), "--size", "32", "-q"], check=True)
    return out, rows


def test_manifest_labels_equal_the_csv(imported):
    out, rows = imported
    t = pq.read_table(out / "manifest.parquet")
    for name in OBS:
        assert str(t.schema.field(name).type) == "float", name
    m = {r["key"]: r for r in t.to_pylist()}
    assert set(m) == set(rows)
    for key, (split, row) in rows.items():
        r = m[key]
        for name, cell in zip(OBS, row[5:]):
            assert r[name] == (float(cell) if cell else None), (key, name, cell)
        assert r["split"] == split
        assert r["sex"] == {"Male": "M", "Female": "F", "Unknown": None}[row[1]]
        assert r["age_years"] == (float(row[2]) if row[2] else None)
        assert r["view_position"] == (row[4] if row[3] == "Frontal" else "LATERAL")
        assert r["patient_id"] == row[0].split("/")[2]
        assert r["modality"] == ("PNG" if row[0].endswith(".png") else "JPEG")
    assert pq.read_table(out / "private" / "rejected.parquet").num_rows == 0


def test_shards_read_with_webdataset(imported):
    out, rows = imported
    shards = sorted(str(p) for p in (out / "shards").glob("*.tar"))
    seen = 0
    for sample in wds.WebDataset(shards, shardshuffle=False).decode(chess_shards.decode):
        key = sample["__key__"]
        img, meta = sample["npy.zst"], sample["json"]
        assert img.shape == (32, 32) and img.dtype == np.uint16
        assert img.min() == 0 and img.max() == 65535, key
        meta = meta if isinstance(meta, dict) else json.loads(meta)
        labels = meta["labels"]
        split, row = rows[key]
        assert meta["split"] == split and meta["study_id"] == "/".join(row[0].split("/")[2:4])
        for name, cell in zip(OBS, row[5:]):
            assert labels[name] == (float(cell) if cell else None), (key, name)
        seen += 1
    assert seen == len(rows)
