//! Evaluation metrics and statistics for the downstream tasks, each checked
//! against the Python peer that computes the same thing (scikit-learn,
//! SciPy, scikit-image, statsmodels; `trainer/tests/metrics.rs`).
//!
//! - [`classification`] — `accuracy(targets, preds) -> f64` in [0, 1];
//!   `confusion_matrix(targets, preds, k) -> Vec<Vec<u64>>`
//!   (`[true][predicted]`); `roc_auc(targets, scores) -> f64` (ties as
//!   midranks; NaN / −1 targets masked; one class → `SingleClass` error);
//!   `per_label_auc(&[targets], &[scores]) -> Vec<f64>`;
//!   `mean_auc(..) -> f64` (macro mean); `roc_curve(..) -> RocCurve
//!   { fpr, tpr, thresholds }`; `argmax(row) -> Option<usize>`.
//! - [`stats`] — `paired_t_test(a, b) -> TTest { t, df, p }`
//!   (= `scipy.stats.ttest_rel`); `stuart_maxwell(preds_a, preds_b, k)` and
//!   `stuart_maxwell_table(table) -> StuartMaxwell { statistic, df, p, table }`
//!   (= statsmodels' `SquareTable(t, shift_zeros=False).homogeneity()`);
//!   `bootstrap_ci(n, resamples, confidence, seed, |indices| stat) ->
//!   BootstrapCi { estimate, lower, upper, .. }` (percentile, seeded);
//!   `mean_sd(values) -> MeanSd { mean, sd, n }` (ddof = 1; `{:.3}` prints
//!   `0.812 ± 0.010`); `quantile(values, q) -> f64` (NumPy's linear).
//! - [`special`] — log-gamma, regularised incomplete beta and gamma
//!   functions, Student t and χ² tails (the p-values above).
//! - [`image`] — `psnr(reference, test, data_range) -> f64` (dB, +∞ when
//!   identical), `rmse(reference, test) -> f64`, `ssim(reference, test, h,
//!   w, data_range) -> f64` (scikit-image's Gaussian SSIM, σ = 1.5); any
//!   pixel type that converts to `f64` (u8, u16, f32, f64).
//! - [`fid`] — `FeatureStats::from_rows(rows, dim)`, `frechet_distance(a, b)
//!   -> f64`, and the `chess-train fid` feature extraction;
//!   the network is [`crate::models::inception`].
//!
//! Errors are [`MetricsError`] (convertible into `TrainError`).
//! Everything but [`fid`] is pure Rust on slices of `f64`; [`fid`] uses
//! libtorch (LAPACK) for the 2048-d covariance algebra.

pub mod classification;
pub mod fid;
pub mod image;
pub mod special;
pub mod stats;

pub use crate::error::MetricsError;

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
