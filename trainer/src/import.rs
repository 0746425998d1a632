//! Weight import: published PyTorch checkpoints → a 1-channel encoder in
//! safetensors with torchvision names (what `chess-train export` writes and
//! what `finetune --init PATH` reads).
//!
//! Two kinds of input are understood:
//! - a CheSS / MoCo checkpoint (`torch.save({'state_dict': …, …})`, keys
//!   `module.encoder_q.*`, possibly PyTorch's legacy non-zip format): the
//!   query encoder is taken and its projection head (`fc*`) dropped;
//! - a torchvision ResNet state dict (e.g. ImageNet `resnet50`): `conv1`'s
//!   RGB kernels are summed into one grey channel, `fc` is dropped.
//!
//! tch cannot read a pickled `OrderedDict` or a nested dict, so the pickle is
//! opened by the venv's Python torch (`torch.load(weights_only=True)`, the
//! restricted unpickler, unless the caller allows full pickles) and handed
//! over as a flat safetensors file of every tensor it holds, with dotted
//! paths as names. Everything else — finding the encoder, stripping
//! prefixes, converting conv1, checking every name and shape against our
//! ResNet — happens here in Rust.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::resnet::{Arch, HeadKind, ResNet};
use crate::{weights, Result, TrainError};

/// Flattens whatever `torch.load` returns into `{dotted.path: tensor}` and
/// saves it with safetensors. argv: source, destination, allow full pickle (0/1).
const FLATTEN_PY: &str = r#"
import sys, collections
import torch
from safetensors.torch import save_file

src, dst, unsafe = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
try:
    obj = torch.load(src, map_location="cpu", weights_only=not unsafe)
except Exception as e:
    msg = str(e).strip().splitlines()
    print(f"torch.load failed: {type(e).__name__}: {msg[0] if msg else ''}", file=sys.stderr)
    sys.exit(3)

out = {}
def walk(o, path):
    if isinstance(o, torch.Tensor):
        out[path] = o.detach().clone().contiguous()
    elif isinstance(o, torch.nn.Module):
        walk(o.state_dict(), path)
    elif isinstance(o, (dict, collections.OrderedDict)):
        for k, v in o.items():
            walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            walk(v, f"{path}.{i}" if path else str(i))
walk(obj, "")
if not out:
    print("the file holds no tensors", file=sys.stderr)
    sys.exit(4)
save_file(out, dst)
"#;

/// The venv made by `scripts/setup.sh`: `CHESS_VENV`, else
/// `$CHESS_CACHE/venv`, else `~/.cache/chess/venv`; its `bin/python`.
pub fn venv_python() -> Result<PathBuf> {
    let venv = match std::env::var_os("CHESS_VENV") {
        Some(v) => PathBuf::from(v),
        None => {
            let cache = match std::env::var_os("CHESS_CACHE") {
                Some(c) => PathBuf::from(c),
                None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/chess"),
            };
            cache.join("venv")
        }
    };
    let py = venv.join("bin/python");
    if !py.exists() {
        return Err(TrainError::Invalid(format!(
            "{} not found: run scripts/setup.sh (or set CHESS_VENV)",
            py.display()
        )));
    }
    Ok(py)
}

/// Every tensor of a pickled PyTorch file, by dotted path (through the venv's torch).
pub fn read_pickle(file: &Path, python: &Path, allow_full_pickle: bool) -> Result<Vec<(String, Tensor)>> {
    let bad = |msg: String| TrainError::File { path: file.to_path_buf(), msg };
    if !file.is_file() {
        return Err(bad("no such file".into()));
    }
    let tmp = tempfile_path("chess-import", "safetensors");
    let out = Command::new(python)
        .arg("-c")
        .arg(FLATTEN_PY)
        .arg(file)
        .arg(&tmp)
        .arg(if allow_full_pickle { "1" } else { "0" })
        .output()
        .map_err(|e| TrainError::Invalid(format!("running {}: {e}", python.display())))?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("unknown error").trim().to_string();
        let hint = if last.contains("weights_only") || last.contains("Unsupported global") {
            " (the file pickles more than tensors; if you trust it, pass --allow-pickle)"
        } else {
            ""
        };
        return Err(bad(format!("not a readable PyTorch checkpoint: {last}{hint}")));
    }
    let tensors = Tensor::read_safetensors(&tmp);
    let _ = std::fs::remove_file(&tmp);
    Ok(tensors?)
}

fn tempfile_path(stem: &str, ext: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("{stem}-{}-{nanos}.{ext}", std::process::id()))
}

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
    let bad = |msg: String| TrainError::File { path: file.to_path_buf(), msg };
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
            return Err(TrainError::File { path: file.to_path_buf(), msg: "no such file".into() });
        }
        Tensor::read_safetensors(file).map_err(|e| TrainError::File { path: file.to_path_buf(), msg: e.to_string() })?
    } else {
        let py = match python {
            Some(p) => p.to_path_buf(),
            None => venv_python()?,
        };
        read_pickle(file, &py, allow_full_pickle)?
    };
    let imported = convert(raw, file)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(crate::io_err(dir))?;
    }
    weights::write_atomic(out, &imported.tensors)?;
    Ok(imported)
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
