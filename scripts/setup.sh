#!/usr/bin/env bash
# Installs what the build, the demo and the tests need, once; later runs
# find everything cached and return in about a second.
#
#   CHESS_CACHE   cache directory (default: ~/.cache/chess); the Python venv
#                 lives in $CHESS_CACHE/venv.
#
# Prints nothing but progress on stderr; safe to run any number of times.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${CHESS_CACHE:-$HOME/.cache/chess}"
VENV="$CACHE/venv"
mkdir -p "$CACHE"

log() { echo "setup: $*" >&2; }

# --- toolchain ---------------------------------------------------------------
if ! command -v cargo >/dev/null 2>&1; then
    log "cargo not found: install a Rust toolchain (rustup) first"
    exit 1
fi

# --- Debian packages ---------------------------------------------------------
# Listed here, installed only when missing (root or sudo needed then).
# cmake builds CharLS (ingest); libgloo-dev gives the trainer's c10d shim
# Gloo's headers (headers only: Gloo itself is inside libtorch). Tesseract and
# Leptonica (with the English model) read burned-in text (ingest feature `ocr`);
# libclang-dev is what their bindings' bindgen needs.
APT_PACKAGES=(cmake libgloo-dev tesseract-ocr tesseract-ocr-eng libtesseract-dev libleptonica-dev libclang-dev)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >&2
fi

# --- Python venv ---------------------------------------------------------------
# Interop tests (pyarrow, webdataset), benchmark peers, and reference decoders.
PY_PACKAGES=(
    "numpy>=1.26"
    "pyarrow>=15"
    "webdataset>=0.2.86"
    "zstandard>=0.22"
    "blake3>=0.4"
    "pytest>=8"
    "pillow>=10"
)
# --- ingest ---
# pydicom + its pixel plugins are the reference decoder (agreement tests) and
# the benchmark peer; pydicom-data has real chest CRs (RG1); python-gdcm ships
# gdcmconv for transcoding test and demo archives. cmake (apt, above) builds
# CharLS for JPEG-LS.
PY_PACKAGES+=(
    "pydicom>=3.0"
    "pydicom-data>=1.0"
    "python-gdcm>=3.0"
    "pylibjpeg>=2.0"
    "pylibjpeg-libjpeg>=2.1"
    "pylibjpeg-openjpeg>=2.3"
    "pylibjpeg-rle>=2.0"
    # OpenJPH's HTJ2K encoder (ingest/tests/data/make_htj2k_fixtures.py)
    "imagecodecs>=2024.6"
)
# --- end ingest ---
# --- loader ---
# s3s-fs: the S3-compatible server the loader tests start on loopback. It
# keeps objects as files, so a test can kill and restart it mid-epoch.
# Built once (about 4 minutes on 2 cores) into $CHESS_CACHE/s3s; the tests
# look for it there (or at $CHESS_S3S_FS) and fail, naming this script,
# when it is missing. (torch for the loader benchmark's Python peer is
# installed by scripts/bench/loader.sh itself: 4.7 GB.)
S3S_FS="$CACHE/s3s/bin/s3s-fs"
if [ ! -x "$S3S_FS" ]; then
    log "building s3s-fs 0.14.1 into $CACHE/s3s (once, about 4 minutes)"
    cargo install s3s-fs@0.14.1 --features binary --locked --root "$CACHE/s3s" >&2
fi
# --- end loader ---
# --- trainer ---
# chess-train links libtorch through tch 0.24, which expects PyTorch 2.11.0:
# the build (LIBTORCH_USE_PYTORCH=1) and the tests use this venv's torch.
# torchvision and safetensors are the references of the trainer's tests.
PY_PACKAGES+=(
    "torch==2.11.0"
    "torchvision==0.26.0"
    "safetensors>=0.4"
    # the reader of the trainer's TensorBoard event files in its tests (EventAccumulator)
    "tensorboard==2.21.0"
)
# CUDA headers the torch wheel leaves out (crt/, libcu++'s nv/target) but
# c10d's ProcessGroupNCCL.hpp includes: with them trainer/build.rs compiles
# the NCCL backend of csrc/dist.cpp (headers only, 3 MB).
PY_PACKAGES+=(
    "nvidia-cuda-crt==13.0.88"
    "nvidia-cuda-cccl==13.0.85"
)
# --- end trainer ---
# --- metrics ---
# The peers the trainer's metrics are tested against: scikit-learn
# (roc_auc_score), SciPy (ttest_rel, special functions, sqrtm for FID),
# scikit-image (structural_similarity, PSNR), statsmodels (Stuart-Maxwell)
# and pytorch-fid (the FID Inception-v3 that `chess-train fid` rebuilds).
PY_PACKAGES+=(
    "scipy==1.17.1"
    "scikit-learn==1.9.1"
    "scikit-image==0.26.0"
    "statsmodels==0.14.6"
    "pytorch-fid==0.3.0"
)
# --- end metrics ---
# --- python module ---
# maturin builds the chess_shards package (py/) below.
PY_PACKAGES+=("maturin>=1.9,<2")
# --- end python module ---

stamp_text="$(printf '%s\n' "${PY_PACKAGES[@]}")"
stamp="$VENV/.chess-packages"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ]; then
    :
else
    PYTHON="${PYTHON:-python3}"
    [ -x "$VENV/bin/python" ] || { log "creating venv $VENV"; "$PYTHON" -m venv "$VENV"; }
    log "installing Python packages into $VENV"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_PACKAGES[@]}" >&2
    printf '%s' "$stamp_text" > "$stamp"
fi

# --- python module ---
# chess_shards (py/: the Rust loader, random access and manifest tools for
# Python) as an abi3 wheel built by maturin in release and installed into the
# venv; rebuilt only when the sources it is built from change (a hash of py/,
# shards/, schemas/, cli/ and the Cargo files).
py_hash="$(cd "$ROOT" && find py/Cargo.toml py/pyproject.toml py/src py/python shards/Cargo.toml shards/src \
    schemas/Cargo.toml schemas/src cli/Cargo.toml cli/src Cargo.toml Cargo.lock -type f \
    ! -name '*.so' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
py_stamp="$VENV/.chess-py-module"
if [ "$(cat "$py_stamp" 2>/dev/null)" != "$py_hash" ] || ! "$VENV/bin/python" -c "import chess_shards" 2>/dev/null; then
    log "building the chess_shards Python module (maturin, release)"
    wheels="$CACHE/wheels"
    rm -rf "$wheels"
    (cd "$ROOT/py" && "$VENV/bin/maturin" build --release --quiet -i "$VENV/bin/python" --out "$wheels" >&2)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall \
        "$wheels"/chess_shards-*.whl >&2
    echo "$py_hash" > "$py_stamp"
fi
# --- end python module ---

# --- trainer ---
# `.libtorch` → the venv's torch package: `.cargo/config.toml` points tch's
# build (LIBTORCH) at it, so a plain `cargo build --workspace` links this
# libtorch, and chess-train's binaries carry it as their runpath.
torch_dir="$(echo "$VENV"/lib/python3*/site-packages/torch)"
if [ -f "$torch_dir/lib/libtorch_cpu.so" ] && [ "$(readlink "$ROOT/.libtorch" 2>/dev/null)" != "$torch_dir" ]; then
    ln -sfn "$torch_dir" "$ROOT/.libtorch"
fi
# --- end trainer ---

echo "$VENV"
