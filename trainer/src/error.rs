//! The crate's errors, grouped by what the user must do about them (each
//! group is one exit code of the tools, [`chess_cli::ExitClass`]):
//!
//! | class | variants | the user should |
//! |---|---|---|
//! | usage (2) | `Settings`, `Config`, `Setup` | fix a flag, a value, the TOML file or the set-up |
//! | input (3) | `Read`, `Dataset`, `Weights`, `Input`, `Metrics` | fix or replace the input named |
//! | output (4) | `Write`, `Output` | make the output writable |
//! | runtime (5) | `Torch`, `Dist`, `Diverged`, `Internal` | report it or retry |
//!
//! `Loader` takes chess-shards' class of the loader's error (mostly input).
//! [`MetricsError`] is the metrics library's own (always an input problem:
//! the values it was given cannot be scored). `read_err` / `write_err` name
//! the file of an I/O error and say which side it was on. Each message
//! includes its cause (`path: cause`), so causes are not also exposed as
//! `source()`: a chain printed with `{:#}` says it once.

use std::path::PathBuf;

use chess_cli::{Classify, ExitClass};

/// What can go wrong in a command.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    // Usage and config: fix the command line or the TOML file.
    /// A setting, or a combination of settings, that cannot work: a flag,
    /// a config value, the device, a launcher's environment variable.
    #[error("{0}")]
    Settings(String),
    /// A TOML configuration (or sweep plan) that cannot be read or parsed.
    #[error("{}: {msg}", path.display())]
    Config { path: PathBuf, msg: String },
    /// Something the command needs is not set up (the venv of `scripts/setup.sh`).
    #[error("{0}")]
    Setup(String),

    // Input: fix or replace what is named.
    /// Reading an input failed.
    #[error("{}: {cause}", path.display())]
    Read { path: PathBuf, cause: std::io::Error },
    /// A dataset or manifest that cannot serve the command (a missing array
    /// or column, too few samples, an unknown class).
    #[error("{location}: {msg}")]
    Dataset { location: String, msg: String },
    /// Weights, a checkpoint, a classifier card or a PyTorch file that is
    /// missing or not what the command needs (names, shapes, format).
    #[error("{}: {msg}", path.display())]
    Weights { path: PathBuf, msg: String },
    /// Another input file that is invalid (an image, a CSV, a run's JSON).
    #[error("{}: {msg}", path.display())]
    Input { path: PathBuf, msg: String },
    #[error(transparent)]
    Loader(#[from] chess_shards::LoaderError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),

    // Output: make it writable.
    /// Writing an output failed.
    #[error("{}: {cause}", path.display())]
    Write { path: PathBuf, cause: std::io::Error },
    /// An output that could not be encoded (a PNG, a chart, Parquet).
    #[error("{}: {msg}", path.display())]
    Output { path: PathBuf, msg: String },

    // Runtime: report it, or retry.
    #[error("libtorch: {0}")]
    Torch(tch::TchError),
    /// A c10d store or collective failed (a peer died, a timeout, a bad address).
    #[error("distributed: {0}")]
    Dist(String),
    /// Training that cannot go on (losses became NaN or infinite).
    #[error("{0}")]
    Diverged(String),
    /// A state the code should never reach.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

impl From<tch::TchError> for TrainError {
    fn from(e: tch::TchError) -> TrainError {
        TrainError::Torch(e)
    }
}

/// An I/O error while reading the input `path`.
pub(crate) fn read_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |cause| TrainError::Read { path, cause }
}

/// An I/O error while writing the output `path`.
pub(crate) fn write_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |cause| TrainError::Write { path, cause }
}

impl Classify for TrainError {
    fn exit_class(&self) -> ExitClass {
        match self {
            TrainError::Settings(_) | TrainError::Config { .. } | TrainError::Setup(_) => ExitClass::Usage,
            TrainError::Read { .. }
            | TrainError::Dataset { .. }
            | TrainError::Weights { .. }
            | TrainError::Input { .. }
            | TrainError::Metrics(_) => ExitClass::Input,
            TrainError::Loader(e) => e.exit_class(),
            TrainError::Write { .. } | TrainError::Output { .. } => ExitClass::Output,
            TrainError::Torch(_) | TrainError::Dist(_) | TrainError::Diverged(_) | TrainError::Internal(_) => {
                ExitClass::Runtime
            }
        }
    }
}

/// Why a metric could not be computed from its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("{what}: {left} values against {right}")]
    LengthMismatch { what: &'static str, left: usize, right: usize },
    #[error("{0}: no values")]
    Empty(&'static str),
    #[error("ROC AUC is undefined: all {n} unmasked targets are {class} (both classes are needed)")]
    SingleClass { class: u8, n: usize },
    #[error("target {value} at index {index} is neither 0, 1 nor masked (NaN or -1)")]
    InvalidTarget { index: usize, value: f64 },
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFinite { what: &'static str, index: usize, value: f64 },
    #[error("label {index}: {source}")]
    Label { index: usize, source: Box<MetricsError> },
    #[error("class {class} at index {index} is out of range for {classes} classes")]
    ClassOutOfRange { index: usize, class: usize, classes: usize },
    #[error("{0}")]
    Invalid(String),
}

impl Classify for MetricsError {
    fn exit_class(&self) -> ExitClass {
        ExitClass::Input
    }
}
