//! The CheSS dataset format in code: tar shards of `.npy.zst` images plus a
//! Parquet manifest.
//!
//! - [`writer`]: [`DatasetWriter`] rolls shards and stages manifest rows, crash-safely.
//! - [`reader`]: streaming iteration of a shard from any `Read`; random access by row.
//! - [`dataset`]: opening a dataset directory or a manifest stored elsewhere.
//! - [`manifest`]: rows ⇄ Arrow ⇄ Parquet.
//! - [`image`], [`npy`], [`tar`]: the member codecs.
//! - [`loader`]: the streaming loader (local or object storage → batches).
//! - [`verify`], [`stats`], [`ops`] (merge, subset), [`filter`] (`--where`),
//!   [`plot`] (PNG charts on plotters, and [`plot::Canvas`]), [`demo`]
//!   (synthetic radiographs), [`fractions`] (per-fraction training
//!   manifests), [`balance`] (class balancing): what the `chess-shards` tool
//!   does, as library functions.
//! - [`rng`]: the workspace's one seedable generator (SplitMix64).
//! - [`error`]: [`ShardError`], grouped by what the user must do, with its
//!   exit class ([`chess_cli::Classify`]); [`LoaderError`] likewise.
//!
//! Progress is reported through callbacks; the library draws no bars. The
//! `chess-shards` binary (feature `cli`, on by default) adds argument parsing,
//! bars and logging; library users take `default-features = false`.
//!
//! This crate depends on neither libtorch nor DICOM crates.

pub mod balance;
pub mod dataset;
pub mod demo;
pub mod error;
pub mod filter;
pub mod fingerprint;
pub mod fractions;
pub mod image;
pub mod loader;
pub mod manifest;
pub mod npy;
pub mod ops;
pub mod plot;
pub mod reader;
pub mod rng;
pub mod stats;
pub mod tar;
pub mod verify;
pub mod writer;

pub use dataset::Dataset;
pub use error::{Result, ShardError};
pub use fingerprint::{key_fingerprint, FingerprintMap, FingerprintSet, WrittenKeys};
pub use image::{decode_npy_zst, encode_npy_zst, pixel_hash, Image, NpyZstDecoder};
pub use loader::{Batch, EpochReport, Loader, LoaderError, LoaderOptions, LoaderState};
pub use manifest::{LabelValue, Manifest, ManifestRow};
pub use reader::{DecodedSample, RawSample, ShardReader};
pub use writer::{encode_sample, DatasetWriter, EncodedSample, FinishInfo, Sample, SampleFields, WriterOptions};

/// This crate's version, for `dataset.json`'s `tool_version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
