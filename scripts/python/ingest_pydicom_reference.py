#!/usr/bin/env python3
"""Reference decoding with pydicom for chess-ingest's agreement tests.

Usage: ingest_pydicom_reference.py [--grayscale-only] OUT_DIR FILE...

With --grayscale-only (the corpus test) only single-frame grayscale images
are decoded; any other file gets the status "skip: ..." with what it is.

For file number i it writes OUT_DIR/i.stored (int32 little-endian: stored
values masked to BitsStored from HighBit, sign-extended when
PixelRepresentation is 1) and OUT_DIR/i.modality (float64: pydicom's
apply_modality_lut of those values), and OUT_DIR/status.json with
"ok" or the error text per file (pydicom failing to decode is reported,
not raised, so the caller can tell "both reject" from "disagree").
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.pixels import apply_modality_lut


def stored_values(ds):
    arr = ds.pixel_array
    ba, bs = int(ds.BitsAllocated), int(ds.BitsStored)
    hb = int(ds.get("HighBit", bs - 1))
    u = arr.astype(np.int64) & ((1 << ba) - 1)
    v = (u >> (hb + 1 - bs)) & ((1 << bs) - 1)
    if int(ds.PixelRepresentation) == 1:
        v = np.where(v & (1 << (bs - 1)), v - (1 << bs), v)
    return v


def not_grayscale(ds):
    """Why a data set is not a single-frame grayscale image, or None."""
    if "PixelData" not in ds:
        return "no Pixel Data"
    if int(ds.get("NumberOfFrames", 1) or 1) != 1:
        return "multi-frame"
    if int(ds.get("SamplesPerPixel", 1)) != 1:
        return "colour"
    if str(ds.get("PhotometricInterpretation", "")) not in ("MONOCHROME1", "MONOCHROME2"):
        return "not monochrome"
    return None


def main():
    args = sys.argv[1:]
    grayscale_only = args[0] == "--grayscale-only"
    if grayscale_only:
        args = args[1:]
    out = args[0]
    status = {}
    for i, path in enumerate(args[1:]):
        try:
            ds = pydicom.dcmread(path, force=True)
            if grayscale_only:
                why = not_grayscale(ds)
                if why:
                    status[str(i)] = f"skip: {why}"
                    continue
            v = stored_values(ds)
            v.astype("<i4").tofile(os.path.join(out, f"{i}.stored"))
            # pydicom picks the LUT's dtype from the original array's.
            m = apply_modality_lut(v.astype(ds.pixel_array.dtype), ds)
            np.asarray(m, dtype="<f8").tofile(os.path.join(out, f"{i}.modality"))
            status[str(i)] = "ok"
        except Exception as e:  # noqa: BLE001 - reported to the caller
            status[str(i)] = f"error: {type(e).__name__}: {e}"
    with open(os.path.join(out, "status.json"), "w") as f:
        json.dump(status, f)


if __name__ == "__main__":
    main()
