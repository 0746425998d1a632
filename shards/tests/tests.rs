//! The integration tests of `chess-shards`, as one test binary.
//!
//! Floating-point tolerances: pixels, hashes, offsets, keys and delivery
//! orders are compared exactly (they are integers or strings). The one float
//! comparison, `stats`' pixel mean against a recomputation, divides exact
//! integer sums (below 2^53) by the same count, so it is bit-identical on any
//! CPU; its tolerance is a few ulps relative to the mean, not an absolute
//! constant.

mod common;

mod cli;
mod codec;
mod format;
mod fractions;
mod loader;
mod loader_s3;
mod merge;
