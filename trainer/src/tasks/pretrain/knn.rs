//! The kNN monitor: how well the current query encoder's pooled features
//! separate the classes of a small labelled manifest, without training a
//! classifier. Every `every` steps the images (held in memory, resized once)
//! are embedded in eval mode, L2-normalised, and each image is classified by
//! leave-one-out weighted kNN over all the others, as the InstDisc / MoCo
//! kNN monitor does: the `k` most cosine-similar neighbours vote for their
//! class with weight `exp(similarity / t)`; the top-scoring class is the
//! prediction (lowest class index on a tie).

use std::collections::BTreeMap;

use chess_shards::loader::{Loader, LoaderOptions};
use chess_shards::manifest::{label_value, LabelValue};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data;
use crate::models::resnet::ResNet;
use crate::tasks::pretrain::moco::normalize;
use crate::{Result, TrainError};

/// Images beyond this make the monitor's in-memory copy too large to be "small".
pub const MAX_IMAGES: usize = 20_000;

/// Settings of the monitor (`[knn]` in the config; off while `manifest` is empty).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct KnnConfig {
    /// Labelled dataset directory, URL or manifest; empty: no monitor.
    pub manifest: String,
    /// Evaluate every N steps (and after the last step).
    pub every: u64,
    /// Neighbours that vote.
    pub k: usize,
    /// Temperature of the vote weights `exp(cos / t)` (MoCo's monitor: 0.1).
    pub temperature: f64,
    /// Manifest column holding the class (empty: the manifest's first label column).
    pub label: String,
    /// Images per forward pass.
    pub batch_size: usize,
}

impl Default for KnnConfig {
    fn default() -> Self {
        KnnConfig { manifest: String::new(), every: 100, k: 20, temperature: 0.1, label: String::new(), batch_size: 64 }
    }
}

impl KnnConfig {
    pub fn enabled(&self) -> bool {
        !self.manifest.is_empty()
    }

    pub fn validate(&self) -> Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        let bad = |m: String| Err(TrainError::Settings(m));
        if self.every == 0 {
            return bad("knn every must be at least 1 step".into());
        }
        if self.k == 0 {
            return bad("knn k must be at least 1".into());
        }
        if self.temperature.is_nan() || self.temperature <= 0.0 {
            return bad(format!("knn temperature {} must be positive", self.temperature));
        }
        if self.batch_size == 0 {
            return bad("knn batch size must be at least 1".into());
        }
        Ok(())
    }
}

/// The labelled images, ready for the encoder.
pub struct KnnMonitor {
    cfg: KnnConfig,
    /// `[N, 1, S, S]` in [0, 1], float16 on the CPU (half the memory of float32).
    images: Tensor,
    /// Class index per image, `[N]` int64.
    labels: Tensor,
    pub classes: Vec<String>,
    pub label_column: String,
}

/// A class name for a label cell; `None` for null (the image is left out).
fn class_name(v: &LabelValue) -> Option<String> {
    match v {
        LabelValue::Null => None,
        LabelValue::Bool(b) => Some(b.to_string()),
        LabelValue::Int(i) => Some(i.to_string()),
        LabelValue::Float(f) if f.is_nan() => None,
        LabelValue::Float(f) => Some(f.to_string()),
        LabelValue::Str(s) => Some(s.clone()),
    }
}

impl KnnMonitor {
    /// Reads every labelled image of `cfg.manifest`, resized to `size`.
    pub fn load(cfg: &KnnConfig, size: i64) -> Result<KnnMonitor> {
        cfg.validate()?;
        let opts = LoaderOptions { batch_size: cfg.batch_size, shuffle: false, ..LoaderOptions::default() };
        let loader = Loader::open(&cfg.manifest, opts)?;
        let place = &cfg.manifest;
        if loader.len() > MAX_IMAGES {
            return Err(TrainError::Dataset {
                location: place.clone(),
                msg: format!("{} images; the kNN monitor holds at most {MAX_IMAGES} in memory", loader.len()),
            });
        }
        let label_column = if cfg.label.is_empty() {
            loader.label_names().first().cloned().ok_or_else(|| TrainError::Dataset {
                location: place.clone(),
                msg: "no label column in the manifest; name one with --knn-label (e.g. view_position)".into(),
            })?
        } else {
            cfg.label.clone()
        };
        let manifest = loader.manifest()?;
        let column = manifest.batch.column_by_name(&label_column).cloned().ok_or_else(|| {
            let names: Vec<String> = manifest.schema.fields().iter().map(|f| f.name().clone()).collect();
            TrainError::Settings(format!("{place}: no column `{label_column}` (columns: {})", names.join(", ")))
        })?;
        let mut images = Vec::new();
        let mut names: Vec<String> = Vec::new();
        for batch in &mut loader.epoch(0) {
            let batch = batch?;
            let keep: Vec<(i64, String)> = batch
                .rows
                .iter()
                .enumerate()
                .filter_map(|(i, &row)| class_name(&label_value(&column, row)).map(|c| (i as i64, c)))
                .collect();
            if keep.is_empty() {
                continue;
            }
            let unit = data::upload(&batch, Device::Cpu).to_unit(size);
            let idx = Tensor::from_slice(&keep.iter().map(|(i, _)| *i).collect::<Vec<_>>());
            images.push(unit.index_select(0, &idx).to_kind(Kind::Half));
            names.extend(keep.into_iter().map(|(_, c)| c));
        }
        let classes: Vec<String> =
            names.iter().cloned().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if names.len() < 2 || classes.len() < 2 {
            return Err(TrainError::Dataset {
                location: place.clone(),
                msg: format!(
                    "the kNN monitor needs at least 2 labelled images in at least 2 classes of `{label_column}` ({} images, {} classes)",
                    names.len(),
                    classes.len()
                ),
            });
        }
        let index: BTreeMap<&String, i64> = classes.iter().enumerate().map(|(i, c)| (c, i as i64)).collect();
        let labels = Tensor::from_slice(&names.iter().map(|c| index[c]).collect::<Vec<_>>());
        tracing::info!(images = names.len(), classes = classes.len(), column = %label_column, "kNN monitor loaded");
        Ok(KnnMonitor { cfg: cfg.clone(), images: Tensor::cat(&images, 0), labels, classes, label_column })
    }

    pub fn len(&self) -> usize {
        self.images.size()[0] as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the monitor runs after step `step` of `total`.
    pub fn due(&self, step: u64, total: u64) -> bool {
        step.is_multiple_of(self.cfg.every) || step == total
    }

    /// Leave-one-out kNN accuracy (%) of `encoder`'s pooled features, in eval
    /// mode on `device`, inputs normalised with `mean`/`std`.
    pub fn accuracy(&self, encoder: &ResNet, device: Device, mean: f64, std: f64) -> f64 {
        let n = self.len() as i64;
        let bs = self.cfg.batch_size as i64;
        let feats: Vec<Tensor> = tch::no_grad(|| {
            (0..n)
                .step_by(bs as usize)
                .map(|s| {
                    let x = self.images.narrow(0, s, bs.min(n - s)).to_device(device).to_kind(Kind::Float);
                    normalize(&encoder.features_t(&data::normalise(&x, mean, std), false), 1).to_device(Device::Cpu)
                })
                .collect()
        });
        let features = Tensor::cat(&feats, 0);
        let pred = knn_predict_loo(
            &features,
            &self.labels,
            self.classes.len() as i64,
            self.cfg.k as i64,
            self.cfg.temperature,
        );
        pred.eq_tensor(&self.labels).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]) * 100.0
    }
}

/// Leave-one-out weighted kNN predictions: `features` `[N, D]` L2-normalised,
/// `labels` `[N]` in `0..classes`; each row's `k` most similar other rows
/// vote `exp(cos / t)` for their class. Returns the predicted class `[N]`.
pub fn knn_predict_loo(features: &Tensor, labels: &Tensor, classes: i64, k: i64, t: f64) -> Tensor {
    tch::no_grad(|| {
        let n = features.size()[0];
        let k = k.min(n - 1).max(1);
        // A row never votes for itself.
        let sim = features.mm(&features.transpose(0, 1)) - Tensor::eye(n, (Kind::Float, features.device())) * 1e9;
        let (weight, index) = sim.topk(k, 1, true, true);
        let neighbour_labels = labels.index_select(0, &index.flatten(0, -1)).view([n, k]);
        let weight = (weight / t).exp();
        let scores =
            Tensor::zeros([n, classes], (Kind::Float, features.device())).scatter_add(1, &neighbour_labels, &weight);
        scores.argmax(1, false)
    })
}
