//! The resolved pretraining configuration: CheSS upstream's defaults, then a
//! TOML file, then command-line flags; saved as `config.toml` in the run.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::augment::AugmentConfig;
use crate::io::config_file::{read_toml, write_toml};
use crate::runtime::amp::Precision;
use crate::tasks::pretrain::knn::KnnConfig;
use crate::tasks::pretrain::moco::MocoConfig;
use crate::{Result, TrainError};

/// SGD and its schedule (`main_moco_ori.py`: `--lr 0.03 --cos`, momentum 0.9, wd 1e-4).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    /// Cosine schedule per epoch; off: constant lr.
    pub cos: bool,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig { lr: 0.03, momentum: 0.9, weight_decay: 1e-4, cos: true }
    }
}

/// Input pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub batch_size: usize,
    /// Side of the square network input; images are resized on the device when it differs.
    pub size: i64,
    /// Normalisation on [0, 1] (CheSS: 0.658, 0.221).
    pub mean: f64,
    pub std: f64,
    /// Loader decode threads (0: the available cores).
    pub decode_threads: usize,
    pub shuffle_buffer: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { batch_size: 256, size: 512, mean: 0.658, std: 0.221, decode_threads: 0, shuffle_buffer: 512 }
    }
}

/// The run itself.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Epochs of the schedule (upstream: 200).
    pub epochs: u64,
    /// Stop after this many steps in all (the schedule still spans `epochs`).
    pub steps: Option<u64>,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: String,
    pub seed: u64,
    /// Save a checkpoint every N steps (0: only at epoch ends and at the end).
    pub checkpoint_every: u64,
    /// Checkpoints kept (the newest).
    pub keep_checkpoints: usize,
    /// Write a metrics line every N steps.
    pub log_every: u64,
    /// CPU threads for libtorch (0: libtorch's default).
    pub threads: i32,
    /// `fp32`, `bf16` or `fp16` (autocast; fp16 with loss scaling; weights, optimizer and queue stay fp32).
    pub precision: Precision,
    /// Channels-last memory order for convolutions (faster with cuDNN).
    pub channels_last: bool,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            epochs: 200,
            steps: None,
            device: "auto".into(),
            seed: 0,
            checkpoint_every: 1000,
            keep_checkpoints: 2,
            log_every: 1,
            threads: 0,
            precision: Precision::Fp32,
            channels_last: false,
        }
    }
}

/// Everything a pretraining run needs besides its input and output paths.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub moco: MocoConfig,
    pub optim: OptimConfig,
    pub data: DataConfig,
    pub run: RunConfig,
    pub augment: AugmentConfig,
    /// The optional kNN monitor (off unless `manifest` is set).
    pub knn: KnnConfig,
}

impl TrainConfig {
    /// Reads a TOML file (missing keys keep their defaults; unknown keys are errors).
    pub fn from_file(path: &Path) -> Result<TrainConfig> {
        read_toml(path)
    }

    pub fn to_toml(&self) -> String {
        write_toml(self)
    }

    /// Checks the combination before any work starts.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Settings(m));
        let b = self.data.batch_size as i64;
        if b < 2 {
            return bad(format!("batch size {b}: MoCo needs at least 2"));
        }
        if self.moco.queue % b != 0 {
            return bad(format!(
                "the queue size {} must be a multiple of the batch size {b} (upstream asserts K % batch == 0)",
                self.moco.queue
            ));
        }
        if self.data.size < 32 {
            return bad(format!("input size {} is too small for a ResNet (at least 32)", self.data.size));
        }
        if self.run.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.data.std.is_nan() || self.data.std <= 0.0 {
            return bad(format!("normalisation std {} must be positive", self.data.std));
        }
        if self.optim.lr < 0.0 {
            return bad(format!("negative learning rate {}", self.optim.lr));
        }
        self.knn.validate()
    }
}
