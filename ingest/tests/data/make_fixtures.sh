#!/usr/bin/env bash
# Regenerates the small transcoded fixtures in this folder from pydicom's
# test files with gdcmconv (PyPI python-gdcm), both from the venv made by
# scripts/setup.sh. The outputs are committed; this documents their origin.
set -euo pipefail
VENV="${CHESS_CACHE:-$HOME/.cache/chess}/venv"
cd "$(dirname "$0")"
TF="$("$VENV/bin/python" -c 'import pydicom.data, os; print(os.path.dirname(pydicom.data.__file__) + "/test_files")')"
G="$VENV/bin/gdcmconv"
"$G" -J "$TF/MR_small.dcm" mr_small_jpll.dcm          # JPEG lossless (.70), signed 16-bit
"$G" -L "$TF/MR_small.dcm" mr_small_jls.dcm           # JPEG-LS lossless (.80)
"$G" -R "$TF/MR_small.dcm" mr_small_rle.dcm           # RLE (.5)
"$G" -K "$TF/MR_small.dcm" mr_small_j2k.dcm           # JPEG 2000 lossless (.90)
"$G" -J -Y -q 90 "$TF/image_dfl.dcm" dfl_jpeg_baseline.dcm  # JPEG baseline (.50), 8-bit
