//! Downstream classification (CheSS's fine-tuning protocol): a ResNet with a
//! linear `fc` head trained on a training manifest, selected on a validation
//! manifest, and scored on a test manifest.
//!
//! Defaults follow CheSS downstream: BCE with logits (multi-label) or
//! cross-entropy (multi-class), SGD lr 1e-3 momentum 0.9,
//! ReduceLROnPlateau(factor 0.5, patience 10) on the validation loss, early
//! stopping on the validation loss, the best epoch chosen by the validation
//! metric (mean ROC AUC, or accuracy). Labels come from manifest columns:
//! `target_<label>` (resolved by `chess-shards fractions`, null = masked),
//! a raw CheXpert column (1, 0, −1 uncertain, blank; `uncertain` decides
//! −1, blank is negative), or one class column for multi-class (what
//! `chess-shards balance` keeps).
//!
//! A run directory holds `config.toml` (resolved), `metrics.jsonl` (one line
//! per epoch), `curves.png`, `best.safetensors` + `model.json` (the
//! classifier [`ModelCard`] that `predict` and `gradcam` read),
//! `predictions.csv` and `summary.json` (test metrics).

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use chess_shards::loader::{Batch, Loader, LoaderOptions, Remainder};
use chess_shards::manifest::label_value;
use chess_shards::LabelValue;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Reduction, Tensor};

use crate::augment::{augment, AugmentConfig};
use crate::config::parse_device;
use crate::metrics::classification;
use crate::optim::Sgd;
use crate::resnet::{Arch, HeadKind, ResNet};
use crate::train::step_seed;
use crate::{checkpoint, data, import, io_err, weights, Result, TrainError};

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
        crate::config::read_toml(path)
    }

    pub fn to_toml(&self) -> String {
        crate::config::write_toml(self)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Invalid(m));
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
        "imagenet" => Err(TrainError::Invalid(
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

/// An encoder's weights with torchvision names, from any source `init` accepts.
pub fn read_encoder(path: &Path) -> Result<import::Imported> {
    let is_run = path.is_dir() || path.extension().is_some_and(|e| e == "json");
    let raw: Vec<(String, Tensor)> = if is_run {
        let (state, json) = checkpoint::read_state(path)?;
        let (t, _) = checkpoint::read_tensors(&state, &json)?;
        t.into_iter().collect()
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        weights::read(path)?.into_iter().collect()
    } else {
        import::read_pickle(path, &import::venv_python()?, false)?
    };
    import::convert(raw, path)
}

/// Copies an encoder into `vs` (every variable but `fc.*`), checking names and shapes.
fn load_encoder(vs: &nn::VarStore, enc: &[(String, Tensor)], file: &Path) -> Result<()> {
    let src: HashMap<&str, &Tensor> = enc.iter().map(|(k, t)| (k.as_str(), t)).collect();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vs.variables() {
            if name.starts_with("fc.") {
                continue;
            }
            let t = src
                .get(name.as_str())
                .ok_or_else(|| TrainError::File { path: file.to_path_buf(), msg: format!("`{name}` missing") })?;
            if t.size() != var.size() {
                return Err(TrainError::File {
                    path: file.to_path_buf(),
                    msg: format!("`{name}` has shape {:?}, the model {:?}", t.size(), var.size()),
                });
            }
            let mut v = var.shallow_clone();
            v.f_copy_(t)?;
        }
        Ok(())
    })
}

/// `model.json`: what a trained classifier is and how to feed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    pub format: String,
    pub task: Task,
    pub arch: Arch,
    /// Output names: labels (multi-label) or classes (multi-class), in `fc` order.
    pub outputs: Vec<String>,
    pub size: i64,
    pub mean: f64,
    pub std: f64,
    pub init: String,
    pub linear_probe: bool,
    /// The epoch (from 1) whose weights these are, and its validation metric.
    pub epoch: u64,
    pub valid_metric: f64,
    /// The safetensors file next to this JSON.
    pub weights: String,
}

pub const CARD_FORMAT: &str = "chess-train classifier 1";

/// A classifier ready for inference.
pub struct Classifier {
    pub card: ModelCard,
    pub vs: nn::VarStore,
    pub net: ResNet,
}

impl Classifier {
    /// Loads `model.json` (or a run directory holding one) and its weights onto `device`.
    pub fn load(ckpt: &Path, device: Device) -> Result<Classifier> {
        let json = if ckpt.is_dir() { ckpt.join("model.json") } else { ckpt.to_path_buf() };
        let text = std::fs::read_to_string(&json).map_err(io_err(&json))?;
        let card: ModelCard = serde_json::from_str(&text)
            .map_err(|e| TrainError::File { path: json.clone(), msg: format!("not a classifier card: {e}") })?;
        if card.format != CARD_FORMAT {
            return Err(TrainError::File {
                path: json,
                msg: format!("format `{}`, expected `{CARD_FORMAT}`", card.format),
            });
        }
        let file = json.with_file_name(&card.weights);
        let t = weights::read(&file)?;
        let vs = nn::VarStore::new(device);
        let net = ResNet::new(&vs.root(), card.arch, HeadKind::Linear(card.outputs.len() as i64));
        weights::load_into(&vs, &t, "", &file, true)?;
        Ok(Classifier { card, vs, net })
    }

    /// Probabilities `[N, outputs]` (sigmoid or softmax) of unit images `[N, 1, H, W]`.
    pub fn scores(&self, unit: &Tensor) -> Tensor {
        let x = data::normalise(&data::resize(unit, self.card.size), self.card.mean, self.card.std);
        let logits = tch::no_grad(|| self.net.forward_t(&x, false));
        probabilities(self.card.task, &logits)
    }
}

fn probabilities(task: Task, logits: &Tensor) -> Tensor {
    match task {
        Task::Multilabel => logits.sigmoid(),
        Task::Multiclass => logits.softmax(1, Kind::Float),
    }
}

/// How one output's target is read from a manifest's label columns.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// `target_<label>`: 1/0, null masked.
    Resolved(usize),
    /// Raw CheXpert-style: 1, 0, −1 (by the policy), null = 0.
    Raw(usize),
}

/// Targets of a batch: multi-label `[B, L]` (NaN = masked) or multi-class `[B]` (−100 = none).
enum Targets {
    Multilabel(Vec<f32>),
    Multiclass(Vec<i64>),
}

/// Reads targets from one manifest's columns.
struct TargetReader {
    task: Task,
    uncertain: Uncertain,
    columns: Vec<Column>,
    /// Multi-class: class name → index.
    classes: HashMap<String, i64>,
    manifest: String,
}

/// A class value's name (`3`, `nodule`, `true`).
pub fn class_name(v: &LabelValue) -> Option<String> {
    match v {
        LabelValue::Null => None,
        LabelValue::Str(s) => Some(s.clone()),
        LabelValue::Int(i) => Some(i.to_string()),
        LabelValue::Bool(b) => Some(b.to_string()),
        LabelValue::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        LabelValue::Float(f) => Some(f.to_string()),
    }
}

fn number(v: &LabelValue) -> Option<f64> {
    match v {
        LabelValue::Bool(b) => Some(*b as u8 as f64),
        LabelValue::Int(i) => Some(*i as f64),
        LabelValue::Float(f) => Some(*f),
        LabelValue::Str(s) => s.trim().parse().ok(),
        LabelValue::Null => None,
    }
}

impl TargetReader {
    fn new(loader: &Loader, location: &str, cfg: &LabelConfig, outputs: &[String]) -> Result<TargetReader> {
        let names = loader.label_names();
        let find = |n: &str| names.iter().position(|c| c == n);
        let missing = |what: String| TrainError::File { path: PathBuf::from(location), msg: what };
        let columns = match cfg.task {
            Task::Multilabel => outputs
                .iter()
                .map(|l| match (find(&format!("target_{l}")), find(l)) {
                    (Some(i), _) => Ok(Column::Resolved(i)),
                    (None, Some(i)) => Ok(Column::Raw(i)),
                    (None, None) => {
                        Err(missing(format!("no column `target_{l}` or `{l}` (label columns: {})", names.join(", "))))
                    }
                })
                .collect::<Result<Vec<_>>>()?,
            Task::Multiclass => {
                let col = class_column(names, cfg).ok_or_else(|| {
                    missing(format!(
                        "no class column {:?} (label columns: {})",
                        class_column_wanted(cfg),
                        names.join(", ")
                    ))
                })?;
                vec![Column::Resolved(find(&col).expect("found"))]
            }
        };
        let classes = outputs.iter().enumerate().map(|(i, c)| (c.clone(), i as i64)).collect();
        Ok(TargetReader { task: cfg.task, uncertain: cfg.uncertain, columns, classes, manifest: location.to_string() })
    }

    fn read(&self, batch: &Batch) -> Result<Targets> {
        match self.task {
            Task::Multilabel => {
                let mut out = Vec::with_capacity(batch.len() * self.columns.len());
                for row in &batch.labels {
                    for c in &self.columns {
                        out.push(match *c {
                            Column::Resolved(i) => number(&row[i]).map_or(f32::NAN, |v| v as f32),
                            Column::Raw(i) => match number(&row[i]) {
                                None => 0.0,
                                Some(v) if v < 0.0 => match self.uncertain {
                                    Uncertain::Ones => 1.0,
                                    Uncertain::Zeros => 0.0,
                                    Uncertain::Ignore => f32::NAN,
                                },
                                Some(v) => (v > 0.0) as u8 as f32,
                            },
                        });
                    }
                }
                Ok(Targets::Multilabel(out))
            }
            Task::Multiclass => {
                let Column::Resolved(i) = self.columns[0] else { unreachable!("multiclass columns are resolved") };
                let mut out = Vec::with_capacity(batch.len());
                for (row, key) in batch.labels.iter().zip(&batch.keys) {
                    out.push(match class_name(&row[i]) {
                        None => -100,
                        Some(c) => *self.classes.get(&c).ok_or_else(|| TrainError::File {
                            path: PathBuf::from(&self.manifest),
                            msg: format!(
                                "sample {key} has class `{c}`, not one of the model's classes {:?}",
                                self.class_list()
                            ),
                        })?,
                    });
                }
                Ok(Targets::Multiclass(out))
            }
        }
    }

    fn class_list(&self) -> Vec<String> {
        let mut v: Vec<(&String, &i64)> = self.classes.iter().collect();
        v.sort_by_key(|(_, i)| **i);
        v.into_iter().map(|(c, _)| c.clone()).collect()
    }
}

fn class_column_wanted(cfg: &LabelConfig) -> Vec<String> {
    if cfg.labels.is_empty() {
        vec!["label".into(), "class".into()]
    } else {
        cfg.labels.clone()
    }
}

fn class_column(names: &[String], cfg: &LabelConfig) -> Option<String> {
    class_column_wanted(cfg).into_iter().find(|c| names.contains(c))
}

/// The model's outputs: labels (multi-label) or classes (multi-class).
fn resolve_outputs(train: &Loader, location: &str, cfg: &LabelConfig) -> Result<Vec<String>> {
    let names = train.label_names();
    let bad = |msg: String| TrainError::File { path: PathBuf::from(location), msg };
    match cfg.task {
        Task::Multilabel => {
            if !cfg.labels.is_empty() {
                return Ok(cfg.labels.clone());
            }
            let found: Vec<String> =
                names.iter().filter_map(|n| n.strip_prefix("target_").map(str::to_string)).collect();
            if found.is_empty() {
                return Err(bad(format!(
                    "no --labels given and no `target_*` columns (label columns: {})",
                    names.join(", ")
                )));
            }
            Ok(found)
        }
        Task::Multiclass => {
            if !cfg.classes.is_empty() {
                return Ok(cfg.classes.clone());
            }
            let col = class_column(names, cfg).ok_or_else(|| {
                bad(format!("no class column {:?} (label columns: {})", class_column_wanted(cfg), names.join(", ")))
            })?;
            let b = &train.manifest().batch;
            let arr = b.column_by_name(&col).expect("a label column of this manifest");
            let set: BTreeSet<String> = (0..b.num_rows()).filter_map(|i| class_name(&label_value(arr, i))).collect();
            if set.len() < 2 {
                return Err(bad(format!("column `{col}` has {} class(es); a classifier needs at least 2", set.len())));
            }
            Ok(set.into_iter().collect())
        }
    }
}

/// The loss of a batch: masked mean BCE with logits, or cross-entropy ignoring −100.
fn loss(logits: &Tensor, targets: &Targets, device: Device) -> Option<Tensor> {
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

fn eval_loader_options(cfg: &FinetuneConfig) -> LoaderOptions {
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
fn score(
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

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u64,
    pub train_loss: f64,
    pub valid_loss: f64,
    /// Mean AUC or accuracy on the validation manifest.
    pub valid_metric: f64,
    pub lr: f64,
    pub best: bool,
    pub seconds: f64,
}

/// What the caller hears (for a progress bar).
#[derive(Debug, Clone)]
pub struct FtProgress {
    pub epoch: u64,
    pub epochs: u64,
    /// Training batches done this epoch, of `batches`.
    pub batch: u64,
    pub batches: u64,
    pub train_loss: f64,
    pub last: Option<EpochMetrics>,
}

/// The manifests of a run.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub train: String,
    pub valid: String,
    pub test: Option<String>,
}

/// How a run ended (also `summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneSummary {
    pub task: Task,
    pub outputs: Vec<String>,
    pub init: String,
    pub epochs_run: u64,
    pub best_epoch: u64,
    pub best_valid_metric: f64,
    pub stopped_early: bool,
    pub valid: Evaluation,
    pub test: Option<Evaluation>,
    pub test_samples: usize,
    pub seconds: f64,
}

/// PyTorch's ReduceLROnPlateau (mode min, threshold_mode rel, cooldown 0).
#[derive(Debug, Clone)]
pub struct Plateau {
    pub factor: f64,
    pub patience: u64,
    pub threshold: f64,
    pub min_lr: f64,
    best: f64,
    bad_epochs: u64,
}

impl Plateau {
    pub fn new(factor: f64, patience: u64, threshold: f64, min_lr: f64) -> Plateau {
        Plateau { factor, patience, threshold, min_lr, best: f64::INFINITY, bad_epochs: 0 }
    }

    /// The learning rate after an epoch with validation loss `value`.
    pub fn step(&mut self, value: f64, lr: f64) -> f64 {
        if value < self.best * (1.0 - self.threshold) {
            self.best = value;
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.bad_epochs > self.patience {
            self.bad_epochs = 0;
            return (lr * self.factor).max(self.min_lr);
        }
        lr
    }
}

/// Fine-tunes on `m.train`, selects on `m.valid`, scores `m.test`; writes the run into `out`.
pub fn finetune(
    m: &Manifests,
    out: &Path,
    cfg: &FinetuneConfig,
    mut progress: impl FnMut(&FtProgress),
) -> Result<FinetuneSummary> {
    cfg.validate()?;
    let started = Instant::now();
    let device = parse_device(&cfg.run.device)?;
    if let Device::Cuda(n) = device {
        if !tch::Cuda::is_available() || n >= tch::Cuda::device_count() as usize {
            return Err(TrainError::Invalid(format!(
                "device cuda:{n} is not available ({} CUDA devices)",
                tch::Cuda::device_count()
            )));
        }
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if cfg.run.threads > 0 {
        tch::set_num_threads(cfg.run.threads);
    }
    std::fs::create_dir_all(out).map_err(io_err(out))?;

    let mut train_opts = eval_loader_options(cfg);
    train_opts.shuffle = true;
    train_opts.seed = cfg.run.seed;
    let train = Loader::open(&m.train, train_opts)?;
    let valid = Loader::open(&m.valid, eval_loader_options(cfg))?;
    let test = m.test.as_ref().map(|t| Loader::open(t, eval_loader_options(cfg))).transpose()?;
    let outputs = resolve_outputs(&train, &m.train, &cfg.labels)?;
    let train_reader = TargetReader::new(&train, &m.train, &cfg.labels, &outputs)?;
    let valid_reader = TargetReader::new(&valid, &m.valid, &cfg.labels, &outputs)?;
    let test_reader = match (&test, &m.test) {
        (Some(l), Some(loc)) => Some(TargetReader::new(l, loc, &cfg.labels, &outputs)?),
        _ => None,
    };

    tch::manual_seed(cfg.run.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = ResNet::new(&vs.root(), cfg.model.arch, HeadKind::Linear(outputs.len() as i64));
    if let Init::Weights { path, .. } = parse_init(&cfg.model.init)? {
        let enc = read_encoder(&path)?;
        if enc.arch != cfg.model.arch {
            return Err(TrainError::File {
                path,
                msg: format!("holds a {} encoder, the run is configured for {}", enc.arch, cfg.model.arch),
            });
        }
        load_encoder(&vs, &enc.tensors, &path)?;
    }
    // Named, sorted parameters: the optimizer's order does not depend on hash order.
    let mut vars: Vec<(String, Tensor)> = Vec::new();
    let mut all: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in all {
        if cfg.model.linear_probe && !name.starts_with("fc.") {
            let _ = t.shallow_clone().set_requires_grad(false);
            continue;
        }
        vars.push((name, t));
    }
    let params: Vec<Tensor> = vars.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut sgd = Sgd::new(params.len(), cfg.optim.momentum, cfg.optim.weight_decay);
    let mut plateau = Plateau::new(
        cfg.optim.plateau_factor,
        cfg.optim.plateau_patience,
        cfg.optim.plateau_threshold,
        cfg.optim.min_lr,
    );

    std::fs::write(out.join("config.toml"), cfg.to_toml()).map_err(io_err(out.join("config.toml")))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut metrics_file = std::fs::File::create(&metrics_path).map_err(io_err(&metrics_path))?;
    let best_path = out.join("best.safetensors");
    let card_path = out.join("model.json");

    let batches = train.batches_per_epoch();
    let mut lr = cfg.optim.lr;
    let mut step = 0u64;
    let mut best: Option<(u64, f64, Evaluation)> = None;
    let mut best_loss = f64::INFINITY;
    let mut since_better_loss = 0u64;
    let mut stopped_early = false;
    let mut epochs_run = 0;
    let mut last: Option<EpochMetrics> = None;
    for epoch in 1..=cfg.run.epochs {
        let (mut loss_sum, mut loss_n) = (0.0, 0u64);
        let mut it = train.epoch(epoch - 1);
        while let Some(batch) = it.next() {
            let batch = batch?;
            if batch.len() < 2 {
                continue; // batch norm cannot train on one sample
            }
            let targets = train_reader.read(&batch)?;
            tch::manual_seed(step_seed(cfg.run.seed, step));
            let unit = data::upload(&batch, device).to_unit(cfg.data.size);
            let x = data::normalise(&augment(&unit, &cfg.augment), cfg.data.mean, cfg.data.std);
            let logits = if cfg.model.linear_probe {
                let f = tch::no_grad(|| net.features_t(&x, false));
                net.head(f)
            } else {
                net.forward_t(&x, true)
            };
            let Some(l) = loss(&logits, &targets, device) else { continue };
            Sgd::zero_grad(&params);
            l.backward();
            sgd.step(&params, lr);
            step += 1;
            loss_sum += l.double_value(&[]);
            loss_n += 1;
            it.recycle(batch);
            progress(&FtProgress {
                epoch,
                epochs: cfg.run.epochs,
                batch: loss_n,
                batches,
                train_loss: loss_sum / loss_n as f64,
                last: last.clone(),
            });
        }
        let train_loss = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
        let scored = score(&net, &valid, &valid_reader, cfg, device, outputs.len())?;
        let ev = evaluate(cfg.labels.task, &scored);
        // Selection: the validation metric; where it is undefined (one class only), the loss.
        let key = if ev.metric().is_finite() { ev.metric() } else { -ev.loss };
        let is_best = match &best {
            None => true,
            Some((_, k, _)) => key > *k,
        };
        if is_best {
            weights::write_atomic(&best_path, &weights::torchvision_state(&vs, 0, false))?;
            let card = ModelCard {
                format: CARD_FORMAT.into(),
                task: cfg.labels.task,
                arch: cfg.model.arch,
                outputs: outputs.clone(),
                size: cfg.data.size,
                mean: cfg.data.mean,
                std: cfg.data.std,
                init: cfg.model.init.clone(),
                linear_probe: cfg.model.linear_probe,
                epoch,
                valid_metric: ev.metric(),
                weights: "best.safetensors".into(),
            };
            weights::write_bytes_atomic(
                &card_path,
                serde_json::to_string_pretty(&card).expect("card serialises").as_bytes(),
            )?;
            best = Some((epoch, key, ev.clone()));
        }
        let em = EpochMetrics {
            epoch,
            train_loss,
            valid_loss: ev.loss,
            valid_metric: ev.metric(),
            lr,
            best: is_best,
            seconds: started.elapsed().as_secs_f64(),
        };
        writeln!(metrics_file, "{}", serde_json::to_string(&em).expect("metrics serialise"))
            .map_err(io_err(&metrics_path))?;
        tracing::info!(epoch, train_loss, valid_loss = ev.loss, valid_metric = ev.metric(), lr, "epoch");
        last = Some(em);
        progress(&FtProgress { epoch, epochs: cfg.run.epochs, batch: loss_n, batches, train_loss, last: last.clone() });
        epochs_run = epoch;
        if ev.loss.is_finite() {
            lr = plateau.step(ev.loss, lr);
            if ev.loss < best_loss {
                best_loss = ev.loss;
                since_better_loss = 0;
            } else {
                since_better_loss += 1;
            }
        }
        if cfg.optim.early_stopping_patience > 0 && since_better_loss >= cfg.optim.early_stopping_patience {
            stopped_early = true;
            break;
        }
    }
    drop(metrics_file);
    if let Err(e) = curves(&metrics_path, &out.join("curves.png")) {
        tracing::warn!("no curves: {e}");
    }
    let (best_epoch, _, best_ev) = best.ok_or_else(|| TrainError::Invalid("no epoch finished".into()))?;

    // The test manifest, scored by the best weights.
    let mut test_ev = None;
    let mut test_samples = 0;
    if let (Some(loader), Some(reader)) = (&test, &test_reader) {
        let t = weights::read(&best_path)?;
        weights::load_into(&vs, &t, "", &best_path, true)?;
        let scored = score(&net, loader, reader, cfg, device, outputs.len())?;
        write_predictions(&out.join("predictions.csv"), cfg.labels.task, &outputs, &scored)?;
        test_samples = scored.keys.len();
        test_ev = Some(evaluate(cfg.labels.task, &scored));
    }
    let summary = FinetuneSummary {
        task: cfg.labels.task,
        outputs,
        init: cfg.model.init.clone(),
        epochs_run,
        best_epoch,
        best_valid_metric: best_ev.metric(),
        stopped_early,
        valid: best_ev,
        test: test_ev,
        test_samples,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    weights::write_bytes_atomic(&out.join("summary.json"), json.as_bytes())?;
    Ok(summary)
}

/// Reads a finished run's `summary.json`.
pub fn read_summary(run: &Path) -> Result<FinetuneSummary> {
    let p = run.join("summary.json");
    let text = std::fs::read_to_string(&p).map_err(io_err(&p))?;
    serde_json::from_str(&text).map_err(|e| TrainError::File { path: p, msg: e.to_string() })
}

/// A CSV cell: quoted when it holds a comma, quote or line break.
pub fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `predictions.csv`: `key`, then per output its target and `<name>_score`
/// (multi-class adds `target` and `predicted` class names first).
pub fn write_predictions(path: &Path, task: Task, outputs: &[String], s: &Scored) -> Result<()> {
    let mut text = String::from("key");
    if task == Task::Multiclass {
        text.push_str(",target,predicted");
    }
    for o in outputs {
        text.push_str(&format!(",{},{}", csv_cell(o), csv_cell(&format!("{o}_score"))));
    }
    text.push('\n');
    let n = outputs.len();
    for (i, key) in s.keys.iter().enumerate() {
        text.push_str(&csv_cell(key));
        let scores = &s.scores[i * n..(i + 1) * n];
        match task {
            Task::Multilabel => {
                for (j, score) in scores.iter().enumerate() {
                    let t = s.targets.get(i * n + j).copied().unwrap_or(f32::NAN);
                    let t = if t.is_nan() { String::new() } else { format!("{t}") };
                    text.push_str(&format!(",{t},{score}"));
                }
            }
            Task::Multiclass => {
                let t = s.targets.get(i).copied().unwrap_or(f32::NAN);
                let target = if t.is_nan() { String::new() } else { csv_cell(&outputs[t as usize]) };
                text.push_str(&format!(",{target},{}", csv_cell(&outputs[argmax(scores)])));
                for (j, score) in scores.iter().enumerate() {
                    let onehot = if t.is_nan() { String::new() } else { ((t as usize == j) as u8).to_string() };
                    text.push_str(&format!(",{onehot},{score}"));
                }
            }
        }
        text.push('\n');
    }
    weights::write_bytes_atomic(path, text.as_bytes())
}

/// Train loss, validation loss, validation metric and lr per epoch as one PNG.
pub fn curves(metrics: &Path, png: &Path) -> Result<()> {
    use chess_shards::plot::{save_panels, Panel};
    let text = std::fs::read_to_string(metrics).map_err(io_err(metrics))?;
    let rows: Vec<EpochMetrics> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    if rows.is_empty() {
        return Err(TrainError::File { path: metrics.to_path_buf(), msg: "no epochs yet".into() });
    }
    let range = (0.5, rows.len() as f64 + 0.5);
    let col = |f: fn(&EpochMetrics) -> f64| {
        rows.iter().map(|m| if f(m).is_finite() { f(m) } else { 0.0 }).collect::<Vec<_>>()
    };
    let panels = [
        Panel::histogram("training loss", "epoch", col(|m| m.train_loss), range),
        Panel::histogram("validation loss", "epoch", col(|m| m.valid_loss), range),
        Panel::histogram("validation metric (mean AUC or accuracy)", "epoch", col(|m| m.valid_metric), range),
        Panel::histogram("learning rate", "epoch", col(|m| m.lr), range),
    ];
    save_panels(png, &panels).map_err(|e| TrainError::File { path: png.to_path_buf(), msg: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_halves_after_more_than_patience_bad_epochs() {
        // PyTorch: ReduceLROnPlateau(factor=0.5, patience=2) on 1, 1, 1, 1 → reduces at the 4th step.
        let mut p = Plateau::new(0.5, 2, 1e-4, 0.0);
        let lrs: Vec<f64> = [1.0, 1.0, 1.0, 1.0, 0.5, 1.0, 1.0, 1.0]
            .iter()
            .scan(1.0, |lr, v| {
                *lr = p.step(*v, *lr);
                Some(*lr)
            })
            .collect();
        assert_eq!(lrs, vec![1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25]);
    }

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

    #[test]
    fn csv_cells_are_quoted_only_when_needed() {
        assert_eq!(csv_cell("Pleural Effusion"), "Pleural Effusion");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"x\""), "\"say \"\"x\"\"\"");
    }

    #[test]
    fn class_names_of_label_values() {
        assert_eq!(class_name(&LabelValue::Float(3.0)).as_deref(), Some("3"));
        assert_eq!(class_name(&LabelValue::Str("nodule".into())).as_deref(), Some("nodule"));
        assert_eq!(class_name(&LabelValue::Null), None);
    }
}
