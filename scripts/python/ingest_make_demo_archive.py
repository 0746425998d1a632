#!/usr/bin/env python3
"""Builds a small PACS-like export from real radiographs, for the demo and
the ingest benchmark.

Usage: ingest_make_demo_archive.py OUT_DIR [--images N] [--wg04 DIR] [--syntaxes A,B,...]

The chest images are the real chest CR RG1 (pydicom-data, 1955x1841,
MONOCHROME1, 15 bits stored), each a different crop/flip of it so that
their pixels differ, with made-up identifying values (names, IDs, accession
numbers, UIDs, dates, institution, physicians, station, serial number,
private tags) and transcoded with gdcmconv (bit-exact) to a rotation of
transfer syntaxes: explicit and implicit little endian, deflate, JPEG
lossless, JPEG-LS lossless, RLE, JPEG 2000 lossless. They are laid out as
an export is: PATIENT/STUDY/SERIES/IMnnnn without extensions, one study
zipped, one tarred and gzipped. Junk that a real export also holds comes
along: the NEMA hip and extremity CRs and a CT slice (rejected by
selection), a 12-bit lossy JPEG (undecodable), a secondary capture, a
DICOMDIR, a text file, and one exact duplicate. `--syntaxes` rotates
through only the named ones (the benchmark's half JPEG lossless, half
uncompressed archive: `--syntaxes jpeg-lossless,explicit-le`).

Prints a JSON summary of what was written.
"""
import argparse
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

import numpy as np
import pydicom
import pydicom.uid
from pydicom.uid import generate_uid

SYNTAXES = [
    ("explicit-le", ["-X", "-w"]),
    ("jpeg-lossless", ["-J"]),
    ("jpeg-ls", ["-L"]),
    ("rle", ["-R"]),
    ("jpeg2000", ["-K"]),
    ("implicit-le", ["-M", "-w"]),
    ("deflate", None),  # written by pydicom: gdcmconv -d does not change the syntax
]

FIRST = ["ALEX", "SAM", "ROBIN", "KIM", "JO", "CHRIS", "PAT", "LEE"]
LAST = ["EXAMPLE", "SAMPLE", "FICTION", "MADEUP", "TESTER", "DEMO"]


def venv_bin(name):
    return str(pathlib.Path(sys.executable).parent / name)


def pydicom_data(name):
    import sysconfig

    p = pathlib.Path(sysconfig.get_paths()["purelib"]) / "data_store" / "data" / name
    if not p.exists():
        sys.exit(f"{p} missing: run scripts/setup.sh")
    return p


def variant(arr, i, rng):
    """A distinct crop (and maybe flip) of the source image."""
    h, w = arr.shape
    ch, cw = int(h * rng.uniform(0.8, 0.95)), int(w * rng.uniform(0.8, 0.95))
    y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
    out = arr[y0 : y0 + ch, x0 : x0 + cw]
    if i % 2:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def make_image(src, arr, patient, study, series, n, rng, path):
    ds = src.copy()
    ds.PatientName = patient["name"]
    ds.PatientID = patient["id"]
    ds.PatientBirthDate = patient["birth"]
    ds.PatientSex = patient["sex"]
    ds.PatientAge = patient["age"]
    ds.StudyInstanceUID = study["uid"]
    ds.StudyDate = study["date"]
    ds.SeriesDate = study["date"]
    ds.AccessionNumber = study["accession"]
    ds.StudyID = study["accession"][-4:]
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.InstitutionName = "General Hospital of Nowhere"
    ds.ReferringPhysicianName = "WHO^DR"
    ds.OperatorsName = "TECH^ONE"
    ds.StationName = "CR-ROOM-2"
    ds.DeviceSerialNumber = f"SN{rng.integers(10**6, 10**7)}"
    ds.Modality = "CR"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = ["PA", "AP", "LL"][n % 3]
    ds.InstanceNumber = n
    block = ds.private_block(0x0029, "DEMO VENDOR", create=True)
    block.add_new(0x01, "LO", f"{patient['name']} private note")
    ds.Rows, ds.Columns = arr.shape
    ds.PixelData = arr.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=14, help="chest images to make")
    ap.add_argument("--wg04", default=str(pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dicom" / "wg04"))
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-junk", action="store_true", help="only the chest images (benchmark)")
    ap.add_argument(
        "--syntaxes",
        default=",".join(name for name, _ in SYNTAXES),
        help="comma-separated syntax names to rotate through (default: all seven)",
    )
    args = ap.parse_args()
    rotation = [s for s in SYNTAXES if s[0] in args.syntaxes.split(",")]
    if len(rotation) != len(args.syntaxes.split(",")):
        sys.exit(f"--syntaxes: each of {args.syntaxes!r} must be one of {[n for n, _ in SYNTAXES]}")
    out = pathlib.Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    gdcmconv = venv_bin("gdcmconv")
    src = pydicom.dcmread(pydicom_data("RG1_UNCR.dcm"))
    base = src.pixel_array
    patients = []
    for p in range(max(1, args.images // 3)):
        patients.append(
            {
                "name": f"{LAST[p % len(LAST)]}^{FIRST[p % len(FIRST)]}",
                "id": f"MRN{rng.integers(10**6, 10**7)}",
                "birth": f"19{rng.integers(30, 99)}0{rng.integers(1, 9)}1{rng.integers(0, 9)}",
                "sex": "MF"[p % 2],
                "age": f"0{rng.integers(20, 90)}Y",
            }
        )
    written = {"chest": [], "syntaxes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        studies = {}
        for n in range(args.images):
            patient = patients[n % len(patients)]
            sk = (patient["id"], n // (2 * len(patients)))
            if sk not in studies:
                studies[sk] = {
                    "uid": generate_uid(),
                    "date": f"20{rng.integers(15, 24)}0{rng.integers(1, 9)}1{rng.integers(0, 9)}",
                    "accession": f"ACC{rng.integers(10**7, 10**8)}",
                    "series": generate_uid(),
                    "dir": f"{patient['id']}/ST{len(studies):03d}/SE001",
                }
            study = studies[sk]
            plain = tmp / f"plain{n}.dcm"
            make_image(src, variant(base, n, rng), patient, study, study["series"], n, rng, plain)
            name, opts = rotation[n % len(rotation)]
            dest = out / "export" / study["dir"] / f"IM{n:04d}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            if opts is None:
                ds = pydicom.dcmread(plain)
                ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
                ds.save_as(dest, enforce_file_format=True)
            else:
                subprocess.run([gdcmconv, *opts, str(plain), str(dest)], check=True, capture_output=True)
            written["chest"].append(str(dest.relative_to(out)))
            written["syntaxes"][name] = written["syntaxes"].get(name, 0) + 1
        # One study zipped, one tar.gz'd (in place of their folders).
        dirs = sorted({s["dir"].split("/SE")[0] for s in studies.values()})
        if len(dirs) >= 3:
            z = out / "export" / (dirs[0].replace("/", "_") + ".zip")
            with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted((out / "export" / dirs[0]).rglob("*")):
                    if f.is_file():
                        zf.write(f, f.relative_to(out / "export"))
            shutil.rmtree(out / "export" / dirs[0])
            t = out / "export" / (dirs[1].replace("/", "_") + ".tar.gz")
            with tarfile.open(t, "w:gz") as tf:
                tf.add(out / "export" / dirs[1], arcname=dirs[1])
            shutil.rmtree(out / "export" / dirs[1])
    if not args.no_junk:
        junk = out / "export" / "misc"
        junk.mkdir(parents=True)
        wg = pathlib.Path(args.wg04)
        for name in ["RG2_JLSL.dcm", "RG3_RLE.dcm", "CT1_JPLL.dcm", "RG3_JPLY.dcm"]:
            if not (wg / name).exists():
                sys.exit(f"{wg / name} missing (shared WG04 data)")
            shutil.copy(wg / name, junk / name.replace(".dcm", ""))
        shutil.copy(pydicom_data("SC_rgb.dcm"), junk / "screenshot")
        tf_dir = pathlib.Path(pydicom.data.__file__).parent / "test_files" / "dicomdirtests"
        shutil.copy(tf_dir / "DICOMDIR", out / "export" / "DICOMDIR")
        (out / "export" / "README.txt").write_text("Export from PACS, see index.\n")
        first = out / written["chest"][-1]
        shutil.copy(first, junk / "copy_of_last_image")
    print(json.dumps({"out": str(out), "chest_images": len(written["chest"]), "syntaxes": written["syntaxes"]}, indent=1))


if __name__ == "__main__":
    import pydicom.data  # noqa: F401  (path of the test files)

    main()
