//! The bone-suppression configuration: the U-Net, the loss (L1 plus an
//! optional perceptual term), the data split and the run.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::config_file::{read_toml, write_toml};
use crate::losses::perceptual::PerceptualSpec;
use crate::models::unet::{UNet, UNetConfig};
use crate::{Result, TrainError};

/// The loss.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BoneLossConfig {
    /// `none`, `chess=W.safetensors` or `imagenet=W.safetensors`.
    pub perceptual: String,
    /// Weight of the perceptual term next to the L1 term's 1.
    pub perceptual_weight: f64,
}

impl Default for BoneLossConfig {
    fn default() -> Self {
        BoneLossConfig { perceptual: "none".into(), perceptual_weight: 1.0 }
    }
}

/// Data and split.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BoneDataConfig {
    /// Training side (a multiple of 2^depth); images are resized to it.
    pub size: i64,
    pub batch_size: usize,
    /// Without a `split` column: fractions of samples for validation and test.
    pub valid_fraction: f64,
    pub test_fraction: f64,
    /// Loader decode threads (0: the available cores).
    pub decode_threads: usize,
}

impl Default for BoneDataConfig {
    fn default() -> Self {
        BoneDataConfig { size: 512, batch_size: 4, valid_fraction: 0.1, test_fraction: 0.2, decode_threads: 0 }
    }
}

/// Adam and the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BoneRunConfig {
    pub epochs: u64,
    /// Adam's learning rate.
    pub lr: f64,
    pub device: String,
    pub seed: u64,
    /// libtorch CPU threads (0: its default).
    pub threads: i32,
}

impl Default for BoneRunConfig {
    fn default() -> Self {
        BoneRunConfig { epochs: 50, lr: 1e-3, device: "auto".into(), seed: 0, threads: 0 }
    }
}

/// Everything a bone-suppression run needs besides its data and output folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BoneConfig {
    pub model: UNetConfig,
    pub loss: BoneLossConfig,
    pub data: BoneDataConfig,
    pub run: BoneRunConfig,
}

impl BoneConfig {
    /// Reads a TOML file (missing keys keep their defaults; unknown keys are errors).
    pub fn from_file(path: &Path) -> Result<BoneConfig> {
        read_toml(path)
    }

    pub fn to_toml(&self) -> String {
        write_toml(self)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Settings(m));
        UNet::check_size(&self.model, self.data.size).map_err(TrainError::Settings)?;
        if self.data.batch_size < 2 {
            return bad(format!("batch size {}: batch norm needs at least 2", self.data.batch_size));
        }
        if self.run.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if !(self.run.lr.is_finite() && self.run.lr > 0.0) {
            return bad(format!("learning rate {} must be positive", self.run.lr));
        }
        let (v, t) = (self.data.valid_fraction, self.data.test_fraction);
        if !(v >= 0.0 && t > 0.0 && v + t < 1.0) {
            return bad(format!(
                "valid fraction {v} and test fraction {t}: need 0 ≤ valid, 0 < test, valid + test < 1"
            ));
        }
        if !(self.loss.perceptual_weight.is_finite() && self.loss.perceptual_weight >= 0.0) {
            return bad(format!("perceptual weight {} must be ≥ 0", self.loss.perceptual_weight));
        }
        self.perceptual_spec()?;
        Ok(())
    }

    pub fn perceptual_spec(&self) -> Result<PerceptualSpec> {
        self.loss.perceptual.parse().map_err(TrainError::Settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_and_rejects_bad_values() {
        let c = BoneConfig::default();
        let back: BoneConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        assert!(c.validate().is_ok());
        let mut bad = c.clone();
        bad.data.size = 100;
        assert!(bad.validate().unwrap_err().to_string().contains("multiple of 16"));
        let mut bad = c.clone();
        bad.loss.perceptual = "vgg".into();
        assert!(bad.validate().is_err());
    }
}
