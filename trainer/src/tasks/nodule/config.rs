//! The nodule-generation configuration: SPADE's networks, the loss weights
//! and the run (SPADE's defaults: Adam 2e-4, betas (0, 0.9)).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::config_file::{read_toml, write_toml};
use crate::losses::perceptual::PerceptualSpec;
use crate::models::spade::SpadeConfig;
use crate::{Result, TrainError};

/// Loss weights.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NoduleLossConfig {
    /// `none`, `chess=W.safetensors` or `imagenet=W.safetensors`.
    pub perceptual: String,
    pub perceptual_weight: f64,
    pub kld_weight: f64,
}

impl Default for NoduleLossConfig {
    fn default() -> Self {
        NoduleLossConfig { perceptual: "none".into(), perceptual_weight: 10.0, kld_weight: 0.05 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NoduleRunConfig {
    /// Image side (a multiple of 32: the generator starts at size/32).
    pub size: i64,
    pub batch_size: usize,
    pub epochs: u64,
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub device: String,
    pub seed: u64,
    pub threads: i32,
}

impl Default for NoduleRunConfig {
    fn default() -> Self {
        NoduleRunConfig {
            size: 256,
            batch_size: 4,
            epochs: 50,
            lr: 2e-4,
            beta1: 0.0,
            beta2: 0.9,
            device: "auto".into(),
            seed: 0,
            threads: 0,
        }
    }
}

/// Everything a nodule-generation run needs besides its data and output folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NoduleConfig {
    pub model: SpadeConfig,
    pub loss: NoduleLossConfig,
    pub run: NoduleRunConfig,
}

impl NoduleConfig {
    pub fn from_file(path: &Path) -> Result<NoduleConfig> {
        read_toml(path)
    }

    pub fn to_toml(&self) -> String {
        write_toml(self)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Settings(m));
        if self.run.size < 32 || self.run.size % 32 != 0 {
            return bad(format!("image side {} must be a positive multiple of 32", self.run.size));
        }
        if self.run.batch_size < 2 {
            return bad(format!("batch size {}: batch norm needs at least 2", self.run.batch_size));
        }
        if self.run.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if !(self.run.lr.is_finite() && self.run.lr > 0.0) {
            return bad(format!("learning rate {} must be positive", self.run.lr));
        }
        if !(self.loss.perceptual_weight >= 0.0 && self.loss.kld_weight >= 0.0) {
            return bad(format!(
                "loss weights must be ≥ 0 (perceptual {}, KL {})",
                self.loss.perceptual_weight, self.loss.kld_weight
            ));
        }
        if !((0.0..1.0).contains(&self.run.beta1) && (0.0..1.0).contains(&self.run.beta2)) {
            return bad(format!("Adam betas ({}, {}) must be in [0, 1)", self.run.beta1, self.run.beta2));
        }
        if self.model.ngf < 1 || self.model.ndf < 1 || self.model.spade_hidden < 1 || self.model.z_dim < 1 {
            return bad("ngf, ndf, spade_hidden and z_dim must be at least 1".into());
        }
        self.loss.perceptual.parse::<PerceptualSpec>().map_err(TrainError::Settings)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_are_spade_and_bad_values_are_refused() {
        let c = NoduleConfig::default();
        assert!(c.validate().is_ok());
        assert_eq!(
            (c.run.lr, c.run.beta1, c.run.beta2, c.loss.perceptual_weight, c.loss.kld_weight),
            (2e-4, 0.0, 0.9, 10.0, 0.05)
        );
        let back: NoduleConfig = toml::from_str(&c.to_toml()).unwrap();
        assert_eq!(back, c);
        let mut bad = c.clone();
        bad.run.size = 48;
        assert!(bad.validate().unwrap_err().to_string().contains("multiple of 32"));
        let mut bad = c.clone();
        bad.loss.kld_weight = -1.0;
        assert!(bad.validate().is_err());
        let mut bad = c;
        bad.run.beta2 = 1.0;
        assert!(bad.validate().is_err());
    }
}
