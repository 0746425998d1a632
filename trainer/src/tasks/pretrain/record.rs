//! What a pretraining run records and reports: one `metrics.jsonl` line per
//! logged step ([`Metrics`]), the caller's progress ([`Progress`]) and how
//! the run ended ([`Summary`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    /// Training images per second over the whole run (the kNN monitor's time excluded).
    pub images_per_s: f64,
    /// Shares (0–1) of training time waiting for the loader and in the optimizer.
    pub data_wait: f64,
    pub optimizer: f64,
}

/// The share of step time above which a run warns that the loader starves it.
pub const DATA_WAIT_WARN: f64 = 0.10;

impl Summary {
    /// When the run waited for data more than [`DATA_WAIT_WARN`] of its
    /// training time: what to say, naming the setting to raise.
    pub fn data_wait_advice(&self) -> Option<String> {
        (self.data_wait > DATA_WAIT_WARN).then(|| {
            format!(
                "the loader kept {} waiting {:.0}% of the training time (over {:.0}%): raise `decode_threads` \
                 in the config's [data] section (0 = one per core) or read the dataset from faster storage",
                self.device,
                100.0 * self.data_wait,
                100.0 * DATA_WAIT_WARN
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_wait_over_ten_percent_names_the_setting() {
        let mut s = Summary {
            run: PathBuf::from("r"),
            steps: 1,
            epochs_started: 1,
            last_loss: None,
            last_checkpoint: None,
            device: "cpu".into(),
            seconds: 1.0,
            images_per_s: 10.0,
            data_wait: 0.25,
            optimizer: 0.1,
        };
        let a = s.data_wait_advice().unwrap();
        assert!(a.contains("25%") && a.contains("decode_threads"), "{a}");
        s.data_wait = 0.05;
        assert!(s.data_wait_advice().is_none());
    }
}
