//! chess-train's integration tests as one binary, so that libtorch is
//! linked once. Each module is one area; `common` holds the shared helpers
//! (the venv of `scripts/setup.sh`, demo datasets, running `chess-train`,
//! and `common::disc`, the learnable synthetic task of the downstream tests).
//!
//! How floating-point tolerances are chosen: `tests/README.md` and the
//! modules' headers.

mod common;

mod augment;
mod bone;
mod cli;
mod dist;
mod finetune;
mod import;
mod knn;
mod metrics;
mod nodule;
mod plots;
mod prefetch;
mod reference;
mod scaler;
mod sweep;
mod tensorboard;
