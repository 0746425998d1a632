//! Every command's TOML configuration file, read and written one way.

use std::path::Path;

use serde::Serialize;

use crate::{Result, TrainError};

/// Reads any command's TOML configuration: missing keys keep their defaults,
/// unknown keys are errors (each config derives `deny_unknown_fields`); the
/// error names the file.
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let config = |msg: String| TrainError::Config { path: path.to_path_buf(), msg };
    let text = std::fs::read_to_string(path).map_err(|e| config(e.to_string()))?;
    toml::from_str(&text).map_err(|e| config(e.to_string()))
}

/// A resolved configuration as saved in a run directory.
pub fn write_toml<T: Serialize>(config: &T) -> String {
    toml::to_string_pretty(config).expect("config serialises")
}
