//! Reading published PyTorch files: tch cannot read a pickled
//! `OrderedDict` or a nested dict, so the pickle is opened by the venv's
//! Python torch (`torch.load(weights_only=True)`, the restricted unpickler,
//! unless the caller allows full pickles) and handed over as a flat
//! safetensors file of every tensor it holds, with dotted paths as names.
//! Making an encoder of them is [`crate::models::encoder`]'s work.

use std::path::{Path, PathBuf};
use std::process::Command;

use tch::Tensor;

use crate::{Result, TrainError};

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
        return Err(TrainError::Setup(format!("{} not found: run scripts/setup.sh (or set CHESS_VENV)", py.display())));
    }
    Ok(py)
}

/// Every tensor of a pickled PyTorch file, by dotted path (through the venv's torch).
pub fn read_pickle(file: &Path, python: &Path, allow_full_pickle: bool) -> Result<Vec<(String, Tensor)>> {
    let bad = |msg: String| TrainError::Weights { path: file.to_path_buf(), msg };
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
        .map_err(|e| TrainError::Setup(format!("running {}: {e}", python.display())))?;
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
