//! The error type of the `shards` library: every variant names the file
//! (and the member or row) it is about.

use std::path::PathBuf;

use crate::npy::NpyError;
use crate::tar::TarError;

pub type Result<T, E = ShardError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("shard {shard}: {source}")]
    Tar { shard: String, source: TarError },
    #[error("shard {shard}, member {member}: {reason}")]
    Member { shard: String, member: String, reason: String },
    #[error("shard {shard}, member {member}: {source}")]
    Npy { shard: String, member: String, source: NpyError },
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path}: parquet: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{path}: {source}")]
    Schema { path: PathBuf, source: chess_schemas::SchemaError },
    #[error("{path}: invalid dataset.json: {source}")]
    DatasetJson { path: PathBuf, source: serde_json::Error },
    #[error("{path}: cannot write: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: PNG: {source}")]
    Png { path: PathBuf, source: png::EncodingError },
    #[error("{path}: drawing the chart {title:?}: {reason}")]
    Chart { path: PathBuf, title: String, reason: String },
    #[error("invalid sample: {0}")]
    Sample(String),
    #[error("{0}")]
    Other(String),
}

impl ShardError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ShardError {
        let path = path.into();
        move |source| ShardError::Io { path, source }
    }
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ShardError {
        let path = path.into();
        move |source| ShardError::Write { path, source }
    }
    pub(crate) fn parquet(path: impl Into<PathBuf>) -> impl FnOnce(parquet::errors::ParquetError) -> ShardError {
        let path = path.into();
        move |source| ShardError::Parquet { path, source }
    }
    pub(crate) fn arrow(path: impl Into<PathBuf>) -> impl FnOnce(arrow_schema::ArrowError) -> ShardError {
        let path = path.into();
        move |source| ShardError::Manifest { path, reason: source.to_string() }
    }
}
