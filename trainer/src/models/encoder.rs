//! A 1-channel ResNet encoder with torchvision names, from any source the
//! commands accept: a CheSS / MoCo checkpoint (`torch.save({'state_dict':
//! …})`, keys `module.encoder_q.*`: the query encoder, projection head
//! dropped), a torchvision ResNet state dict (`conv1`'s RGB kernels summed
//! into one grey channel, `fc` dropped), a safetensors file, or a pretrain
//! run (its latest checkpoint). Every name and shape is checked against our
//! [`ResNet`]; `chess-train import` writes the result ([`import`]).

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::io::{checkpoint, import as pickle, weights};
use crate::models::resnet::{Arch, HeadKind, ResNet};
use crate::{Result, TrainError};

/// Where the weights came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A MoCo checkpoint's query encoder (`encoder_q.`).
    MocoQuery,
    /// A plain ResNet state dict (torchvision names).
    Torchvision,
}

/// An imported encoder: torchvision names, 1-channel conv1, no `fc`.
#[derive(Debug)]
pub struct Imported {
    pub arch: Arch,
    pub kind: SourceKind,
    /// The prefix stripped from the source's names (e.g. `state_dict.module.encoder_q.`).
    pub prefix: String,
    /// Whether conv1 had 3 input channels and was summed to one.
    pub conv1_summed: bool,
    /// Source tensors not taken (projection head, key encoder, optimizer …).
    pub dropped: usize,
    pub tensors: Vec<(String, Tensor)>,
}

/// Containers in which checkpoints keep their state dict.
const CONTAINERS: [&str; 5] = ["state_dict.", "model_state_dict.", "model.", "state.", "net."];
/// Wrappers around the encoder: DataParallel, MoCo's query encoder, others' backbones.
const WRAPPERS: [&str; 5] = ["module.", "encoder_q.", "base_encoder.", "backbone.", "encoder."];

/// The longest chain of container/wrapper prefixes shared by the ResNet's
/// `conv1.weight`: the encoder lives under it.
fn encoder_prefix(names: &[&str]) -> Option<String> {
    // conv1.weight under some prefix made only of known containers and wrappers.
    let mut best: Option<String> = None;
    for n in names {
        let Some(p) = n.strip_suffix("conv1.weight") else { continue };
        if p.contains("layer") {
            continue;
        }
        let mut rest = p;
        let mut ok = true;
        while !rest.is_empty() {
            match CONTAINERS.iter().chain(WRAPPERS.iter()).find(|c| rest.starts_with(*c)) {
                Some(c) => rest = &rest[c.len()..],
                None => {
                    ok = false;
                    break;
                }
            }
        }
        // A key encoder (`encoder_k.`) is never chosen; among the rest the query encoder wins.
        if ok && (best.is_none() || p.contains("encoder_q.")) {
            best = Some(p.to_string());
        }
    }
    best
}

/// Turns a flat map of a checkpoint's tensors into our encoder's weights
/// (checked name by name and shape by shape against the ResNet); `file`
/// names the source in errors.
pub fn convert(raw: Vec<(String, Tensor)>, file: &Path) -> Result<Imported> {
    let bad = |msg: String| TrainError::Weights { path: file.to_path_buf(), msg };
    let names: Vec<&str> = raw.iter().map(|(k, _)| k.as_str()).collect();
    let prefix = encoder_prefix(&names).ok_or_else(|| {
        bad(format!(
            "no ResNet found: no `conv1.weight` under a known prefix (tensors: {})",
            names.iter().take(5).copied().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let kind = if prefix.contains("encoder_q.") { SourceKind::MocoQuery } else { SourceKind::Torchvision };
    let total = raw.len();
    let mut map: HashMap<String, Tensor> = HashMap::new();
    for (k, t) in raw {
        let Some(name) = k.strip_prefix(&prefix) else { continue };
        if name == "fc" || name.starts_with("fc.") {
            continue;
        }
        map.insert(name.to_string(), t);
    }
    let dropped = total - map.len();
    let arch = if map.contains_key("layer1.0.conv3.weight") {
        Arch::Resnet50
    } else if map.contains_key("layer1.0.conv2.weight") {
        Arch::Resnet18
    } else {
        return Err(bad(format!(
            "`{prefix}conv1.weight` found but no `{prefix}layer1.0.conv2.weight`: not a ResNet-18/50"
        )));
    };
    let conv1 = map.get("conv1.weight").expect("found above");
    let c1 = conv1.size();
    if c1.len() != 4 || (c1[1] != 1 && c1[1] != 3) {
        return Err(bad(format!("`{prefix}conv1.weight` has shape {c1:?}; expected [64, 1 or 3, 7, 7]")));
    }
    let conv1_summed = c1[1] == 3;
    if conv1_summed {
        // Grey input replicated over R, G, B gives the same response as the summed kernel.
        let summed = conv1.to_kind(Kind::Float).sum_dim_intlist([1i64].as_slice(), true, Kind::Float);
        map.insert("conv1.weight".into(), summed);
    }
    let nbt = map.get("bn1.num_batches_tracked").map(|t| t.int64_value(&[])).unwrap_or(0);
    for t in map.values_mut() {
        if t.is_floating_point() && t.kind() != Kind::Float {
            *t = t.to_kind(Kind::Float);
        }
    }
    let vs = VarStore::new(Device::Cpu);
    let _model = ResNet::new(&vs.root(), arch, HeadKind::None);
    weights::load_into(&vs, &map, "", file, true)?;
    let tensors = weights::torchvision_state(&vs, nbt, true);
    Ok(Imported { arch, kind, prefix, conv1_summed, dropped, tensors })
}

/// `chess-train import`: reads `file` (a `.pt`/`.pth`/`.tar` pickle, or a
/// safetensors file) and writes the encoder to `out` atomically.
pub fn import(file: &Path, out: &Path, python: Option<&Path>, allow_full_pickle: bool) -> Result<Imported> {
    let is_safetensors = file.extension().is_some_and(|e| e == "safetensors");
    let raw = if is_safetensors {
        if !file.is_file() {
            return Err(TrainError::Weights { path: file.to_path_buf(), msg: "no such file".into() });
        }
        Tensor::read_safetensors(file)
            .map_err(|e| TrainError::Weights { path: file.to_path_buf(), msg: e.to_string() })?
    } else {
        let py = match python {
            Some(p) => p.to_path_buf(),
            None => pickle::venv_python()?,
        };
        pickle::read_pickle(file, &py, allow_full_pickle)?
    };
    let imported = convert(raw, file)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(crate::write_err(dir))?;
    }
    weights::write_atomic(out, &imported.tensors)?;
    Ok(imported)
}

/// An encoder's weights with torchvision names, from any source `init` accepts.
pub fn read_encoder(path: &Path) -> Result<Imported> {
    let is_run = path.is_dir() || path.extension().is_some_and(|e| e == "json");
    let raw: Vec<(String, Tensor)> = if is_run {
        // Only the checkpoint's tensors file matters here, not the pretraining config.
        #[derive(Deserialize)]
        struct Tensors {
            tensors: String,
        }
        let (state, json) = checkpoint::read_json::<Tensors>(path)?;
        let (t, _) = checkpoint::read_tensors(&json, &state.tensors)?;
        t.into_iter().collect()
    } else if path.extension().is_some_and(|e| e == "safetensors") {
        weights::read(path)?.into_iter().collect()
    } else {
        pickle::read_pickle(path, &pickle::venv_python()?, false)?
    };
    convert(raw, path)
}

/// Copies an encoder into `vs` (every variable but `fc.*`), checking names and shapes.
pub fn load_encoder(vs: &VarStore, enc: &[(String, Tensor)], file: &Path) -> Result<()> {
    let src: HashMap<&str, &Tensor> = enc.iter().map(|(k, t)| (k.as_str(), t)).collect();
    tch::no_grad(|| -> Result<()> {
        for (name, var) in vs.variables() {
            if name.starts_with("fc.") {
                continue;
            }
            let t = src
                .get(name.as_str())
                .ok_or_else(|| TrainError::Weights { path: file.to_path_buf(), msg: format!("`{name}` missing") })?;
            if t.size() != var.size() {
                return Err(TrainError::Weights {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_prefers_the_query_encoder_and_refuses_unknown_wrappers() {
        let names = [
            "state_dict.module.encoder_k.conv1.weight",
            "state_dict.module.encoder_q.conv1.weight",
            "state_dict.module.encoder_q.layer1.0.conv1.weight",
        ];
        assert_eq!(encoder_prefix(&names).as_deref(), Some("state_dict.module.encoder_q."));
        assert_eq!(encoder_prefix(&["conv1.weight", "layer1.0.conv1.weight"]).as_deref(), Some(""));
        assert_eq!(encoder_prefix(&["weird.conv1.weight"]), None);
    }

    #[test]
    fn a_file_without_a_resnet_is_an_error_naming_it() {
        let raw = vec![("optimizer.lr".to_string(), Tensor::from(0.1f32))];
        let e = convert(raw, Path::new("x.pt")).unwrap_err().to_string();
        assert!(e.contains("x.pt") && e.contains("no ResNet"), "{e}");
    }
}
