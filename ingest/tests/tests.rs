//! chess-ingest's integration tests, one binary (the library and the
//! dev-dependencies link once):
//!
//! - [`cli`]: the DICOM command line end to end (accounting, archives, bad
//!   input, `kill -9` and resume, partitions), the subcommands and the exit
//!   code of each class of mistake;
//! - [`chexpert`], [`pairs`]: the other two front ends end to end;
//! - [`importers`]: the public chest X-ray importers (folders, MIMIC-CXR-JPG,
//!   NIH, PadChest, VinDr-CXR) on the fixtures of [`cxr_fixtures`], and
//!   their union through `chess-shards merge`;
//! - [`corpus`]: every file of pydicom's test data, pydicom-data and WG04
//!   against pydicom (needs the venv);
//! - [`lenient`]: files that are not well-formed Part 10 (no meta, wrong
//!   group length, encoding fallback, UN), the fuzz regression inputs and
//!   the per-file memory bound;
//! - [`deid`]: trusted de-identification (byte-identical datasets whatever
//!   the threads, key order in shards, `private/` modes, `--dates`, no
//!   input value on the streams at `CHESS_LOG=trace`);
//! - [`pydicom_agreement`]: decoded values against pydicom (needs the venv);
//! - [`s3`]: `--out s3://…` against `s3s-fs` (built by `scripts/setup.sh`).
//!
//! Helpers (fixtures, the binaries, synthetic DICOM) are in [`common`].
//!
//! Floating-point tolerances: almost every comparison here is exact (stored
//! values, label values, pixel arrays of the same pipeline). Where one is
//! not, the module says how its bound follows from the magnitudes involved
//! (the rounding of the output type), never from what one CPU produced.

mod common;

mod chexpert;
mod cli;
mod corpus;
mod cxr_fixtures;
mod deid;
mod importers;
mod lenient;
mod pairs;
mod pydicom_agreement;
mod s3;
mod union;
