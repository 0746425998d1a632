//! Statistics for comparing runs: mean ± SD over repeats, the paired t-test
//! (repeats of two initialisations, or per-image metrics of two models),
//! the Stuart–Maxwell test of marginal homogeneity (two classifiers'
//! predictions on the same images), and seeded percentile bootstrap
//! confidence intervals.

use chess_shards::rng::SplitMix64;

use super::special::{chi2_sf, student_t_two_sided};
use super::{finite, same_len, MetricsError, Result};

/// Mean and sample standard deviation (ddof = 1, as `numpy.std(ddof=1)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSd {
    pub mean: f64,
    /// NaN for a single value (as NumPy).
    pub sd: f64,
    pub n: usize,
}

impl std::fmt::Display for MeanSd {
    /// `0.8123 ± 0.0101` (precision from the formatter, 4 by default).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = f.precision().unwrap_or(4);
        write!(f, "{:.p$} ± {:.p$}", self.mean, self.sd)
    }
}

/// Mean ± sample SD of `values` (finite, at least one).
pub fn mean_sd(values: &[f64]) -> Result<MeanSd> {
    if values.is_empty() {
        return Err(MetricsError::Empty("mean ± SD"));
    }
    finite("mean ± SD", values)?;
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    let sd =
        if n < 2 { f64::NAN } else { (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt() };
    Ok(MeanSd { mean, sd, n })
}

/// A two-sided test's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// Mean of `a − b` over its standard error.
    pub t: f64,
    /// n − 1.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Paired t-test of `a` against `b` (`scipy.stats.ttest_rel(a, b)`): the
/// differences `a − b` have mean zero under the null. At least two pairs.
/// When every difference is the same, SciPy's values follow: t = ±∞ and
/// p = 0 for a nonzero difference, t = p = NaN when `a == b` throughout.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TTest> {
    same_len("paired t-test: the two samples", a.len(), b.len())?;
    finite("paired t-test: first sample", a)?;
    finite("paired t-test: second sample", b)?;
    if a.len() < 2 {
        return Err(MetricsError::Invalid(format!("paired t-test: {} pair(s); at least 2 are needed", a.len())));
    }
    let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
    let n = d.len() as f64;
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let t = mean / (var / n).sqrt();
    let df = n - 1.0;
    Ok(TTest { t, df, p: student_t_two_sided(t, df) })
}

/// The Stuart–Maxwell test's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct StuartMaxwell {
    /// χ² statistic, `n dᵀ V⁻¹ d`.
    pub statistic: f64,
    /// Degrees of freedom: k − 1 for k classes when the table is connected
    /// (see [`stuart_maxwell_table`]).
    pub df: usize,
    pub p: f64,
    /// The `k × k` table it was computed from: `table[class by A][class by B]`.
    pub table: Vec<Vec<u64>>,
}

/// Stuart–Maxwell test that classifiers A and B predict each class equally
/// often, from their predictions on the same images (class indices `< classes`).
pub fn stuart_maxwell(a: &[usize], b: &[usize], classes: usize) -> Result<StuartMaxwell> {
    same_len("Stuart-Maxwell: the two classifiers' predictions", a.len(), b.len())?;
    let table = super::classification::confusion_matrix(a, b, classes)?;
    stuart_maxwell_table(&table)
}

/// Stuart–Maxwell test on a square table of paired counts. With `d` the
/// differences of column and row proportions and `V` their covariance (as
/// statsmodels' `SquareTable(table, shift_zeros=False).homogeneity()`,
/// which drops the last class).
///
/// Where statsmodels gives NaN because `V` is singular, this returns the
/// generalised-inverse statistic instead: classes neither classifier
/// predicted are left out, and when the classes fall into groups that are
/// never confused across groups (a class only ever predicted by both at
/// once forms a group of its own), the statistic is summed over the groups
/// with one class dropped per group, so `df = classes used − groups`. Two
/// classifiers that agree on every image thus get statistic 0, df 0, p 1.
pub fn stuart_maxwell_table(table: &[Vec<u64>]) -> Result<StuartMaxwell> {
    let k = table.len();
    if let Some(row) = table.iter().position(|r| r.len() != k) {
        return Err(MetricsError::Invalid(format!(
            "Stuart-Maxwell: the table is not square (row {row} has {} columns, {k} rows)",
            table[row].len()
        )));
    }
    let n: u64 = table.iter().flatten().sum();
    if n == 0 {
        return Err(MetricsError::Empty("Stuart-Maxwell table"));
    }
    let nf = n as f64;
    let p = |i: usize, j: usize| table[i][j] as f64 / nf;
    let row: Vec<f64> = (0..k).map(|i| (0..k).map(|j| p(i, j)).sum()).collect();
    let col: Vec<f64> = (0..k).map(|j| (0..k).map(|i| p(i, j)).sum()).collect();
    // Groups: connected components of "confused with each other" (an
    // off-diagonal count either way); unused classes belong to none.
    let mut group: Vec<usize> = (0..k).collect();
    fn root(g: &mut [usize], mut i: usize) -> usize {
        while g[i] != i {
            g[i] = g[g[i]];
            i = g[i];
        }
        i
    }
    for (i, counts) in table.iter().enumerate() {
        for (j, &count) in counts.iter().enumerate() {
            if i != j && count > 0 {
                let (ri, rj) = (root(&mut group, i), root(&mut group, j));
                group[ri] = rj;
            }
        }
    }
    let used: Vec<usize> = (0..k).filter(|&i| row[i] + col[i] > 0.0).collect();
    let mut statistic = 0.0;
    let mut df = 0;
    let mut roots: Vec<usize> = used.iter().map(|&i| root(&mut group, i)).collect();
    roots.sort_unstable();
    roots.dedup();
    for r in roots {
        // The group's classes but its last (the degenerate direction).
        let mut members: Vec<usize> = used.iter().copied().filter(|&i| root(&mut group, i) == r).collect();
        members.pop();
        let m = members.len();
        if m == 0 {
            continue;
        }
        let d: Vec<f64> = members.iter().map(|&i| col[i] - row[i]).collect();
        let mut v = vec![vec![0.0; m]; m];
        for (a, &i) in members.iter().enumerate() {
            for (b, &j) in members.iter().enumerate() {
                v[a][b] = if a == b { row[i] + col[i] - 2.0 * p(i, i) } else { -(p(i, j) + p(j, i)) };
            }
        }
        let x = solve(v, d.clone()).ok_or_else(|| {
            MetricsError::Invalid("Stuart-Maxwell: singular covariance within a group of confused classes".into())
        })?;
        statistic += nf * d.iter().zip(&x).map(|(a, b)| a * b).sum::<f64>();
        df += m;
    }
    let p_value = if df == 0 { 1.0 } else { chi2_sf(statistic, df as f64) };
    Ok(StuartMaxwell { statistic, df, p: p_value, table: table.to_vec() })
}

/// Solves `a x = b` by Gaussian elimination with partial pivoting; `None`
/// when a pivot vanishes.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    let scale = a.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    for c in 0..n {
        let pivot = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[pivot][c].abs() <= scale * 1e-14 {
            return None;
        }
        a.swap(c, pivot);
        b.swap(c, pivot);
        let (upper, lower) = a.split_at_mut(c + 1);
        let pivot_row = &upper[c];
        for (k, row) in lower.iter_mut().enumerate() {
            let f = row[c] / pivot_row[c];
            if f != 0.0 {
                for (x, p) in row[c..].iter_mut().zip(&pivot_row[c..]) {
                    *x -= f * p;
                }
                b[c + 1 + k] -= f * b[c];
            }
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|j| a[r][j] * x[j]).sum();
        x[r] = (b[r] - s) / a[r][r];
    }
    Some(x)
}

/// The `q`-quantile (0 ≤ q ≤ 1) of `values` with linear interpolation
/// between order statistics (`numpy.quantile`'s default method).
pub fn quantile(values: &[f64], q: f64) -> Result<f64> {
    if values.is_empty() {
        return Err(MetricsError::Empty("quantile"));
    }
    if !(0.0..=1.0).contains(&q) {
        return Err(MetricsError::Invalid(format!("quantile {q} is outside [0, 1]")));
    }
    finite("quantile", values)?;
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let h = (v.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(v.len() - 1);
    let t = h - lo as f64;
    let (a, b) = (v[lo], v[hi]);
    // NumPy's `_lerp`: interpolate from the nearer end.
    Ok(if t >= 0.5 { b - (b - a) * (1.0 - t) } else { a + (b - a) * t })
}

/// A bootstrap confidence interval.
#[derive(Debug, Clone, PartialEq)]
pub struct BootstrapCi {
    /// The statistic on the original sample.
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
    pub confidence: f64,
    /// Resamples whose statistic was defined (finite); the others (e.g. a
    /// resample with a single class for an AUC) are left out.
    pub resamples_used: usize,
    /// Every defined replicate, in drawing order.
    pub replicates: Vec<f64>,
}

/// Percentile bootstrap interval of a statistic of `n` samples: `statistic`
/// gets the indices of a sample (first `0..n` itself, then `resamples`
/// draws with replacement) and returns its value, or NaN where it is
/// undefined. The interval is the `(1 − confidence)/2` and
/// `(1 + confidence)/2` quantiles of the defined replicates. Same seed, same
/// interval.
pub fn bootstrap_ci(
    n: usize,
    resamples: usize,
    confidence: f64,
    seed: u64,
    mut statistic: impl FnMut(&[usize]) -> f64,
) -> Result<BootstrapCi> {
    if n == 0 {
        return Err(MetricsError::Empty("bootstrap sample"));
    }
    if resamples == 0 {
        return Err(MetricsError::Invalid("bootstrap: 0 resamples".into()));
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(MetricsError::Invalid(format!("bootstrap: confidence {confidence} is not in (0, 1)")));
    }
    let identity: Vec<usize> = (0..n).collect();
    let estimate = statistic(&identity);
    let mut rng = SplitMix64::new(seed);
    let mut idx = vec![0usize; n];
    let mut replicates = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for slot in idx.iter_mut() {
            *slot = rng.below(n);
        }
        let v = statistic(&idx);
        if v.is_finite() {
            replicates.push(v);
        }
    }
    if replicates.is_empty() {
        return Err(MetricsError::Invalid(format!(
            "bootstrap: the statistic was undefined on all {resamples} resamples"
        )));
    }
    let alpha = (1.0 - confidence) / 2.0;
    Ok(BootstrapCi {
        estimate,
        lower: quantile(&replicates, alpha)?,
        upper: quantile(&replicates, 1.0 - alpha)?,
        confidence,
        resamples_used: replicates.len(),
        replicates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_sd_small() {
        let m = mean_sd(&[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!(m.mean, 2.5);
        assert!((m.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
        assert!(mean_sd(&[1.0]).unwrap().sd.is_nan());
        assert_eq!(format!("{:.2}", m), "2.50 ± 1.29");
        assert!(mean_sd(&[]).is_err());
    }

    #[test]
    fn perfect_agreement_has_no_marginal_difference() {
        let r = stuart_maxwell(&[0, 1, 2, 2], &[0, 1, 2, 2], 4).unwrap();
        assert_eq!((r.statistic, r.df, r.p), (0.0, 0, 1.0));
    }

    #[test]
    fn bootstrap_is_seeded() {
        let x: Vec<f64> = (0..50).map(|i| ((i * 37) % 11) as f64).collect();
        let mean = |idx: &[usize]| idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
        let a = bootstrap_ci(x.len(), 200, 0.95, 7, mean).unwrap();
        let b = bootstrap_ci(x.len(), 200, 0.95, 7, mean).unwrap();
        let c = bootstrap_ci(x.len(), 200, 0.95, 8, mean).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.replicates, c.replicates);
        assert!(a.lower < a.estimate && a.estimate < a.upper);
    }
}
