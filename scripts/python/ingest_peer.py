#!/usr/bin/env python3
"""The Python peer of chess-ingest, for the benchmark: the same pipeline with
the usual Python stack.

Usage: ingest_peer.py INPUT_DIR OUT_DIR [--workers N] [--size 512] [--clip-percentile 99]

pydicom (with its pylibjpeg / gdcm pixel decoders) reads every file found
under INPUT_DIR, including members of .zip and .tar(.gz) archives; numpy
masks to BitsStored, applies the Modality LUT, inverts MONOCHROME1; Pillow
resizes ('F' mode, BILINEAR, which is antialiased when reducing); numpy clips
at the percentile and min-max normalises to uint16; each sample is written as
a zstd-compressed .npy plus a .json into one tar. A multiprocessing pool of
N workers does the per-file work, the parent writes. Non-chest, non-CR/DX
and undecodable files are skipped, as chess-ingest rejects them.

Prints one JSON line: images, seconds, images_per_s, decode_share,
parent_max_rss_mb, worker_max_rss_mb.
"""
import argparse
import hashlib
import io
import json
import multiprocessing as mp
import os
import resource
import tarfile
import time
import zipfile

import numpy as np
import pydicom
import zstandard
from PIL import Image
from pydicom.pixels import apply_modality_lut

ARGS = None


def sources(root):
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            p = os.path.join(dirpath, f)
            if zipfile.is_zipfile(p):
                with zipfile.ZipFile(p) as z:
                    for n in z.namelist():
                        if not n.endswith("/"):
                            yield f"{p}!/{n}", z.read(n)
            elif tarfile.is_tarfile(p):
                with tarfile.open(p) as t:
                    for m in t:
                        if m.isfile():
                            yield f"{p}!/{m.name}", t.extractfile(m).read()
            else:
                yield p, None


def process(item):
    source, data = item
    t0 = time.perf_counter()
    try:
        if data is None:
            with open(source, "rb") as f:
                data = f.read()
        ds = pydicom.dcmread(io.BytesIO(data))
        if ds.get("Modality") not in ("CR", "DX"):
            return None
        bp = str(ds.get("BodyPartExamined", "")).upper()
        if bp and bp not in ("CHEST", "THORAX", "LUNG"):
            return None
        arr = ds.pixel_array
    except Exception:  # noqa: BLE001 - a reject, as in chess-ingest
        return None
    t1 = time.perf_counter()
    ba, bs = int(ds.BitsAllocated), int(ds.BitsStored)
    hb = int(ds.get("HighBit", bs - 1))
    u = arr.astype(np.int64) & ((1 << ba) - 1)
    v = (u >> (hb + 1 - bs)) & ((1 << bs) - 1)
    if int(ds.PixelRepresentation) == 1:
        v = np.where(v & (1 << (bs - 1)), v - (1 << bs), v)
    m = np.asarray(apply_modality_lut(v, ds), dtype=np.float32)
    if ds.PhotometricInterpretation == "MONOCHROME1":
        m = m.min() + m.max() - m
    size = ARGS.size
    r = np.asarray(Image.fromarray(m, mode="F").resize((size, size), Image.BILINEAR), dtype=np.float32)
    lo = float(r.min())
    clip = float(np.percentile(r, ARGS.clip_percentile))
    if clip > lo:
        out = np.rint((np.minimum(r, clip) - lo) / (clip - lo) * 65535).astype(np.uint16)
    else:
        out = np.zeros((size, size), np.uint16)
    buf = io.BytesIO()
    np.save(buf, out)
    comp = zstandard.ZstdCompressor(level=3).compress(buf.getvalue())
    key = hashlib.sha256(str(ds.SOPInstanceUID).encode()).hexdigest()[:32]
    meta = json.dumps({"key": key, "clip_value": clip, "modality": ds.Modality}).encode()
    t2 = time.perf_counter()
    return key, comp, meta, t1 - t0, t2 - t0


def init(args):
    global ARGS
    ARGS = args


def worker_rss(_):
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("out")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--clip-percentile", type=float, default=99.0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    n = 0
    decode = total = 0.0
    seen = set()
    with mp.Pool(args.workers, initializer=init, initargs=(args,)) as pool, tarfile.open(os.path.join(args.out, "shard-000000.tar"), "w") as tf:
        for res in pool.imap_unordered(process, sources(args.input), chunksize=1):
            if res is None:
                continue
            key, comp, meta, d, t = res
            decode += d
            total += t
            if key in seen:
                continue
            seen.add(key)
            for name, payload in ((f"{key}.npy.zst", comp), (f"{key}.json", meta)):
                info = tarfile.TarInfo(name)
                info.size = len(payload)
                tf.addfile(info, io.BytesIO(payload))
            n += 1
        rss = pool.map(worker_rss, range(args.workers * 4), chunksize=1)
    secs = time.perf_counter() - start
    print(json.dumps({
        "images": n,
        "seconds": round(secs, 3),
        "images_per_s": round(n / secs, 3),
        "decode_share": round(decode / total, 3) if total else None,
        "parent_max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "worker_max_rss_mb": round(max(rss) / 1024, 1),
        "workers": args.workers,
    }))


if __name__ == "__main__":
    main()
