//! The dilated U-Net of bone suppression: a U-Net (two 3×3 conv-BN-ReLU per
//! level, max-pool down, 2×2 transposed conv up, skip concatenation) whose
//! bottleneck is a chain of dilated 3×3 convolutions (dilations 2, 4, 8 by
//! default) that widens the receptive field without more downsampling, and
//! a global residual: the network predicts `output = source + f(source)`,
//! so `source − output` is the predicted bone image.

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// The U-Net's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UNetConfig {
    /// Channels of the first level (doubled at every level down).
    pub width: i64,
    /// Downsamplings (the input side must be a multiple of 2^depth).
    pub depth: usize,
    /// Dilations of the bottleneck's 3×3 convolutions.
    pub dilations: Vec<i64>,
}

impl Default for UNetConfig {
    fn default() -> Self {
        UNetConfig { width: 32, depth: 4, dilations: vec![2, 4, 8] }
    }
}

#[derive(Debug)]
struct ConvBnRelu {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ConvBnRelu {
    fn new(p: nn::Path<'_>, c_in: i64, c_out: i64, dilation: i64) -> ConvBnRelu {
        let cfg = nn::ConvConfig { padding: dilation, dilation, bias: false, ..Default::default() };
        ConvBnRelu {
            conv: nn::conv2d(&p / "conv", c_in, c_out, 3, cfg),
            bn: nn::batch_norm2d(&p / "bn", c_out, Default::default()),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train).relu()
    }
}

#[derive(Debug)]
struct DoubleConv(ConvBnRelu, ConvBnRelu);

impl DoubleConv {
    fn new(p: nn::Path<'_>, c_in: i64, c_out: i64) -> DoubleConv {
        DoubleConv(ConvBnRelu::new(&p / "0", c_in, c_out, 1), ConvBnRelu::new(&p / "1", c_out, c_out, 1))
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.1.forward_t(&self.0.forward_t(x, train), train)
    }
}

/// A 1-channel in, 1-channel out dilated U-Net.
#[derive(Debug)]
pub struct UNet {
    pub config: UNetConfig,
    down: Vec<DoubleConv>,
    bottleneck: Vec<ConvBnRelu>,
    up: Vec<(nn::ConvTranspose2D, DoubleConv)>,
    head: nn::Conv2D,
}

impl UNet {
    pub fn new(p: &nn::Path<'_>, config: &UNetConfig) -> UNet {
        let w = config.width;
        let mut down = Vec::new();
        let mut c_in = 1;
        for level in 0..config.depth {
            let c = w << level;
            down.push(DoubleConv::new(p / "down" / level.to_string(), c_in, c));
            c_in = c;
        }
        let c_bottom = w << config.depth;
        let mut bottleneck = Vec::new();
        let mut c = c_in;
        for (i, &d) in config.dilations.iter().enumerate() {
            bottleneck.push(ConvBnRelu::new(p / "bottleneck" / i.to_string(), c, c_bottom, d));
            c = c_bottom;
        }
        let mut up = Vec::new();
        for level in (0..config.depth).rev() {
            let skip = w << level;
            let t = nn::conv_transpose2d(
                p / "up" / level.to_string() / "t",
                c,
                skip,
                2,
                nn::ConvTransposeConfig { stride: 2, ..Default::default() },
            );
            up.push((t, DoubleConv::new(p / "up" / level.to_string() / "conv", skip * 2, skip)));
            c = skip;
        }
        // Zero-initialised: training starts from the identity (output = source).
        let zero =
            nn::ConvConfig { ws_init: nn::Init::Const(0.0), bs_init: nn::Init::Const(0.0), ..Default::default() };
        let head = nn::conv2d(p / "head", c, 1, 1, zero);
        UNet { config: config.clone(), down, bottleneck, up, head }
    }

    /// Checks that an input side suits the depth.
    pub fn check_size(config: &UNetConfig, size: i64) -> Result<(), String> {
        let m = 1i64 << config.depth;
        if size <= 0 || size % m != 0 {
            return Err(format!(
                "image side {size} must be a positive multiple of {m} (2^depth, depth {})",
                config.depth
            ));
        }
        if config.width < 1 || config.dilations.is_empty() || config.dilations.iter().any(|&d| d < 1) {
            return Err("U-Net: width must be ≥ 1 and the bottleneck needs at least one dilation, each ≥ 1".into());
        }
        Ok(())
    }
}

impl ModuleT for UNet {
    /// `[N, 1, H, W]` → `[N, 1, H, W]`, `source + f(source)`.
    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        let mut skips = Vec::with_capacity(self.down.len());
        let mut y = x.shallow_clone();
        for d in &self.down {
            let s = d.forward_t(&y, train);
            y = s.max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false);
            skips.push(s);
        }
        if self.bottleneck.is_empty() {
            return x.shallow_clone();
        }
        for b in &self.bottleneck {
            y = b.forward_t(&y, train);
        }
        for (t, conv) in &self.up {
            let s = skips.pop().expect("one skip per level");
            y = conv.forward_t(&Tensor::cat(&[s, t.forward(&y)], 1), train);
        }
        x + self.head.forward(&y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn shapes_round_trip_and_sizes_are_checked() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = UNetConfig { width: 4, depth: 3, dilations: vec![2, 4] };
        let net = UNet::new(&vs.root(), &cfg);
        let x = Tensor::rand([2, 1, 32, 32], (Kind::Float, Device::Cpu));
        // The zero head makes a fresh network the identity.
        assert!(net.forward_t(&x, true).equal(&x));
        assert!(UNet::check_size(&cfg, 32).is_ok());
        assert!(UNet::check_size(&cfg, 36).unwrap_err().contains("multiple of 8"));
        assert!(UNet::check_size(&UNetConfig { dilations: vec![], ..cfg }, 32).is_err());
    }
}
