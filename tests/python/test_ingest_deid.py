"""chess-ingest de-identification: no identifying input value reaches any
shareable output byte.

DICOM files are seeded with unique marker strings in every identifying
place (names, IDs, accession numbers, UIDs, dates and times, institution,
physicians, operators, station, device serial, free-text comments, private
tags, nested sequences, overlays, curves, an icon image), ingested, and every
byte of every shareable output is scanned: dataset.json, manifest.parquet
(raw, and every decoded value and metadata), every shard (raw, and every
member, with .zst members decompressed).
"""
import io
import json
import os
import pathlib
import subprocess
import tarfile
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest
import zstandard
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

REPO = pathlib.Path(__file__).resolve().parents[2]
CR_STORAGE = "1.2.840.10008.5.1.4.1.1.1"


@pytest.fixture(scope="session")
def ingest_bin():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    path = pathlib.Path(os.environ.get("CHESS_INGEST_BIN", target / "debug" / "chess-ingest"))
    if not path.exists():
        pytest.fail(f"{path} not found: build it first (cargo build -p chess-ingest; scripts/test.sh does)")
    return str(path)


class Markers:
    """Hands out unique marker strings and remembers them."""

    def __init__(self):
        self.all = []
        self.n = 0

    def text(self, what):
        self.n += 1
        m = f"MRK{what.upper()}{self.n:04d}"
        self.all.append(m)
        return m

    def uid(self):
        self.n += 1
        m = f"1.2.826.0.1.3680043.10.999.{self.n + 1000}77{self.n + 1000}"
        self.all.append(m)
        return m

    def date(self, year, month, day):
        m = f"{year:04d}{month:02d}{day:02d}"
        self.all.append(m)
        return m


def seeded_file(path, mk, *, patient, study_uid, study_date, accession, mono1=False, view="PA", seed=0):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR_STORAGE
    sop = mk.uid()
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = "1.2.826.0.1.3680043.10.999.1"
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CR_STORAGE
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = mk.uid()
    ds.FrameOfReferenceUID = mk.uid()
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.OtherPatientIDs = mk.text("otherpid")
    ds.PatientBirthDate = patient["birth"]
    ds.PatientSex = "F"
    ds.PatientAddress = mk.text("address")
    ds.PatientTelephoneNumbers = mk.text("phone")
    ds.AccessionNumber = accession
    ds.StudyID = mk.text("studyid")
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = "101112.131415"
    mk.all.append("101112.131415")
    ds.InstitutionName = mk.text("institution")
    ds.InstitutionAddress = mk.text("instaddress")
    ds.ReferringPhysicianName = mk.text("referring")
    ds.PerformingPhysicianName = mk.text("performing")
    ds.OperatorsName = mk.text("operator")
    ds.StationName = mk.text("station")
    ds.DeviceSerialNumber = mk.text("serial")
    ds.StudyDescription = mk.text("studydesc")
    ds.SeriesDescription = mk.text("seriesdesc")
    ds.ImageComments = mk.text("comments")
    ds.Manufacturer = "ACME"
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = view
    ds.PatientAge = "047Y"
    # Nested sequences, two levels deep.
    inner = Dataset()
    inner.PatientName = mk.text("nestedname")
    inner.ReferencedSOPInstanceUID = mk.uid()
    outer = Dataset()
    outer.ReferencedSOPClassUID = CR_STORAGE
    outer.ReferencedSOPInstanceUID = mk.uid()
    outer.ReferencedPatientSequence = Sequence([inner])
    ds.ReferencedStudySequence = Sequence([outer])
    req = Dataset()
    req.RequestingPhysician = mk.text("requesting")
    req.AccessionNumber = mk.text("reqaccession")
    ds.RequestAttributesSequence = Sequence([req])
    # Private tags, with and without a creator.
    block = ds.private_block(0x0009, "MARKER CREATOR", create=True)
    block.add_new(0x01, "LO", mk.text("private"))
    block.add_new(0x02, "UN", mk.text("privateun").encode())
    ds.add_new(0x00111001, "LO", mk.text("orphanprivate"))
    # Overlay, curve, icon image.
    ds.add_new(0x60000010, "US", 8)
    ds.add_new(0x60000011, "US", 8)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000022, "LO", mk.text("overlaydesc"))
    ds.add_new(0x60003000, "OW", mk.text("overlaydata").encode().ljust(8, b"\0")[:16])
    ds.add_new(0x50000022, "LO", mk.text("curvedesc"))
    icon = Dataset()
    icon.Rows = 4
    icon.Columns = 4
    icon.ImageComments = mk.text("iconcomment")
    ds.IconImageSequence = Sequence([icon])
    # Pixels: a real-looking 12-bit image.
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:200, 0:180]
    img = (2000 + 1500 * np.sin(x / 17.0) * np.cos(y / 23.0) + rng.normal(0, 40, x.shape)).clip(0, 4095).astype(np.uint16)
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = img.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return img


def member_texts(path):
    """Raw bytes of a shard, and of each member (decompressed if .zst)."""
    data = path.read_bytes()
    yield f"{path.name} (raw)", data
    with tarfile.open(path) as tf:
        for m in tf.getmembers():
            b = tf.extractfile(m).read()
            yield f"{path.name}!{m.name}", b
            yield f"{path.name}!{m.name} (name)", m.name.encode()
            if m.name.endswith(".zst"):
                yield f"{path.name}!{m.name} (decompressed)", zstandard.ZstdDecompressor().decompress(b)


def shareable_blobs(out):
    for p in sorted(out.rglob("*")):
        rel = p.relative_to(out)
        if rel.parts[0] == "private" or p.is_dir():
            continue
        yield str(rel) + " (path)", str(rel).encode()
        if p.suffix == ".tar":
            yield from member_texts(p)
        elif p.suffix == ".parquet":
            yield str(rel), p.read_bytes()
            t = pq.read_table(p)
            yield f"{rel} (values)", json.dumps(t.to_pylist(), default=str).encode()
            yield f"{rel} (metadata)", str(pq.read_metadata(p).metadata).encode()
            yield f"{rel} (schema)", str(t.schema).encode()
        else:
            yield str(rel), p.read_bytes()


def scan(out, markers):
    hits = []
    for where, blob in shareable_blobs(out):
        low = blob.lower()
        for m in markers:
            for form in {m.encode(), m.lower().encode(), m.encode("utf-16-le")}:
                if form in blob or form in low:
                    hits.append((m, where))
    return hits


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeded")
    inp = root / "in" / "MRKFOLDERNAME"  # folder names can identify too
    inp.mkdir(parents=True)
    mk = Markers()
    mk.all.append("MRKFOLDERNAME")
    p1 = {"name": mk.text("name") + "^" + mk.text("given"), "id": mk.text("pid"), "birth": mk.date(1951, 3, 17)}
    p2 = {"name": mk.text("name"), "id": mk.text("pid"), "birth": mk.date(1962, 11, 5)}
    study_a, study_b, study_c = mk.uid(), mk.uid(), mk.uid()
    acc = [mk.text("acc") for _ in range(4)]
    d1, d2, d3 = mk.date(2019, 2, 3), mk.date(2019, 4, 4), mk.date(2020, 7, 9)
    seeded_file(inp / "a.dcm", mk, patient=p1, study_uid=study_a, study_date=d1, accession=acc[0], seed=1)
    seeded_file(inp / "b.dcm", mk, patient=p1, study_uid=study_b, study_date=d2, accession=acc[1], mono1=True, seed=2)
    seeded_file(inp / "c.dcm", mk, patient=p2, study_uid=study_c, study_date=d3, accession=acc[2], view=mk.text("view"), seed=3)
    # One inside a zip, named after the patient.
    zpath = root / "in" / "MRKZIPNAME.zip"
    mk.all.append("MRKZIPNAME")
    tmp = root / "d.dcm"
    seeded_file(tmp, mk, patient=p2, study_uid=study_c, study_date=d3, accession=acc[3], seed=4)
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(tmp, "MRKMEMBER/d.dcm")
    mk.all.append("MRKMEMBER")
    labels = root / "labels.csv"
    labels.write_text("AccessionNumber,Cardiomegaly,Effusion\n" + "".join(f"{a},{i % 2}.0,{(i + 1) % 2}\n" for i, a in enumerate(acc)) + "MRKUNMATCHED,1.0,0\n")
    mk.all.append("MRKUNMATCHED")
    return root, mk, {"p1": p1, "dates": (d1, d2)}


def run_ingest(ingest_bin, inp, out, key, *extra):
    r = subprocess.run([ingest_bin, str(inp), "--out", str(out), "--key-file", str(key), "--quiet", *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


def test_no_marker_in_any_shareable_byte(ingest_bin, seeded, tmp_path):
    root, mk, _ = seeded
    out = tmp_path / "out"
    key = tmp_path / "key"
    key.write_bytes(os.urandom(32))
    r = run_ingest(ingest_bin, root / "in", out, key, "--labels", str(root / "labels.csv"), "--label-key", "AccessionNumber", "--keep-shifted-dates")
    # The run's own output is shareable too (people paste logs).
    for m in mk.all:
        assert m not in r.stdout + r.stderr
    t = pq.read_table(out / "manifest.parquet").to_pylist()
    assert len(t) == 4, "every seeded file becomes a sample"
    assert {row["Cardiomegaly"] for row in t} == {0.0, 1.0}
    summary = json.loads((out / "dataset.json").read_text())["provenance"]["summary"]
    assert (summary["label_rows"], summary["label_rows_unmatched"], summary["images_without_labels"]) == (5, 1, 0)
    assert "AccessionNumber" not in pq.read_table(out / "manifest.parquet").column_names
    hits = scan(out, mk.all)
    assert not hits, f"identifying values leaked: {hits[:20]}"
    # Nothing but the documented layout is shareable.
    top = sorted(p.name for p in out.iterdir())
    assert top == ["dataset.json", "manifest.parquet", "private", "shards"], top


def test_pseudonyms_are_stable_keyed_and_dates_keep_intervals(ingest_bin, seeded, tmp_path):
    root, mk, info = seeded
    key1, key2 = tmp_path / "k1", tmp_path / "k2"
    key1.write_bytes(b"1" * 32)
    key2.write_bytes(b"2" * 32)
    outs = []
    for i, key in enumerate([key1, key1, key2]):
        out = tmp_path / f"o{i}"
        run_ingest(ingest_bin, root / "in", out, key, "--keep-shifted-dates")
        outs.append(sorted(pq.read_table(out / "manifest.parquet").to_pylist(), key=lambda r: r["key"]))
    a, b, c = outs
    assert [r["key"] for r in a] == [r["key"] for r in b]
    assert [r["patient_id"] for r in a] == [r["patient_id"] for r in b]
    assert not set(r["patient_id"] for r in a) & set(r["patient_id"] for r in c)
    assert not set(r["key"] for r in a) & set(r["key"] for r in c)
    # Patient 1 has two studies: one pseudonym, two study UIDs, interval kept.
    from collections import defaultdict

    by_patient = defaultdict(list)
    for r in a:
        by_patient[r["patient_id"]].append(r)
    assert sorted(len(v) for v in by_patient.values()) == [2, 2]
    for rows in by_patient.values():
        assert all(r["study_id"].startswith("2.25.") for r in rows)
    import datetime

    def day(s):
        return datetime.date(int(s[:4]), int(s[4:6]), int(s[6:]))

    d1, d2 = info["dates"]
    p1_rows = [rows for rows in by_patient.values() if len({r["study_id"] for r in rows}) == 2][0]
    shifted = sorted(day(r["study_date_shifted"]) for r in p1_rows)
    assert (shifted[1] - shifted[0]) == (day(d2) - day(d1))
    assert shifted[0] != day(d1)
    assert all(r["sex"] == "F" and r["age_years"] == 47.0 for r in a)
    assert [r["view_position"] for r in a].count(None) == 1, "a free-text ViewPosition becomes null"


def test_json_member_is_allow_listed(ingest_bin, seeded, tmp_path):
    root, _, _ = seeded
    key = tmp_path / "k"
    key.write_bytes(b"3" * 32)
    out = tmp_path / "o"
    run_ingest(ingest_bin, root / "in", out, key)
    allowed = {"key", "height", "width", "dtype", "patient_id", "study_id", "series_id", "view_position", "sex", "age_years",
               "modality", "transfer_syntax", "clip_value", "pixel_hash", "extra_fields", "split", "labels"}
    for shard in (out / "shards").glob("*.tar"):
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".json"):
                    meta = json.loads(tf.extractfile(m).read())
                    assert set(meta) <= allowed, set(meta) - allowed
                else:
                    arr = np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(tf.extractfile(m).read())))
                    assert arr.shape == (512, 512) and arr.dtype == np.uint16
                    assert arr.min() == 0 and arr.max() == 65535


def test_the_scan_finds_what_it_looks_for(seeded, tmp_path):
    """Negative control: markers hidden in a zstd member of a shard, in a
    Parquet value and in a file are all found."""
    root, mk, _ = seeded
    out = tmp_path / "fake"
    (out / "shards").mkdir(parents=True)
    a, b, c = mk.all[1], mk.all[2], mk.all[3]
    payload = zstandard.ZstdCompressor().compress(a.encode() * 3)
    with tarfile.open(out / "shards" / "s-000000.tar", "w") as tf:
        info = tarfile.TarInfo("k.npy.zst")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    import pyarrow as pa

    pq.write_table(pa.table({"x": [b] * 100}), out / "manifest.parquet", compression="zstd")
    (out / "dataset.json").write_text(json.dumps({"p": c}))
    found = {m for m, _ in scan(out, [a, b, c])}
    assert found == {a, b, c}
