#!/usr/bin/env bash
# The trainer's CUDA path on a GPU machine that has nothing installed: no
# scripts/setup.sh, no network. It needs only that machine's python3 with
# torch 2.11.0 (for LD_LIBRARY_PATH, torchrun and the PyTorch reference) and
# the binaries that scripts/device/prepare.sh put into device-bundle/.
# Prints one table; exits 1 when a check failed.
#
#   scripts/device/check.sh [--dry-run] [--bundle DIR]
#
#   --dry-run    the same checks on the CPU with a tiny model (ResNet-18 at
#                32², batch 8, few steps, Gloo instead of NCCL): what CI runs
#                (scripts/test.sh), so the script cannot rot
#   --bundle D   the prepared folder (default device-bundle/); the binaries
#                CHESS_TRAIN_BIN / CHESS_SHARDS_BIN, when set, win
#
# Checks, in this order (each row of the table):
#   cuda          CUDA visible to torch and to chess-train's libtorch
#   moco …        MoCo v2 steps (ResNet-50 512², batch 64, queue 4096) at bf16
#                 and fp16, channels_last off and on: chess-train bench against
#                 scripts/bench/pretrain_reference.py in the same run (img/s, ratio)
#   dist          chess-train pretrain as 2 processes under torchrun
#                 --no-python (NCCL; world 1 when two processes cannot share
#                 the one GPU)
#   loader        chess-train pretrain on a synthetic dataset: loader → device,
#                 img/s and the data-wait share
#   augment …     the device augmentations equal to the CPU's (same parameters)
#   finetune, gradcam, bone  one epoch / one map / one epoch on the device
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
DRY=0 BUNDLE="$ROOT/device-bundle"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1; shift ;;
        --bundle) BUNDLE="$2"; shift 2 ;;
        *) echo "check.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
PY="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# --- libtorch and the binaries ------------------------------------------------
TORCH_LIB="$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')" || {
    echo "check.sh: $PY has no torch" >&2
    exit 3
}
export LD_LIBRARY_PATH="$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
binary() { # name, override → path of a runnable binary
    local name="$1" override="$2"
    if [ -n "$override" ]; then echo "$override"; return; fi
    if [ -x "$BUNDLE/$name" ]; then echo "$BUNDLE/$name"; return; fi
    if [ -f "$BUNDLE/$name.gz" ]; then
        "$PY" -c 'import gzip, shutil, sys; shutil.copyfileobj(gzip.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
            "$BUNDLE/$name.gz" "$WORK/$name" && chmod +x "$WORK/$name" && echo "$WORK/$name"
        return
    fi
    echo "check.sh: no $name in $BUNDLE (run scripts/device/prepare.sh first)" >&2
    return 1
}
TRAIN="$(binary chess-train "${CHESS_TRAIN_BIN:-}")" || exit 3
SHARDS="$(binary chess-shards "${CHESS_SHARDS_BIN:-}")" || exit 3

if [ "$DRY" = 1 ]; then
    DEVICE=cpu BACKEND=gloo ARCH=resnet18 BATCH=8 SIZE=32 QUEUE=64 STEPS=1 WARMUP=1 IMAGES=32 IMG_SIZE=64 LSTEPS=3 THREADS=2
else
    DEVICE=cuda BACKEND=nccl ARCH=resnet50 BATCH=64 SIZE=512 QUEUE=4096 STEPS=10 WARMUP=2 IMAGES=512 IMG_SIZE=512 LSTEPS=30 THREADS=0
fi
export CHESS_LOG="${CHESS_LOG:-warn}"
ROWS="$WORK/rows.tsv"
: >"$ROWS"
FAILED=0
LAST=$SECONDS
row() { # check, ok|FAIL, figures; the seconds since the previous row
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$((SECONDS - LAST))" >>"$ROWS"
    LAST=$SECONDS
    [ "$2" = ok ] || FAILED=1
    echo "check.sh: $1: $2 $3" >&2
}
json() { # file, python expression over `r` (the last JSON line) or `rows` (all)
    "$PY" -c 'import json, sys
rows = []
for l in open(sys.argv[1]):
    try:
        rows.append(json.loads(l))
    except ValueError:
        pass
r = rows[-1] if rows else {}
print(eval(sys.argv[2]))' "$1" "$2"
}

# --- cuda ----------------------------------------------------------------------
"$TRAIN" device-check --device "$DEVICE" >"$WORK/devcheck.jsonl" 2>"$WORK/devcheck.err"
dc_rc=$?
torch_cuda="$("$PY" -c 'import torch
gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
print("torch %s: cuda %s (%d), %s" % (torch.__version__, torch.cuda.is_available(), torch.cuda.device_count(), gpu))')"
ours="$(json "$WORK/devcheck.jsonl" '"chess-train: cuda {available} ({devices}), cudnn {cudnn}".format(**rows[0]) if rows else "no output"')"
visible=0
if [ "$DRY" = 1 ]; then
    visible=1 # the CPU stands in for the device
elif "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' &&
    grep -q '"available":true' "$WORK/devcheck.jsonl"; then
    visible=1
fi
if [ "$visible" = 1 ]; then
    row cuda ok "$torch_cuda; $ours"
else
    row cuda FAIL "$torch_cuda; $ours $(tail -1 "$WORK/devcheck.err")"
fi
# --- augment (from the same device-check) --------------------------------------
if [ -s "$WORK/devcheck.jsonl" ] && grep -q '"check":"augment"' "$WORK/devcheck.jsonl"; then
    "$PY" -c 'import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["check"] == "augment":
        print("augment {op}\t{s}\tmax abs(device - cpu) {max_abs_diff:.2e} (tolerance {tolerance:g})\t0".format(s="ok" if r["ok"] else "FAIL", **r))' \
        "$WORK/devcheck.jsonl" >>"$ROWS"
    [ "$dc_rc" = 0 ] || FAILED=1
else
    row augment FAIL "device-check exited $dc_rc: $(tail -1 "$WORK/devcheck.err")"
fi

# --- MoCo steps against PyTorch ----------------------------------------------------
for prec in bf16 fp16; do
    for cl in off on; do
        flag=()
        [ "$cl" = on ] && flag=(--channels-last)
        common=(--arch "$ARCH" --batch-size "$BATCH" --size "$SIZE" --queue "$QUEUE" --steps "$STEPS" --warmup "$WARMUP" --device "$DEVICE" --threads "$THREADS" --precision "$prec" "${flag[@]}")
        if "$TRAIN" bench "${common[@]}" >"$WORK/ours.json" 2>"$WORK/ours.err" &&
            "$PY" scripts/bench/pretrain_reference.py "${common[@]}" >"$WORK/ref.json" 2>"$WORK/ref.err"; then
            a="$(json "$WORK/ours.json" 'r["images_per_s"]')" b="$(json "$WORK/ref.json" 'r["images_per_s"]')"
            row "moco $prec channels_last $cl" ok "$(printf 'chess-train %.1f img/s, pytorch %.1f img/s, ratio %.3f' "$a" "$b" "$("$PY" -c "print($a / $b)")")"
        else
            row "moco $prec channels_last $cl" FAIL "$(tail -1 "$WORK/ours.err" "$WORK/ref.err" 2>/dev/null | tr '\n' ' ')"
        fi
    done
done

# --- a synthetic dataset (loader, dist, finetune, gradcam) -------------------------
"$SHARDS" demo --out "$WORK/ds" --count "$IMAGES" --size "$IMG_SIZE" --quiet >/dev/null 2>"$WORK/demo.err" ||
    row dataset FAIL "$(tail -1 "$WORK/demo.err")"
pre=(--arch "$ARCH" --size "$SIZE" --batch-size "$BATCH" --queue "$QUEUE" --device "$DEVICE")

# --- dist: 2 processes under torchrun, else 1 ---------------------------------------
dist_ok=0
for world in 2 1; do
    if timeout 300 "$PY" -m torch.distributed.run --standalone --nproc-per-node "$world" --no-python \
        "$TRAIN" pretrain "$WORK/ds" --out "$WORK/dist$world" "${pre[@]}" --steps 2 --dist-backend "$BACKEND" \
        --dist-timeout 120 --quiet >"$WORK/dist.out" 2>"$WORK/dist$world.err"; then
        steps="$(wc -l <"$WORK/dist$world/metrics.jsonl")"
        note=""
        [ "$world" = 1 ] && note=" (2 processes failed: $(grep -m1 -i 'error' "$WORK/dist2.err" | cut -c1-120))"
        row dist ok "$BACKEND world $world, $steps steps logged$note"
        dist_ok=1
        break
    fi
done
[ "$dist_ok" = 1 ] || row dist FAIL "$(grep -m1 -i error "$WORK/dist1.err" | cut -c1-160)"

# --- loader → device ---------------------------------------------------------------
if "$TRAIN" pretrain "$WORK/ds" --out "$WORK/loader" "${pre[@]}" --steps "$LSTEPS" --threads "$THREADS" \
    >"$WORK/loader.out" 2>"$WORK/loader.err"; then
    row loader ok "$(grep '^throughput:' "$WORK/loader.out" | sed 's/^throughput: //'), $LSTEPS steps of $BATCH at ${SIZE}²$(grep -q 'raise `decode_threads`' "$WORK/loader.err" && echo ' (data-wait warning printed)')"
else
    row loader FAIL "$(tail -1 "$WORK/loader.err")"
fi

# --- finetune, Grad-CAM, bone suppression on the device ------------------------------
if "$TRAIN" finetune --train "$WORK/ds" --valid "$WORK/ds" --out "$WORK/ft" --task multilabel --labels Cardiomegaly \
    --arch "$ARCH" --size "$SIZE" --batch-size "$BATCH" --epochs 1 --device "$DEVICE" --quiet 2>"$WORK/ft.err"; then
    row finetune ok "1 epoch, valid AUC $(json /dev/stdin 'round(r["valid_metric"], 4) if r.get("valid_metric") is not None else "n/a"' <"$WORK/ft/metrics.jsonl")"
    key=demo000000 # chess-shards demo's first sample
    if "$TRAIN" gradcam --ckpt "$WORK/ft" --dataset "$WORK/ds" --input "$key" --out "$WORK/cam" \
        --device "$DEVICE" >"$WORK/cam.out" 2>"$WORK/cam.err"; then
        row gradcam ok "$(head -1 "$WORK/cam.out" | sed "s|$WORK/||")"
    else
        row gradcam FAIL "$(tail -1 "$WORK/cam.err")"
    fi
else
    row finetune FAIL "$(tail -1 "$WORK/ft.err")"
    row gradcam FAIL "no classifier"
fi
if "$SHARDS" demo --out "$WORK/paired" --count 24 --size "$IMG_SIZE" --paired --quiet >/dev/null 2>"$WORK/pd.err" &&
    "$TRAIN" bone-suppression "$WORK/paired" --out "$WORK/bone" --size "$SIZE" --epochs 1 --batch-size 4 \
        --device "$DEVICE" --quiet 2>"$WORK/bone.err"; then
    row bone ok "1 epoch, test PSNR $("$PY" -c 'import json, sys
s = json.load(open(sys.argv[1]))
print("%.2f dB (input %.2f dB)" % (s["test"]["psnr"], s["test_input"]["psnr"]))' "$WORK/bone/summary.json")"
else
    row bone FAIL "$(tail -1 "$WORK/pd.err" "$WORK/bone.err" 2>/dev/null | tr '\n' ' ')"
fi

# --- the table -----------------------------------------------------------------------
echo
echo "scripts/device/check.sh$([ "$DRY" = 1 ] && echo ' --dry-run') on $(uname -n), $(date -u +%Y-%m-%dT%H:%MZ), device $DEVICE, ${SECONDS}s"
[ "$DRY" = 1 ] && echo "(dry run: a tiny model on the CPU; its img/s and ratios are no benchmark)"
echo
echo "| check | result | figures | s |"
echo "|---|---|---|---|"
while IFS=$'\t' read -r c r f t; do
    echo "| $c | $r | $f | $t |"
done <"$ROWS"
exit "$FAILED"
