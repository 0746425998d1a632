//! Rust errors as Python exceptions: `chess_shards.ChessShardsError` (an
//! `Exception`) carrying the error's whole message — file, shard and member
//! as the Rust error names them — with each cause once.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyValueError};
use pyo3::PyErr;

create_exception!(
    chess_shards,
    ChessShardsError,
    PyException,
    "An error of the CheSS shards library: a dataset, shard or member that cannot be read, bad settings, a failed fetch."
);

/// The error and its causes, a cause left out when its wrapper already quotes it.
pub fn message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
        source = cause.source();
    }
    text
}

/// `ChessShardsError(message)`.
pub fn to_py(e: impl std::error::Error + 'static) -> PyErr {
    ChessShardsError::new_err(message(&e))
}

/// A `ValueError` for an argument the binding itself checks (an unknown `remainder`, a negative count).
pub fn usage(text: impl Into<String>) -> PyErr {
    PyValueError::new_err(text.into())
}
