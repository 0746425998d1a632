//! The integration tests of `chess-shards`, as one test binary.
//!
//! Floating-point tolerances: the statistics and loader tests compare values
//! computed in two ways over the same integers (pixel sums in f64); each
//! tolerance is relative to the magnitude compared, a few ulps times the
//! number of terms summed, never an absolute constant.

mod common;

mod cli;
mod format;
mod fractions;
mod loader;
mod loader_s3;
