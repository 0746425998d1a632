#!/usr/bin/env bash
# The main job on a built-in default, from a PACS export to a pretrained
# encoder:
#   1. builds a small PACS-like export of real chest radiographs (the chest CR
#      RG1 of pydicom-data, cropped and flipped per image, made-up names, IDs,
#      dates and UIDs in the headers, transcoded to seven transfer syntaxes,
#      one study zipped, one tar.gz'd, plus junk a real export holds);
#   2. ingests it with chess-ingest (de-identified 512x512 uint16 shards);
#   3. verifies the dataset, draws its statistics and exports one image as PNG;
#   4. pretrains MoCo v2 (ResNet-18 at 64x64, batch 8, queue 64) for a few
#      steps on the CPU, with the kNN monitor on the view position, and draws
#      its curves and an augmentation preview. (The demo's images are all
#      crops of one radiograph and its views are made up, so the kNN accuracy
#      stays at or below chance: the monitor shows it runs, not that it learns.)
# Outputs go to ./chess-demo-out (or $1), replaced on each run.
#
#   scripts/demo.sh [OUT_DIR]        DEMO_IMAGES=24 DEMO_STEPS=12 to change the size
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/setup.sh >/dev/null

OUT="${1:-$ROOT/chess-demo-out}"
IMAGES="${DEMO_IMAGES:-24}"
STEPS="${DEMO_STEPS:-12}"
echo "== cargo build --release (chess-ingest, chess-shards, chess-train)"
cargo build --release -q -p chess-ingest -p chess-shards -p chess-train
BIN="$ROOT/target/release"
# chess-train links the venv's libtorch (the .libtorch symlink made by setup.sh).
export LD_LIBRARY_PATH="$(readlink -f "$ROOT/.libtorch")/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

rm -rf "$OUT"
mkdir -p "$OUT"
echo "== make_demo_archive.sh: a PACS-like export of $IMAGES real chest radiographs"
scripts/make_demo_archive.sh "$OUT/archive" --images "$IMAGES" >/dev/null
find "$OUT/archive/export" -type f | sed "s|^$OUT/||" | sort | sed -n 1,8p   # reads all input: no SIGPIPE under pipefail
echo "   ... $(find "$OUT/archive/export" -type f | wc -l) files in all (DICOM in 7 syntaxes, a .zip, a .tar.gz, junk)"

echo "== chess-ingest: de-identify, decode, resize to 512x512, write shards"
"$BIN/chess-ingest" "$OUT/archive/export" --out "$OUT/dataset"

echo "== chess-shards verify"
"$BIN/chess-shards" verify "$OUT/dataset"
echo "== chess-shards stats"
"$BIN/chess-shards" stats "$OUT/dataset" --png "$OUT/stats.png"
FIRST_KEY="$("$BIN/chess-shards" inspect "$OUT/dataset" --limit 1 | awk '$2 ~ /^shards\// && k == "" {k = $1} END {print k}')"
echo "== chess-shards export $FIRST_KEY"
"$BIN/chess-shards" export "$OUT/dataset" "$FIRST_KEY" "$OUT/first-image.png"

echo "== chess-train pretrain: MoCo v2, ResNet-18 at 64x64, $STEPS steps on the CPU"
"$BIN/chess-train" pretrain "$OUT/dataset" --out "$OUT/run" --device cpu \
    --arch resnet18 --size 64 --batch-size 8 --queue 64 --steps "$STEPS" \
    --knn-manifest "$OUT/dataset" --knn-label view_position --knn-every 4 --knn-k 5
echo "== chess-train augment-preview"
"$BIN/chess-train" augment-preview "$OUT/dataset" --out "$OUT/run/augment-preview.png" --pairs 4 --size 128

cat <<EOF

Outputs in $OUT:
  archive/export/            the PACS-like input (identifying values are made up)
  dataset/                   the de-identified dataset: dataset.json, manifest.parquet, shards/
  dataset/private/           never for sharing: key, rejected.parquet (every rejected input and why)
  stats.png                  pixel histogram, counts by view, sex and age
  first-image.png            sample $FIRST_KEY as stored
  run/                       the pretraining run: config.toml, metrics.jsonl, checkpoints/
  run/curves.png             loss, top-1, learning rate and kNN accuracy by step
  run/augment-preview.png    input | query view | key view, as the training step sees them
EOF
