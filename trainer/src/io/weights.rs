//! Named tensors in and out of VarStores, safetensors files written
//! atomically ([`crate::io::atomic`]), and torchvision's state-dict names.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::io::atomic::tmp_name;
use crate::{write_err, Result, TrainError};

/// A VarStore's variables, sorted by name, each under `prefix`.
pub fn named(vs: &VarStore, prefix: &str) -> Vec<(String, Tensor)> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    vars.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v)).collect()
}

/// Copies every variable of `vs` from `src[prefix + name]`. Strict: a
/// missing name, a shape mismatch, or (when `strict`) a name under `prefix`
/// that `vs` lacks is an error naming `file`. BN's `num_batches_tracked`
/// counters (torchvision state dicts) are ignored.
pub fn load_into(vs: &VarStore, src: &HashMap<String, Tensor>, prefix: &str, file: &Path, strict: bool) -> Result<()> {
    let bad = |msg: String| TrainError::Weights { path: file.to_path_buf(), msg };
    let vars = vs.variables();
    let mut missing = Vec::new();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in &vars {
            let Some(t) = src.get(&format!("{prefix}{name}")) else {
                missing.push(format!("{prefix}{name}"));
                continue;
            };
            if t.size() != var.size() {
                return Err(bad(format!("`{prefix}{name}` has shape {:?}, the model {:?}", t.size(), var.size())));
            }
            let mut v = var.shallow_clone();
            v.f_copy_(t)?;
        }
        Ok(())
    })?;
    if !missing.is_empty() {
        missing.sort();
        return Err(bad(format!(
            "{} tensors missing, e.g. {}",
            missing.len(),
            missing.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if strict {
        let mut extra: Vec<&String> = src
            .keys()
            .filter(|k| {
                k.starts_with(prefix) && !k.ends_with("num_batches_tracked") && !vars.contains_key(&k[prefix.len()..])
            })
            .collect();
        if !extra.is_empty() {
            extra.sort();
            return Err(bad(format!(
                "unexpected tensors: {}",
                extra.iter().take(5).map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

/// Reads a safetensors file into a map (tensors on the CPU).
pub fn read(path: &Path) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(TrainError::Weights { path: path.to_path_buf(), msg: "no such file".into() });
    }
    let tensors = Tensor::read_safetensors(path)
        .map_err(|e| TrainError::Weights { path: path.to_path_buf(), msg: format!("not a safetensors file: {e}") })?;
    Ok(tensors.into_iter().collect())
}

/// Writes `tensors` (moved to the CPU, made contiguous) to `path` atomically.
pub fn write_atomic(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let cpu: Vec<(String, Tensor)> =
        tensors.iter().map(|(k, t)| (k.clone(), t.detach().to_device(Device::Cpu).contiguous())).collect();
    let tmp = tmp_name(path);
    Tensor::write_safetensors(&cpu, &tmp).map_err(|e| TrainError::Output { path: tmp.clone(), msg: e.to_string() })?;
    std::fs::rename(&tmp, path).map_err(write_err(path))?;
    Ok(())
}

/// The query encoder's state as torchvision names it: parameters and BN
/// buffers, plus `num_batches_tracked` (int64) for every BN, so that
/// `load_state_dict(strict=True)` accepts it; without `fc*` when `drop_fc`.
pub fn torchvision_state(vs: &VarStore, num_batches_tracked: i64, drop_fc: bool) -> Vec<(String, Tensor)> {
    let mut out = Vec::new();
    for (name, t) in named(vs, "") {
        if drop_fc && (name == "fc" || name.starts_with("fc.")) {
            continue;
        }
        if let Some(bn) = name.strip_suffix(".running_var") {
            out.push((format!("{bn}.num_batches_tracked"), Tensor::from(num_batches_tracked).to_kind(Kind::Int64)));
        }
        out.push((name, t));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
