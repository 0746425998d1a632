//! Files written atomically: a temporary name in the same folder, then a
//! rename, so a reader (or a crash) sees the old file or the new one, never
//! half of one.

use std::path::{Path, PathBuf};

use crate::{write_err, Result};

/// Writes `bytes` to `path` atomically.
pub fn write_bytes_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = tmp_name(path);
    std::fs::write(&tmp, bytes).map_err(write_err(&tmp))?;
    std::fs::rename(&tmp, path).map_err(write_err(path))?;
    Ok(())
}

pub(crate) fn tmp_name(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}
