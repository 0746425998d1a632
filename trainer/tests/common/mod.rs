#![allow(dead_code)]
//! Shared test helpers: the venv's Python and the repository root.

use std::path::PathBuf;
use std::process::Command;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The venv made by scripts/setup.sh: `CHESS_VENV`, else
/// `$CHESS_CACHE/venv`, else `~/.cache/chess/venv`.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("CHESS_VENV").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("CHESS_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/chess"));
        cache.join("venv")
    });
    let py = venv.join("bin/python");
    assert!(py.exists(), "{} not found: run scripts/setup.sh", py.display());
    py
}

/// Runs `scripts/python/trainer_reference.py ARGS` with the venv's torch.
pub fn python_reference(args: &[&str]) {
    let script = repo_root().join("scripts/python/trainer_reference.py");
    let out = Command::new(python()).arg(&script).args(args).output().expect("running python");
    assert!(out.status.success(), "trainer_reference.py {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}
