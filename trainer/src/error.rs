//! The crate's errors: [`TrainError`] for every command, [`MetricsError`]
//! for the metrics library (convertible into it), and `io_err` for naming
//! the file of an I/O error.

use std::path::PathBuf;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    #[error(transparent)]
    Loader(#[from] chess_shards::LoaderError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {msg}", path.display())]
    File { path: PathBuf, msg: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A c10d store or collective failed (a peer died, a timeout, a bad address).
    #[error("distributed: {0}")]
    Dist(String),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.into();
    move |source| TrainError::Io { path, source }
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

impl chess_cli::Classify for TrainError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        use chess_cli::ExitClass;
        match self {
            TrainError::Invalid(_) => ExitClass::Usage,
            TrainError::Io { .. } | TrainError::File { .. } | TrainError::Loader(_) | TrainError::Metrics(_) => {
                ExitClass::Input
            }
            TrainError::Torch(_) | TrainError::Dist(_) => ExitClass::Runtime,
        }
    }
}

impl chess_cli::Classify for MetricsError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        chess_cli::ExitClass::Input
    }
}
