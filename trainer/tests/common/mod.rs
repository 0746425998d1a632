//! Shared test helpers: the venv's Python, the repository root, demo
//! datasets, running `chess-train`; [`disc`]: the downstream tests' task.

pub mod disc;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A path as the `&str` argument of a command line.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The lines of a `metrics.jsonl`.
pub fn jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// How many TensorBoard event files `run` holds.
pub fn event_file_count(run: &Path) -> usize {
    std::fs::read_dir(run)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("tfevents"))
        .count()
}

/// The throughput fields of every `metrics.jsonl` line of `run` are there:
/// images/s positive, the data-wait and optimizer shares in [0, 1], the
/// optimizer's share positive (its step takes time).
pub fn assert_throughput_fields(run: &Path) {
    let lines = jsonl(&run.join("metrics.jsonl"));
    assert!(!lines.is_empty());
    for l in &lines {
        for k in ["data_wait", "optimizer"] {
            let v = l[k].as_f64().unwrap_or(f64::NAN);
            assert!((0.0..=1.0).contains(&v), "{k} = {v} in {l}");
        }
        assert!(l["optimizer"].as_f64().unwrap() > 0.0, "the optimizer step takes time: {l}");
        assert!(l["images_per_s"].as_f64().unwrap() > 0.0, "{l}");
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The venv made by scripts/setup.sh: `CHESS_VENV`, else
/// `$CHESS_CACHE/venv`, else `~/.cache/chess/venv`.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("CHESS_VENV").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("CHESS_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/chess"));
        cache.join("venv")
    });
    let py = venv.join("bin/python");
    assert!(py.exists(), "{} not found: run scripts/setup.sh", py.display());
    py
}

/// Runs `scripts/python/trainer_reference.py ARGS` with the venv's torch.
pub fn python_reference(args: &[&str]) {
    let script = repo_root().join("scripts/python/trainer_reference.py");
    let out = Command::new(python()).arg(&script).args(args).output().expect("running python");
    assert!(out.status.success(), "trainer_reference.py {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A demo dataset (synthetic phantoms, the shards crate's `demo`) of `count` images `size`².
pub fn demo_dataset(dir: &Path, count: u64, size: u32, dtype: chess_schemas::PixelDtype) {
    use chess_shards::{demo, DatasetWriter, FinishInfo};
    let mut w = DatasetWriter::create(dir, demo::demo_options(dtype, 10, false)).unwrap();
    for i in 0..count {
        w.write(&demo::demo_sample(i, size, dtype, false)).unwrap();
    }
    w.finish(FinishInfo {
        tool_version: "chess-train tests".into(),
        deid_method: "synthetic".into(),
        provenance: Default::default(),
    })
    .unwrap();
}

/// `chess-train ARGS` → (exit code, stdout, stderr).
pub fn chess_train(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chess-train"))
        .args(args)
        .env("CHESS_LOG", "warn")
        .output()
        .expect("running chess-train");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn ok(args: &[&str]) -> String {
    let (code, out, err) = chess_train(args);
    assert_eq!(code, 0, "chess-train {args:?} failed:\n{err}");
    out
}

/// How far two float32 computations of the same tensor may lie apart,
/// relative to its size: `max |got − want| / max(1, max |want|)`.
///
/// Why relative: PyTorch and we both call libtorch, but oneDNN/MKL pick
/// their kernels per CPU (AVX2 or AVX-512, Intel or AMD) and so the order
/// of each sum; the rounding that leaves grows with the magnitudes summed,
/// not with the value one machine printed. Below 1 the bound is absolute
/// (outputs near zero carry the rounding of their larger inputs).
pub fn rel_diff(got: &tch::Tensor, want: &tch::Tensor) -> f64 {
    assert_eq!(got.size(), want.size());
    let diff = (got - want).abs().max().double_value(&[]);
    diff / want.abs().max().double_value(&[]).max(1.0)
}

/// The scalar form of [`rel_diff`].
pub fn rel_diff_scalar(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1.0)
}

/// Float32 agreement bound for a forward (and one backward) pass through a
/// deep network: about 800 float32 ulps (ε = 1.2e-7), i.e. the √(fan-in)
/// growth of a reordered sum (fan-in ≤ 4608 in a ResNet-50) over tens of
/// layers. A wrong layer, weight or order differs by ≳ 1e-2.
pub const F32_DEEP: f64 = 1e-4;

/// Reads `run`'s TensorBoard event files with Python's `tensorboard`
/// (`EventAccumulator`) and asserts that every number of every
/// `metrics.jsonl` line is there as a scalar under the field's name at the
/// line's step (`step`, else `epoch`), equal to the value rounded to f32
/// (the format's `simple_value`), that no other scalar is, that each series
/// holds each step once in increasing order (what a resumed run's restart
/// marker ensures), and that each tag of `images` holds a PNG that decodes.
/// Returns the scalars compared.
pub fn assert_tensorboard_matches_jsonl(run: &Path, images: &[&str]) -> usize {
    const CHECK: &str = r#"
import sys, json, io, numpy as np
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
run, images = sys.argv[1], [t for t in sys.argv[2].split(",") if t]
lines = [json.loads(l) for l in open(f"{run}/metrics.jsonl") if l.strip()]
assert lines, "metrics.jsonl is empty"
key = "step" if "step" in lines[0] else "epoch"
ea = EventAccumulator(run, size_guidance={"scalars": 0, "images": 0})
ea.Reload()
tags = ea.Tags()
want = {}
for l in lines:
    for k, v in l.items():
        if k != key and isinstance(v, (int, float)) and not isinstance(v, bool):
            want.setdefault(k, {})[l[key]] = v
assert set(tags["scalars"]) == set(want), (sorted(tags["scalars"]), sorted(want))
n = 0
for tag, by_step in want.items():
    steps = [e.step for e in ea.Scalars(tag)]
    assert steps == sorted(set(steps)), (tag, "steps repeated or out of order", steps)
    got = {e.step: e.value for e in ea.Scalars(tag)}
    assert set(got) == set(by_step), (tag, sorted(got), sorted(by_step))
    for step, v in by_step.items():
        assert np.float32(got[step]) == np.float32(v), (tag, step, got[step], v)
        n += 1
for tag in images:
    assert tag in tags["images"], (tag, tags["images"])
    for e in ea.Images(tag):
        im = Image.open(io.BytesIO(e.encoded_image_string))
        assert im.size == (e.width, e.height), (tag, im.size, e.width, e.height)
print(n)
"#;
    let out = Command::new(python())
        .args(["-c", CHECK, run.to_str().unwrap(), &images.join(",")])
        .output()
        .expect("running python");
    assert!(
        out.status.success(),
        "TensorBoard check of {} failed:\n{}",
        run.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("a count")
}
