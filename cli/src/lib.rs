//! What `chess-ingest`, `chess-shards` and `chess-train` share on the
//! command line, so that the same mistake gets the same exit code, the same
//! log set-up and the same progress bars from every tool.
//!
//! - [`exit`]: the exit-code classes ([`ExitClass`]), the [`Classify`] trait
//!   the libraries implement for their errors, and [`CliError`] for
//!   failures a binary finds itself. Dependency-free: libraries use it with
//!   `default-features = false`.
//! - [`logging`], [`progress`], [`run`] (feature `bin`): the binaries' side.

pub mod exit;
#[cfg(feature = "bin")]
pub mod logging;
#[cfg(feature = "bin")]
pub mod progress;
#[cfg(feature = "bin")]
pub mod run;

pub use exit::{Classify, CliError, ExitClass, EXIT_CODES_HELP};
#[cfg(feature = "bin")]
pub use run::{exit_class_of, main_with, render};
