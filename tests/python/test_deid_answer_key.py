"""An answer-key test in the style of the MIDI-B de-identification challenge:
every planted attribute has an expected action, and a scorer checks each one
against chess-ingest's output; 100 % is required.

Actions: removed (every identifying value absent from every shareable byte),
retained (the allow-list: sex, age capped at 90, view, modality), date
shifted by the patient's offset (--dates shifted) or reduced to the shifted
year (--dates year), UID changed (2.25 UIDs), UID consistent across the files
of one study / series, patient pseudonym consistent across studies, and
pixels hidden (text burned into the pixels rejected, or blanked with mask).
"""
import datetime
import hashlib
import hmac
import json
import os
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest

import burned_in_text as bt
from test_ingest_deid import Markers, scan, seeded_file

KEY = bytes(range(32))


def sample_key(uid):
    return hmac.new(KEY, b"sop\0" + uid.encode(), hashlib.sha256).digest()[:16].hex()


def day(s):
    return datetime.date(int(s[:4]), int(s[4:6]), int(s[6:8]))


@pytest.fixture(scope="module")
def ingest_bin():
    from conftest import _bin

    return _bin("chess-ingest")


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    """The planted archive and its answer key."""
    root = tmp_path_factory.mktemp("answer-key")
    inp = root / "in" / "MRKFOLDER"
    inp.mkdir(parents=True)
    mk = Markers()
    mk.all.append("MRKFOLDER")
    p1 = {"name": mk.text("name") + "^" + mk.text("given"), "id": mk.text("pid"), "birth": mk.date(1951, 3, 17)}
    p2 = {"name": mk.text("name"), "id": mk.text("pid"), "birth": mk.date(1930, 1, 5)}
    study_a, study_b, study_c = mk.uid(), mk.uid(), mk.uid()
    dates = {"a": mk.date(2019, 2, 3), "b": mk.date(2019, 4, 4), "c": mk.date(2020, 7, 9)}
    files = {}  # name -> (patient, study uid, study date, view, mono1)
    plan = [
        ("a1.dcm", p1, study_a, dates["a"], "PA", False),
        ("a2.dcm", p1, study_a, dates["a"], "PA", True),
        ("b1.dcm", p1, study_b, dates["b"], "AP", False),
        ("c1.dcm", p2, study_c, dates["c"], "PA", False),
    ]
    for i, (name, p, study, date, view, mono1) in enumerate(plan):
        seeded_file(inp / name, mk, patient=p, study_uid=study, study_date=date, accession=mk.text("acc"), mono1=mono1, view=view, seed=10 + i)
        files[name] = pydicom.dcmread(inp / name, stop_before_pixels=True)
    # a2 shares a1's series: consistency of series UIDs.
    ds = pydicom.dcmread(inp / "a2.dcm")
    ds.SeriesInstanceUID = files["a1.dcm"].SeriesInstanceUID
    ds.save_as(inp / "a2.dcm")
    files["a2.dcm"] = pydicom.dcmread(inp / "a2.dcm", stop_before_pixels=True)
    # c1: patient older than 89.
    ds = pydicom.dcmread(inp / "c1.dcm")
    ds.PatientAge = "095Y"
    ds.save_as(inp / "c1.dcm")
    files["c1.dcm"] = pydicom.dcmread(inp / "c1.dcm", stop_before_pixels=True)
    # A real chest CR with the patient's name burned into its pixels.
    base = pydicom.dcmread(bt.pydicom_data("RG1_UNCR.dcm"))
    values, _ = bt.planted(base, "DOE^JANE 19510317", bt.FONTS[0], 24, 0, True, False, np.random.default_rng(0), where=(120, 60))
    burned_sop = bt.write(base, values, inp / "burned.dcm")
    return root / "in", mk, files, dates, burned_sop


def run(ingest_bin, inp, out, *extra):
    key = out.parent / (out.name + ".key")
    key.write_bytes(KEY)
    r = subprocess.run([ingest_bin, str(inp), "--out", str(out), "--key-file", str(key), *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = {r["key"]: r for r in pq.read_table(out / "manifest.parquet").to_pylist()}
    rej = pq.read_table(out / "private" / "rejected.parquet").to_pydict()
    rejected = {os.path.basename(s): c for s, c in zip(rej["source_path"], rej["reason_code"])}
    return rows, rejected, json.loads((out / "dataset.json").read_text()), r.stdout + r.stderr


def score(checks):
    failed = [name for name, ok in checks if not ok]
    assert not failed, f"{len(checks) - len(failed)}/{len(checks)} = {100 * (1 - len(failed) / len(checks)):.1f} %; failed: {failed}"
    return len(checks)


def test_every_planted_attribute_gets_its_expected_action(ingest_bin, fixture, tmp_path):
    inp, mk, files, dates, burned_sop = fixture
    rows, rejected, info, streams = run(ingest_bin, inp, tmp_path / "shifted", "--dates", "shifted")
    year_rows, _, _, _ = run(ingest_bin, inp, tmp_path / "year", "--dates", "year")
    mask_rows, mask_rejected, mask_info, _ = run(ingest_bin, inp, tmp_path / "mask", "--burned-in", "mask")
    row = {name: rows.get(sample_key(ds.SOPInstanceUID)) for name, ds in files.items()}
    checks = [(f"{name}: a sample", r is not None) for name, r in row.items()]
    row = {k: v or {} for k, v in row.items()}
    # removed: no planted value in any shareable byte, nor on the streams.
    hits = scan(tmp_path / "shifted", mk.all) + scan(tmp_path / "year", mk.all) + scan(tmp_path / "mask", mk.all)
    checks += [(f"removed: {m}", not any(h[0] == m for h in hits)) for m in mk.all]
    checks += [(f"removed from the streams: {m}", m not in streams) for m in mk.all]
    # retained (allow-list), closed vocabularies, age capped at 90.
    for name, ds in files.items():
        r = row[name]
        checks += [
            (f"{name}: sex retained", r.get("sex") == ds.PatientSex),
            (f"{name}: modality retained", r.get("modality") == "CR"),
            (f"{name}: view retained", r.get("view_position") == ds.ViewPosition),
            (f"{name}: age", r.get("age_years") == (90.0 if name == "c1.dcm" else 47.0)),
        ]
    # dates: shifted by one offset per patient (intervals kept), 1..3650 days; year: the shifted year.
    for patient in [("a1.dcm", "a2.dcm", "b1.dcm"), ("c1.dcm",)]:
        offsets = {(day(files[n].StudyDate) - day(row[n].get("study_date_shifted") or "00010101")).days for n in patient}
        checks.append((f"{patient}: one date offset", len(offsets) == 1 and 1 <= next(iter(offsets)) <= 3650))
    for name, ds in files.items():
        y = year_rows.get(sample_key(ds.SOPInstanceUID), {}).get("study_year_shifted")
        checks.append((f"{name}: --dates year keeps the shifted year only", y == (row[name].get("study_date_shifted") or "?")[:4]))
    # UIDs changed, and consistent across files of one study / series.
    for name, ds in files.items():
        r = row[name]
        checks += [
            (f"{name}: study UID changed", (r.get("study_id") or "").startswith("2.25.") and r.get("study_id") != ds.StudyInstanceUID),
            (f"{name}: series UID changed", (r.get("series_id") or "").startswith("2.25.") and r.get("series_id") != ds.SeriesInstanceUID),
        ]
    checks += [
        ("study A: one study UID", row["a1.dcm"].get("study_id") == row["a2.dcm"].get("study_id")),
        ("studies A, B: two study UIDs", row["a1.dcm"].get("study_id") != row["b1.dcm"].get("study_id")),
        ("series A1: one series UID", row["a1.dcm"].get("series_id") == row["a2.dcm"].get("series_id")),
        ("patient 1: one pseudonym across studies", len({row[n].get("patient_id") for n in ("a1.dcm", "a2.dcm", "b1.dcm")}) == 1),
        ("patients 1, 2: two pseudonyms", row["a1.dcm"].get("patient_id") != row["c1.dcm"].get("patient_id")),
        ("pseudonym is not the ID", row["a1.dcm"].get("patient_id") not in (None, files["a1.dcm"].PatientID)),
    ]
    # pixels hidden: the burned-in name is rejected (default) or blanked (mask).
    checks += [
        ("burned-in text rejected", rejected.get("burned.dcm") == "burned_in_text" and sample_key(burned_sop) not in rows),
        ("burned-in text masked", sample_key(burned_sop) in mask_rows and "burned.dcm" not in mask_rejected),
        ("dataset.json counts it", info["provenance"]["burned_in"]["rejected"] == 1 and mask_info["provenance"]["burned_in"]["masked"] == 1),
        ("dataset.json records the date option", info["provenance"]["dates"] == "shifted"),
    ]
    assert score(checks) > 80
