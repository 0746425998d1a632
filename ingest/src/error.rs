//! The one error type of the three import front ends (DICOM, CheXpert,
//! pairs): what stops an import, grouped by what the user must do about it.
//! Rejected inputs are never errors; they are rows of `rejected.parquet`.
//!
//! | group | exit | variants |
//! |---|---|---|
//! | usage/config | 2 | [`IngestError::InvalidOption`], [`IngestError::OptionsChanged`], [`IngestError::FinishedWithOtherOptions`], [`IngestError::StaleOutput`] |
//! | input | 3 | [`IngestError::Discover`], [`IngestError::Labels`], [`IngestError::BurnedInRules`], [`IngestError::ReadInput`], [`IngestError::Csv`], [`IngestError::Header`], [`IngestError::Layout`]; [`IngestError::Key`] when the key file is unreadable or short |
//! | output | 4 | [`IngestError::OtherDataset`] (as `chess-shards` for an existing dataset at its output), [`IngestError::WriteOutput`], [`IngestError::Dataset`], [`IngestError::RunFile`]; [`IngestError::Key`] when a new key cannot be written |
//! | runtime | 5 | [`IngestError::Accounting`], [`IngestError::Worker`] |

use std::path::PathBuf;

use chess_cli::{Classify, ExitClass};

/// Errors that stop an import.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    // Usage and config: fix the command line.
    /// A setting out of its range, or settings that do not go together.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// `--out` holds an interrupted import made with other options.
    #[error("'{}' holds an interrupted {import} with different options (was {before}, now {now}); re-run with the same options or choose another --out", root.display())]
    OptionsChanged { root: PathBuf, import: &'static str, before: String, now: String },
    /// `--out` holds a finished import made with other options.
    #[error("'{}' holds a finished {import} made with different options (was {before}, now {now}); choose another --out", root.display())]
    FinishedWithOtherOptions { root: PathBuf, import: &'static str, before: String, now: String },
    /// `--out` holds samples of an interrupted import that the inputs no longer produce.
    #[error("'{}': {message}", root.display())]
    StaleOutput { root: PathBuf, message: String },

    // Input: fix or replace the file named.
    #[error(transparent)]
    Discover(#[from] crate::discover::DiscoverError),
    #[error(transparent)]
    Key(#[from] crate::deid::KeyError),
    #[error(transparent)]
    Labels(#[from] crate::labels::LabelsError),
    /// The `--burned-in-rules` file cannot be read or parsed.
    #[error(transparent)]
    BurnedInRules(#[from] crate::burned_in::rules::RulesError),
    /// An input file or folder that cannot be read.
    #[error("'{}': {source}", path.display())]
    ReadInput { path: PathBuf, source: std::io::Error },
    /// A CSV that cannot be read as CSV.
    #[error("'{}': {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    /// A CSV whose header is not the one the importer reads.
    #[error("'{}': {message}", path.display())]
    Header { path: PathBuf, message: String },
    /// An input folder without the files it must hold.
    #[error("'{}': {message}", path.display())]
    Layout { path: PathBuf, message: String },

    // Output: make the output writable.
    /// `--out` holds a dataset that this import did not make (another front end, or another tool).
    #[error("'{}' already holds a dataset that this {import} did not make; choose another --out", root.display())]
    OtherDataset { root: PathBuf, import: &'static str },
    /// A file of the output dataset that cannot be written.
    #[error("'{}': {source}", path.display())]
    WriteOutput { path: PathBuf, source: std::io::Error },
    /// The dataset writer failed (shards, manifest, dataset.json).
    #[error("dataset '{}': {source}", root.display())]
    Dataset { root: PathBuf, source: chess_shards::ShardError },
    /// The stored options of an interrupted import are unreadable.
    #[error("'{}': unreadable run file ({source}); remove it or choose another --out", path.display())]
    RunFile { path: PathBuf, source: serde_json::Error },

    // Runtime: a bug or the machine.
    /// The final check that every input is one manifest row or one rejected row failed.
    #[error("accounting mismatch: {0}")]
    Accounting(String),
    /// The worker pool could not start.
    #[error("a worker thread failed: {0}")]
    Worker(String),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

impl IngestError {
    /// Reading an input failed.
    pub(crate) fn read(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
        move |source| IngestError::ReadInput { path: path.to_path_buf(), source }
    }
    /// Writing an output failed.
    pub(crate) fn write(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
        move |source| IngestError::WriteOutput { path: path.to_path_buf(), source }
    }
    /// The dataset writer at `root` failed.
    pub(crate) fn dataset(root: &std::path::Path) -> impl Fn(chess_shards::ShardError) -> IngestError + '_ {
        move |source| IngestError::Dataset { root: root.to_path_buf(), source }
    }
}

impl Classify for IngestError {
    fn exit_class(&self) -> ExitClass {
        use IngestError::*;
        match self {
            InvalidOption(_) | OptionsChanged { .. } | FinishedWithOtherOptions { .. } | StaleOutput { .. } => {
                ExitClass::Usage
            }
            Discover(e) => e.exit_class(),
            Key(e) => e.exit_class(),
            Labels(e) => e.exit_class(),
            BurnedInRules(e) => e.exit_class(),
            ReadInput { source, .. } => chess_cli::exit::io_class(source, false),
            Csv { .. } | Header { .. } | Layout { .. } => ExitClass::Input,
            OtherDataset { .. } | WriteOutput { .. } | Dataset { .. } | RunFile { .. } => ExitClass::Output,
            Accounting(_) | Worker(_) => ExitClass::Runtime,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_what_the_user_must_do() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let p = PathBuf::from("x");
        assert_eq!(IngestError::InvalidOption("--size 0".into()).exit_class(), ExitClass::Usage);
        let other = IngestError::FinishedWithOtherOptions {
            root: p.clone(),
            import: "pairs import",
            before: String::new(),
            now: String::new(),
        };
        assert_eq!(other.exit_class(), ExitClass::Usage);
        assert_eq!(IngestError::ReadInput { path: p.clone(), source: io() }.exit_class(), ExitClass::Input);
        assert_eq!(IngestError::Header { path: p.clone(), message: String::new() }.exit_class(), ExitClass::Input);
        assert_eq!(IngestError::WriteOutput { path: p, source: io() }.exit_class(), ExitClass::Output);
        assert_eq!(IngestError::Accounting(String::new()).exit_class(), ExitClass::Runtime);
    }
}
