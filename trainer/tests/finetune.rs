//! `chess-train finetune` end to end on CPU: a learnable synthetic task (is
//! there a bright disc?) reaches test AUC > 0.9 from scratch with ResNet-18
//! at 64²; the test AUC agrees with scikit-learn on predictions.csv; a linear
//! probe from imported torchvision weights leaves the encoder untouched; the
//! multi-class task reads a class column; the plateau schedule is PyTorch's;
//! `predict` agrees with finetune's scores on datasets, PNGs and DICOMs;
//! Grad-CAM maps equal PyTorch's (hooks on torchvision's resnet18) and, on layer2,
//! peak near the disc.

use crate::common;
use crate::common::disc;

use std::path::Path;
use std::process::Command;

use crate::common::disc::disc_dataset;
use crate::common::{chess_train, ok, python, s};

#[test]
fn disc_task_from_scratch_reaches_test_auc_above_0_9() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, valid, test, run) =
        (tmp.path().join("train"), tmp.path().join("valid"), tmp.path().join("test"), tmp.path().join("run"));
    disc_dataset(&train, 128, 1, 2);
    disc_dataset(&valid, 48, 2, 2);
    disc_dataset(&test, 64, 3, 2);
    let t = std::time::Instant::now();
    let out = ok(&[
        "finetune",
        "--task",
        "multilabel",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--test",
        s(&test),
        "--out",
        s(&run),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "32",
        "--epochs",
        "8",
        "--lr",
        "0.02",
        "--device",
        "cpu",
        "--no-augment",
        "--threads",
        "1",
    ]);
    eprintln!("{out}finetune: {:.1}s", t.elapsed().as_secs_f64());
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let auc = summary["test"]["mean_auc"].as_f64().unwrap();
    assert!(auc > 0.9, "test AUC {auc}\n{out}");
    assert_eq!(summary["outputs"], serde_json::json!(["Disc"]));
    assert_eq!(summary["test_samples"].as_u64(), Some(64));

    // predictions.csv: key, Disc, Disc_score; the AUC scikit-learn computes from it is ours.
    let csv = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    assert_eq!(csv.lines().next(), Some("key,Disc,Disc_score"));
    assert_eq!(csv.lines().count(), 65);
    let script = format!(
        "import csv; from sklearn.metrics import roc_auc_score\nr = list(csv.DictReader(open(r'{}')))\nprint(repr(roc_auc_score([float(x['Disc']) for x in r], [float(x['Disc_score']) for x in r])))",
        run.join("predictions.csv").display()
    );
    let py = Command::new(python()).arg("-c").arg(script).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let sk: f64 = String::from_utf8_lossy(&py.stdout).trim().parse().unwrap();
    assert!((sk - auc).abs() < 1e-9, "sklearn {sk} vs ours {auc}");

    // One metrics line per epoch, the best one's weights and card, the curves.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 8);
    let best = summary["best_epoch"].as_u64().unwrap();
    let card: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["epoch"].as_u64(), Some(best));
    assert_eq!(card["valid_metric"].as_f64(), lines[best as usize - 1]["valid_metric"].as_f64());
    let best_metric = lines.iter().map(|l| l["valid_metric"].as_f64().unwrap()).fold(f64::MIN, f64::max);
    assert_eq!(card["valid_metric"].as_f64(), Some(best_metric));
    assert!(run.join("curves.png").exists() && run.join("best.safetensors").exists());
    let cfg = chess_train::tasks::classify::config::FinetuneConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!(
        (cfg.optim.lr, cfg.optim.momentum, cfg.optim.plateau_factor, cfg.optim.plateau_patience),
        (0.02, 0.9, 0.5, 10)
    );
    assert!(!cfg.augment.enabled);

    // Grad-CAM: our heat maps (layer3 and layer4) equal PyTorch's, computed
    // with hooks on torchvision's resnet18 holding the run's best weights.
    let cams = tmp.path().join("cams");
    let ds = chess_shards::Dataset::open(&test).unwrap();
    let mut ours = Vec::new();
    for (key, _, _) in disc::layout(64, 3, 2).into_iter().filter(|(_, shape, _)| *shape == 1).take(2) {
        let row = ds.manifest.view().row(ds.find_key(&key).unwrap());
        let img = ds.read_image(&row, &mut chess_shards::NpyZstDecoder::new()).unwrap();
        let png = tmp.path().join(format!("{key}.png"));
        write_png8(&png, 64, 64, &img.data);
        for layer in [3usize, 4] {
            let input = chess_train::tasks::classify::gradcam::GradcamInput::File(png.clone());
            let r = chess_train::tasks::classify::gradcam::gradcam(
                &run,
                &input,
                Some("Disc"),
                layer,
                &cams,
                tch::Device::Cpu,
            )
            .unwrap();
            assert_eq!(r.len(), 1);
            assert!(r[0].png.exists() && r[0].png.ends_with(format!("{key}_Disc.png")));
            ours.push((png.clone(), layer, r[0].heat.clone()));
        }
    }
    // Where it looks: at 64² layer4 is a 2×2 grid and layer3 4×4, too coarse to
    // place a disc; layer2's 8×8 map peaks within 12 px of the disc's centre.
    let (mut near, mut discs) = (0, 0);
    let model = chess_train::tasks::classify::classifier::Classifier::load(&run, tch::Device::Cpu).unwrap();
    for (key, _, (cx, cy)) in disc::layout(64, 3, 2).into_iter().filter(|(_, shape, _)| *shape == 1) {
        let input =
            chess_train::tasks::classify::gradcam::GradcamInput::Key { dataset: test.clone(), key: key.clone() };
        let r =
            chess_train::tasks::classify::gradcam::explain(&model, &input, None, 2, &tmp.path().join("cams2")).unwrap();
        let (px, py) = r[0].peak;
        discs += 1;
        near += (((px as f64 - cx).powi(2) + (py as f64 - cy).powi(2)).sqrt() < 12.0) as usize;
    }
    assert_eq!(discs, 32);
    assert!(near as f64 >= 0.7 * discs as f64, "layer2 heat peaked near the disc for only {near} of {discs}");
    eprintln!("layer2 Grad-CAM peaked within 12 px of the disc for {near} of {discs}");
    let items: Vec<String> = ours.iter().map(|(p, l, _)| format!("(r'{}', {l})", p.display())).collect();
    let script = format!(
        "import json, numpy as np, torch, torchvision, torch.nn.functional as F\nfrom PIL import Image\nfrom safetensors.torch import load_file\n\
         run = r'{}'\ncard = json.load(open(run + '/model.json'))\nm = torchvision.models.resnet18(num_classes=1)\n\
         m.conv1 = torch.nn.Conv2d(1, 64, 7, 2, 3, bias=False)\nm.load_state_dict(load_file(run + '/best.safetensors')); m.eval()\n\
         acts = {{}}\nfor l in (3, 4): getattr(m, f'layer{{l}}').register_forward_hook(lambda mod, i, o, l=l: acts.__setitem__(l, o))\n\
         for png, layer in [{}]:\n\
         \x20   x = torch.tensor(np.array(Image.open(png)), dtype=torch.float32)[None, None] / 255\n\
         \x20   out = m((x - card['mean']) / card['std'])\n\
         \x20   g, = torch.autograd.grad(out[0, 0], acts[layer])\n\
         \x20   cam = F.relu((g.mean((2, 3), keepdim=True) * acts[layer]).sum(1))\n\
         \x20   up = F.interpolate(cam[None], size=(64, 64), mode='bilinear', align_corners=False)[0, 0]\n\
         \x20   up = up / up.max() if up.max() > 0 else up\n\
         \x20   print(' '.join(repr(float(v)) for v in up.flatten()))",
        run.display(),
        items.join(", ")
    );
    let py = Command::new(python()).arg("-c").arg(script).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let text = String::from_utf8_lossy(&py.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), ours.len());
    for ((png, layer, heat), line) in ours.iter().zip(lines) {
        let theirs: Vec<f64> = line.split_whitespace().map(|v| v.parse().unwrap()).collect();
        assert_eq!(theirs.len(), heat.len());
        let diff = theirs.iter().zip(heat).map(|(a, b)| (a - *b as f64).abs()).fold(0.0, f64::max);
        assert!(diff < 1e-4, "{} layer{layer}: heat differs from PyTorch's by {diff}", png.display());
        assert!(theirs.iter().any(|v| *v > 0.99), "{} layer{layer}: an all-zero map tests nothing", png.display());
    }
}

/// Linear probe from a torchvision ResNet-18 state dict (imported, conv1 summed):
/// only `fc` moves; every encoder tensor (BN statistics included) stays as imported.
#[test]
fn linear_probe_from_imported_weights_keeps_the_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pth = d.join("tv18.pth");
    let script = format!("import torch, torchvision; torch.manual_seed(1); torch.save(torchvision.models.resnet18(weights=None).state_dict(), r'{}')", pth.display());
    assert!(Command::new(python()).arg("-c").arg(script).status().unwrap().success());
    let w = d.join("imagenet18.safetensors");
    ok(&["import", s(&pth), "--out", s(&w), "--quiet"]);
    let (train, valid, run) = (d.join("train"), d.join("valid"), d.join("run"));
    disc_dataset(&train, 48, 4, 2);
    disc_dataset(&valid, 16, 5, 2);
    let init = format!("imagenet={}", w.display());
    ok(&[
        "finetune",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--out",
        s(&run),
        "--init",
        &init,
        "--linear-probe",
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "16",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let imported = chess_train::io::weights::read(&w).unwrap();
    let best = chess_train::io::weights::read(&run.join("best.safetensors")).unwrap();
    let mut checked = 0;
    for (name, t) in &imported {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        assert!(best[name].equal(t), "{name} changed under --linear-probe");
        checked += 1;
    }
    assert!(checked > 50);
    assert_eq!(best["fc.weight"].size(), vec![1, 512]);

    // A ResNet-50 encoder for a ResNet-18 run is refused, naming the file.
    let (code, _, err) = chess_train(&[
        "finetune",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--out",
        s(&d.join("bad")),
        "--init",
        s(&w),
        "--arch",
        "resnet50",
        "--device",
        "cpu",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("imagenet18.safetensors") && err.contains("resnet18"), "{err}");
}

#[test]
fn multiclass_reads_a_class_column_and_writes_class_scores() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (train, valid, test, run) = (d.join("train"), d.join("valid"), d.join("test"), d.join("run"));
    disc_dataset(&train, 48, 6, 3);
    disc_dataset(&valid, 15, 7, 3);
    disc_dataset(&test, 15, 8, 3);
    ok(&[
        "finetune",
        "--task",
        "multiclass",
        "--labels",
        "shape",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--test",
        s(&test),
        "--out",
        s(&run),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let csv = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("key,target,predicted,disc,disc_score,none,none_score,square,square_score"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 15);
    let mut correct = 0;
    for r in &rows {
        let scores: Vec<f64> = [4, 6, 8].iter().map(|&i| r[i].parse().unwrap()).collect();
        assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-5, "softmax rows sum to 1: {r:?}");
        let onehot: Vec<&str> = [3, 5, 7].iter().map(|&i| r[i]).collect();
        assert_eq!(onehot.iter().filter(|v| **v == "1").count(), 1);
        correct += (r[1] == r[2]) as usize;
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["test"]["accuracy"].as_f64(), Some(correct as f64 / 15.0));
    let confusion: u64 = summary["test"]["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(confusion, 15);

    // A class the model does not know is an error naming the manifest and the sample.
    let (code, _, err) = chess_train(&[
        "finetune",
        "--task",
        "multiclass",
        "--labels",
        "shape",
        "--classes",
        "none,disc",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--out",
        s(&d.join("bad")),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "16",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("square") && err.contains("train"), "{err}");
}

/// Our ReduceLROnPlateau gives torch.optim.lr_scheduler.ReduceLROnPlateau's learning rates.
#[test]
fn plateau_schedule_matches_pytorch() {
    let losses = [1.0, 0.9, 0.9, 0.95, 0.91, 0.9, 0.89995, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.69, 0.7, 0.7, 0.7];
    let mut p = chess_train::runtime::optim::Plateau::new(0.5, 2, 1e-4, 0.0);
    let mut lr = 1e-3;
    let ours: Vec<f64> = losses
        .iter()
        .map(|&l| {
            lr = p.step(l, lr);
            lr
        })
        .collect();
    let script = format!(
        "import torch\np = torch.nn.Parameter(torch.zeros(1)); o = torch.optim.SGD([p], lr=1e-3, momentum=0.9)\n\
         s = torch.optim.lr_scheduler.ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=1e-4)\n\
         out = []\nfor l in {losses:?}:\n    s.step(l); out.append(o.param_groups[0]['lr'])\nprint(' '.join(repr(v) for v in out))"
    );
    let py = Command::new(python()).arg("-c").arg(script).output().unwrap();
    assert!(py.status.success(), "{}", String::from_utf8_lossy(&py.stderr));
    let theirs: Vec<f64> = String::from_utf8_lossy(&py.stdout).split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(ours, theirs);
}

fn read_scores(csv: &Path) -> Vec<(String, Vec<f64>)> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let cols: Vec<usize> = header.iter().enumerate().filter(|(_, h)| h.ends_with("_score")).map(|(i, _)| i).collect();
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), cols.iter().map(|&i| f[i].parse().unwrap()).collect())
        })
        .collect()
}

fn write_png8(path: &Path, w: u32, h: u32, px: &[u8]) {
    let mut enc = png::Encoder::new(std::fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(px).unwrap();
}

fn write_png16(path: &Path, w: u32, h: u32, px: &[u16]) {
    let mut enc = png::Encoder::new(std::fs::File::create(path).unwrap(), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Sixteen);
    let bytes: Vec<u8> = px.iter().flat_map(|v| v.to_be_bytes()).collect();
    enc.write_header().unwrap().write_image_data(&bytes).unwrap();
}

/// `predict` gives the scores `finetune` wrote for the test manifest; a PNG of
/// a sample's pixels scores as the sample; a raw DICOM scores as the same
/// file's pixels after chess-ingest's pipeline.
#[test]
fn predict_on_datasets_pngs_and_dicoms_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (train, valid, test, run) = (d.join("train"), d.join("valid"), d.join("test"), d.join("run"));
    disc_dataset(&train, 32, 9, 2);
    disc_dataset(&valid, 16, 10, 2);
    disc_dataset(&test, 12, 11, 2);
    ok(&[
        "finetune",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--test",
        s(&test),
        "--out",
        s(&run),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let preds = d.join("preds.csv");
    ok(&[
        "predict",
        "--ckpt",
        s(&run),
        s(&test),
        "--out",
        s(&preds),
        "--device",
        "cpu",
        "--batch-size",
        "5",
        "--quiet",
    ]);
    let ours = read_scores(&preds);
    let theirs = read_scores(&run.join("predictions.csv"));
    assert_eq!(ours.len(), 12);
    let by_key: std::collections::HashMap<_, _> = theirs.into_iter().collect();
    for (k, v) in &ours {
        assert!((v[0] - by_key[k][0]).abs() < 1e-5, "{k}: predict {} vs finetune {}", v[0], by_key[k][0]);
    }

    // PNGs (8-bit of a sample's pixels; 16-bit of the same values × 257) score as the sample.
    let ds = chess_shards::Dataset::open(&test).unwrap();
    let row = ds.manifest.view().row(0);
    let img = ds.read_image(&row, &mut chess_shards::NpyZstDecoder::new()).unwrap();
    let png8 = d.join(format!("{}.png", row.key));
    let mut enc = png::Encoder::new(std::fs::File::create(&png8).unwrap(), 64, 64);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(&img.data).unwrap();
    let png16 = d.join("wide.png");
    write_png16(&png16, 64, 64, &img.data.iter().map(|&v| v as u16 * 257).collect::<Vec<_>>());
    let png_preds = d.join("png.csv");
    ok(&[
        "predict",
        "--ckpt",
        s(&run.join("model.json")),
        s(&png8),
        s(&png16),
        "--out",
        s(&png_preds),
        "--device",
        "cpu",
        "--quiet",
    ]);
    let p = read_scores(&png_preds);
    assert_eq!((p[0].0.as_str(), p[1].0.as_str()), (row.key.as_str(), "wide"));
    let want = by_key[&row.key][0];
    assert!((p[0].1[0] - want).abs() < 1e-5 && (p[1].1[0] - want).abs() < 1e-5, "{p:?} vs {want}");

    // A DICOM: the ingest pipeline's 512² 16-bit pixels, as a PNG, score the same.
    let out = Command::new(python())
        .args(["-c", "import pydicom.data as d; print(d.get_testdata_file('CT_small.dcm'))"])
        .output()
        .unwrap();
    let dcm = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let processed = chess_ingest::decode_and_process(&std::fs::read(&dcm).unwrap(), &Default::default()).unwrap();
    let via_png = d.join("ct_pipeline.png");
    write_png16(&via_png, processed.size, processed.size, &processed.pixels);
    let dcm_preds = d.join("dcm.csv");
    ok(&[
        "predict",
        "--ckpt",
        s(&run),
        dcm.to_str().unwrap(),
        s(&via_png),
        "--out",
        s(&dcm_preds),
        "--device",
        "cpu",
        "--quiet",
    ]);
    let p = read_scores(&dcm_preds);
    assert_eq!(p[0].0, "CT_small");
    assert!((p[0].1[0] - p[1].1[0]).abs() < 1e-6, "{p:?}");

    // A file that is neither is an error naming it.
    let junk = d.join("junk.dcm");
    std::fs::write(&junk, b"garbage").unwrap();
    let (code, _, err) =
        chess_train(&["predict", "--ckpt", s(&run), s(&junk), "--out", s(&d.join("x.csv")), "--device", "cpu"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("junk.dcm") && err.contains("not a usable DICOM"), "{err}");
}

/// Raw CheXpert-style columns (1, 0, −1, blank): `--uncertain` decides −1,
/// blank is negative; the targets land in predictions.csv as read.
#[test]
fn raw_label_columns_follow_the_uncertainty_policy() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("demo");
    // Demo labels by index: i % 7 == 0 blank, i % 7 == 1 uncertain (−1), else 0/1.
    common::demo_dataset(&data, 21, 64, chess_schemas::PixelDtype::Uint16);
    for (policy, uncertain_as) in [("ones", "1"), ("zeros", "0"), ("ignore", "")] {
        let run = tmp.path().join(policy);
        ok(&[
            "finetune",
            "--labels",
            "Cardiomegaly",
            "--uncertain",
            policy,
            "--train",
            s(&data),
            "--valid",
            s(&data),
            "--test",
            s(&data),
            "--out",
            s(&run),
            "--arch",
            "resnet18",
            "--size",
            "64",
            "--batch-size",
            "7",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--threads",
            "1",
            "--quiet",
        ]);
        let csv = std::fs::read_to_string(run.join("predictions.csv")).unwrap();
        assert_eq!(csv.lines().next(), Some("key,Cardiomegaly,Cardiomegaly_score"));
        let mut seen = [0; 3];
        for line in csv.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let i: u64 = f[0].trim_start_matches("demo").parse().unwrap();
            match i % 7 {
                0 => (assert_eq!(f[1], "0", "blank → 0 ({line})"), seen[0] += 1),
                1 => (assert_eq!(f[1], uncertain_as, "{policy}: −1 → `{uncertain_as}` ({line})"), seen[1] += 1),
                _ => (assert!(f[1] == "0" || f[1] == "1", "{line}"), seen[2] += 1),
            };
        }
        assert_eq!(seen, [3, 3, 15]);
    }
}

/// `--init` with a pretraining run directory: the query encoder of its latest
/// checkpoint, exactly what `chess-train export` writes, is where fine-tuning
/// starts (a linear probe keeps it).
#[test]
fn init_from_a_pretrain_run_uses_its_query_encoder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (data, pre) = (d.join("demo"), d.join("pre"));
    common::demo_dataset(&data, 16, 64, chess_schemas::PixelDtype::Uint8);
    ok(&[
        "pretrain",
        s(&data),
        "--out",
        s(&pre),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "8",
        "--queue",
        "64",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let exported = d.join("encoder.safetensors");
    ok(&["export", s(&pre), "--out", s(&exported), "--quiet"]);
    let run = d.join("probe");
    ok(&[
        "finetune",
        "--labels",
        "Cardiomegaly",
        "--train",
        s(&data),
        "--valid",
        s(&data),
        "--out",
        s(&run),
        "--init",
        s(&pre),
        "--linear-probe",
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--quiet",
    ]);
    let want = chess_train::io::weights::read(&exported).unwrap();
    let got = chess_train::io::weights::read(&run.join("best.safetensors")).unwrap();
    let mut compared = 0;
    for (name, t) in &want {
        if name.ends_with("num_batches_tracked") {
            continue;
        }
        assert!(got[name].equal(t), "{name} differs from the pretrain run's exported encoder");
        compared += 1;
    }
    assert!(compared > 50, "{compared}");
}
