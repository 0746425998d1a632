//! Bone suppression: the perceptual loss against a PyTorch `ResnetLoss`
//! written here on torchvision's ResNet-50 (CheSS 1-channel weights, and
//! ImageNet 3-channel weights on the input repeated to 3 channels), and
//! `chess-train bone-suppression` / `bone-compare` end to end on paired
//! demo phantoms (source with ribs → target without).

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use crate::common::{jsonl, ok, python};
use chess_train::losses::perceptual::{PerceptualLoss, PerceptualSpec};
use tch::{Device, Tensor};

/// Writes `chess.safetensors` (1-channel conv1), `imagenet.safetensors`
/// (torchvision's 3-channel conv1), inputs `x`, `y` and the reference losses
/// and input gradient to `ref.safetensors`.
const MAKE_REFERENCE: &str = r#"
import sys, torch, torchvision
import torch.nn.functional as F
from safetensors.torch import save_file
d = sys.argv[1]
torch.manual_seed(0)

def model(channels):
    m = torchvision.models.resnet50(weights=None)
    m.conv1 = torch.nn.Conv2d(channels, 64, 7, 2, 3, bias=False)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5); mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5); mod.bias.uniform_(-0.2, 0.2)
    return m.eval()

class ResnetLoss(torch.nn.Module):
    """CheSS's perceptual loss: L1 after conv1-bn-relu and layer1..4, weights 1/32 .. 1."""
    def __init__(self, net, repeat):
        super().__init__()
        self.net, self.repeat = net, repeat
        self.weights = [1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0]
        for p in self.net.parameters(): p.requires_grad_(False)
    def features(self, x):
        if self.repeat: x = x.repeat(1, 3, 1, 1)
        n = self.net
        x = n.relu(n.bn1(n.conv1(x))); out = [x]
        x = n.maxpool(x)
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            x = layer(x); out.append(x)
        return out
    def forward(self, x, y):
        fx, fy = self.features(x), self.features(y)
        return sum(w * F.l1_loss(a, b.detach()) for w, a, b in zip(self.weights, fx, fy))

chess, imagenet = model(1), model(3)
save_file({k: v.contiguous() for k, v in chess.state_dict().items()}, f"{d}/chess.safetensors")
save_file({k: v.contiguous() for k, v in imagenet.state_dict().items()}, f"{d}/imagenet.safetensors")
x = torch.rand(2, 1, 64, 64, requires_grad=True)
y = torch.rand(2, 1, 64, 64)
lc = ResnetLoss(chess, False)(x, y)
lc.backward()
li = ResnetLoss(imagenet, True)(x.detach(), y)
save_file({"x": x.detach(), "y": y, "chess": lc.detach().reshape(1), "imagenet": li.detach().reshape(1), "chess_grad": x.grad}, f"{d}/ref.safetensors")
"#;

fn read(path: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(path).unwrap().into_iter().collect()
}

#[test]
fn perceptual_loss_equals_pytorch_resnet_loss_for_chess_and_imagenet_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = Command::new(python()).arg("-c").arg(MAKE_REFERENCE).arg(d).output().unwrap();
    assert!(out.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r = read(&d.join("ref.safetensors"));
    let (x, y) = (&r["x"], &r["y"]);

    let chess =
        PerceptualLoss::load(&PerceptualSpec::Chess(d.join("chess.safetensors")), Device::Cpu).unwrap().unwrap();
    let xg = x.copy().set_requires_grad(true);
    let lc = chess.loss(&xg, y);
    let want = r["chess"].double_value(&[0]);
    let got = lc.double_value(&[]);
    assert!(common::rel_diff_scalar(got, want) < common::F32_DEEP, "CheSS weights: {got} vs PyTorch {want}");
    assert!(want > 1e-3, "the reference loss should not be trivially zero ({want})");
    lc.backward();
    let gdiff = (xg.grad() - &r["chess_grad"]).abs().max().double_value(&[]);
    let gscale = r["chess_grad"].abs().max().double_value(&[]);
    assert!(gdiff < common::F32_DEEP * gscale.max(1e-6) + 1e-9, "input gradient differs by {gdiff} (scale {gscale})");

    let imagenet =
        PerceptualLoss::load(&PerceptualSpec::Imagenet(d.join("imagenet.safetensors")), Device::Cpu).unwrap().unwrap();
    let li = tch::no_grad(|| imagenet.loss(x, y)).double_value(&[]);
    let want = r["imagenet"].double_value(&[0]);
    assert!(
        common::rel_diff_scalar(li, want) < common::F32_DEEP,
        "ImageNet weights (input repeated to RGB): {li} vs PyTorch {want}"
    );
    // Different weights give a different loss: the test tells the two apart.
    assert!((li - got).abs() > 1e-3);
}

/// A paired demo dataset (phantoms with ribs → without), `count` images `size`², 8-bit.
fn paired_demo(dir: &Path, count: u64, size: u32) {
    use chess_shards::{demo, DatasetWriter, FinishInfo};
    let dtype = chess_schemas::PixelDtype::Uint8;
    let mut w = DatasetWriter::create(dir, demo::demo_options(dtype, 16, true)).unwrap();
    for i in 0..count {
        w.write(&demo::demo_sample(i, size, dtype, true)).unwrap();
    }
    w.finish(FinishInfo {
        tool_version: "chess-train tests".into(),
        deid_method: "synthetic".into(),
        provenance: Default::default(),
    })
    .unwrap();
}

/// A ResNet-18 encoder with torchvision names (a stand-in for CheSS weights).
fn resnet18_encoder(path: &Path) {
    use chess_train::models::resnet::{Arch, HeadKind, ResNet};
    tch::manual_seed(1);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    let _net = ResNet::new(&vs.root(), Arch::Resnet18, HeadKind::None);
    chess_train::io::weights::write_atomic(path, &chess_train::io::weights::torchvision_state(&vs, 0, true)).unwrap();
}

fn read_png8(path: &Path) -> Vec<u8> {
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut r = dec.read_info().unwrap();
    let mut buf = vec![0; r.output_buffer_size().unwrap()];
    let info = r.next_frame(&mut buf).unwrap();
    buf.truncate(info.buffer_size());
    buf
}

/// The CSV's metrics are those of the written PNGs against the dataset's
/// targets (8-bit, data range 255, at the stored size), and each residual
/// PNG is (source − output)/2 + ½ within one grey level of rounding.
fn check_outputs_against_the_dataset(data: &Path, run: &Path, csv: &str) {
    use chess_shards::loader::Pixels;
    use chess_train::metrics::image as im;
    let opts = chess_shards::LoaderOptions { batch_size: 8, fields: vec!["target".into()], ..Default::default() };
    let loader = chess_shards::Loader::open(data.to_str().unwrap(), opts).unwrap();
    let mut arrays: HashMap<String, (Vec<u8>, Vec<u8>)> = HashMap::new();
    for batch in &mut loader.epoch(0) {
        let b = batch.unwrap();
        let n = (b.height * b.width) as usize;
        let (Pixels::U8(src), Pixels::U8(tgt)) = (&b.pixels, &b.extras[0].1) else { panic!("8-bit demo") };
        for (i, k) in b.keys.iter().enumerate() {
            arrays.insert(k.clone(), (src[i * n..(i + 1) * n].to_vec(), tgt[i * n..(i + 1) * n].to_vec()));
        }
    }
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let (src, tgt) = &arrays[f[0]];
        let out = read_png8(&run.join("suppressed").join(format!("{}.png", f[0])));
        let (t, o): (Vec<f64>, Vec<f64>) =
            (tgt.iter().map(|&v| v as f64).collect(), out.iter().map(|&v| v as f64).collect());
        let want =
            [im::psnr(&t, &o, 255.0).unwrap(), im::ssim(&t, &o, 32, 32, 255.0).unwrap(), im::rmse(&t, &o).unwrap()];
        for (j, w) in want.iter().enumerate() {
            let got: f64 = f[j + 1].parse().unwrap();
            assert!((got - w).abs() < 1e-9, "{}: column {} is {got}, the PNG gives {w}", f[0], j + 1);
        }
        let s: Vec<f64> = src.iter().map(|&v| v as f64).collect();
        let input_psnr: f64 = f[4].parse().unwrap();
        assert!((input_psnr - im::psnr(&t, &s, 255.0).unwrap()).abs() < 1e-9);
        let res = read_png8(&run.join("residuals").join(format!("{}.png", f[0])));
        for ((r, sv), ov) in res.iter().zip(src).zip(&out) {
            let expect = ((*sv as f64 - *ov as f64) / 255.0 + 1.0) / 2.0 * 255.0;
            assert!((*r as f64 - expect).abs() <= 1.0, "{}: residual {r}, expected about {expect}", f[0]);
        }
    }
}

#[test]
fn unet_learns_to_remove_the_ribs_and_two_runs_compare() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = d.join("paired");
    paired_demo(&data, 30, 32);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let common =
        ["--size", "32", "--depth", "2", "--width", "8", "--batch-size", "4", "--lr", "3e-3", "--device", "cpu"];

    let long = d.join("long");
    let mut args =
        vec!["bone-suppression".to_string(), s(&data), "--out".into(), s(&long), "--epochs".into(), "5".into()];
    args.extend(common.iter().map(|a| a.to_string()));
    let printed = ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The run summary's throughput line (one implementation for every command).
    assert!(printed.contains("throughput: ") && printed.contains("img/s, data wait"), "{printed}");
    let epochs = jsonl(&long.join("metrics.jsonl"));
    assert_eq!(epochs.len(), 5);
    let psnr: Vec<f64> = epochs.iter().map(|e| e["valid_psnr"].as_f64().unwrap()).collect();
    let best = psnr.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    assert!(best > psnr[0] + 1.0, "validation PSNR should rise over the epochs: {psnr:?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(long.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["split"], "manifest");
    let (test, input) = (summary["test"]["psnr"].as_f64().unwrap(), summary["test_input"]["psnr"].as_f64().unwrap());
    assert!(test > input + 1.0, "suppression should beat the unprocessed sources: test PSNR {test} vs input {input}");
    assert!(summary["test"]["rmse"].as_f64().unwrap() < summary["test_input"]["rmse"].as_f64().unwrap());
    let n_test = summary["test_samples"].as_u64().unwrap() as usize;
    assert!(n_test > 0);
    for dir in ["suppressed", "residuals"] {
        assert_eq!(std::fs::read_dir(long.join(dir)).unwrap().count(), n_test, "{dir}/ holds one PNG per test image");
    }
    let csv = std::fs::read_to_string(long.join("test_metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), n_test + 1);
    check_outputs_against_the_dataset(&data, &long, &csv);
    // TensorBoard: the epochs' scalars as in metrics.jsonl, the first test images as source | output | target.
    let n = crate::common::assert_tensorboard_matches_jsonl(&long, &["test/source_suppressed_target/0"]);
    // 5 epochs × train_loss, valid_psnr, valid_ssim, valid_l1, images_per_s, data_wait, optimizer, seconds.
    assert_eq!(n, 5 * 8, "{n} scalars");
    for e in &epochs {
        let v = e["valid_ssim"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&v), "validation SSIM {v}");
    }
    crate::common::assert_throughput_fields(&long);

    // One epoch with a perceptual term (a ResNet-18 stand-in for CheSS weights).
    let enc = d.join("enc.safetensors");
    resnet18_encoder(&enc);
    let short = d.join("short");
    let mut args =
        vec!["bone-suppression".to_string(), s(&data), "--out".into(), s(&short), "--epochs".into(), "1".into()];
    args.extend([
        "--perceptual".to_string(),
        format!("chess={}", enc.display()),
        "--perceptual-weight".into(),
        "0.5".into(),
    ]);
    args.extend(common.iter().map(|a| a.to_string()));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let short_summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(short.join("summary.json")).unwrap()).unwrap();
    assert!(short_summary["perceptual"].as_str().unwrap().starts_with("chess="));
    let loss = jsonl(&short.join("metrics.jsonl"))[0]["train_loss"].as_f64().unwrap();
    assert!(loss.is_finite() && loss > 0.0);

    let json = d.join("compare.json");
    let printed = ok(&["bone-compare", &s(&long), &s(&short), "--json", &s(&json)]);
    assert!(printed.contains("psnr") && printed.contains("ssim") && printed.contains("rmse"), "{printed}");
    let rows: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(rows.len(), 3);
    let psnr_row = &rows[0];
    assert_eq!(psnr_row["metric"], "psnr");
    assert_eq!(psnr_row["n"].as_u64().unwrap() as usize, n_test);
    assert!((psnr_row["mean_a"].as_f64().unwrap() - test).abs() < 1e-9);
    assert!((psnr_row["mean_b"].as_f64().unwrap() - short_summary["test"]["psnr"].as_f64().unwrap()).abs() < 1e-9);
    // t has the sign of mean(A) − mean(B).
    let diff = psnr_row["mean_a"].as_f64().unwrap() - psnr_row["mean_b"].as_f64().unwrap();
    assert_eq!(psnr_row["t"].as_f64().unwrap().signum(), diff.signum());
    let p = psnr_row["p"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));

    // A run on other test images cannot be compared.
    std::fs::write(
        short.join("test_metrics.csv"),
        "key,psnr,ssim,rmse,input_psnr,input_ssim,input_rmse\nother,30,0.9,5,20,0.8,9\nx,31,0.9,5,20,0.8,9\n",
    )
    .unwrap();
    let (code, _, err) = common::chess_train(&["bone-compare", &s(&long), &s(&short)]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("different test images"), "{err}");
}

#[test]
fn unpaired_data_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("plain");
    common::demo_dataset(&data, 6, 32, chess_schemas::PixelDtype::Uint8);
    let (code, _, err) = common::chess_train(&[
        "bone-suppression",
        data.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        "--size",
        "32",
        "--depth",
        "2",
        "--device",
        "cpu",
        "--quiet",
    ]);
    assert_eq!(code, 3, "unreadable input: {err}");
    assert!(err.contains("target") && err.contains("plain"), "{err}");
    // A side the U-Net cannot halve `depth` times is a settings error.
    let (code, _, err) = common::chess_train(&[
        "bone-suppression",
        data.to_str().unwrap(),
        "--out",
        tmp.path().join("o").to_str().unwrap(),
        "--size",
        "36",
        "--depth",
        "3",
        "--device",
        "cpu",
        "--quiet",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("multiple of 8"), "{err}");
}
