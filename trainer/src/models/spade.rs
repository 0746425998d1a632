//! SPADE (Park et al. 2019) networks for nodule generation, 1-channel:
//! spectral-normalised convolutions ([`SnConv`], one power iteration per
//! training forward, as `torch.nn.utils.spectral_norm`, same buffers), SPADE normalisation
//! (parameter-free batch norm modulated by γ, β convolved from the label
//! map), SPADE residual blocks, the generator (five upsamplings from
//! `size/32`, from a VAE code or the downsampled label map), the VAE
//! encoder, and the multiscale PatchGAN discriminator (2 scales, 4 layers,
//! instance norm, leaky ReLU 0.2) with the hinge loss.

use serde::{Deserialize, Serialize};
use tch::nn;
use tch::{Kind, Tensor};

/// A spectral-normalised convolution: the weight used is `W / σ(W)`, σ
/// estimated by power iteration on a persistent `u`.
#[derive(Debug)]
pub struct SnConv {
    weight: Tensor,
    bias: Option<Tensor>,
    u: Tensor,
    v: Tensor,
    stride: i64,
    padding: i64,
}

impl SnConv {
    pub fn new(p: nn::Path<'_>, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64, bias: bool) -> SnConv {
        let fan_in = (c_in * k * k) as f64;
        let bound = 1.0 / fan_in.sqrt();
        let weight = p.var("weight_orig", &[c_out, c_in, k, k], nn::Init::Uniform { lo: -bound, up: bound });
        let bias = bias.then(|| p.var("bias", &[c_out], nn::Init::Uniform { lo: -bound, up: bound }));
        // Buffers, as torch's `weight_u`/`weight_v`: saved with the weights, never trained.
        let u = p.zeros_no_train("weight_u", &[c_out]);
        let v = p.zeros_no_train("weight_v", &[c_in * k * k]);
        tch::no_grad(|| {
            for t in [&u, &v] {
                let n = normalize(&Tensor::randn(t.size(), (Kind::Float, t.device())));
                t.shallow_clone().copy_(&n);
            }
        });
        SnConv { weight, bias, u, v, stride, padding }
    }

    /// `W / σ`, `σ = uᵀ W v`; in training one power-iteration step
    /// (`v ← W̄ᵀu`, `u ← W̄v`, normalised) updates `u` and `v` first.
    pub fn normalised_weight(&self, train: bool) -> Tensor {
        let out = self.weight.size()[0];
        let w = self.weight.view([out, -1]);
        let (u, v) = tch::no_grad(|| {
            let (mut u, mut v) = (self.u.shallow_clone(), self.v.shallow_clone());
            if train {
                let nv = normalize(&w.tr().mv(&u));
                v.copy_(&nv);
                let nu = normalize(&w.mv(&v));
                u.copy_(&nu);
            }
            (u.copy(), v.copy())
        });
        let sigma = u.dot(&w.mv(&v));
        &self.weight / sigma
    }

    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.conv2d(&self.normalised_weight(train), self.bias.as_ref(), [self.stride], [self.padding], [1], 1)
    }
}

fn normalize(x: &Tensor) -> Tensor {
    x / (x.norm().clamp_min(1e-12))
}

/// SPADE: `BN(x)·(1 + γ(seg)) + β(seg)` with a parameter-free batch norm.
#[derive(Debug)]
struct Spade {
    shared: nn::Conv2D,
    gamma: nn::Conv2D,
    beta: nn::Conv2D,
    running: (Tensor, Tensor),
}

impl Spade {
    fn new(p: nn::Path<'_>, c: i64, label_nc: i64, hidden: i64) -> Spade {
        let cfg = nn::ConvConfig { padding: 1, ..Default::default() };
        // NVlabs/SPADE's names: param_free_norm (BatchNorm2d, affine=False), mlp_shared = Sequential(conv, ReLU).
        let pf = &p / "param_free_norm";
        let running = (pf.zeros_no_train("running_mean", &[c]), pf.ones_no_train("running_var", &[c]));
        Spade {
            shared: nn::conv2d(&p / "mlp_shared" / "0", label_nc, hidden, 3, cfg),
            gamma: nn::conv2d(&p / "mlp_gamma", hidden, c, 3, cfg),
            beta: nn::conv2d(&p / "mlp_beta", hidden, c, 3, cfg),
            running,
        }
    }

    fn forward_t(&self, x: &Tensor, seg: &Tensor, train: bool) -> Tensor {
        let s = x.size();
        let normed = x.batch_norm(
            None::<&Tensor>,
            None::<&Tensor>,
            Some(&self.running.0),
            Some(&self.running.1),
            train,
            0.1,
            1e-5,
            false,
        );
        let seg = seg.upsample_nearest2d([s[2], s[3]], None, None);
        let actv = seg.apply(&self.shared).relu();
        normed * (actv.apply(&self.gamma) + 1.0) + actv.apply(&self.beta)
    }
}

/// SPADE's residual block (`SPADEResnetBlock`, NVlabs names): two
/// SPADE-lrelu-conv steps and a learned shortcut when widths differ.
#[derive(Debug)]
pub struct SpadeBlock {
    norm_0: Spade,
    conv_0: SnConv,
    norm_1: Spade,
    conv_1: SnConv,
    shortcut: Option<(Spade, SnConv)>,
}

impl SpadeBlock {
    pub fn new(p: nn::Path<'_>, fin: i64, fout: i64, label_nc: i64, hidden: i64) -> SpadeBlock {
        let fmid = fin.min(fout);
        SpadeBlock {
            norm_0: Spade::new(&p / "norm_0", fin, label_nc, hidden),
            conv_0: SnConv::new(&p / "conv_0", fin, fmid, 3, 1, 1, true),
            norm_1: Spade::new(&p / "norm_1", fmid, label_nc, hidden),
            conv_1: SnConv::new(&p / "conv_1", fmid, fout, 3, 1, 1, true),
            shortcut: (fin != fout).then(|| {
                (
                    Spade::new(&p / "norm_s", fin, label_nc, hidden),
                    SnConv::new(&p / "conv_s", fin, fout, 1, 1, 0, false),
                )
            }),
        }
    }

    /// `x` `[N, fin, h, w]`, `seg` the label map at any size (resized nearest).
    pub fn forward_t(&self, x: &Tensor, seg: &Tensor, train: bool) -> Tensor {
        let xs = match &self.shortcut {
            Some((n, c)) => c.forward_t(&n.forward_t(x, seg, train), train),
            None => x.shallow_clone(),
        };
        let dx = self.conv_0.forward_t(&self.norm_0.forward_t(x, seg, train).lrelu(), train);
        let dx = self.conv_1.forward_t(&self.norm_1.forward_t(&dx, seg, train).lrelu(), train);
        xs + dx
    }
}

/// Leaky ReLU with slope 0.2 (SPADE's).
trait Lrelu {
    fn lrelu(&self) -> Tensor;
}

impl Lrelu for Tensor {
    fn lrelu(&self) -> Tensor {
        self.relu() - (-self).relu() * 0.2
    }
}

/// The networks' shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SpadeConfig {
    /// Generator base width (SPADE's ngf); the head has 16× this.
    pub ngf: i64,
    /// Discriminator base width (ndf).
    pub ndf: i64,
    /// Hidden width of SPADE's γ/β convolutions.
    pub spade_hidden: i64,
    /// Train with the VAE encoder (KL weight 0.05) instead of the label-map input.
    pub vae: bool,
    pub z_dim: i64,
}

impl Default for SpadeConfig {
    fn default() -> Self {
        SpadeConfig { ngf: 64, ndf: 64, spade_hidden: 128, vae: false, z_dim: 256 }
    }
}

/// Label classes (background, nodule).
pub const LABEL_NC: i64 = 2;
/// The generator's upsamplings: it starts at `size / 32`.
pub const UPSAMPLINGS: u32 = 5;

/// SPADE's generator (`num_upsampling_layers = normal`), 1-channel tanh output.
#[derive(Debug)]
pub struct Generator {
    start: i64,
    ngf: i64,
    fc: Option<nn::Linear>,
    input_conv: Option<nn::Conv2D>,
    blocks: Vec<(SpadeBlock, bool)>,
    conv_img: nn::Conv2D,
}

impl Generator {
    pub fn new(p: &nn::Path<'_>, cfg: &SpadeConfig, size: i64) -> Generator {
        let nf = cfg.ngf;
        let start = size >> UPSAMPLINGS;
        let (fc, input_conv) = if cfg.vae {
            (Some(nn::linear(p / "fc", cfg.z_dim, 16 * nf * start * start, Default::default())), None)
        } else {
            (
                None,
                Some(nn::conv2d(p / "fc", LABEL_NC, 16 * nf, 3, nn::ConvConfig { padding: 1, ..Default::default() })),
            )
        };
        let h = cfg.spade_hidden;
        // (block, upsample after it)
        let spec: [(&str, i64, i64, bool); 7] = [
            ("head_0", 16, 16, true),
            ("G_middle_0", 16, 16, false),
            ("G_middle_1", 16, 16, true),
            ("up_0", 16, 8, true),
            ("up_1", 8, 4, true),
            ("up_2", 4, 2, true),
            ("up_3", 2, 1, false),
        ];
        let blocks =
            spec.iter().map(|&(n, a, b, up)| (SpadeBlock::new(p / n, a * nf, b * nf, LABEL_NC, h), up)).collect();
        let conv_img = nn::conv2d(p / "conv_img", nf, 1, 3, nn::ConvConfig { padding: 1, ..Default::default() });
        Generator { start, ngf: nf, fc, input_conv, blocks, conv_img }
    }

    /// Image `[N, 1, size, size]` in [−1, 1] from a one-hot label map `[N, 2, size, size]` (and `z` with the VAE).
    pub fn forward_t(&self, seg: &Tensor, z: Option<&Tensor>, train: bool) -> Tensor {
        let n = seg.size()[0];
        let mut x = match (&self.fc, &self.input_conv, z) {
            (Some(fc), _, Some(z)) => z.apply(fc).view([n, 16 * self.ngf, self.start, self.start]),
            (Some(fc), _, None) => {
                let z = Tensor::randn([n, fc.ws.size()[1]], (Kind::Float, seg.device()));
                z.apply(fc).view([n, 16 * self.ngf, self.start, self.start])
            }
            (None, Some(c), _) => seg.upsample_nearest2d([self.start, self.start], None, None).apply(c),
            (None, None, _) => unreachable!("one input path is built"),
        };
        for (b, up) in &self.blocks {
            x = b.forward_t(&x, seg, train);
            if *up {
                x = x.upsample_nearest2d([x.size()[2] * 2, x.size()[3] * 2], None, None);
            }
        }
        x.lrelu().apply(&self.conv_img).tanh()
    }
}

/// SPADE's ConvEncoder: five stride-2 convs with instance norm, pooled to 4×4, → μ, log σ².
#[derive(Debug)]
pub struct Encoder {
    convs: Vec<SnConv>,
    mu: nn::Linear,
    logvar: nn::Linear,
}

impl Encoder {
    pub fn new(p: &nn::Path<'_>, cfg: &SpadeConfig) -> Encoder {
        let nf = cfg.ndf;
        let widths = [1, nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf];
        // `spectralinstance`: spectral-normalised, bias-free, then instance norm.
        let convs = (0..5)
            .map(|i| SnConv::new(p / format!("layer{}", i + 1) / "0", widths[i], widths[i + 1], 3, 2, 1, false))
            .collect();
        Encoder {
            convs,
            mu: nn::linear(p / "fc_mu", 8 * nf * 16, cfg.z_dim, Default::default()),
            logvar: nn::linear(p / "fc_var", 8 * nf * 16, cfg.z_dim, Default::default()),
        }
    }

    /// (μ, log σ²) of images `[N, 1, H, W]` in [−1, 1].
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut y = x.shallow_clone();
        for c in &self.convs {
            y = instance_norm(&c.forward_t(&y, train)).lrelu();
        }
        let y = y.adaptive_avg_pool2d([4, 4]).flatten(1, -1);
        (y.apply(&self.mu), y.apply(&self.logvar))
    }
}

/// SPADE's `KLDLoss`: `−½ Σ (1 + log σ² − μ² − σ²)`.
pub fn kld(mu: &Tensor, logvar: &Tensor) -> Tensor {
    (logvar + 1.0 - mu.pow_tensor_scalar(2) - logvar.exp()).sum(Kind::Float) * -0.5
}

/// Reparameterisation: `μ + ε·σ`.
pub fn sample_z(mu: &Tensor, logvar: &Tensor) -> Tensor {
    mu + Tensor::randn_like(mu) * (logvar * 0.5).exp()
}

fn instance_norm(x: &Tensor) -> Tensor {
    x.instance_norm(None::<Tensor>, None::<Tensor>, None::<Tensor>, None::<Tensor>, true, 0.1, 1e-5, false)
}

/// pix2pixHD's NLayerDiscriminator with 4 layers (4×4 kernels, padding 2),
/// with NVlabs/SPADE's names and `spectralinstance` norm: a plain first
/// conv, then spectral-normalised bias-free convs + instance norm.
#[derive(Debug)]
struct PatchGan {
    first: nn::Conv2D,
    convs: Vec<SnConv>,
    last: nn::Conv2D,
}

impl PatchGan {
    fn new(p: nn::Path<'_>, c_in: i64, ndf: i64) -> PatchGan {
        let cfg = |stride| nn::ConvConfig { stride, padding: 2, ..Default::default() };
        let first = nn::conv2d(&p / "model0" / "0", c_in, ndf, 4, cfg(2));
        let mut convs = Vec::new();
        let mut nf = ndf;
        for n in 1..4 {
            let prev = nf;
            nf = (nf * 2).min(512);
            let stride = if n == 3 { 1 } else { 2 };
            convs.push(SnConv::new(&p / format!("model{n}") / "0" / "0", prev, nf, 4, stride, 2, false));
        }
        let last = nn::conv2d(&p / "model4" / "0", nf, 1, 4, cfg(1));
        PatchGan { first, convs, last }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.first).lrelu();
        for c in &self.convs {
            y = instance_norm(&c.forward_t(&y, train)).lrelu();
        }
        y.apply(&self.last)
    }
}

/// Two PatchGANs: full resolution and ½ (3×3 average pool, stride 2).
#[derive(Debug)]
pub struct MultiscaleDiscriminator {
    scales: Vec<PatchGan>,
}

impl MultiscaleDiscriminator {
    pub fn new(p: &nn::Path<'_>, cfg: &SpadeConfig) -> MultiscaleDiscriminator {
        MultiscaleDiscriminator {
            scales: (0..2).map(|i| PatchGan::new(p / format!("discriminator_{i}"), LABEL_NC + 1, cfg.ndf)).collect(),
        }
    }

    /// Patch scores per scale for `[label map, image]`.
    pub fn forward_t(&self, seg: &Tensor, image: &Tensor, train: bool) -> Vec<Tensor> {
        let mut x = Tensor::cat(&[seg, image], 1);
        let mut out = Vec::new();
        for (i, d) in self.scales.iter().enumerate() {
            if i > 0 {
                x = x.avg_pool2d([3, 3], [2, 2], [1, 1], false, false, None::<i64>);
            }
            out.push(d.forward_t(&x, train));
        }
        out
    }
}

/// Hinge loss for D: `mean(relu(1 − D(real))) + mean(relu(1 + D(fake)))`, summed over scales.
pub fn d_hinge(real: &[Tensor], fake: &[Tensor]) -> Tensor {
    let mut total = Tensor::zeros([], (Kind::Float, real[0].device()));
    for (r, f) in real.iter().zip(fake) {
        total = total + (r.neg() + 1.0).relu().mean(Kind::Float) + (f + 1.0).relu().mean(Kind::Float);
    }
    total
}

/// Hinge loss for G: `−mean(D(fake))`, summed over scales.
pub fn g_hinge(fake: &[Tensor]) -> Tensor {
    let mut total = Tensor::zeros([], (Kind::Float, fake[0].device()));
    for f in fake {
        total -= f.mean(Kind::Float);
    }
    total
}

/// One-hot label map `[N, 2, H, W]` of a mask `[N, 1, H, W]` (nonzero = nodule).
pub fn one_hot(mask: &Tensor) -> Tensor {
    let m = mask.gt(0.0).to_kind(Kind::Float);
    Tensor::cat(&[&(1.0 - &m), &m], 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn spectral_norm_converges_to_unit_largest_singular_value() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let c = SnConv::new(vs.root() / "c", 3, 5, 3, 1, 1, true);
        let mut w = c.normalised_weight(true);
        for _ in 0..100 {
            w = c.normalised_weight(true);
        }
        // σ_max = √(largest eigenvalue of W·Wᵀ).
        let m = w.view([5, -1]).to_kind(Kind::Double);
        let s = m.mm(&m.tr()).linalg_eigvalsh("L").max().sqrt().double_value(&[]);
        assert!((s - 1.0).abs() < 1e-4, "largest singular value {s}");
        // Eval does not move u.
        let a = c.normalised_weight(false);
        assert!(a.allclose(&c.normalised_weight(false), 0.0, 0.0, false));
    }

    #[test]
    fn shapes_and_hinge_losses() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = SpadeConfig { ngf: 2, ndf: 4, spade_hidden: 8, vae: true, z_dim: 8 };
        let g = Generator::new(&(vs.root() / "g"), &cfg, 32);
        let d = MultiscaleDiscriminator::new(&(vs.root() / "d"), &cfg);
        let e = Encoder::new(&(vs.root() / "e"), &cfg);
        let mask = Tensor::rand([2, 1, 32, 32], (Kind::Float, Device::Cpu)).gt(0.8).to_kind(Kind::Float);
        let seg = one_hot(&mask);
        let img = Tensor::rand([2, 1, 32, 32], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
        let (mu, lv) = e.forward_t(&img, true);
        assert_eq!(mu.size(), vec![2, 8]);
        let fake = g.forward_t(&seg, Some(&sample_z(&mu, &lv)), true);
        assert_eq!(fake.size(), vec![2, 1, 32, 32]);
        let scores = d.forward_t(&seg, &fake, true);
        assert_eq!(scores.len(), 2);
        // Perfect scores give zero hinge loss for D.
        let ones: Vec<Tensor> = scores.iter().map(|s| s.ones_like()).collect();
        let minus: Vec<Tensor> = scores.iter().map(|s| -s.ones_like()).collect();
        assert_eq!(d_hinge(&ones, &minus).double_value(&[]), 0.0);
        assert_eq!(g_hinge(&ones).double_value(&[]), -2.0);
        assert!(kld(&mu.zeros_like(), &lv.zeros_like()).double_value(&[]).abs() < 1e-12);
    }
}
