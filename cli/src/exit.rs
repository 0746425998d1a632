//! The exit-code map of every CheSS tool. Errors are grouped by what the
//! user must do about them, not by where they happened:
//!
//! | code | class | the user should |
//! |---|---|---|
//! | 0 | — | nothing: the command did its work (rejected inputs are listed, not failures) |
//! | 1 | [`ExitClass::CheckFailed`] | look at the report: a check ran and found problems |
//! | 2 | [`ExitClass::Usage`] | fix the command line or the TOML config |
//! | 3 | [`ExitClass::Input`] | fix or replace the input it names (missing, unreadable, invalid) |
//! | 4 | [`ExitClass::Output`] | make the output writable (permissions, disk space, object store) |
//! | 5 | [`ExitClass::Runtime`] | report it, or retry: libtorch, a distributed peer, an internal error |

use std::fmt;

/// What kind of failure ended a command; each maps to one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExitClass {
    /// A check ran and found problems (e.g. `chess-shards verify`).
    CheckFailed,
    /// A bad flag, value, combination of settings or config file.
    Usage,
    /// An input that is missing, unreadable or invalid.
    Input,
    /// An output that cannot be written.
    Output,
    /// Everything else: libtorch, a distributed peer, an internal error.
    Runtime,
}

impl ExitClass {
    /// The process exit code of this class.
    pub fn code(self) -> u8 {
        match self {
            ExitClass::CheckFailed => 1,
            ExitClass::Usage => 2,
            ExitClass::Input => 3,
            ExitClass::Output => 4,
            ExitClass::Runtime => 5,
        }
    }
}

/// The table for each tool's `--help` (`after_help`) and the README.
pub const EXIT_CODES_HELP: &str = "\
Exit codes (the same in chess-ingest, chess-shards and chess-train):
  0  success (rejected inputs are listed, not failures)
  1  a check failed (e.g. verify found problems)
  2  usage or config error (a flag, a value, a TOML file)
  3  an input is missing, unreadable or invalid
  4  an output cannot be written
  5  runtime or internal error (libtorch, a distributed peer, a bug)";

/// An error that knows its exit class. Library error enums implement it;
/// binaries find it in an error's source chain ([`crate::exit_class_of`]).
pub trait Classify {
    fn exit_class(&self) -> ExitClass;
}

/// A failure a binary finds itself (a bad flag combination, a failed
/// check), with its class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub class: ExitClass,
    pub message: String,
}

impl CliError {
    pub fn new(class: ExitClass, message: impl Into<String>) -> CliError {
        CliError { class, message: message.into() }
    }
    /// A usage or config error (exit 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError::new(ExitClass::Usage, message)
    }
    /// An invalid or unreadable input (exit 3).
    pub fn input(message: impl Into<String>) -> CliError {
        CliError::new(ExitClass::Input, message)
    }
    /// An unwritable output (exit 4).
    pub fn output(message: impl Into<String>) -> CliError {
        CliError::new(ExitClass::Output, message)
    }
    /// A check that found problems (exit 1).
    pub fn check_failed(message: impl Into<String>) -> CliError {
        CliError::new(ExitClass::CheckFailed, message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

impl Classify for CliError {
    fn exit_class(&self) -> ExitClass {
        self.class
    }
}

/// The class of an I/O error by its kind, for the library side: `write`
/// says whether the failed operation was writing an output.
pub fn io_class(err: &std::io::Error, write: bool) -> ExitClass {
    use std::io::ErrorKind::*;
    match err.kind() {
        _ if write => ExitClass::Output,
        StorageFull | ReadOnlyFilesystem | QuotaExceeded => ExitClass::Output,
        _ => ExitClass::Input,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_match_the_help_table() {
        let all = [ExitClass::CheckFailed, ExitClass::Usage, ExitClass::Input, ExitClass::Output, ExitClass::Runtime];
        let codes: std::collections::BTreeSet<u8> = all.iter().map(|c| c.code()).collect();
        assert_eq!(codes.len(), all.len());
        for c in all {
            assert!(EXIT_CODES_HELP.contains(&format!("\n  {}  ", c.code())), "{c:?} missing from the help table");
        }
    }

    #[test]
    fn io_errors_on_write_are_output_errors() {
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(io_class(&e, true), ExitClass::Output);
        assert_eq!(io_class(&e, false), ExitClass::Input);
    }
}
