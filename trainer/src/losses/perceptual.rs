//! The perceptual loss of CheSS's image-to-image tasks (`ResnetLoss`): a
//! frozen ResNet (CheSS or ImageNet weights, eval-mode batch norm) compares
//! an output with its target by the L1 distance of their features after
//! conv1-bn-relu, layer1, layer2, layer3 and layer4, weighted 1/32, 1/16,
//! 1/8, 1/4 and 1.
//!
//! ImageNet weights take a grey input repeated to 3 channels; the importer
//! stores their conv1 summed over R, G, B, which gives exactly that response
//! on a 1-channel input, so both kinds run the same 1-channel network.
//! Images go in as they are (no normalisation), as in CheSS.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use tch::nn::VarStore;
use tch::{Device, Reduction, Tensor};

use crate::io::weights;
use crate::models::encoder::read_encoder;
use crate::models::resnet::{HeadKind, ResNet};
use crate::{Result, TrainError};

/// Weight of the L1 distance at conv1-bn-relu, layer1 … layer4.
pub const LAYER_WEIGHTS: [f64; 5] = [1.0 / 32.0, 1.0 / 16.0, 1.0 / 8.0, 1.0 / 4.0, 1.0];

/// Which network the loss uses: `none`, `chess=W.safetensors` or `imagenet=W.safetensors`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PerceptualSpec {
    None,
    Chess(PathBuf),
    Imagenet(PathBuf),
}

impl FromStr for PerceptualSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "none" {
            return Ok(PerceptualSpec::None);
        }
        match s.split_once('=') {
            Some(("chess", p)) if !p.is_empty() => Ok(PerceptualSpec::Chess(PathBuf::from(p))),
            Some(("imagenet", p)) if !p.is_empty() => Ok(PerceptualSpec::Imagenet(PathBuf::from(p))),
            _ => Err(format!("perceptual loss `{s}`: expected none, chess=W.safetensors or imagenet=W.safetensors")),
        }
    }
}

impl std::fmt::Display for PerceptualSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PerceptualSpec::None => f.write_str("none"),
            PerceptualSpec::Chess(p) => write!(f, "chess={}", p.display()),
            PerceptualSpec::Imagenet(p) => write!(f, "imagenet={}", p.display()),
        }
    }
}

/// The frozen network and its layer weights.
pub struct PerceptualLoss {
    _vs: VarStore,
    net: ResNet,
    pub spec: PerceptualSpec,
}

impl std::fmt::Debug for PerceptualLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerceptualLoss").field("spec", &self.spec).finish()
    }
}

impl PerceptualLoss {
    /// Loads the weights `spec` names onto `device`; `None` for `none`.
    pub fn load(spec: &PerceptualSpec, device: Device) -> Result<Option<PerceptualLoss>> {
        let path: &Path = match spec {
            PerceptualSpec::None => return Ok(None),
            PerceptualSpec::Chess(p) | PerceptualSpec::Imagenet(p) => p,
        };
        if !path.exists() {
            return Err(TrainError::Weights {
                path: path.to_path_buf(),
                msg: "perceptual-loss weights not found".into(),
            });
        }
        // Any encoder `finetune --init` reads: imported safetensors, a run, a PyTorch checkpoint.
        let enc = read_encoder(path)?;
        let mut vs = VarStore::new(device);
        let net = ResNet::new(&vs.root(), enc.arch, HeadKind::None);
        let map = enc.tensors.into_iter().collect();
        weights::load_into(&vs, &map, "", path, true)?;
        vs.freeze();
        Ok(Some(PerceptualLoss { _vs: vs, net, spec: spec.clone() }))
    }

    /// The five feature maps of `x` `[N, 1, H, W]` (eval-mode batch norm).
    pub fn features(&self, x: &Tensor) -> Vec<Tensor> {
        let mut out = Vec::with_capacity(5);
        let c1 = self.net.conv1_relu_t(x, false);
        let mut y = c1.max_pool2d([3, 3], [2, 2], [1, 1], [1, 1], false);
        out.push(c1);
        for layer in 0..4 {
            y = self.net.layers_t(&y, layer, layer + 1, false);
            out.push(y.shallow_clone());
        }
        out
    }

    /// `Σ wᵢ · mean|φᵢ(output) − φᵢ(target)|`; gradients reach `output` only.
    pub fn loss(&self, output: &Tensor, target: &Tensor) -> Tensor {
        let fo = self.features(output);
        let ft = tch::no_grad(|| self.features(target));
        let mut total: Option<Tensor> = None;
        for ((a, b), w) in fo.iter().zip(&ft).zip(LAYER_WEIGHTS) {
            let term = a.l1_loss(b, Reduction::Mean) * w;
            total = Some(match total {
                None => term,
                Some(t) => t + term,
            });
        }
        total.expect("five layers")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print() {
        assert_eq!("none".parse::<PerceptualSpec>().unwrap(), PerceptualSpec::None);
        assert_eq!(
            "chess=a/b.safetensors".parse::<PerceptualSpec>().unwrap(),
            PerceptualSpec::Chess("a/b.safetensors".into())
        );
        assert_eq!("imagenet=w.safetensors".parse::<PerceptualSpec>().unwrap().to_string(), "imagenet=w.safetensors");
        assert!("vgg=w".parse::<PerceptualSpec>().is_err());
        assert!("chess=".parse::<PerceptualSpec>().is_err());
    }

    #[test]
    fn missing_weights_name_the_file() {
        let e =
            PerceptualLoss::load(&PerceptualSpec::Chess("/nonexistent/w.safetensors".into()), Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/w.safetensors"), "{e}");
    }

    #[test]
    fn gradients_reach_the_output_and_not_the_network() {
        tch::manual_seed(0);
        let vs = VarStore::new(Device::Cpu);
        let net = ResNet::new(&vs.root(), crate::models::resnet::Arch::Resnet18, HeadKind::None);
        let mut vs = vs;
        vs.freeze();
        let pl = PerceptualLoss { _vs: vs, net, spec: PerceptualSpec::None };
        let out = Tensor::rand([2, 1, 64, 64], (tch::Kind::Float, Device::Cpu)).set_requires_grad(true);
        let target = Tensor::rand([2, 1, 64, 64], (tch::Kind::Float, Device::Cpu));
        let l = pl.loss(&out, &target);
        assert!(l.double_value(&[]) > 0.0);
        l.backward();
        assert!(out.grad().abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
        assert!(pl.loss(&target, &target).double_value(&[]).abs() < 1e-12);
    }
}
