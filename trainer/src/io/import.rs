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

/// Checks the file's integrity, then flattens whatever `torch.load` returns
/// into `{dotted.path: tensor}` and saves it with safetensors. argv: source,
/// destination, allow full pickle (0/1). The last stderr line says what went
/// wrong; it starts with `DAMAGED:` for a file that is damaged (a zip member
/// failing its CRC-32, an unreadable archive, a pickle that does not parse)
/// and with `UNSAFE:` for an intact pickle holding objects beyond tensors.
const FLATTEN_PY: &str = r#"
import sys, io, collections, zipfile, pickletools
src, dst, unsafe = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

def fail(msg, code=3):
    print(msg.replace("\n", " "), file=sys.stderr)
    sys.exit(code)

def parse_pickles(data, count):
    """Runs the pickle opcode parser over `count` consecutive pickles; the error, or None."""
    f = io.BytesIO(data)
    try:
        for _ in range(count):
            for _ in pickletools.genops(f):
                pass
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None

# torch.save's zip format stores members uncompressed with CRC-32s that torch.load never checks.
pickle_member, pickle_bytes, pickles = None, None, 1
if zipfile.is_zipfile(src):
    try:
        with zipfile.ZipFile(src) as z:
            bad = z.testzip()
            if bad is not None:
                fail(f"DAMAGED: zip member {bad} fails its CRC-32 check (the file is corrupted)", 5)
            names = [n for n in z.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
            if names:
                pickle_member, pickle_bytes = names[0], z.read(names[0])
    except zipfile.BadZipFile as e:
        fail(f"DAMAGED: the zip archive is unreadable: {e}", 5)
else:
    with open(src, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            fail("DAMAGED: a zip archive without its central directory (truncated?)", 5)
    # The legacy format: magic number, protocol, system info, then the object, each a pickle.
    with open(src, "rb") as f:
        pickle_bytes, pickles = f.read(), 4

import torch
from safetensors.torch import save_file
try:
    obj = torch.load(src, map_location="cpu", weights_only=not unsafe)
except Exception as e:
    lines = [l.strip() for l in str(e).strip().splitlines() if l.strip()]
    detail = next((l for l in lines if "Unsupported global" in l), None)
    # Damaged: it starts as a pickle does (PROTO opcode), but does not parse.
    if pickle_bytes is not None and pickle_bytes[:1] == b"\x80":
        broken = parse_pickles(pickle_bytes, pickles)
        if broken is not None:
            where = f" (zip member {pickle_member})" if pickle_member else ""
            fail(f"DAMAGED: the pickle{where} does not parse: {broken}", 5)
    if detail is not None and not unsafe:
        fail(f"UNSAFE: {detail}")
    fail(f"torch.load failed: {type(e).__name__}: {lines[-1] if lines else ''}")

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
    fail("the file holds no tensors", 4)
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
        if let Some(what) = last.strip_prefix("DAMAGED: ") {
            return Err(bad(format!("damaged: {what}")));
        }
        if let Some(what) = last.strip_prefix("UNSAFE: ") {
            // `chess-train import` has the flag; finetune and the others read what it writes.
            return Err(bad(format!(
                "the file pickles more than tensors ({what}); if you trust it, convert it with \
                 `chess-train import --allow-pickle FILE --out ENCODER.safetensors` and use that"
            )));
        }
        return Err(bad(format!("not a readable PyTorch checkpoint: {last}")));
    }
    let tensors = Tensor::read_safetensors(&tmp);
    let _ = std::fs::remove_file(&tmp);
    Ok(tensors?)
}

fn tempfile_path(stem: &str, ext: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!("{stem}-{}-{nanos}.{ext}", std::process::id()))
}
