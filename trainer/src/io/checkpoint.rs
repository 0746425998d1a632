//! Where a pretraining run keeps its checkpoints and how one is found and
//! opened: `checkpoints/step-NNNNNNNN.json` (a run directory means its
//! `latest.json`), format-checked, and the safetensors file it names. What
//! the JSON holds is the pretraining task's (`tasks::pretrain::checkpoint`);
//! other commands read only the tensors (fine-tuning from a run).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use tch::Tensor;

use crate::io::weights;
use crate::{Result, TrainError};

pub const FORMAT: &str = "chess-train checkpoint 1";

/// The checkpoint folder of a run.
pub fn dir(run: &Path) -> PathBuf {
    run.join("checkpoints")
}

/// Reads a checkpoint JSON (a run directory means its `latest.json`) as
/// `T`, after checking its format; returns it with the JSON's path.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<(T, PathBuf)> {
    #[derive(Deserialize)]
    struct Header {
        format: String,
    }
    let json = if path.is_dir() { dir(path).join("latest.json") } else { path.to_path_buf() };
    let text = std::fs::read(&json).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => TrainError::Weights { path: json.clone(), msg: "no checkpoint here".into() },
        _ => TrainError::Read { path: json.clone(), cause: e },
    })?;
    let not_a_checkpoint =
        |e: serde_json::Error| TrainError::Weights { path: json.clone(), msg: format!("not a checkpoint: {e}") };
    let header: Header = serde_json::from_slice(&text).map_err(not_a_checkpoint)?;
    if header.format != FORMAT {
        return Err(TrainError::Weights {
            path: json,
            msg: format!("format `{}`, expected `{FORMAT}`", header.format),
        });
    }
    let state = serde_json::from_slice(&text).map_err(not_a_checkpoint)?;
    Ok((state, json))
}

/// The tensors of a checkpoint: the safetensors file `name` next to its JSON.
pub fn read_tensors(json: &Path, name: &str) -> Result<(HashMap<String, Tensor>, PathBuf)> {
    let file = json.parent().unwrap_or(Path::new(".")).join(name);
    Ok((weights::read(&file)?, file))
}
