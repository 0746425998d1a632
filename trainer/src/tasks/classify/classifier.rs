//! A trained classifier: `model.json` ([`ModelCard`]: what it is and how
//! to feed it) next to its weights, loaded for inference ([`Classifier`]).

use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::io::weights;
use crate::models::resnet::{Arch, HeadKind, ResNet};
use crate::tasks::classify::config::Task;
use crate::{data, read_err, Result, TrainError};

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
        let text = std::fs::read_to_string(&json).map_err(read_err(&json))?;
        let card: ModelCard = serde_json::from_str(&text)
            .map_err(|e| TrainError::Weights { path: json.clone(), msg: format!("not a classifier card: {e}") })?;
        if card.format != CARD_FORMAT {
            return Err(TrainError::Weights {
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

pub(crate) fn probabilities(task: Task, logits: &Tensor) -> Tensor {
    match task {
        Task::Multilabel => logits.sigmoid(),
        Task::Multiclass => logits.softmax(1, Kind::Float),
    }
}
