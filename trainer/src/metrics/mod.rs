//! Evaluation metrics and statistics for the downstream tasks, each checked
//! against the Python peer that computes the same thing (scikit-learn,
//! SciPy, scikit-image, statsmodels; `trainer/tests/metrics.rs`).
//!
//! - [`classification`]: [`accuracy`](classification::accuracy),
//!   [`confusion_matrix`](classification::confusion_matrix),
//!   [`roc_auc`](classification::roc_auc) (ties as midranks, masked targets
//!   skipped), [`per_label_auc`](classification::per_label_auc),
//!   [`mean_auc`](classification::mean_auc), [`roc_curve`](classification::roc_curve).
//! - [`stats`]: [`paired_t_test`](stats::paired_t_test) (= `scipy.stats.ttest_rel`),
//!   [`stuart_maxwell`](stats::stuart_maxwell) (= statsmodels'
//!   `SquareTable(t, shift_zeros=False).homogeneity()`),
//!   [`bootstrap_ci`](stats::bootstrap_ci) (percentile, seeded),
//!   [`mean_sd`](stats::mean_sd) (sample SD, ddof = 1).
//! - [`special`]: log-gamma, regularised incomplete beta and gamma functions,
//!   Student t and χ² tails (the p-values above).
//! - [`image`]: [`psnr`](image::psnr), [`rmse`](image::rmse),
//!   [`ssim`](image::ssim) (scikit-image's Gaussian SSIM, σ = 1.5).
//! - [`fid`]: [`frechet_distance`](fid::frechet_distance) between two
//!   feature sets' Gaussian statistics, and the `chess-train fid` feature
//!   extraction (ResNet-50 pooled features).
//!
//! Everything but [`fid`] is pure Rust on slices of `f64`; [`fid`] uses
//! libtorch (LAPACK) for the 2048-d covariance algebra.

pub mod classification;
pub mod fid;
pub mod image;
pub mod special;
pub mod stats;

/// Why a metric could not be computed from its inputs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    #[error("{what}: {left} values against {right}")]
    LengthMismatch { what: &'static str, left: usize, right: usize },
    #[error("{0}: no values")]
    Empty(&'static str),
    #[error("ROC AUC is undefined: all {n} unmasked targets are {class} (both classes are needed)")]
    SingleClass { class: u8, n: usize },
    #[error("target {value} at index {index} is neither 0, 1 nor masked (NaN or -1)")]
    InvalidTarget { index: usize, value: f64 },
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFinite { what: &'static str, index: usize, value: f64 },
    #[error("label {index}: {source}")]
    Label { index: usize, source: Box<MetricsError> },
    #[error("class {class} at index {index} is out of range for {classes} classes")]
    ClassOutOfRange { index: usize, class: usize, classes: usize },
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = MetricsError> = std::result::Result<T, E>;

/// Checks that two paired inputs have the same length.
pub(crate) fn same_len(what: &'static str, left: usize, right: usize) -> Result<()> {
    if left != right {
        return Err(MetricsError::LengthMismatch { what, left, right });
    }
    Ok(())
}

/// The first non-finite value, as an error.
pub(crate) fn finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(MetricsError::NonFinite { what, index, value: values[index] }),
        None => Ok(()),
    }
}
