#!/usr/bin/env python3
"""Writes the HTJ2K fixtures of chess-ingest's agreement tests.

Usage: make_htj2k_fixtures.py OUT_DIR

A 160 x 128 crop of pydicom-data's RG1_UNCR.dcm (a public WG04 chest CR,
12 bits stored) encoded by a real HTJ2K encoder, OpenJPH (through PyPI
imagecodecs' htj2k_encode), as three files:

- htj2k_lossless.dcm  1.2.840.10008.1.2.4.201 (reversible 5/3)
- htj2k_rpcl.dcm      1.2.840.10008.1.2.4.202 (reversible, RPCL, TLM markers)
- htj2k_lossy.dcm     1.2.840.10008.1.2.4.203 (irreversible 9/7)

The lossless ones round-trip exactly (checked here); the tests compare all
three with pydicom's decode (pylibjpeg-openjpeg).
"""
import sys
from pathlib import Path

import imagecodecs
import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import generate_uid
from pydicom.data import get_testdata_file


def main():
    out = Path(sys.argv[1])
    src = get_testdata_file("RG1_UNCR.dcm")
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array[600:728, 700:860].astype(np.uint16)
    for name, ts, kw in [
        ("htj2k_lossless.dcm", "1.2.840.10008.1.2.4.201", dict(reversible=True)),
        ("htj2k_rpcl.dcm", "1.2.840.10008.1.2.4.202", dict(reversible=True, tlm=True)),
        ("htj2k_lossy.dcm", "1.2.840.10008.1.2.4.203", dict(reversible=False, level=0.002)),
    ]:
        j2c = imagecodecs.htj2k_encode(np.ascontiguousarray(arr), **kw)
        if kw["reversible"]:
            back = imagecodecs.htj2k_decode(j2c)
            assert np.array_equal(back, arr), name
        d = ds.copy()
        d.file_meta.TransferSyntaxUID = ts
        d.SOPInstanceUID = generate_uid(entropy_srcs=[name])
        d.file_meta.MediaStorageSOPInstanceUID = d.SOPInstanceUID
        d.Rows, d.Columns = arr.shape
        d.PixelData = encapsulate([j2c])
        d["PixelData"].VR = "OB"
        if not kw["reversible"]:
            d.LossyImageCompression = "01"
        d.save_as(out / name, enforce_file_format=True)
        print(name, len(j2c), "bytes of codestream")


if __name__ == "__main__":
    main()
