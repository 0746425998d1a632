//! Checkpoints: `checkpoints/step-NNNNNNNN.safetensors` (both encoders
//! with torchvision names under `encoder_q.` / `encoder_k.`, the `queue`,
//! and SGD's `optimizer.momentum_buffer.<param>`) plus
//! `step-NNNNNNNN.json` (step, next epoch, loader position, queue pointer,
//! seed, resolved config). The tensors are written first, the JSON second,
//! `latest.json` (a copy of the newest JSON) last, each under a temporary
//! name and renamed, so a crash leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chess_shards::loader::LoaderState;
use serde::{Deserialize, Serialize};
use tch::Tensor;

use crate::io::{atomic, weights};
use crate::runtime::scaler::GradScaler;
use crate::tasks::pretrain::config::TrainConfig;
use crate::tasks::pretrain::moco::Moco;
use crate::{write_err, Result, TrainError};

pub use crate::io::checkpoint::{dir, FORMAT};

/// The JSON half of a checkpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    pub format: String,
    /// Steps done.
    pub step: u64,
    /// Epoch the next step belongs to.
    pub next_epoch: u64,
    /// Where the loader continues within `next_epoch` (`None`: from its start).
    pub loader: Option<LoaderState>,
    pub queue_ptr: i64,
    /// The run's seed (torch is reseeded from (seed, step) before each step).
    pub seed: u64,
    pub arch: String,
    /// The safetensors file, next to this JSON.
    pub tensors: String,
    pub config: TrainConfig,
    pub tool_version: String,
    /// The fp16 loss scaler's state (absent in older checkpoints: its defaults).
    #[serde(default)]
    pub scaler: GradScaler,
    /// Data-parallel runs: every rank's loader position, by rank (`loader` is rank 0's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_loaders: Vec<LoaderState>,
}

impl CheckpointState {
    pub fn new(
        step: u64,
        next_epoch: u64,
        loader: Option<LoaderState>,
        moco: &Moco,
        cfg: &TrainConfig,
    ) -> CheckpointState {
        CheckpointState {
            format: FORMAT.into(),
            step,
            next_epoch,
            loader,
            queue_ptr: moco.queue_ptr,
            seed: cfg.run.seed,
            arch: moco.cfg.arch.to_string(),
            tensors: format!("step-{step:08}.safetensors"),
            config: cfg.clone(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            scaler: moco.scaler,
            rank_loaders: Vec::new(),
        }
    }
}

/// Every tensor of the training state, by checkpoint name.
pub fn tensors(moco: &Moco) -> Vec<(String, Tensor)> {
    let mut t = weights::named(&moco.vs_q, "encoder_q.");
    t.extend(weights::named(&moco.vs_k, "encoder_k."));
    t.push(("queue".into(), moco.queue.shallow_clone()));
    for (name, buf) in moco.param_names.iter().zip(&moco.sgd.buffers) {
        if let Some(b) = buf {
            t.push((format!("optimizer.momentum_buffer.{name}"), b.shallow_clone()));
        }
    }
    t
}

/// Writes a checkpoint and keeps the newest `keep`; returns the JSON's path.
pub fn save(run: &Path, moco: &Moco, state: &CheckpointState, keep: usize) -> Result<PathBuf> {
    let d = dir(run);
    std::fs::create_dir_all(&d).map_err(write_err(&d))?;
    weights::write_atomic(&d.join(&state.tensors), &tensors(moco))?;
    let json = serde_json::to_vec_pretty(state).expect("state serialises");
    let path = d.join(format!("step-{:08}.json", state.step));
    atomic::write_bytes_atomic(&path, &json)?;
    atomic::write_bytes_atomic(&d.join("latest.json"), &json)?;
    tracing::debug!(step = state.step, "checkpoint {}", path.display());
    prune(&d, keep.max(1))?;
    Ok(path)
}

fn steps_present(d: &Path) -> Result<Vec<u64>> {
    let mut steps = Vec::new();
    for e in std::fs::read_dir(d).map_err(write_err(d))? {
        let name = e.map_err(write_err(d))?.file_name().to_string_lossy().into_owned();
        if let Some(n) = name.strip_prefix("step-").and_then(|s| s.strip_suffix(".json")).and_then(|s| s.parse().ok()) {
            steps.push(n);
        }
    }
    steps.sort_unstable();
    Ok(steps)
}

fn prune(d: &Path, keep: usize) -> Result<()> {
    let steps = steps_present(d)?;
    for s in steps.iter().take(steps.len().saturating_sub(keep)) {
        for ext in ["json", "safetensors"] {
            let p = d.join(format!("step-{s:08}.{ext}"));
            std::fs::remove_file(&p).map_err(write_err(&p))?;
        }
    }
    Ok(())
}

/// Removes a previous run's checkpoints (a fresh run in the same folder).
pub fn clear(run: &Path) -> Result<()> {
    let d = dir(run);
    if d.exists() {
        std::fs::remove_dir_all(&d).map_err(write_err(&d))?;
    }
    Ok(())
}

/// Reads a checkpoint JSON (a run directory means its `latest.json`).
pub fn read_state(path: &Path) -> Result<(CheckpointState, PathBuf)> {
    crate::io::checkpoint::read_json(path)
}

/// The tensors of a checkpoint (by its JSON).
pub fn read_tensors(state: &CheckpointState, json: &Path) -> Result<(HashMap<String, Tensor>, PathBuf)> {
    crate::io::checkpoint::read_tensors(json, &state.tensors)
}

/// Restores the newest checkpoint of `run` into `moco`.
pub fn load_latest(run: &Path, moco: &mut Moco) -> Result<(CheckpointState, PathBuf)> {
    let (state, json) = read_state(run)?;
    let (t, file) = read_tensors(&state, &json)?;
    weights::load_into(&moco.vs_q, &t, "encoder_q.", &file, true)?;
    weights::load_into(&moco.vs_k, &t, "encoder_k.", &file, true)?;
    let queue = t.get("queue").ok_or_else(|| TrainError::Weights { path: file.clone(), msg: "no `queue`".into() })?;
    if queue.size() != moco.queue.size() {
        return Err(TrainError::Weights {
            path: file,
            msg: format!("queue {:?}, the model's {:?}", queue.size(), moco.queue.size()),
        });
    }
    tch::no_grad(|| moco.queue.copy_(queue));
    moco.queue_ptr = state.queue_ptr;
    moco.scaler = state.scaler;
    for (name, buf) in moco.param_names.iter().zip(moco.sgd.buffers.iter_mut()) {
        *buf = t.get(&format!("optimizer.momentum_buffer.{name}")).map(|b| b.to_device(moco.device));
    }
    Ok((state, json))
}

/// Drops `metrics.jsonl` lines past `step` (they belong to a run being resumed from earlier).
pub fn truncate_metrics(path: &Path, step: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(()) };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    atomic::write_bytes_atomic(path, kept.as_bytes())
}
