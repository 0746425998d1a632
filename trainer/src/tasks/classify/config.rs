//! The fine-tuning configuration (CheSS downstream's defaults, then TOML,
//! then flags): the task, the label columns, the network and its init,
//! SGD with the plateau schedule and early stopping, data and run settings.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::augment::AugmentConfig;
use crate::io::config_file::{read_toml, write_toml};
use crate::models::resnet::Arch;
use crate::{Result, TrainError};

/// Multi-class (one softmax over classes) or multi-label (one sigmoid per label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Multiclass,
    Multilabel,
}

impl FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "multiclass" => Ok(Task::Multiclass),
            "multilabel" => Ok(Task::Multilabel),
            o => Err(format!("unknown task `{o}` (multiclass or multilabel)")),
        }
    }
}

/// What an uncertain (−1) raw label becomes: 1 (U-Ones), 0 (U-Zeros) or masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Uncertain {
    Ones,
    Zeros,
    Ignore,
}

impl FromStr for Uncertain {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ones" => Ok(Uncertain::Ones),
            "zeros" => Ok(Uncertain::Zeros),
            "ignore" => Ok(Uncertain::Ignore),
            o => Err(format!("unknown uncertainty policy `{o}` (ones, zeros or ignore)")),
        }
    }
}

/// The network and where its weights start.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub arch: Arch,
    /// `scratch`, `imagenet=W.safetensors`, or a path: an imported or
    /// exported encoder (safetensors), a PyTorch checkpoint, or a pretrain run.
    pub init: String,
    /// Train only `fc` on frozen features (encoder in eval mode).
    pub linear_probe: bool,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig { arch: Arch::Resnet50, init: "scratch".into(), linear_probe: false }
    }
}

/// Which manifest columns are the targets.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LabelConfig {
    pub task: Task,
    /// Multi-label: the labels (`target_<label>` or `<label>` columns; empty:
    /// every `target_*` column). Multi-class: one class column (empty:
    /// `label` or `class`).
    pub labels: Vec<String>,
    /// Raw columns only (`target_*` columns are already resolved).
    pub uncertain: Uncertain,
    /// Multi-class: the classes in output order (empty: the training
    /// manifest's values, sorted).
    pub classes: Vec<String>,
}

impl Default for LabelConfig {
    fn default() -> Self {
        LabelConfig { task: Task::Multilabel, labels: Vec::new(), uncertain: Uncertain::Ones, classes: Vec::new() }
    }
}

/// SGD, the plateau schedule and early stopping.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FtOptimConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// ReduceLROnPlateau on the validation loss (PyTorch's rule: mode min,
    /// relative threshold, reduce after more than `patience` bad epochs).
    pub plateau_factor: f64,
    pub plateau_patience: u64,
    pub plateau_threshold: f64,
    pub min_lr: f64,
    /// Stop after this many epochs without a better validation loss (0: never).
    pub early_stopping_patience: u64,
}

impl Default for FtOptimConfig {
    fn default() -> Self {
        FtOptimConfig {
            lr: 1e-3,
            momentum: 0.9,
            weight_decay: 0.0,
            plateau_factor: 0.5,
            plateau_patience: 10,
            plateau_threshold: 1e-4,
            min_lr: 0.0,
            early_stopping_patience: 20,
        }
    }
}

/// Input pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FtDataConfig {
    pub batch_size: usize,
    /// Network input side (images resized on the device).
    pub size: i64,
    pub mean: f64,
    pub std: f64,
    /// Loader decode threads (0: the available cores).
    pub decode_threads: usize,
}

impl Default for FtDataConfig {
    fn default() -> Self {
        FtDataConfig { batch_size: 32, size: 512, mean: 0.658, std: 0.221, decode_threads: 0 }
    }
}

/// The run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FtRunConfig {
    pub epochs: u64,
    pub device: String,
    pub seed: u64,
    /// libtorch CPU threads (0: its default).
    pub threads: i32,
}

impl Default for FtRunConfig {
    fn default() -> Self {
        FtRunConfig { epochs: 50, device: "auto".into(), seed: 0, threads: 0 }
    }
}

/// Everything a fine-tuning run needs besides its manifests and output folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    pub model: ModelConfig,
    pub labels: LabelConfig,
    pub optim: FtOptimConfig,
    pub data: FtDataConfig,
    pub run: FtRunConfig,
    pub augment: AugmentConfig,
}

impl FinetuneConfig {
    /// Reads a TOML file (missing keys keep their defaults; unknown keys are errors).
    pub fn from_file(path: &Path) -> Result<FinetuneConfig> {
        read_toml(path)
    }

    pub fn to_toml(&self) -> String {
        write_toml(self)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Settings(m));
        if self.data.batch_size < 2 {
            return bad(format!("batch size {}: batch norm needs at least 2", self.data.batch_size));
        }
        if self.data.size < 32 {
            return bad(format!("input size {} is too small for a ResNet (at least 32)", self.data.size));
        }
        if self.run.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.optim.lr.is_nan() || self.optim.lr <= 0.0 {
            return bad(format!("learning rate {} must be positive", self.optim.lr));
        }
        let f = self.optim.plateau_factor;
        if f.is_nan() || f <= 0.0 || f >= 1.0 {
            return bad(format!("plateau factor {} must be in (0, 1)", self.optim.plateau_factor));
        }
        if self.data.std.is_nan() || self.data.std <= 0.0 {
            return bad(format!("normalisation std {} must be positive", self.data.std));
        }
        if self.labels.task == Task::Multiclass && self.labels.labels.len() > 1 {
            return bad(format!("multiclass takes one class column, not {:?}", self.labels.labels));
        }
        parse_init(&self.model.init)?;
        Ok(())
    }
}

/// Where a model's weights start.
#[derive(Debug, Clone, PartialEq)]
pub enum Init {
    Scratch,
    /// Encoder weights from a file or run; `imagenet` only labels it.
    Weights {
        path: PathBuf,
        imagenet: bool,
    },
}

/// `scratch`, `imagenet=PATH`, or `PATH`.
pub fn parse_init(s: &str) -> Result<Init> {
    match s {
        "scratch" => Ok(Init::Scratch),
        "imagenet" => Err(TrainError::Settings(
            "--init imagenet needs the weights as a file (no downloads here): convert torchvision's resnet50 \
             ImageNet state dict with `chess-train import resnet50.pth --out imagenet.safetensors`, then pass \
             --init imagenet=imagenet.safetensors"
                .into(),
        )),
        _ => match s.strip_prefix("imagenet=") {
            Some(p) => Ok(Init::Weights { path: PathBuf::from(p), imagenet: true }),
            None => Ok(Init::Weights { path: PathBuf::from(s), imagenet: false }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_strings_parse() {
        assert_eq!(parse_init("scratch").unwrap(), Init::Scratch);
        assert_eq!(
            parse_init("imagenet=w.safetensors").unwrap(),
            Init::Weights { path: "w.safetensors".into(), imagenet: true }
        );
        assert_eq!(parse_init("runs/a").unwrap(), Init::Weights { path: "runs/a".into(), imagenet: false });
        let e = parse_init("imagenet").unwrap_err().to_string();
        assert!(e.contains("chess-train import"), "{e}");
    }
}
