#!/usr/bin/env python3
"""Per-syntax folders for scripts/bench/ingest.sh --per-syntax.

Usage: ingest_bench_syntaxes.py ARCHIVE_EXPORT OUT_DIR N

Groups the plain files of a demo archive (scripts/python/ingest_make_demo_archive.py)
by transfer syntax into OUT_DIR/<uid>/ (at most N each), and adds two syntaxes
the archive lacks, transcoded from its explicit-LE images with real encoders:
JPEG Extended 12-bit (.51, libjpeg-turbo through imagecodecs' jpeg8_encode,
quality 90) and HTJ2K lossless (.201, OpenJPH through imagecodecs). Prints
one line per syntax folder.
"""
import pathlib
import sys

import imagecodecs
import numpy as np
import pydicom
from pydicom.encaps import encapsulate


def main():
    src, out, n = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
    groups = {}
    for p in sorted(src.rglob("*")):
        if not p.is_file() or p.suffix in (".zip", ".gz"):
            continue
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        groups.setdefault(str(ds.file_meta.TransferSyntaxUID), []).append(p)
    for uid, files in groups.items():
        d = out / uid
        d.mkdir(parents=True, exist_ok=True)
        for p in files[:n]:
            (d / p.name).write_bytes(p.read_bytes())
    plain = groups.get("1.2.840.10008.1.2.1", [])[:n]
    for uid, enc in [
        ("1.2.840.10008.1.2.4.51", lambda a: imagecodecs.jpeg8_encode(a, level=90, bitspersample=12)),
        ("1.2.840.10008.1.2.4.201", lambda a: imagecodecs.htj2k_encode(a, reversible=True)),
    ]:
        d = out / uid
        d.mkdir(parents=True, exist_ok=True)
        for p in plain:
            ds = pydicom.dcmread(p)
            a = ds.pixel_array.astype(np.uint16)
            if uid.endswith(".51"):
                # 12 bits: the top 12 of the stored bits.
                a = (a >> max(int(ds.BitsStored) - 12, 0)).astype(np.uint16)
                ds.BitsStored, ds.HighBit = 12, 11
            ds.PixelData = encapsulate([enc(np.ascontiguousarray(a))])
            ds["PixelData"].VR = "OB"
            ds.file_meta.TransferSyntaxUID = uid
            ds.save_as(d / p.name, enforce_file_format=True)
    for d in sorted(out.iterdir()):
        print(d.name, len(list(d.iterdir())))


if __name__ == "__main__":
    main()
