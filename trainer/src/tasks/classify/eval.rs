//! Scoring a manifest with the network (eval mode, no augmentation), the
//! batch loss, and the metrics of a scored manifest (mean ROC AUC, or
//! accuracy) from the metrics library.

use chess_shards::loader::{Loader, LoaderOptions, Remainder};
use serde::{Deserialize, Serialize};
use tch::nn::ModuleT;
use tch::{Device, Kind, Reduction, Tensor};

use crate::metrics::classification;
use crate::models::resnet::ResNet;
use crate::tasks::classify::classifier::probabilities;
use crate::tasks::classify::config::{FinetuneConfig, Task};
use crate::tasks::classify::labels::{TargetReader, Targets};
use crate::{data, Result};

/// The loss of a batch: masked mean BCE with logits, or cross-entropy ignoring −100.
pub(crate) fn loss(logits: &Tensor, targets: &Targets, device: Device) -> Option<Tensor> {
    match targets {
        Targets::Multilabel(t) => {
            let y = Tensor::from_slice(t).view([logits.size()[0], logits.size()[1]]).to_device(device);
            let mask = y.isnan().logical_not();
            let n = mask.sum(Kind::Float).double_value(&[]);
            if n == 0.0 {
                return None;
            }
            let yz = y.nan_to_num(0.0, None, None);
            let per = logits.binary_cross_entropy_with_logits::<Tensor>(&yz, None, None, Reduction::None);
            Some((per * mask.to_kind(Kind::Float)).sum(Kind::Float) / n)
        }
        Targets::Multiclass(t) => {
            if t.iter().all(|&v| v < 0) {
                return None;
            }
            let y = Tensor::from_slice(t).to_device(device);
            Some(logits.cross_entropy_loss::<Tensor>(&y, None, Reduction::Mean, -100, 0.0))
        }
    }
}

/// A manifest scored by the model: keys, targets and probabilities, row-major.
#[derive(Debug, Clone, Default)]
pub struct Scored {
    pub keys: Vec<String>,
    pub outputs: usize,
    /// Multi-label: `[N, outputs]`, NaN masked. Multi-class: `[N]` class index as f32, NaN none.
    pub targets: Vec<f32>,
    /// `[N, outputs]` probabilities.
    pub scores: Vec<f32>,
    /// Mean loss over the labelled entries.
    pub loss: f64,
}

impl Scored {
    /// Column `j` of the multi-label targets/scores, masked entries left out.
    pub fn label(&self, j: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut y, mut s) = (Vec::new(), Vec::new());
        for i in 0..self.keys.len() {
            let t = self.targets[i * self.outputs + j];
            if !t.is_nan() {
                y.push(t as f64);
                s.push(self.scores[i * self.outputs + j] as f64);
            }
        }
        (y, s)
    }

    /// Multi-class: (true class, predicted class) of the labelled samples.
    pub fn classes(&self) -> (Vec<usize>, Vec<usize>) {
        let (mut y, mut p) = (Vec::new(), Vec::new());
        for i in 0..self.keys.len() {
            let t = self.targets[i];
            if t.is_nan() {
                continue;
            }
            y.push(t as usize);
            p.push(argmax(&self.scores[i * self.outputs..(i + 1) * self.outputs]));
        }
        (y, p)
    }
}

pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// The metrics of a scored manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Evaluation {
    pub loss: f64,
    /// Multi-label: ROC AUC per label (NaN where a label has one class only).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub auc: Vec<f64>,
    /// Multi-label: mean of the finite per-label AUCs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mean_auc: Option<f64>,
    /// Multi-class.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accuracy: Option<f64>,
    /// Multi-class: `confusion[true][predicted]`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub confusion: Vec<Vec<u64>>,
}

impl Evaluation {
    /// The selection metric (higher is better): mean AUC or accuracy.
    pub fn metric(&self) -> f64 {
        self.mean_auc.or(self.accuracy).unwrap_or(f64::NAN)
    }
}

/// Metrics of `s` for `task`, from the metrics library.
pub fn evaluate(task: Task, s: &Scored) -> Evaluation {
    match task {
        Task::Multilabel => {
            let auc: Vec<f64> = (0..s.outputs)
                .map(|j| {
                    let (y, p) = s.label(j);
                    classification::roc_auc(&y, &p).unwrap_or(f64::NAN)
                })
                .collect();
            let finite: Vec<f64> = auc.iter().copied().filter(|a| a.is_finite()).collect();
            let mean_auc = (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64);
            Evaluation { loss: s.loss, auc, mean_auc, accuracy: None, confusion: Vec::new() }
        }
        Task::Multiclass => {
            let (y, p) = s.classes();
            let accuracy = classification::accuracy(&y, &p).ok();
            let confusion = classification::confusion_matrix(&y, &p, s.outputs).unwrap_or_default();
            Evaluation { loss: s.loss, auc: Vec::new(), mean_auc: None, accuracy, confusion }
        }
    }
}

pub(crate) fn eval_loader_options(cfg: &FinetuneConfig) -> LoaderOptions {
    let mut o = LoaderOptions {
        batch_size: cfg.data.batch_size,
        shuffle: false,
        remainder: Remainder::Drop,
        ..LoaderOptions::default()
    };
    if cfg.data.decode_threads > 0 {
        o.decode_threads = cfg.data.decode_threads;
    }
    o
}

/// Scores every sample of `loader` (eval mode, no augmentation).
pub(crate) fn score(
    net: &ResNet,
    loader: &Loader,
    reader: &TargetReader,
    cfg: &FinetuneConfig,
    device: Device,
    outputs: usize,
) -> Result<Scored> {
    let mut s = Scored { outputs, ..Scored::default() };
    let (mut loss_sum, mut loss_n) = (0.0, 0.0);
    for batch in &mut loader.epoch(0) {
        let batch = batch?;
        let targets = reader.read(&batch)?;
        let x = data::normalise(&data::upload(&batch, device).to_unit(cfg.data.size), cfg.data.mean, cfg.data.std);
        let logits = tch::no_grad(|| net.forward_t(&x, false));
        if let Some(l) = tch::no_grad(|| loss(&logits, &targets, device)) {
            let n = match &targets {
                Targets::Multilabel(t) => t.iter().filter(|v| !v.is_nan()).count(),
                Targets::Multiclass(t) => t.iter().filter(|v| **v >= 0).count(),
            } as f64;
            loss_sum += l.double_value(&[]) * n;
            loss_n += n;
        }
        let p: Vec<f32> = Vec::try_from(probabilities(cfg.labels.task, &logits).to_device(Device::Cpu).flatten(0, -1))?;
        s.scores.extend(p);
        match targets {
            Targets::Multilabel(t) => s.targets.extend(t),
            Targets::Multiclass(t) => s.targets.extend(t.iter().map(|&v| if v < 0 { f32::NAN } else { v as f32 })),
        }
        s.keys.extend(batch.keys.iter().cloned());
    }
    s.loss = if loss_n > 0.0 { loss_sum / loss_n } else { f64::NAN };
    Ok(s)
}
