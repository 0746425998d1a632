//! Opening a dataset (a directory with `dataset.json` and
//! `manifest.parquet`) or a manifest stored elsewhere, and resolving
//! manifest rows to shard files.

use std::path::{Path, PathBuf};

use chess_schemas::{layout, DatasetInfo};

use crate::error::{Result, ShardError};
use crate::image::{Image, NpyZstDecoder};
use crate::manifest::{Manifest, ManifestFile, ManifestRow};
use crate::reader::{read_row_image, read_row_sample, DecodedSample};

/// A dataset or a manifest with the dataset root its shard paths are relative to.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub root: PathBuf,
    /// `dataset.json`, when the root has one.
    pub info: Option<DatasetInfo>,
    pub manifest: Manifest,
}

/// Reads `<root>/dataset.json`.
pub fn read_dataset_json(root: &Path) -> Result<DatasetInfo> {
    let path = root.join(layout::DATASET_JSON);
    let text = std::fs::read(&path).map_err(ShardError::read(&path))?;
    let info: DatasetInfo =
        serde_json::from_slice(&text).map_err(|cause| ShardError::DatasetJson { path: path.clone(), cause })?;
    if info.format_version > chess_schemas::FORMAT_VERSION {
        return Err(ShardError::Incompatible(format!(
            "{}: format version {} is newer than this tool's ({})",
            path.display(),
            info.format_version,
            chess_schemas::FORMAT_VERSION
        )));
    }
    Ok(info)
}

/// A dataset or manifest located, with its manifest's footer read but no
/// rows: for commands that read only some columns or some rows.
#[derive(Debug, Clone)]
pub struct DatasetFiles {
    pub root: PathBuf,
    /// `dataset.json`, when the root has one.
    pub info: Option<DatasetInfo>,
    pub manifest: ManifestFile,
}

impl DatasetFiles {
    /// Locates a dataset directory, or a manifest file: its dataset root is
    /// the one recorded in the file, else the directory holding it.
    pub fn open(path: &Path) -> Result<DatasetFiles> {
        if path.is_dir() {
            let info = read_dataset_json(path)?;
            let manifest = ManifestFile::open(&path.join(layout::MANIFEST))?;
            if manifest.num_rows() as u64 != info.sample_count {
                return Err(ShardError::Manifest {
                    path: manifest.path.clone(),
                    reason: format!(
                        "has {} rows, dataset.json says {} samples",
                        manifest.num_rows(),
                        info.sample_count
                    ),
                });
            }
            return Ok(DatasetFiles { root: path.to_path_buf(), info: Some(info), manifest });
        }
        let manifest = ManifestFile::open(path)?;
        let root = match &manifest.dataset_root {
            Some(root) => PathBuf::from(root),
            None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let info = read_dataset_json(&root).ok();
        Ok(DatasetFiles { root, info, manifest })
    }

    /// Reads every row and column.
    pub fn read(self) -> Result<Dataset> {
        let manifest = self.manifest.read()?;
        Ok(Dataset { root: self.root, info: self.info, manifest })
    }
}

impl Dataset {
    /// Opens a dataset directory, or a manifest file: its dataset root is the
    /// one recorded in the file, else the directory holding it. Reads the
    /// whole manifest; [`DatasetFiles`] reads parts.
    pub fn open(path: &Path) -> Result<Dataset> {
        DatasetFiles::open(path)?.read()
    }

    /// Absolute path of a shard named in the manifest. Shard paths must stay
    /// inside the dataset root.
    pub fn shard_path(&self, rel: &str) -> Result<PathBuf> {
        Self::shard_path_in(&self.root, &self.manifest.path, rel)
    }

    /// [`Dataset::shard_path`] for a root and the manifest naming the shard.
    pub fn shard_path_in(root: &Path, manifest: &Path, rel: &str) -> Result<PathBuf> {
        let rel_path = Path::new(rel);
        if rel_path.is_absolute() || rel_path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(ShardError::Manifest {
                path: manifest.to_path_buf(),
                reason: format!("shard path `{rel}` leaves the dataset root"),
            });
        }
        Ok(root.join(rel_path))
    }

    /// Reads the image of a row (one byte-range read).
    pub fn read_image(&self, row: &ManifestRow, decoder: &mut NpyZstDecoder) -> Result<Image> {
        read_row_image(&self.shard_path(&row.shard)?, row, decoder)
    }

    /// Reads all members of a row (one byte-range read).
    pub fn read_sample(&self, row: &ManifestRow, decoder: &mut NpyZstDecoder) -> Result<DecodedSample> {
        read_row_sample(&self.shard_path(&row.shard)?, row, decoder)
    }

    /// Index of the row with this key.
    pub fn find_key(&self, key: &str) -> Option<usize> {
        let view = self.manifest.view();
        (0..self.manifest.len()).find(|&i| view.key(i) == key)
    }

    /// Distinct shard paths, in first-appearance order.
    pub fn shards(&self) -> Vec<String> {
        let view = self.manifest.view();
        let mut seen = std::collections::HashSet::new();
        (0..self.manifest.len()).map(|i| view.shard(i)).filter(|s| seen.insert(*s)).map(str::to_string).collect()
    }
}
