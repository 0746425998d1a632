//! ResNet-18 and ResNet-50 with a 1-channel `conv1`, laid out exactly like
//! torchvision's (`conv1`, `bn1`, `layer1.0.conv1`, …, `fc`), so that a
//! checkpoint's names are torchvision's and weights move both ways.
//!
//! Initialisation is torchvision's: convolutions Kaiming normal, fan-out,
//! ReLU gain; batch norms weight 1, bias 0; linear layers PyTorch's default
//! (uniform ±1/√fan_in for weights and biases). tch's own conv default
//! (Kaiming uniform, fan-in) is deliberately not used.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// Which ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    Resnet18,
    Resnet50,
}

impl Arch {
    /// Width of the pooled features (input of `fc`).
    pub fn feature_dim(self) -> i64 {
        match self {
            Arch::Resnet18 => 512,
            Arch::Resnet50 => 2048,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::Resnet18 => "resnet18",
            Arch::Resnet50 => "resnet50",
        }
    }
}

impl FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "resnet18" => Ok(Arch::Resnet18),
            "resnet50" => Ok(Arch::Resnet50),
            other => Err(format!("unknown architecture `{other}` (resnet18 or resnet50)")),
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// torchvision's conv init: `kaiming_normal_(mode="fan_out", nonlinearity="relu")`.
const CONV_INIT: nn::Init = nn::Init::Kaiming {
    dist: nn::init::NormalOrUniform::Normal,
    fan: nn::init::FanInOut::FanOut,
    non_linearity: nn::init::NonLinearity::ReLU,
};

fn conv(p: nn::Path<'_>, c_in: i64, c_out: i64, k: i64, stride: i64, padding: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig { stride, padding, bias: false, ws_init: CONV_INIT, ..Default::default() };
    nn::conv2d(p, c_in, c_out, k, cfg)
}

fn bn(p: nn::Path<'_>, c: i64) -> nn::BatchNorm {
    // PyTorch defaults: eps 1e-5, momentum 0.1, weight 1, bias 0.
    let cfg = nn::BatchNormConfig {
        eps: 1e-5,
        momentum: 0.1,
        ws_init: nn::Init::Const(1.),
        bs_init: nn::Init::Const(0.),
        ..Default::default()
    };
    nn::batch_norm2d(p, c, cfg)
}

/// `nn.Linear` with PyTorch's default init.
pub fn linear(p: nn::Path<'_>, c_in: i64, c_out: i64) -> nn::Linear {
    let bound = 1.0 / (c_in as f64).sqrt();
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Uniform { lo: -bound, up: bound },
        bs_init: Some(nn::Init::Uniform { lo: -bound, up: bound }),
        bias: true,
    };
    nn::linear(p, c_in, c_out, cfg)
}

#[derive(Debug)]
struct Downsample {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

#[derive(Debug)]
struct Block {
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    conv2: nn::Conv2D,
    bn2: nn::BatchNorm,
    /// Bottleneck only.
    conv3: Option<(nn::Conv2D, nn::BatchNorm)>,
    downsample: Option<Downsample>,
}

impl Block {
    fn basic(p: nn::Path<'_>, c_in: i64, c_out: i64, stride: i64) -> Block {
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample {
            conv: conv(&p / "downsample" / "0", c_in, c_out, 1, stride, 0),
            bn: bn(&p / "downsample" / "1", c_out),
        });
        Block {
            conv1: conv(&p / "conv1", c_in, c_out, 3, stride, 1),
            bn1: bn(&p / "bn1", c_out),
            conv2: conv(&p / "conv2", c_out, c_out, 3, 1, 1),
            bn2: bn(&p / "bn2", c_out),
            conv3: None,
            downsample,
        }
    }

    /// torchvision's Bottleneck (v1.5: the stride is on the 3×3 conv).
    fn bottleneck(p: nn::Path<'_>, c_in: i64, width: i64, stride: i64) -> Block {
        let c_out = width * 4;
        let downsample = (stride != 1 || c_in != c_out).then(|| Downsample {
            conv: conv(&p / "downsample" / "0", c_in, c_out, 1, stride, 0),
            bn: bn(&p / "downsample" / "1", c_out),
        });
        Block {
            conv1: conv(&p / "conv1", c_in, width, 1, 1, 0),
            bn1: bn(&p / "bn1", width),
            conv2: conv(&p / "conv2", width, width, 3, stride, 1),
            bn2: bn(&p / "bn2", width),
            conv3: Some((conv(&p / "conv3", width, c_out, 1, 1, 0), bn(&p / "bn3", c_out))),
            downsample,
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut y = x.apply(&self.conv1).apply_t(&self.bn1, train).relu();
        y = y.apply(&self.conv2).apply_t(&self.bn2, train);
        if let Some((c3, b3)) = &self.conv3 {
            y = y.relu().apply(c3).apply_t(b3, train);
        }
        let identity = match &self.downsample {
            Some(d) => x.apply(&d.conv).apply_t(&d.bn, train),
            None => x.shallow_clone(),
        };
        (y + identity).relu()
    }
}

/// The head on top of the pooled features.
#[derive(Debug)]
pub enum Head {
    /// No `fc`: the model outputs the pooled features.
    None,
    /// `fc` = Linear(features, dim).
    Linear(nn::Linear),
    /// MoCo v2's `fc` = Sequential(Linear(f, f), ReLU, Linear(f, dim)): names `fc.0`, `fc.2`.
    Mlp(nn::Linear, nn::Linear),
}

/// A 1-channel ResNet.
#[derive(Debug)]
pub struct ResNet {
    pub arch: Arch,
    conv1: nn::Conv2D,
    bn1: nn::BatchNorm,
    layers: Vec<Vec<Block>>,
    pub head: Head,
}

/// What head to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    None,
    Linear(i64),
    Mlp(i64),
}

impl ResNet {
    /// Builds the model under `p` (use the VarStore's root for torchvision names).
    pub fn new(p: &nn::Path<'_>, arch: Arch, head: HeadKind) -> ResNet {
        let conv1 = conv(p / "conv1", 1, 64, 7, 2, 3);
        let bn1 = bn(p / "bn1", 64);
        let (counts, bottleneck) = match arch {
            Arch::Resnet18 => ([2, 2, 2, 2], false),
            Arch::Resnet50 => ([3, 4, 6, 3], true),
        };
        let mut c_in = 64;
        let mut layers = Vec::new();
        for (li, &n) in counts.iter().enumerate() {
            let width = 64 << li;
            let lp = p / format!("layer{}", li + 1);
            let mut blocks = Vec::new();
            for bi in 0..n {
                let stride = if li > 0 && bi == 0 { 2 } else { 1 };
                let bp = &lp / bi.to_string();
                let b = if bottleneck {
                    Block::bottleneck(bp, c_in, width, stride)
                } else {
                    Block::basic(bp, c_in, width, stride)
                };
                c_in = if bottleneck { width * 4 } else { width };
                blocks.push(b);
            }
            layers.push(blocks);
        }
        let f = arch.feature_dim();
        let head = match head {
            HeadKind::None => Head::None,
            HeadKind::Linear(dim) => Head::Linear(linear(p / "fc", f, dim)),
            HeadKind::Mlp(dim) => Head::Mlp(linear(p / "fc" / "0", f, f), linear(p / "fc" / "2", f, dim)),
        };
        ResNet { arch, conv1, bn1, layers, head }
    }

    /// Pooled features `[N, feature_dim]` of `x` `[N, 1, H, W]`.
    pub fn features_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.feature_map_t(x, train).adaptive_avg_pool2d([1, 1]).flatten(1, -1)
    }

    /// layer4's output `[N, feature_dim, H/32, W/32]` (before pooling; Grad-CAM's default layer).
    pub fn feature_map_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.layers_t(&self.stem_t(x, train), 0, 4, train)
    }

    /// conv1, bn1, ReLU, max pool: the input of layer1.
    pub fn stem_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.conv1_relu_t(x, train).max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false)
    }

    /// conv1, bn1, ReLU (before the max pool): the perceptual loss's first feature map.
    pub fn conv1_relu_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv1).apply_t(&self.bn1, train).relu()
    }

    /// Runs `layer{from+1}` … `layer{to}` on `y` (0 ≤ from ≤ to ≤ 4): the
    /// output of layer `k` is `layers_t(stem, 0, k)`, and `layers_t(that, k, 4)` continues it.
    pub fn layers_t(&self, y: &Tensor, from: usize, to: usize, train: bool) -> Tensor {
        let mut y = y.shallow_clone();
        for layer in &self.layers[from..to] {
            for b in layer {
                y = b.forward_t(&y, train);
            }
        }
        y
    }

    /// The head applied to pooled features.
    pub fn head(&self, f: Tensor) -> Tensor {
        match &self.head {
            Head::None => f,
            Head::Linear(l) => l.forward(&f),
            Head::Mlp(a, b) => b.forward(&a.forward(&f).relu()),
        }
    }
}

impl ModuleT for ResNet {
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.head(self.features_t(x, train))
    }
}
