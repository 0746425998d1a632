//! `chess-train nodule-gen` end to end on demo phantoms with a disc "nodule"
//! mask each: SPADE with the VAE encoder and a perceptual term trains a
//! few steps with finite losses and writes its sample grids and weights;
//! the spectral-normalised convolution equals `torch.nn.utils.spectral_norm`
//! and the SPADE residual block, generator and discriminator NVlabs/SPADE's, with their
//! state-dict names.

use crate::common;

use std::path::Path;

use crate::common::{ok, python};
use chess_schemas::PixelDtype;
use chess_shards::image::Image;
use chess_shards::{demo, DatasetWriter, FinishInfo};

/// Phantoms with a `mask` array: a disc of radius `size/8` at a per-sample place.
fn masked_demo(dir: &Path, count: u64, size: u32) {
    let mut opts = demo::demo_options(PixelDtype::Uint8, 16, false);
    opts.extra_fields = vec!["mask".into()];
    let mut w = DatasetWriter::create(dir, opts).unwrap();
    for i in 0..count {
        let mut s = demo::demo_sample(i, size, PixelDtype::Uint8, false);
        let (cx, cy, r) = (
            (size / 4 + (i as u32 * 7) % (size / 2)) as i64,
            (size / 3 + (i as u32 * 5) % (size / 3)) as i64,
            (size / 8) as i64,
        );
        let data = (0..size as i64 * size as i64)
            .map(|p| ((p % size as i64 - cx).pow(2) + (p / size as i64 - cy).pow(2) <= r * r) as u8)
            .collect();
        s.extras = vec![("mask".into(), Image { dtype: PixelDtype::Uint8, height: size, width: size, data })];
        w.write(&s).unwrap();
    }
    w.finish(FinishInfo {
        tool_version: "chess-train tests".into(),
        deid_method: "synthetic".into(),
        provenance: Default::default(),
    })
    .unwrap();
}

#[test]
fn spade_trains_with_finite_losses_and_writes_sample_grids() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data = d.join("masked");
    masked_demo(&data, 10, 32);
    // A ResNet-18 stand-in for CheSS weights.
    let enc = d.join("enc.safetensors");
    {
        use chess_train::models::resnet::{Arch, HeadKind, ResNet};
        let vs = tch::nn::VarStore::new(tch::Device::Cpu);
        let _net = ResNet::new(&vs.root(), Arch::Resnet18, HeadKind::None);
        chess_train::io::weights::write_atomic(&enc, &chess_train::io::weights::torchvision_state(&vs, 0, true))
            .unwrap();
    }
    let out = d.join("run");
    let perceptual = format!("chess={}", enc.display());
    let printed = ok(&[
        "nodule-gen",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--size",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "2",
        "--ngf",
        "2",
        "--ndf",
        "4",
        "--vae",
        "--perceptual",
        &perceptual,
        "--device",
        "cpu",
    ]);
    assert!(printed.contains("2 epochs") && printed.contains("throughput: "), "{printed}");
    assert!(printed.contains("img/s, data wait") && printed.contains("optimizer"), "{printed}");
    let lines = common::jsonl(&out.join("metrics.jsonl"));
    assert_eq!(lines.len(), 2);
    for e in &lines {
        for k in ["d_loss", "g_loss", "g_gan", "perceptual", "kld"] {
            let v = e[k].as_f64().unwrap_or(f64::NAN);
            assert!(v.is_finite(), "{k} = {v} in {e}");
        }
        // Hinge D loss is ≥ 0; the perceptual and KL terms are active.
        assert!(e["d_loss"].as_f64().unwrap() >= 0.0);
        assert!(e["perceptual"].as_f64().unwrap() > 0.0);
        assert!(e["kld"].as_f64().unwrap() > 0.0);
    }
    // Demo splits of samples 0-9: 0-8 train, 9 valid, no test: the grid shows
    // the first 8 training samples, rows of mask | real | generated at 32².
    let grid = out.join("samples/epoch_002.png");
    let dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&grid).unwrap()));
    let reader = dec.read_info().unwrap();
    let info = reader.info();
    assert_eq!(info.width, 96);
    assert_eq!(info.height, 8 * 32);
    // TensorBoard: the losses and throughput as in metrics.jsonl (9 numbers an epoch) and each epoch's grid.
    assert_eq!(common::assert_tensorboard_matches_jsonl(&out, &["samples/mask_real_generated"]), 2 * 9);
    common::assert_throughput_fields(&out);
    let g: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(out.join("generator.safetensors")).unwrap().into_iter().collect();
    assert!(g.keys().any(|k| k.starts_with("netG.")) && g.keys().any(|k| k.starts_with("netE.")));

    // Without masks the command says what is missing.
    let plain = d.join("plain");
    common::demo_dataset(&plain, 4, 32, PixelDtype::Uint8);
    let (code, _, err) = common::chess_train(&[
        "nodule-gen",
        plain.to_str().unwrap(),
        "--out",
        d.join("o").to_str().unwrap(),
        "--size",
        "32",
        "--device",
        "cpu",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("mask"), "{err}");
}

/// `spectral_norm(Conv2d(3, 5, 3, padding=1))`: its state dict, an input,
/// the training-mode output and the updated `weight_u`, then the eval-mode output.
const SPECTRAL_REFERENCE: &str = r#"
import sys, torch
from safetensors.torch import save_file
torch.manual_seed(0)
conv = torch.nn.utils.spectral_norm(torch.nn.Conv2d(3, 5, 3, padding=1))
state = {k: v.clone().contiguous() for k, v in conv.state_dict().items()}
x = torch.randn(2, 3, 8, 8)
conv.train(); y = conv(x)
u_after = conv.weight_u.clone()
conv.eval(); y_eval = conv(x)
save_file({**{"c." + k: v for k, v in state.items()}, "x": x, "y": y.detach(), "u_after": u_after, "y_eval": y_eval.detach()}, sys.argv[1])
"#;

#[test]
fn spectral_norm_conv_equals_pytorch() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("sn.safetensors");
    let out = std::process::Command::new(python()).arg("-c").arg(SPECTRAL_REFERENCE).arg(&file).output().unwrap();
    assert!(out.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&file).unwrap().into_iter().collect();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let conv = chess_train::models::spade::SnConv::new(vs.root() / "c", 3, 5, 3, 1, 1, true);
    // PyTorch's names (weight_orig, weight_u, bias); its weight_v is recomputed here, not stored.
    chess_train::io::weights::load_into(&vs, &r, "", &file, false).unwrap();
    let max_diff = common::rel_diff;
    let y = conv.forward_t(&r["x"], true);
    assert!(max_diff(&y, &r["y"]) < 1e-5, "training output differs by {}", max_diff(&y, &r["y"]));
    let u: std::collections::HashMap<String, tch::Tensor> = vs.variables().into_iter().collect();
    assert!(max_diff(&u["c.weight_u"], &r["u_after"]) < 1e-6, "u after one power iteration");
    let y_eval = conv.forward_t(&r["x"], false);
    assert!(max_diff(&y_eval, &r["y_eval"]) < 1e-5, "eval output differs by {}", max_diff(&y_eval, &r["y_eval"]));
}

/// NVlabs/SPADE's `SPADE` (hidden 8 here) and `SPADEResnetBlock` (spectral convs).
const SPADE_CLASSES: &str = r#"
import sys, torch
import torch.nn as nn, torch.nn.functional as F
from torch.nn.utils import spectral_norm
from safetensors.torch import save_file
torch.manual_seed(0)

class SPADE(nn.Module):
    def __init__(self, norm_nc, label_nc, nhidden=8):
        super().__init__()
        self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=False)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        segmap = F.interpolate(segmap, size=x.size()[2:], mode='nearest')
        actv = self.mlp_shared(segmap)
        return normalized * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)

class SPADEResnetBlock(nn.Module):
    def __init__(self, fin, fout, label_nc):
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = spectral_norm(nn.Conv2d(fin, fmiddle, 3, padding=1))
        self.conv_1 = spectral_norm(nn.Conv2d(fmiddle, fout, 3, padding=1))
        if self.learned_shortcut:
            self.conv_s = spectral_norm(nn.Conv2d(fin, fout, 1, bias=False))
        self.norm_0 = SPADE(fin, label_nc); self.norm_1 = SPADE(fmiddle, label_nc)
        if self.learned_shortcut:
            self.norm_s = SPADE(fin, label_nc)
    def forward(self, x, seg):
        x_s = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 2e-1))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 2e-1))
        return x_s + dx

"#;

/// A block with 2 label classes, fin 6 → fout 4 (so the learned shortcut
/// runs): state dict, inputs, training-mode output, then eval-mode output.
const BLOCK_SCRIPT: &str = r#"
blk = SPADEResnetBlock(6, 4, 2)
state = {"b." + k: v.clone().contiguous() for k, v in blk.state_dict().items()}
x = torch.randn(2, 6, 8, 8)
m = (torch.rand(2, 1, 16, 16) > 0.7).float()
seg = torch.cat([1 - m, m], 1)
blk.train(); y = blk(x, seg)
blk.eval(); y_eval = blk(x, seg)
save_file({**state, "x": x, "seg": seg, "y": y.detach(), "y_eval": y_eval.detach()}, sys.argv[1])
"#;

#[test]
fn spade_resnet_block_equals_nvlabs_spade() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("spade.safetensors");
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(format!("{SPADE_CLASSES}{BLOCK_SCRIPT}"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&file).unwrap().into_iter().collect();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let blk = chess_train::models::spade::SpadeBlock::new(vs.root() / "b", 6, 4, 2, 8);
    // Every variable here is read by PyTorch's name (a missing one is an error), and
    // every PyTorch tensor under `b.` has its place here (num_batches_tracked aside).
    chess_train::io::weights::load_into(&vs, &r, "", &file, false).unwrap();
    let ours: std::collections::HashSet<String> = vs.variables().into_keys().collect();
    for k in r.keys().filter(|k| k.starts_with("b.") && !k.ends_with("num_batches_tracked")) {
        assert!(ours.contains(k), "PyTorch's `{k}` has no counterpart");
    }
    let max_diff = common::rel_diff;
    let y = blk.forward_t(&r["x"], &r["seg"], true);
    assert!(max_diff(&y, &r["y"]) < 1e-4, "training output differs by {}", max_diff(&y, &r["y"]));
    // Eval: the running statistics and power-iteration vectors the training step left.
    let y_eval = blk.forward_t(&r["x"], &r["seg"], false);
    assert!(max_diff(&y_eval, &r["y_eval"]) < 1e-4, "eval output differs by {}", max_diff(&y_eval, &r["y_eval"]));
}

/// NVlabs/SPADE's `SPADEGenerator` (`num_upsampling_layers=normal`, label-map
/// input, ngf 2, 1 output channel, hidden 8) at 32².
const GENERATOR_SCRIPT: &str = r#"
class SPADEGenerator(nn.Module):
    def __init__(self, nf=2, label_nc=2, size=32):
        super().__init__()
        self.sw = self.sh = size // 2 ** 5
        self.fc = nn.Conv2d(label_nc, 16 * nf, 3, padding=1)
        self.head_0 = SPADEResnetBlock(16 * nf, 16 * nf, label_nc)
        self.G_middle_0 = SPADEResnetBlock(16 * nf, 16 * nf, label_nc)
        self.G_middle_1 = SPADEResnetBlock(16 * nf, 16 * nf, label_nc)
        self.up_0 = SPADEResnetBlock(16 * nf, 8 * nf, label_nc)
        self.up_1 = SPADEResnetBlock(8 * nf, 4 * nf, label_nc)
        self.up_2 = SPADEResnetBlock(4 * nf, 2 * nf, label_nc)
        self.up_3 = SPADEResnetBlock(2 * nf, 1 * nf, label_nc)
        self.conv_img = nn.Conv2d(nf, 1, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
    def forward(self, seg):
        x = F.interpolate(seg, size=(self.sh, self.sw))
        x = self.fc(x)
        x = self.head_0(x, seg); x = self.up(x)
        x = self.G_middle_0(x, seg); x = self.G_middle_1(x, seg)
        x = self.up(x); x = self.up_0(x, seg)
        x = self.up(x); x = self.up_1(x, seg)
        x = self.up(x); x = self.up_2(x, seg)
        x = self.up(x); x = self.up_3(x, seg)
        return torch.tanh(self.conv_img(F.leaky_relu(x, 2e-1)))

g = SPADEGenerator()
state = {"g." + k: v.clone().contiguous() for k, v in g.state_dict().items()}
m = (torch.rand(2, 1, 32, 32) > 0.8).float()
seg = torch.cat([1 - m, m], 1)
g.train(); y = g(seg)
save_file({**state, "seg": seg, "y": y.detach()}, sys.argv[1])
"#;

#[test]
fn spade_generator_equals_nvlabs_spade() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("gen.safetensors");
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(format!("{SPADE_CLASSES}{GENERATOR_SCRIPT}"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&file).unwrap().into_iter().collect();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let cfg = chess_train::models::spade::SpadeConfig { ngf: 2, ndf: 4, spade_hidden: 8, vae: false, z_dim: 8 };
    let g = chess_train::models::spade::Generator::new(&(vs.root() / "g"), &cfg, 32);
    chess_train::io::weights::load_into(&vs, &r, "", &file, false).unwrap();
    let ours: std::collections::HashSet<String> = vs.variables().into_keys().collect();
    for k in r.keys().filter(|k| k.starts_with("g.") && !k.ends_with("num_batches_tracked")) {
        assert!(ours.contains(k), "PyTorch's `{k}` has no counterpart");
    }
    let y = g.forward_t(&r["seg"], None, true);
    let d = common::rel_diff(&y, &r["y"]);
    assert!(d < common::F32_DEEP, "generator output differs by {d}");
}

/// NVlabs/SPADE's `MultiscaleDiscriminator` of two `NLayerDiscriminator`s
/// (n_layers_D 4, ndf 4, norm_D spectralinstance, input label map + image).
const DISCRIMINATOR_SCRIPT: &str = r#"
import numpy as np
def spectralinstance(layer):
    layer = spectral_norm(layer)
    delattr(layer, 'bias'); layer.register_parameter('bias', None)
    return nn.Sequential(layer, nn.InstanceNorm2d(layer.out_channels, affine=False))

class NLayerDiscriminator(nn.Module):
    def __init__(self, input_nc=3, ndf=4, n_layers=4):
        super().__init__()
        kw = 4; padw = int(np.ceil((kw - 1.0) / 2)); nf = ndf
        sequence = [[nn.Conv2d(input_nc, nf, kernel_size=kw, stride=2, padding=padw), nn.LeakyReLU(0.2, False)]]
        for n in range(1, n_layers):
            nf_prev = nf; nf = min(nf * 2, 512)
            stride = 1 if n == n_layers - 1 else 2
            sequence += [[spectralinstance(nn.Conv2d(nf_prev, nf, kernel_size=kw, stride=stride, padding=padw)), nn.LeakyReLU(0.2, False)]]
        sequence += [[nn.Conv2d(nf, 1, kernel_size=kw, stride=1, padding=padw)]]
        for n in range(len(sequence)):
            self.add_module('model' + str(n), nn.Sequential(*sequence[n]))
    def forward(self, x):
        for m in self.children(): x = m(x)
        return x

class MultiscaleDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        for i in range(2): self.add_module('discriminator_%d' % i, NLayerDiscriminator())
    def forward(self, x):
        out = []
        for d in self.children():
            out.append(d(x))
            x = F.avg_pool2d(x, kernel_size=3, stride=2, padding=[1, 1], count_include_pad=False)
        return out

d = MultiscaleDiscriminator()
state = {"d." + k: v.clone().contiguous() for k, v in d.state_dict().items()}
m = (torch.rand(2, 1, 32, 32) > 0.8).float()
seg = torch.cat([1 - m, m], 1)
img = torch.rand(2, 1, 32, 32) * 2 - 1
d.train(); y0, y1 = d(torch.cat([seg, img], 1))
save_file({**state, "seg": seg, "img": img, "y0": y0.detach(), "y1": y1.detach()}, sys.argv[1])
"#;

#[test]
fn multiscale_discriminator_equals_nvlabs_spade() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("disc.safetensors");
    let out = std::process::Command::new(python())
        .arg("-c")
        .arg(format!("{SPADE_CLASSES}{DISCRIMINATOR_SCRIPT}"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "reference failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let r: std::collections::HashMap<String, tch::Tensor> =
        tch::Tensor::read_safetensors(&file).unwrap().into_iter().collect();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let cfg = chess_train::models::spade::SpadeConfig { ngf: 2, ndf: 4, spade_hidden: 8, vae: false, z_dim: 8 };
    let d = chess_train::models::spade::MultiscaleDiscriminator::new(&(vs.root() / "d"), &cfg);
    chess_train::io::weights::load_into(&vs, &r, "", &file, false).unwrap();
    let ours: std::collections::HashSet<String> = vs.variables().into_keys().collect();
    for k in r.keys().filter(|k| k.starts_with("d.")) {
        assert!(ours.contains(k), "PyTorch's `{k}` has no counterpart");
    }
    let y = d.forward_t(&r["seg"], &r["img"], true);
    assert_eq!(y.len(), 2);
    for (got, want) in y.iter().zip([&r["y0"], &r["y1"]]) {
        assert_eq!(got.size(), want.size());
        let diff = common::rel_diff(got, want);
        assert!(diff < common::F32_DEEP, "discriminator output differs by {diff}");
    }
}
