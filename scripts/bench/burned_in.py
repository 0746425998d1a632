#!/usr/bin/env python3
"""Burned-in text detection, measured (issue 15 item 1).

Builds a set from real radiographs (pydicom-data RG1, WG04 RG2/RG3,
deid-data's DX with --deid-data) in two parts:

- tune: each base image in its 8 orientations (4 rotations x mirror) as
  clean images, plus `--per-base` copies with one planted line (the four
  fonts of tests/python/burned_in_text.py, its PHI-like lines; every sixth
  copy a laterality/positioning marker only). The detector's thresholds
  were chosen looking at this part.
- held-out: never looked at while tuning: clean images made from other
  views of the same radiographs (70 % crops at the four corners, a 50 %
  centre crop, a 2x downscale, each in a random orientation), and planted lines in four
  other DejaVu fonts with other strings, from another seed.

Text: cap height 8-40 px, any position where it is legible (its ink at
least a third of the range away from the image under it), bright or dark
as displayed, 30 % on a label box, rotated 0, 90 or 270 degrees. Runs chess-ingest (default:
target/release) with --burned-in reject and reports, per part:

- detection: planted lines with a detected region overlapping them;
- false positives: clean images rejected; marker images rejected;

and the added time: wall time of all clean images with --burned-in reject
minus --burned-in keep (which skips the scan), per image, best of --repeat,
alternating.

    scripts/bench/burned_in.py [--bin target/release/chess-ingest] [--deid-data DIR] [--per-base 30]
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

DEJAVU = "/usr/share/fonts/truetype/dejavu/"
HELD_FONTS = [DEJAVU + f for f in ["DejaVuSerif.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerifCondensed-Italic.ttf", "DejaVuSans-Bold.ttf"]]
HELD_LINES = [
    "NGUYEN^THI", "BROWN, MARY E", "PID 55190327", "1962-11-02", "11/02/1962", "ACCN 2021-40517",
    "GENERAL HOSP", "SSN 123-45-6789", "PARK^JI-HO", "BORN 19700704", "CASE 90112", "MUELLER HANS",
]
HELD_MARKERS = ["R", "L", "AP", "PA", "SUPINE", "UPRIGHT", "PORTABLE", "R LAT"]

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


def legible_place(values, mono1, text, font, cap, rotate, bright, box, rng, tries=50):
    """A position where the drawn line is legible: its ink differs from
    the image under it by at least a third of the range (white ink on a
    white part of the image is no text anyone can read, burned in or not).
    A line on a label box always is."""
    mask = bt.text_mask(text, bt.font_for_cap(font, cap), rotate)
    h, w = mask.shape
    rows, cols = values.shape
    lo, hi = int(values.min()), int(values.max())
    ink = (hi if bright else lo) if not mono1 else (lo if bright else hi)
    for _ in range(tries):
        x = int(rng.integers(0, max(1, cols - w)))
        y = int(rng.integers(0, max(1, rows - h)))
        under = values[y : y + h, x : x + w][mask > 0.5]
        if box or under.size == 0 or abs(float(np.median(under)) - ink) >= (hi - lo) / 3:
            return x, y
    return x, y


def variants(values, rng):
    """Other views of one radiograph for the held-out clean images: 70 %
    crops at the four corners, a 50 % centre crop and a 2x downscale, each
    in a random orientation."""
    rows, cols = values.shape
    views = []
    ch, cw = int(rows * 0.7), int(cols * 0.7)
    for cy, cx in [(0, 0), (0, 1), (1, 0), (1, 1)]:
        y, x = cy * (rows - ch), cx * (cols - cw)
        views.append((f"crop70-{cy}{cx}", values[y : y + ch, x : x + cw]))
    views.append(("centre50", values[rows // 4 : rows // 4 + rows // 2, cols // 4 : cols // 4 + cols // 2]))
    half = values[: rows // 2 * 2, : cols // 2 * 2].reshape(rows // 2, 2, cols // 2, 2).mean(axis=(1, 3)).round()
    views.append(("half", half.astype(values.dtype)))
    for name, v in views:
        o, ov = list(orientations(v))[int(rng.integers(0, 8))]
        yield f"{name}_{o}", ov


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "chess-ingest"))
    ap.add_argument("--deid-data", help="deid-data's deid_data/data directory (pip download deid-data)")
    ap.add_argument("--per-base", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--dir", help="keep the set here (reused when it holds one from the same arguments)")
    ap.add_argument("--time-only", action="store_true", help="only the added time on the clean images")
    args = ap.parse_args()
    tmp = pathlib.Path(args.dir or tempfile.mkdtemp(prefix="burned-in-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    truth = {}  # file name -> (part, kind, box or None, description)
    caps = [8, 10, 12, 16, 20, 24, 32, 40]
    bases = bt.base_images(args.deid_data)
    dirs = {k: tmp / k for k in ["clean", "text"]}
    made = tmp / "truth.json"
    key = {"per_base": args.per_base, "seed": args.seed, "bases": [n for n, _ in bases]}
    if made.exists() and json.loads(made.read_text())["key"] == key:
        truth = {f: tuple(v) for f, v in json.loads(made.read_text())["truth"].items()}
        bases_to_make = []
    else:
        for d in dirs.values():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
        bases_to_make = bases
    parts = [
        ("tune", np.random.default_rng(args.seed), bt.FONTS, bt.PHI_LINES, bt.MARKER_LINES),
        ("held-out", np.random.default_rng(args.seed + 1000), HELD_FONTS, HELD_LINES, HELD_MARKERS),
    ]
    for part, rng, fonts, lines, markers in parts:
        for name, ds in bases_to_make:
            values = ds.pixel_array.astype(np.int64)
            clean = list(orientations(values)) if part == "tune" else list(variants(values, rng))
            for o, v in clean:
                f = f"{part}_{name}_{o}_clean.dcm"
                bt.write(ds, v, dirs["clean"] / f)
                truth[f] = (part, "clean", None, f"{part} {name} {o}")
            for i in range(args.per_base):
                o, v = list(orientations(values))[int(rng.integers(0, 8))]
                d = copy.deepcopy(ds)
                marker = i % 6 == 5
                text = (markers if marker else lines)[int(rng.integers(0, len(markers) if marker else len(lines)))]
                font = fonts[int(rng.integers(0, len(fonts)))]
                cap = caps[int(rng.integers(0, len(caps)))]
                rotate = [0, 0, 90, 270][int(rng.integers(0, 4))]
                bright = bool(rng.integers(0, 2))
                # Dark ink is seen on a light label (or on light anatomy after
                # MONOCHROME1); bright ink on the image itself or on a dark label.
                box = (not bright) or bool(rng.random() < 0.3)
                d.Rows, d.Columns = v.shape
                d.PixelData = v.astype(np.uint16).tobytes()
                where = legible_place(v, ds.PhotometricInterpretation == "MONOCHROME1", text, font, cap, rotate, bright, box, rng)
                pv, rect = bt.planted(d, text, font, cap, rotate, bright, box, rng, where=where)
                f = f"{part}_{name}_{i:03d}.dcm"
                bt.write(d, pv, dirs["text"] / f)
                desc = f"{part} {name} {o} '{text}' {pathlib.Path(font).stem} cap {cap} rot {rotate} {'bright' if bright else 'dark'}{' box' if box else ''}"
                truth[f] = (part, "marker" if marker else "text", rect, desc)

    if bases_to_make:
        made.write_text(json.dumps({"key": key, "truth": truth}))

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

    print(f"base images: {', '.join(n for n, _ in bases)}; set in {tmp}")
    report = []
    if not args.time_only:
        _, rej, regions = verdicts(dirs["text"], "reject")
        _, rej_clean, _ = verdicts(dirs["clean"], "reject")
        rej.update(rej_clean)
    for part, *_ in [] if args.time_only else parts:
        of = lambda kind: [f for f, (p, k, _, _) in truth.items() if p == part and k == kind]  # noqa: E731
        text, markers, clean = of("text"), of("marker"), of("clean")
        hit = [f for f in text if any(overlaps(r, truth[f][2]) for r in regions.get(f, []))]
        marker_fp = [f for f in markers if rej.get(f) == "burned_in_text"]
        clean_fp = [f for f in clean if rej.get(f) == "burned_in_text"]
        print(f"[{part}] planted lines detected: {len(hit)}/{len(text)} = {100 * len(hit) / max(1, len(text)):.1f} %")
        print(f"[{part}] clean images flagged: {len(clean_fp)}/{len(clean)} = {100 * len(clean_fp) / max(1, len(clean)):.1f} %")
        print(f"[{part}] marker-only images flagged: {len(marker_fp)}/{len(markers)}")
        report += [("missed", truth[f][3]) for f in sorted(set(text) - set(hit))]
        report += [("clean flagged", truth[f][3]) for f in clean_fp]
        report += [("marker flagged", truth[f][3]) for f in marker_fp]
    n_clean = sum(1 for v in truth.values() if v[1] == "clean")
    walls = {"reject": [], "keep": []}
    for _ in range(args.repeat):
        for policy in walls:
            walls[policy].append(verdicts(dirs["clean"], policy)[0])
    added = (min(walls["reject"]) - min(walls["keep"])) / n_clean
    print(
        f"clean set wall ({n_clean} images, best of {args.repeat}, --threads {args.threads}): keep {min(walls['keep']):.2f} s, "
        f"reject {min(walls['reject']):.2f} s: +{1000 * added:.0f} ms per image "
        f"(+{100 * (min(walls['reject']) / min(walls['keep']) - 1):.0f} %)"
    )
    for what, desc in report:
        print(f"  {what}: {desc}")
    if not args.dir:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
