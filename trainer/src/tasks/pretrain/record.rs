//! What a pretraining run records and reports: one `metrics.jsonl` line per
//! logged step ([`Metrics`]), the caller's progress ([`Progress`]) and how
//! the run ended ([`Summary`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::runtime::throughput::Throughput;

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Metrics {
    pub step: u64,
    pub epoch: u64,
    pub loss: f64,
    pub acc1: f64,
    pub lr: f64,
    pub images_per_s: f64,
    /// Share (0–1) of the logged window's wall time spent waiting for the loader.
    #[serde(default)]
    pub data_wait: f64,
    /// Share (0–1) of the logged window's wall time spent in the optimizer step.
    #[serde(default)]
    pub optimizer: f64,
    pub seconds: f64,
    /// Leave-one-out kNN accuracy (%) on the monitor's manifest, on steps where it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knn_acc: Option<f64>,
}

/// What the caller hears after each step (for a progress bar).
#[derive(Debug, Clone)]
pub struct Progress {
    pub step: u64,
    pub total: u64,
    pub metrics: Metrics,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub run: PathBuf,
    pub steps: u64,
    pub epochs_started: u64,
    pub last_loss: Option<f64>,
    pub last_checkpoint: Option<PathBuf>,
    pub device: String,
    pub seconds: f64,
    /// Over the whole run's training time (the kNN monitor's time excluded).
    pub throughput: Throughput,
}
