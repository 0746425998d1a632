"""chess-ingest --burned-in: text drawn into a real chest radiograph
(pydicom-data's RG1, MONOCHROME1) is found before the resize; laterality
and positioning markers are not PHI; `mask` blanks the lines; a rules file
blanks known regions; private/burned-in.png is written 0600; dataset.json
records the policy, the rules digest and the counts.

A few images only: the measurement set (detection rate, false positives,
added time) is scripts/bench/burned_in.py, its figures in BENCHMARKS.md.
"""
import json
import os
import stat
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pydicom
import pytest

import burned_in_text as bt

SANS = bt.FONTS[0]
MONO = bt.FONTS[2]


@pytest.fixture(scope="module")
def ingest_bin():
    from conftest import _bin

    return _bin("chess-ingest")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """(folder, {file: expected reject reason or None})."""
    root = tmp_path_factory.mktemp("burned")
    inp = root / "in"
    inp.mkdir()
    base = pydicom.dcmread(bt.pydicom_data("RG1_UNCR.dcm"))
    base.Manufacturer = "ACME"  # for the rules file
    rng = np.random.default_rng(1)
    cases = {
        # (text, font, cap, rotate, bright, label box, where) -> expected
        "name_top_left.dcm": (("DOE^JANE 19570314", SANS, 24, 0, True, False, (120, 60)), "burned_in_text"),
        "id_rotated.dcm": (("MRN 00482913", MONO, 20, 90, True, False, (1700, 500)), "burned_in_text"),
        "dark_on_label.dcm": (("ST MARY HOSPITAL", SANS, 16, 0, False, True, (900, 1800)), "burned_in_text"),
        "marker_l.dcm": (("L", SANS, 40, 0, True, False, (80, 80)), None),
        "marker_portable.dcm": (("PORTABLE", SANS, 24, 0, True, False, (1300, 80)), None),
    }
    expected = {}
    for name, (args, reason) in cases.items():
        values, _ = bt.planted(base, *args[:6], rng, where=args[6])
        bt.write(base, values, inp / name)
        expected[name] = reason
    bt.write(base, base.pixel_array.astype(np.int64), inp / "clean.dcm")
    expected["clean.dcm"] = None
    return root, expected


def run(ingest_bin, inp, out, *extra):
    r = subprocess.run([ingest_bin, str(inp), "--out", str(out), "--quiet", *extra], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads((out / "dataset.json").read_text())


def rejected(out):
    t = pq.read_table(out / "private" / "rejected.parquet").to_pydict()
    return {os.path.basename(s): r for s, r in zip(t["source_path"], t["reason_code"])}


def test_text_is_rejected_and_markers_are_not(ingest_bin, images, tmp_path):
    root, expected = images
    out = tmp_path / "out"
    info = run(ingest_bin, root / "in", out)
    got = rejected(out)
    verdicts = {name: got.get(name) for name in expected}
    assert verdicts == expected
    b = info["provenance"]["burned_in"]
    assert (b["policy"], b["rejected"], b["masked"], b["rules_digest"]) == ("reject", 3, 0, None)
    sheet = out / "private" / "burned-in.png"
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(sheet.stat().st_mode) == 0o600
    tiles = json.loads((out / "private" / "burned-in.json").read_text())["tiles"]
    assert sorted(os.path.basename(t["source_path"]) for t in tiles) == sorted(k for k, v in expected.items() if v)


def test_mask_blanks_the_lines_and_keeps_the_image(ingest_bin, images, tmp_path):
    root, expected = images
    out = tmp_path / "out"
    info = run(ingest_bin, root / "in", out, "--burned-in", "mask")
    assert not rejected(out), "nothing is rejected with mask"
    b = info["provenance"]["burned_in"]
    assert (b["policy"], b["masked"], b["rejected"]) == ("mask", 3, 0)
    assert len(pq.read_table(out / "manifest.parquet")) == len(expected)


def test_a_rules_file_blanks_known_regions(ingest_bin, images, tmp_path):
    root, _ = images
    rules = tmp_path / "rules.toml"
    rules.write_text('[[region]]\nmanufacturer = "acme"\nrows = 1955\ncolumns = 1841\nboxes = [[0, 0, 700, 140]]\n')
    only = tmp_path / "in"
    only.mkdir()
    (only / "name_top_left.dcm").write_bytes((root / "in" / "name_top_left.dcm").read_bytes())
    out = tmp_path / "out"
    info = run(ingest_bin, only, out, "--burned-in-rules", str(rules))
    b = info["provenance"]["burned_in"]
    assert len(b["rules_digest"]) == 64
    # The name lies inside the known region: blanked, so nothing is left to reject.
    assert (b["masked"], b["rejected"]) == (1, 0)
    bad = tmp_path / "bad.toml"
    bad.write_text("[[region]]\nboxes = [[0, 0, 1, 1]]\n")
    r = subprocess.run([ingest_bin, str(only), "--out", str(tmp_path / "o2"), "--burned-in-rules", str(bad)], capture_output=True, text=True)
    assert r.returncode == 3 and "bad.toml" in r.stderr, r.stderr


def samples(out):
    """The images of a dataset, in manifest order, as arrays."""
    import io
    import tarfile

    import zstandard

    arrays = []
    for shard in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(shard) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".npy.zst"):
                    raw = zstandard.ZstdDecompressor().decompress(tf.extractfile(m).read())
                    arrays.append(np.load(io.BytesIO(raw)))
    return arrays


def test_blanked_pixels_reach_the_pipeline(ingest_bin, images, tmp_path):
    """The pipeline's step 2 runs on the rows while the scan reads them, and
    again on the rows it blanks: an image blanked by a rules file gives the
    very sample of the same image blanked beforehand."""
    root, _ = images
    box = (0, 0, 700, 140)
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[region]]\nmanufacturer = "acme"\nrows = 1955\ncolumns = 1841\nboxes = [{list(box)}]\n')
    src = pydicom.dcmread(root / "in" / "name_top_left.dcm")
    by_rule, by_hand = tmp_path / "rule", tmp_path / "hand"
    by_rule.mkdir()
    by_hand.mkdir()
    (by_rule / "a.dcm").write_bytes((root / "in" / "name_top_left.dcm").read_bytes())
    values = src.pixel_array.astype(np.int64)
    # What displays as black: the largest stored value of this MONOCHROME1 image.
    x, y, w, h = box
    values[y : y + h, x : x + w] = values.max()
    bt.write(src, values, by_hand / "a.dcm")
    ruled = run(ingest_bin, by_rule, tmp_path / "o-rule", "--burned-in", "keep", "--burned-in-rules", str(rules))
    run(ingest_bin, by_hand, tmp_path / "o-hand", "--burned-in", "keep")
    assert ruled["provenance"]["burned_in"]["masked"] == 1
    (a,), (b,) = samples(tmp_path / "o-rule"), samples(tmp_path / "o-hand")
    assert np.array_equal(a, b)
    # And the blanking is visible: the sample differs from the unblanked image's.
    run(ingest_bin, root / "in", tmp_path / "o-all", "--burned-in", "keep")
    assert not any(np.array_equal(a, s) for s in samples(tmp_path / "o-all"))
