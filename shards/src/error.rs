//! The error type of the `shards` library: every variant names the file
//! (and the member, row, key or option) it is about, and the variants are
//! grouped by what the user must do about them ([`chess_cli::ExitClass`]):
//! fix the command line, fix or replace an input, make an output writable,
//! or report a bug.
//!
//! Each message includes its cause (`path: cause`), so the causes are not
//! also exposed as `source()`: a chain printed with `{:#}` says it once.

use std::path::PathBuf;

use chess_cli::{exit::io_class, Classify, ExitClass};

use crate::filter::FilterError;
use crate::npy::NpyError;
use crate::tar::TarError;

pub type Result<T, E = ShardError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    // --- usage: the command line or the options (exit 2)
    /// A bad option value or combination: `--counts`, the fractions spec,
    /// a shard name, writer limits, a key, column or array the dataset does
    /// not have.
    #[error("{0}")]
    Usage(String),
    /// A `--where` expression that does not parse or names unknown columns.
    #[error(transparent)]
    Filter(#[from] FilterError),

    // --- input: a dataset, manifest, shard or member that is missing, unreadable or invalid (exit 3)
    /// Reading a file failed.
    #[error("{path}: {cause}")]
    Read { path: PathBuf, cause: std::io::Error },
    #[error("shard {shard}: {cause}")]
    Tar { shard: String, cause: TarError },
    #[error("shard {shard}, member {member}: {reason}")]
    Member { shard: String, member: String, reason: String },
    #[error("shard {shard}, member {member}: {cause}")]
    Npy { shard: String, member: String, cause: NpyError },
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("{path}: parquet: {cause}")]
    Parquet { path: PathBuf, cause: parquet::errors::ParquetError },
    #[error("{path}: {cause}")]
    Schema { path: PathBuf, cause: chess_schemas::SchemaError },
    #[error("{path}: invalid dataset.json: {cause}")]
    DatasetJson { path: PathBuf, cause: serde_json::Error },
    /// Datasets or files that do not fit together or with this tool: merge
    /// inputs with other dtypes, columns or shared keys; requested keys not
    /// in the dataset; a newer format version.
    #[error("{0}")]
    Incompatible(String),
    /// A sample the writer cannot store (key, image, arrays, labels, duplicate key).
    #[error("invalid sample: {0}")]
    Sample(String),

    // --- output: cannot be written (exit 4)
    #[error("{path}: cannot write: {cause}")]
    Write { path: PathBuf, cause: std::io::Error },
    #[error("{path}: writing parquet: {cause}")]
    ParquetWrite { path: PathBuf, cause: parquet::errors::ParquetError },
    #[error("{path}: PNG: {cause}")]
    Png { path: PathBuf, cause: png::EncodingError },
    /// The output already holds a dataset or other files.
    #[error("{path}: {reason}")]
    OutputExists { path: PathBuf, reason: String },

    // --- runtime: a bug or a library failure (exit 5)
    #[error("{path}: drawing the chart {title:?}: {reason}")]
    Chart { path: PathBuf, title: String, reason: String },
    /// Arrow or JSON failing on data this crate built itself.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ShardError {
    /// Reading `path` (an input) failed.
    pub(crate) fn read(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ShardError {
        let path = path.into();
        move |cause| ShardError::Read { path, cause }
    }
    /// Writing `path` (an output) failed.
    pub(crate) fn write(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ShardError {
        let path = path.into();
        move |cause| ShardError::Write { path, cause }
    }
    pub(crate) fn parquet(path: impl Into<PathBuf>) -> impl FnOnce(parquet::errors::ParquetError) -> ShardError {
        let path = path.into();
        move |cause| ShardError::Parquet { path, cause }
    }
    pub(crate) fn parquet_write(path: impl Into<PathBuf>) -> impl FnOnce(parquet::errors::ParquetError) -> ShardError {
        let path = path.into();
        move |cause| ShardError::ParquetWrite { path, cause }
    }
    /// Arrow failing while reading the manifest at `path`.
    pub(crate) fn arrow(path: impl Into<PathBuf>) -> impl FnOnce(arrow_schema::ArrowError) -> ShardError {
        let path = path.into();
        move |cause| ShardError::Manifest { path, reason: cause.to_string() }
    }
    /// Arrow failing on batches this crate assembles.
    pub(crate) fn internal(e: impl std::fmt::Display) -> ShardError {
        ShardError::Internal(e.to_string())
    }
}

impl Classify for ShardError {
    fn exit_class(&self) -> ExitClass {
        use ShardError::*;
        match self {
            Usage(_) | Filter(_) => ExitClass::Usage,
            Read { cause, .. } => io_class(cause, false),
            Tar { cause: TarError::Io(e), .. } => io_class(e, false),
            Tar { .. }
            | Member { .. }
            | Npy { .. }
            | Manifest { .. }
            | Parquet { .. }
            | Schema { .. }
            | DatasetJson { .. }
            | Incompatible(_)
            | Sample(_) => ExitClass::Input,
            Write { cause, .. } => io_class(cause, true),
            ParquetWrite { .. } | Png { .. } | OutputExists { .. } => ExitClass::Output,
            Chart { .. } | Internal(_) => ExitClass::Runtime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_classify_by_direction() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(ShardError::read("in")(denied()).exit_class(), ExitClass::Input);
        assert_eq!(ShardError::write("out")(denied()).exit_class(), ExitClass::Output);
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(ShardError::Write { path: "o".into(), cause: full }.exit_class(), ExitClass::Output);
        assert_eq!(ShardError::Usage("--counts".into()).exit_class(), ExitClass::Usage);
        assert_eq!(ShardError::Internal("x".into()).exit_class(), ExitClass::Runtime);
    }
}
