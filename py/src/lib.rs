//! `chess_shards._chess_shards`: the native half of the `chess_shards`
//! Python package (PyO3, abi3 for CPython ≥ 3.9).
//!
//! - [`dataset`]: `Dataset` — the manifest, `dataset.json` and one sample by
//!   one byte-range read (local or object storage).
//! - [`loader`]: `Loader` — the Rust streaming loader; batches are NumPy
//!   arrays that own the Rust buffers (no copy), the GIL is released while
//!   it works, `state_dict`/`load_state_dict` resume mid-epoch.
//! - [`tools`]: `fractions`, `balance`, `subset` — the manifest tools of
//!   `chess-shards`, as functions.
//! - [`buffer`]: `BatchBuffer`, the owner of an array's pixels (a batch's
//!   Rust `Vec`), which hands the buffer back to its loader when the array dies.
//! - [`convert`]: Rust values → Python objects (pixels, labels, states, reports).
//! - [`error`]: Rust errors → `chess_shards.ChessShardsError` with the full message.
//! - [`alloc`]: the global allocator (large buffers in transparent huge pages).
//!
//! The Python side (`py/python/chess_shards/`) adds the pyarrow manifest,
//! `chess_shards.torch.StreamingDataset` and the webdataset decoder.

use pyo3::prelude::*;

mod alloc;
mod buffer;
mod convert;
mod dataset;
mod error;
mod loader;
mod tools;

#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

#[pymodule]
fn _chess_shards(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    alloc::set_hugepages(std::env::var_os("CHESS_SHARDS_HUGEPAGES").is_none_or(|v| v != "0"));
    m.add("ChessShardsError", py.get_type::<error::ChessShardsError>())?;
    m.add("__version__", chess_shards::VERSION)?;
    m.add_class::<dataset::Dataset>()?;
    m.add_class::<loader::Loader>()?;
    m.add_class::<buffer::BatchBuffer>()?;
    m.add_function(wrap_pyfunction!(tools::fractions, m)?)?;
    m.add_function(wrap_pyfunction!(tools::balance, m)?)?;
    m.add_function(wrap_pyfunction!(tools::subset, m)?)?;
    Ok(())
}
