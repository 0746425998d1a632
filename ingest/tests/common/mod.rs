//! Test helpers: where the real test data and the venv live.
//!
//! Nothing is skipped silently: a missing fixture panics with a message that
//! says to run `scripts/setup.sh`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn venv() -> PathBuf {
    let cache = std::env::var_os("CHESS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/chess"));
    cache.join("venv")
}

pub fn python() -> PathBuf {
    let p = venv().join("bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh", p.display());
    p
}

fn must_exist(p: PathBuf) -> PathBuf {
    assert!(p.exists(), "test fixture {} is missing: run scripts/setup.sh", p.display());
    p
}

fn python_path(expr: &str) -> PathBuf {
    let out = Command::new(python()).args(["-c", &format!("print({expr})")]).output().expect("run venv python");
    assert!(out.status.success(), "venv python failed ({expr}): {}; run scripts/setup.sh", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A file from pydicom's bundled test files.
pub fn pydicom_test_file(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        python_path("__import__('os').path.dirname(__import__('pydicom.data').data.__file__) + '/test_files'")
    });
    must_exist(dir.join(name))
}

/// A file from PyPI pydicom-data (`data_store/data`).
pub fn pydicom_data_file(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| python_path("__import__('sysconfig').get_paths()['purelib'] + '/data_store/data'"));
    must_exist(dir.join(name))
}

/// A NEMA WG04 file from the shared data folder.
pub fn wg04(name: &str) -> PathBuf {
    let dir = std::env::var_os("CHESS_WG04")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data/dicom/wg04"));
    must_exist(dir.join(name))
}

/// A WG04 `*_UNC.zst` reference, decompressed into `dir`.
pub fn wg04_unc(name: &str, dir: &Path) -> PathBuf {
    let src = wg04(name);
    let out = dir.join(name.replace(".zst", ".dcm"));
    let bytes = zstd::decode_all(std::fs::File::open(&src).unwrap()).unwrap();
    std::fs::write(&out, bytes).unwrap();
    out
}

/// A committed fixture in `ingest/tests/data`.
pub fn fixture(name: &str) -> PathBuf {
    must_exist(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name))
}
