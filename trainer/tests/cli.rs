//! `chess-train` end to end on CPU: the smoke run, exact resume, export
//! loaded strictly by torchvision, the preview, settings errors.

use crate::common;

use std::path::Path;

use crate::common::{chess_train, ok};
use chess_schemas::PixelDtype;
use chess_train::io::weights;

const SMOKE: &[&str] =
    &["--arch", "resnet18", "--size", "64", "--batch-size", "8", "--queue", "64", "--device", "cpu", "--quiet"];

fn pretrain(data: &Path, run: &Path, extra: &[&str]) -> String {
    let mut args = vec!["pretrain", data.to_str().unwrap(), "--out", run.to_str().unwrap()];
    args.extend_from_slice(SMOKE);
    args.extend_from_slice(extra);
    ok(&args)
}

/// The suite's smoke run: `--arch resnet18 --size 64 --batch-size 8 --queue 64 --steps 5`.
#[test]
fn smoke_run_writes_metrics_config_checkpoint_and_curves() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("ds"), tmp.path().join("runs/smoke"));
    common::demo_dataset(&data, 24, 96, PixelDtype::Uint16);
    let t = std::time::Instant::now();
    pretrain(&data, &run, &["--steps", "5"]);
    let secs = t.elapsed().as_secs_f64();
    eprintln!("smoke run: {secs:.1}s");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["step"].as_u64(), Some(i as u64 + 1));
        assert!(l["loss"].as_f64().unwrap().is_finite());
        assert!(l["lr"].as_f64().unwrap() > 0.0);
    }
    // 24 images, batch 8: steps 4 and 5 are in epoch 1, at the cosine's lr for epoch 1 of 200.
    assert_eq!(lines[3]["epoch"].as_u64(), Some(1));
    let lr1 = 0.03 * 0.5 * (1.0 + (std::f64::consts::PI / 200.0).cos());
    assert!((lines[3]["lr"].as_f64().unwrap() - lr1).abs() < 1e-12);
    // The resolved config: flags over defaults.
    let cfg = chess_train::tasks::pretrain::config::TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!((cfg.moco.queue, cfg.data.batch_size, cfg.data.size, cfg.run.steps), (64, 8, 64, Some(5)));
    assert_eq!((cfg.moco.temperature, cfg.optim.lr, cfg.data.mean, cfg.data.std), (0.2, 0.03, 0.658, 0.221));
    let (state, _) = chess_train::tasks::pretrain::checkpoint::read_state(&run).unwrap();
    assert_eq!(state.step, 5);
    assert!(run.join("curves.png").exists());
}

fn final_tensors(run: &Path) -> std::collections::HashMap<String, tch::Tensor> {
    let (state, json) = chess_train::tasks::pretrain::checkpoint::read_state(run).unwrap();
    chess_train::tasks::pretrain::checkpoint::read_tensors(&state, &json).unwrap().0
}

/// k steps, resume, k more == 2k steps (weights, key encoder, queue, momentum buffers, metrics).
#[test]
fn resume_is_exact_on_cpu() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ds");
    common::demo_dataset(&data, 20, 64, PixelDtype::Uint8);
    // 20 images, batch 8: 2 full batches per epoch (the short one dropped); 5 steps cross two epoch ends.
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    pretrain(&data, &a, &["--steps", "6", "--threads", "1"]);
    pretrain(&data, &b, &["--steps", "3", "--threads", "1"]);
    ok(&["pretrain", data.to_str().unwrap(), "--out", b.to_str().unwrap(), "--resume", "--steps", "6", "--quiet"]);
    let (ta, tb) = (final_tensors(&a), final_tensors(&b));
    assert_eq!(ta.len(), tb.len());
    for (name, t) in &ta {
        let d = (t - &tb[name]).abs().max().double_value(&[]);
        assert!(d == 0.0, "{name} differs by {d} after resume");
    }
    let ma = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let mb = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    let loss = |m: &str| {
        m.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["loss"].as_f64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(loss(&ma), loss(&mb));
    assert_eq!(loss(&ma).len(), 6);
}

/// Export, then torchvision's resnet with a 1-channel conv1 loads it with strict=True.
#[test]
fn export_loads_strict_in_torchvision() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("ds"), tmp.path().join("run"));
    common::demo_dataset(&data, 16, 64, PixelDtype::Uint16);
    pretrain(&data, &run, &["--steps", "2"]);
    let enc = tmp.path().join("encoder.safetensors");
    ok(&["export", run.to_str().unwrap(), "--out", enc.to_str().unwrap(), "--quiet"]);
    let t = weights::read(&enc).unwrap();
    assert!(
        t.contains_key("conv1.weight")
            && t.contains_key("layer1.0.conv1.weight")
            && t.contains_key("bn1.num_batches_tracked")
    );
    assert!(!t.keys().any(|k| k.starts_with("fc")));
    assert_eq!(t["conv1.weight"].size(), vec![64, 1, 7, 7]);
    let script = r#"
import sys, torch, torch.nn as nn, torchvision
from safetensors.torch import load_file
m = torchvision.models.resnet18()
m.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
del m.fc
sd = load_file(sys.argv[1])
m.load_state_dict(sd, strict=True)
assert int(m.bn1.num_batches_tracked) == 2
print("strict ok", len(sd))
"#;
    let out =
        std::process::Command::new(common::python()).args(["-c", script, enc.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("strict ok"));
}

#[test]
fn augment_preview_draws_a_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ds");
    common::demo_dataset(&data, 4, 64, PixelDtype::Uint16);
    let png = tmp.path().join("grid.png");
    ok(&[
        "augment-preview",
        data.to_str().unwrap(),
        "--out",
        png.to_str().unwrap(),
        "--pairs",
        "3",
        "--size",
        "48",
        "--quiet",
    ]);
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = dec.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (3 * 48 + 16, 3 * 48 + 16));
}

#[test]
fn settings_and_config_errors_exit_2_and_missing_input_exits_3() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("r");
    // Queue not a multiple of the batch.
    let (code, _, err) =
        chess_train(&["pretrain", "nowhere", "--out", run.to_str().unwrap(), "--batch-size", "6", "--queue", "64"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("multiple of the batch size"), "{err}");
    let (code, _, err) = chess_train(&[
        "pretrain",
        tmp.path().join("missing").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--device",
        "cpu",
    ]);
    assert_eq!(code, 3, "{err}");
    // A TOML config with an unknown key is a config error (exit 2), naming the key.
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[moco]\nqueue = 128\nwhat = 1\n").unwrap();
    let (code, _, err) =
        chess_train(&["pretrain", "x", "--out", run.to_str().unwrap(), "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("what"), "{err}");
}

/// A TOML file sets values; flags override it; the run saves the result.
#[test]
fn config_file_then_flags() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("ds"), tmp.path().join("run"));
    common::demo_dataset(&data, 16, 64, PixelDtype::Uint8);
    let cfg = tmp.path().join("c.toml");
    std::fs::write(&cfg, "[moco]\narch = \"resnet18\"\nqueue = 32\n[optim]\nlr = 0.5\ncos = false\n[run]\nsteps = 7\n")
        .unwrap();
    ok(&[
        "pretrain",
        data.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--config",
        cfg.to_str().unwrap(),
        "--size",
        "48",
        "--batch-size",
        "8",
        "--steps",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let c = chess_train::tasks::pretrain::config::TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!((c.moco.queue, c.optim.lr, c.optim.cos, c.run.steps, c.data.size), (32, 0.5, false, Some(1), 48));
    let m: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(run.join("metrics.jsonl")).unwrap().lines().next().unwrap())
            .unwrap();
    assert_eq!(m["lr"].as_f64(), Some(0.5));
}

/// `embed` writes one row per image in manifest order, and the features are
/// what torchvision computes with the exported encoder on the same images.
#[test]
fn embed_matches_torchvision_on_the_exported_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("ds"), tmp.path().join("run"));
    common::demo_dataset(&data, 12, 64, PixelDtype::Uint16);
    pretrain(&data, &run, &["--steps", "2"]);
    let enc = tmp.path().join("encoder.safetensors");
    ok(&["export", run.to_str().unwrap(), "--out", enc.to_str().unwrap(), "--quiet"]);
    let feats = tmp.path().join("features.parquet");
    ok(&[
        "embed",
        run.to_str().unwrap(),
        data.to_str().unwrap(),
        "--out",
        feats.to_str().unwrap(),
        "--device",
        "cpu",
        "--batch-size",
        "5",
        "--quiet",
    ]);
    // The exported encoder file itself (as `chess-train import` writes them): the same features.
    let feats_file = tmp.path().join("features-file.parquet");
    ok(&[
        "embed",
        enc.to_str().unwrap(),
        data.to_str().unwrap(),
        "--out",
        feats_file.to_str().unwrap(),
        "--size",
        "64",
        "--device",
        "cpu",
        "--quiet",
    ]);
    let script = r#"
import sys, glob, numpy as np, torch, torch.nn as nn, torchvision, pyarrow.parquet as pq, webdataset as wds
sys.path.insert(0, sys.argv[4])
import chess_shards
from safetensors.torch import load_file
m = torchvision.models.resnet18()
m.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
m.fc = nn.Identity()
m.load_state_dict(load_file(sys.argv[1]), strict=True)
m.eval()
t = pq.read_table(sys.argv[2]).to_pylist()
manifest = [r["key"] for r in pq.read_table(sys.argv[3] + "/manifest.parquet").to_pylist()]
assert [r["key"] for r in t] == manifest, "rows not in manifest order"
images = {}
for s in wds.WebDataset(sorted(glob.glob(sys.argv[3] + "/shards/*.tar")), shardshuffle=False).decode(chess_shards.decode):
    images[s["__key__"]] = s["npy.zst"]
x = torch.stack([torch.from_numpy(images[k].astype(np.float32) / 65535.0) for k in manifest]).unsqueeze(1)
with torch.no_grad():
    ref = m((x - 0.658) / 0.221)
ours = torch.tensor(np.array([r["features"] for r in t], dtype=np.float32))
d = (ours - ref).abs().max().item()
assert ours.shape == (12, 512), ours.shape
assert d <= 1e-4, d
other = torch.tensor(np.array([r["features"] for r in pq.read_table(sys.argv[5]).to_pylist()], dtype=np.float32))
assert other.shape == ours.shape and (other - ours).abs().max().item() <= 1e-5, "embed of the .safetensors differs"
print("embed ok", d)
"#;
    let out = std::process::Command::new(common::python())
        .args([
            "-c",
            script,
            enc.to_str().unwrap(),
            feats.to_str().unwrap(),
            data.to_str().unwrap(),
            common::repo_root().join("scripts/python").to_str().unwrap(),
            feats_file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
}

/// One mistake per exit class of the workspace's table (which `--help`
/// prints): a bad setting 2, a missing input 3, an unwritable output 4.
/// Runtime failures (5) are a distributed peer's (`dist::a_killed_rank_…`).
#[test]
fn each_exit_class_has_its_code() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, _) = chess_train(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains(chess_cli::EXIT_CODES_HELP), "{out}");

    let data = tmp.path().join("ds");
    common::demo_dataset(&data, 4, 32, PixelDtype::Uint8);
    let run = tmp.path().join("run");
    let (code, _, err) =
        chess_train(&["pretrain", data.to_str().unwrap(), "--out", run.to_str().unwrap(), "--device", "tpu"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown device `tpu`"), "{err}");

    let missing = tmp.path().join("no-run");
    let (code, _, err) = chess_train(&[
        "export",
        missing.to_str().unwrap(),
        "--out",
        tmp.path().join("e.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no-run") && err.contains("no checkpoint here"), "{err}");

    // The run directory would be under a plain file.
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let under = file.join("run");
    let (code, _, err) = chess_train(&[
        "pretrain",
        data.to_str().unwrap(),
        "--out",
        under.to_str().unwrap(),
        "--device",
        "cpu",
        "--batch-size",
        "2",
        "--queue",
        "8",
        "--size",
        "32",
    ]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("a-file/run"), "{err}");
}
