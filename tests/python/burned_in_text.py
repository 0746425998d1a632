"""Real radiographs with text drawn into their pixels, as modalities burn in
names, IDs and dates: shared by tests/python/test_burned_in.py (a few
images) and scripts/bench/burned_in.py (the measurement set).

Base images: pydicom-data's RG1_UNCR (chest CR, MONOCHROME1), NEMA WG04's
RG2/RG3 uncompressed references, deid-data's DX (when its directory is
given). Text: DejaVu fonts (Debian's fonts-dejavu-core), cap heights 8-40
source pixels, any position, bright or dark as displayed (so stored high or
low depending on MONOCHROME1), optionally on a label box, rotated by 0, 90
or 270 degrees.
"""
import copy
import pathlib
import sysconfig

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Oblique.ttf",
]
PHI_LINES = [
    "DOE^JANE", "SMITH, JOHN A", "MRN 00482913", "1957-03-14", "03/14/1957", "ACC 2019-88121",
    "ST MARY HOSPITAL", "ID: 7731-0045", "KIM^MIN-JUN", "DOB 19480229", "PATIENT 4471", "GARCIA LOPEZ",
]
MARKER_LINES = ["L", "R", "PA", "AP", "PORTABLE", "ERECT", "SUPINE", "L ERECT"]


def pydicom_data(name):
    return pathlib.Path(sysconfig.get_paths()["purelib"]) / "data_store" / "data" / name


def wg04_unc(name, wg04=pathlib.Path("/work/shared/data/dicom/wg04")):
    import zstandard
    from io import BytesIO

    raw = zstandard.ZstdDecompressor().stream_reader(open(wg04 / name, "rb")).read()
    return pydicom.dcmread(BytesIO(raw))


def base_images(deid_data=None):
    """(name, dataset) of the real radiographs available."""
    out = [("RG1", pydicom.dcmread(pydicom_data("RG1_UNCR.dcm")))]
    for n in ["RG2_UNC.zst", "RG3_UNC.zst"]:
        try:
            out.append((n[:3], wg04_unc(n)))
        except FileNotFoundError:
            pass
    if deid_data:
        p = pathlib.Path(deid_data) / "animals" / "cat.dcm"
        if p.exists():
            out.append(("deid-data-DX", pydicom.dcmread(p)))
    return out


def font_for_cap(path, cap):
    """A font whose capital H is `cap` pixels tall."""
    size = max(4, int(round(cap / 0.73)))
    for _ in range(6):
        f = ImageFont.truetype(path, size)
        box = f.getbbox("H")
        h = box[3] - box[1]
        if h == cap or h == 0:
            return f
        size = max(4, int(round(size * cap / h)))
    return f


def text_mask(text, font, rotate):
    """An antialiased mask of `text` (0..1) rotated by `rotate` degrees (0, 90, 270)."""
    box = font.getbbox(text)
    w, h = box[2] - box[0] + 4, box[3] - box[1] + 4
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((2 - box[0], 2 - box[1]), text, fill=255, font=font)
    if rotate:
        img = img.rotate(rotate, expand=True)
    return np.asarray(img, dtype=np.float64) / 255.0


def draw(values, mono1, mask, x, y, bright, label_box, lo, hi):
    """Draws `mask` at (x, y) into stored `values` (in place): bright or dark as displayed."""
    shown_high = hi if not mono1 else lo
    shown_low = lo if not mono1 else hi
    ink, paper = (shown_high, shown_low) if bright else (shown_low, shown_high)
    h, w = mask.shape
    region = values[y : y + h, x : x + w].astype(np.float64)
    if label_box:
        region[:] = paper
    values[y : y + h, x : x + w] = np.round(region * (1 - mask) + ink * mask).astype(values.dtype)


def write(ds, values, path, sop=None, modality="CR", body_part="CHEST"):
    """Writes `ds` with `values` as explicit-VR-little-endian pixels."""
    ds = copy.deepcopy(ds)  # a shallow copy shares the file meta and pixel cache
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop = sop or generate_uid()
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    if "BurnedInAnnotation" in ds:
        del ds.BurnedInAnnotation
    ds.Rows, ds.Columns = values.shape
    ds.BitsAllocated = 16
    ds.BitsStored = max(int(ds.get("BitsStored", 16)), 8)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PixelData = values.astype(np.uint16).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return sop


def planted(ds, text, font_path, cap, rotate, bright, label_box, rng, where=None):
    """The stored values of `ds` with `text` drawn once; returns (values, box x, y, w, h)."""
    values = np.array(ds.pixel_array, dtype=np.int64, copy=True)
    mono1 = ds.PhotometricInterpretation == "MONOCHROME1"
    lo, hi = int(values.min()), int(values.max())
    mask = text_mask(text, font_for_cap(font_path, cap), rotate)
    h, w = mask.shape
    rows, cols = values.shape
    if where is None:
        x = int(rng.integers(0, max(1, cols - w)))
        y = int(rng.integers(0, max(1, rows - h)))
    else:
        x, y = where
    draw(values, mono1, mask, x, y, bright, label_box, lo, hi)
    return values, (x, y, w, h)
