//! chess-train: CheSS with libtorch (tch) — MoCo v2 pretraining of
//! 1-channel ResNets on CheSS shards, downstream classification, bone
//! suppression, nodule generation and their metrics. The only crate of the
//! workspace that links libtorch.
//!
//! Layers, each importing only from the layers below it (checked by
//! `scripts/ci/check_layers.py`); tasks never import one another:
//!
//! 1. [`tasks`]: the commands' work — [`tasks::pretrain`], [`tasks::classify`],
//!    [`tasks::bone`], [`tasks::nodule`].
//! 2. [`losses`] (the perceptual loss) and [`metrics`] (classification,
//!    statistics, image quality, Fréchet distance).
//! 3. [`models`]: ResNet, encoder import, U-Net, SPADE, FID Inception-v3.
//! 4. [`runtime`] (device, seeds, mixed precision, optimizers,
//!    multi-process c10d), [`data`] (batches, prefetch, augmentations,
//!    paired datasets) and [`io`] (weights, checkpoints, pickles, TOML,
//!    CSV, PNG, atomic writes).
//! 5. [`error`]: [`TrainError`] and [`MetricsError`].
//!
//! The binary (`src/bin/chess-train/`) parses flags, draws progress and
//! maps errors to exit codes; the library reports progress through callbacks.

pub mod data;
pub mod error;
pub mod io;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod runtime;
pub mod tasks;

pub(crate) use error::{read_err, write_err};
pub use error::{MetricsError, Result, TrainError};
