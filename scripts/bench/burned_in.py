#!/usr/bin/env python3
"""Burned-in text detection, measured (issue 15 item 1).

Builds a set from real radiographs (pydicom-data RG1, WG04 RG2/RG3,
deid-data's DX with --deid-data): for each base image and each of its 8
orientations (4 rotations x mirror) a clean copy, plus `--per-base` copies
with one planted PHI-like line (DejaVu fonts, cap height 8-40 px, any
position, bright or dark as displayed, 30 % on a label box, text rotated 0,
90 or 270 degrees) and copies with only a laterality/positioning marker.
Runs chess-ingest (default: target/release) with --burned-in reject and
reports:

- detection: planted lines with a detected region overlapping them;
- false positives: clean images rejected; marker images rejected;
- added time: wall time of the clean set with --burned-in reject minus
  --burned-in keep (which skips the scan), per image, best of --repeat.

    scripts/bench/burned_in.py [--bin target/release/chess-ingest] [--deid-data DIR] [--per-base 60]
"""
import argparse
import copy
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
import burned_in_text as bt  # noqa: E402


def orientations(values):
    for k in range(4):
        r = np.rot90(values, k)
        yield f"rot{k * 90}", np.ascontiguousarray(r)
        yield f"rot{k * 90}m", np.ascontiguousarray(r[:, ::-1])


def overlaps(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def ingest(binary, inp, out, policy, threads):
    t = time.perf_counter()
    subprocess.run(
        [binary, str(inp), "--out", str(out), "--burned-in", policy, "--threads", str(threads), "--quiet"],
        check=True,
    )
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "chess-ingest"))
    ap.add_argument("--deid-data", help="deid-data's deid_data/data directory (pip download deid-data)")
    ap.add_argument("--per-base", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=15)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="burned-in-bench-"))
    clean_dir, text_dir = tmp / "clean", tmp / "text"
    clean_dir.mkdir()
    text_dir.mkdir()
    truth = {}  # file name -> (kind, box or None, description)
    caps = [8, 10, 12, 16, 20, 24, 32, 40]
    bases = bt.base_images(args.deid_data)
    for name, ds in bases:
        values = ds.pixel_array.astype(np.int64)
        for o, v in orientations(values):
            f = f"{name}_{o}_clean.dcm"
            bt.write(ds, v, clean_dir / f)
            truth[f] = ("clean", None, f"{name} {o}")
        for i in range(args.per_base):
            o, v = list(orientations(values))[int(rng.integers(0, 8))]
            d = copy.deepcopy(ds)
            marker = i % 6 == 5
            text = (bt.MARKER_LINES if marker else bt.PHI_LINES)[int(rng.integers(0, 8 if marker else 12))]
            font = bt.FONTS[int(rng.integers(0, len(bt.FONTS)))]
            cap = caps[int(rng.integers(0, len(caps)))]
            rotate = [0, 0, 90, 270][int(rng.integers(0, 4))]
            bright = bool(rng.integers(0, 2))
            # Dark ink is seen on a light label (or on light anatomy after
            # MONOCHROME1); bright ink on the image itself or on a dark label.
            box = (not bright) or bool(rng.random() < 0.3)
            d.Rows, d.Columns = v.shape
            d.PixelData = v.astype(np.uint16).tobytes()
            pv, rect = bt.planted(d, text, font, cap, rotate, bright, box, rng)
            f = f"{name}_{i:03d}.dcm"
            bt.write(d, pv, text_dir / f)
            desc = f"{name} {o} '{text}' {pathlib.Path(font).stem} cap {cap} rot {rotate} {'bright' if bright else 'dark'}{' box' if box else ''}"
            truth[f] = ("marker" if marker else "text", rect, desc)

    def verdicts(inp, policy):
        out = tmp / f"out-{inp.name}-{policy}"
        shutil.rmtree(out, ignore_errors=True)
        wall = ingest(args.bin, inp, out, policy, args.threads)
        rej = {}
        p = out / "private" / "rejected.parquet"
        if p.exists():
            t = pq.read_table(p).to_pydict()
            rej = {pathlib.Path(s).name: r for s, r in zip(t["source_path"], t["reason_code"])}
        regions = {}
        j = out / "private" / "burned-in.json"
        if j.exists():
            for tile in json.loads(j.read_text())["tiles"]:
                regions[pathlib.Path(tile["source_path"]).name] = [
                    (r["x"], r["y"], r["w"], r["h"]) for r in tile["text_regions"]
                ]
        return wall, rej, regions

    _, rej, regions = verdicts(text_dir, "reject")
    text = [f for f, (k, _, _) in truth.items() if k == "text"]
    markers = [f for f, (k, _, _) in truth.items() if k == "marker"]
    hit = [f for f in text if any(overlaps(r, truth[f][1]) for r in regions.get(f, []))]
    missed = sorted(set(text) - set(hit))
    marker_fp = [f for f in markers if rej.get(f) == "burned_in_text"]
    _, rej_clean, _ = verdicts(clean_dir, "reject")
    clean = [f for f, (k, _, _) in truth.items() if k == "clean"]
    clean_fp = [f for f in clean if rej_clean.get(f) == "burned_in_text"]
    walls = {"reject": [], "keep": []}
    for _ in range(args.repeat):
        for policy in walls:
            walls[policy].append(verdicts(clean_dir, policy)[0])
    added = (min(walls["reject"]) - min(walls["keep"])) / len(clean)
    print(f"base images: {', '.join(n for n, _ in bases)}; set in {tmp}")
    print(f"planted lines detected: {len(hit)}/{len(text)} = {100 * len(hit) / max(1, len(text)):.1f} %")
    print(f"clean images flagged: {len(clean_fp)}/{len(clean)} = {100 * len(clean_fp) / max(1, len(clean)):.1f} %")
    print(f"marker-only images flagged: {len(marker_fp)}/{len(markers)}")
    print(
        f"clean set wall (best of {args.repeat}, --threads {args.threads}): keep {min(walls['keep']):.2f} s, "
        f"reject {min(walls['reject']):.2f} s: +{1000 * added:.0f} ms per image "
        f"(+{100 * (min(walls['reject']) / min(walls['keep']) - 1):.0f} %)"
    )
    for f in missed:
        print("  missed:", truth[f][2])
    for f in clean_fp:
        print("  clean flagged:", truth[f][2])
    for f in marker_fp:
        print("  marker flagged:", truth[f][2])


if __name__ == "__main__":
    main()
