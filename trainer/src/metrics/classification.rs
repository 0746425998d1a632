//! Classification metrics: accuracy and the confusion matrix for the
//! multi-class task, ROC AUC (per label and averaged) and ROC curves for
//! the multi-label one.
//!
//! Conventions (those of scikit-learn, which the tests compare against):
//! - classes are indices `0..k`; a confusion matrix has the true class as
//!   its row and the predicted class as its column;
//! - binary targets are `1.0` / `0.0`; a target that is NaN or `-1.0` is
//!   masked (e.g. CheXpert's uncertain labels under `--uncertain ignore`):
//!   that sample is left out of that label's AUC;
//! - tied scores count half (AUC = the Mann–Whitney U statistic over
//!   positives × negatives with midranks), which is exactly
//!   `sklearn.metrics.roc_auc_score`;
//! - constant scores give AUC 0.5 (as scikit-learn); a label whose unmasked
//!   targets are all one class has no AUC: [`MetricsError::SingleClass`]
//!   (scikit-learn 1.9 warns and returns NaN; an error here, so that a
//!   mean over labels or repeats never swallows a NaN silently — callers
//!   that want NaN write `roc_auc(..).unwrap_or(f64::NAN)`).

use super::{same_len, MetricsError, Result};

/// Fraction of `predictions` equal to `targets` (in [0, 1]).
pub fn accuracy(targets: &[usize], predictions: &[usize]) -> Result<f64> {
    same_len("accuracy: targets and predictions", targets.len(), predictions.len())?;
    if targets.is_empty() {
        return Err(MetricsError::Empty("accuracy"));
    }
    let correct = targets.iter().zip(predictions).filter(|(t, p)| t == p).count();
    Ok(correct as f64 / targets.len() as f64)
}

/// `k × k` counts: `matrix[true class][predicted class]`
/// (`sklearn.metrics.confusion_matrix(labels=range(k))`).
pub fn confusion_matrix(targets: &[usize], predictions: &[usize], classes: usize) -> Result<Vec<Vec<u64>>> {
    same_len("confusion matrix: targets and predictions", targets.len(), predictions.len())?;
    let mut m = vec![vec![0u64; classes]; classes];
    for (index, (&t, &p)) in targets.iter().zip(predictions).enumerate() {
        for class in [t, p] {
            if class >= classes {
                return Err(MetricsError::ClassOutOfRange { index, class, classes });
            }
        }
        m[t][p] += 1;
    }
    Ok(m)
}

/// Index of the largest score (the first one on ties, as `numpy.argmax`);
/// `None` for an empty row or one holding NaN.
pub fn argmax(scores: &[f64]) -> Option<usize> {
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut best: Option<usize> = None;
    for (i, &s) in scores.iter().enumerate() {
        if best.is_none_or(|b| s > scores[b]) {
            best = Some(i);
        }
    }
    best
}

/// Whether a binary target is masked (NaN or −1).
pub fn is_masked(target: f64) -> bool {
    target.is_nan() || target == -1.0
}

/// The unmasked (target is positive, score) pairs, validated.
fn unmasked(targets: &[f64], scores: &[f64]) -> Result<Vec<(bool, f64)>> {
    same_len("ROC: targets and scores", targets.len(), scores.len())?;
    let mut pairs = Vec::with_capacity(targets.len());
    for (index, (&t, &s)) in targets.iter().zip(scores).enumerate() {
        if is_masked(t) {
            continue;
        }
        if t != 0.0 && t != 1.0 {
            return Err(MetricsError::InvalidTarget { index, value: t });
        }
        if !s.is_finite() {
            return Err(MetricsError::NonFinite { what: "ROC scores", index, value: s });
        }
        pairs.push((t == 1.0, s));
    }
    let n = pairs.len();
    if n == 0 {
        return Err(MetricsError::Empty("ROC AUC (every target is masked)"));
    }
    let positives = pairs.iter().filter(|p| p.0).count();
    if positives == 0 || positives == n {
        return Err(MetricsError::SingleClass { class: u8::from(positives == n), n });
    }
    Ok(pairs)
}

/// Area under the ROC curve of one binary label, masked targets left out.
pub fn roc_auc(targets: &[f64], scores: &[f64]) -> Result<f64> {
    let mut pairs = unmasked(targets, scores)?;
    pairs.sort_by(|a, b| a.1.total_cmp(&b.1));
    // Sum of the positives' midranks (1-based), tie groups averaged.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].1 == pairs[i].1 {
            j += 1;
        }
        let midrank = (i + j) as f64 / 2.0 + 1.0;
        let positives = pairs[i..=j].iter().filter(|p| p.0).count();
        rank_sum += midrank * positives as f64;
        i = j + 1;
    }
    let n_pos = pairs.iter().filter(|p| p.0).count() as f64;
    let n_neg = pairs.len() as f64 - n_pos;
    Ok((rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg))
}

/// [`roc_auc`] of every label: `targets[l]` and `scores[l]` are label `l`'s
/// columns. An error names the label's index.
pub fn per_label_auc(targets: &[&[f64]], scores: &[&[f64]]) -> Result<Vec<f64>> {
    same_len("per-label AUC: target and score columns", targets.len(), scores.len())?;
    if targets.is_empty() {
        return Err(MetricsError::Empty("per-label AUC (no labels)"));
    }
    targets
        .iter()
        .zip(scores)
        .enumerate()
        .map(|(index, (t, s))| roc_auc(t, s).map_err(|e| MetricsError::Label { index, source: Box::new(e) }))
        .collect()
}

/// The unweighted mean of [`per_label_auc`] (scikit-learn's `average="macro"`),
/// the CheXpert figure of merit.
pub fn mean_auc(targets: &[&[f64]], scores: &[&[f64]]) -> Result<f64> {
    let aucs = per_label_auc(targets, scores)?;
    Ok(aucs.iter().sum::<f64>() / aucs.len() as f64)
}

/// Points of a ROC curve, as `sklearn.metrics.roc_curve` (with its default
/// `drop_intermediate=True`) returns them: the first point is (0, 0) at
/// threshold +∞, thresholds decrease.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    pub fpr: Vec<f64>,
    pub tpr: Vec<f64>,
    pub thresholds: Vec<f64>,
}

/// The ROC curve of one binary label, masked targets left out.
pub fn roc_curve(targets: &[f64], scores: &[f64]) -> Result<RocCurve> {
    let mut pairs = unmasked(targets, scores)?;
    // Decreasing score; ties are collapsed below, so their order is irrelevant.
    pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
    // Cumulative true / false positives at the last index of each distinct score.
    let (mut tps, mut fps, mut thr) = (Vec::new(), Vec::new(), Vec::new());
    let mut tp = 0.0;
    for (i, &(positive, s)) in pairs.iter().enumerate() {
        if positive {
            tp += 1.0;
        }
        if i + 1 == pairs.len() || pairs[i + 1].1 != s {
            tps.push(tp);
            fps.push((i + 1) as f64 - tp);
            thr.push(s);
        }
    }
    // Drop points collinear with their neighbours (zero second differences).
    let keep: Vec<usize> = if tps.len() > 2 {
        (0..tps.len())
            .filter(|&i| {
                i == 0 || i + 1 == tps.len() || {
                    let d2 = |v: &[f64]| v[i + 1] - 2.0 * v[i] + v[i - 1];
                    d2(&fps) != 0.0 || d2(&tps) != 0.0
                }
            })
            .collect()
    } else {
        (0..tps.len()).collect()
    };
    let (tp_all, fp_all) = (tps[tps.len() - 1], fps[fps.len() - 1]);
    let mut curve = RocCurve { fpr: vec![0.0], tpr: vec![0.0], thresholds: vec![f64::INFINITY] };
    for i in keep {
        curve.fpr.push(fps[i] / fp_all);
        curve.tpr.push(tps[i] / tp_all);
        curve.thresholds.push(thr[i]);
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_simple_cases() {
        assert_eq!(roc_auc(&[0.0, 0.0, 1.0, 1.0], &[0.1, 0.4, 0.35, 0.8]).unwrap(), 0.75);
        assert_eq!(roc_auc(&[0.0, 1.0], &[0.5, 0.5]).unwrap(), 0.5);
        assert_eq!(roc_auc(&[0.0, 1.0, f64::NAN, -1.0], &[0.2, 0.9, 0.0, 1.0]).unwrap(), 1.0);
        assert!(matches!(
            roc_auc(&[1.0, 1.0, -1.0], &[0.1, 0.2, 0.3]),
            Err(MetricsError::SingleClass { class: 1, n: 2 })
        ));
        assert!(matches!(roc_auc(&[0.0, 2.0], &[0.1, 0.2]), Err(MetricsError::InvalidTarget { index: 1, .. })));
        assert!(matches!(roc_auc(&[0.0, 1.0], &[0.1, f64::NAN]), Err(MetricsError::NonFinite { index: 1, .. })));
    }

    #[test]
    fn confusion_and_accuracy() {
        let m = confusion_matrix(&[0, 1, 2, 2], &[0, 2, 2, 1], 3).unwrap();
        assert_eq!(m, vec![vec![1, 0, 0], vec![0, 0, 1], vec![0, 1, 1]]);
        assert_eq!(accuracy(&[0, 1, 2, 2], &[0, 2, 2, 1]).unwrap(), 0.5);
        assert!(matches!(
            confusion_matrix(&[0, 3], &[0, 0], 3),
            Err(MetricsError::ClassOutOfRange { index: 1, class: 3, .. })
        ));
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), Some(1));
        assert_eq!(argmax(&[]), None);
    }
}
