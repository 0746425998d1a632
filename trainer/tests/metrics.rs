//! Agreement of `chess_train::metrics` with its Python peers: each test
//! writes its inputs as JSON, runs `scripts/python/metrics_reference.py`
//! from the venv (scikit-learn, SciPy, statsmodels, scikit-image, NumPy)
//! and compares value by value; plus the `chess-train fid` command.
//!
//! Tolerances follow from the operation, never from one CPU's output: the
//! closed-form metrics (AUC, t, χ², PSNR…) are relative ~1e-9 to 1e-12 (a
//! few hundred f64 ulps for sums of at most thousands of terms; special
//! functions to SciPy's own accuracy); the Fréchet distance, whose terms
//! cancel, is bounded relative to those terms' size by [`fd_rounding_bound`].

use crate::common;

use std::path::Path;
use std::process::Command;

use chess_shards::rng::SplitMix64;
use chess_train::metrics::classification::{accuracy, confusion_matrix, mean_auc, per_label_auc, roc_auc, roc_curve};
use chess_train::metrics::fid::{frechet_distance, FeatureStats};
use chess_train::metrics::image::{psnr, rmse, ssim};
use chess_train::metrics::special;
use chess_train::metrics::stats::{
    bootstrap_ci, mean_sd, paired_t_test, quantile, stuart_maxwell, stuart_maxwell_table,
};
use chess_train::metrics::MetricsError;
use serde_json::{json, Value};

/// Runs the reference script on `cases`; one result per case.
fn reference(cases: Vec<Value>) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let req = dir.path().join("request.json");
    let res = dir.path().join("result.json");
    std::fs::write(&req, serde_json::to_vec(&json!({ "cases": cases })).unwrap()).unwrap();
    let script = common::repo_root().join("scripts/python/metrics_reference.py");
    let out = Command::new(common::python()).arg(&script).arg(&req).arg(&res).output().expect("running python");
    assert!(out.status.success(), "metrics_reference.py failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&std::fs::read(&res).unwrap()).unwrap();
    v["results"].as_array().unwrap().clone()
}

/// A JSON number, null (NaN) or "inf"/"-inf".
fn num(v: &Value) -> f64 {
    match v {
        Value::Null => f64::NAN,
        Value::String(s) if s == "inf" => f64::INFINITY,
        Value::String(s) if s == "-inf" => f64::NEG_INFINITY,
        _ => v.as_f64().unwrap_or_else(|| panic!("not a number: {v}")),
    }
}

fn nums(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(num).collect()
}

/// |a − b| ≤ rel·max(|a|, |b|) + abs, NaN = NaN, ∞ = ∞.
fn close(a: f64, b: f64, rel: f64, abs: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= rel * a.abs().max(b.abs()) + abs
}

#[track_caller]
fn assert_close(what: &str, ours: f64, theirs: f64, rel: f64, abs: f64) {
    assert!(close(ours, theirs, rel, abs), "{what}: ours {ours:e}, peer {theirs:e} (Δ {:e})", ours - theirs);
}

struct Rng(SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(SplitMix64::new(seed))
    }
    fn uniform(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform().max(1e-300), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }
}

/// Targets (1/0, with −1 and NaN masks where `masked` > 0) and scores that
/// separate them imperfectly; `round` > 0 quantises scores to make ties.
fn binary_case(rng: &mut Rng, n: usize, positive_rate: f64, masked: f64, round: f64) -> (Vec<f64>, Vec<f64>) {
    let mut t = Vec::new();
    let mut s = Vec::new();
    for _ in 0..n {
        let pos = rng.uniform() < positive_rate;
        let mut score = rng.normal() + if pos { 1.0 } else { 0.0 };
        if round > 0.0 {
            score = (score / round).round() * round;
        }
        let u = rng.uniform();
        t.push(if u < masked / 2.0 {
            -1.0
        } else if u < masked {
            f64::NAN
        } else if pos {
            1.0
        } else {
            0.0
        });
        s.push(score);
    }
    (t, s)
}

/// NaN masks go to Python as −1 (JSON has no NaN).
fn json_targets(t: &[f64]) -> Value {
    json!(t.iter().map(|&v| if v.is_nan() { -1.0 } else { v }).collect::<Vec<_>>())
}

#[test]
fn roc_auc_and_curve_match_scikit_learn() {
    let mut rng = Rng::new(1);
    let mut cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
        binary_case(&mut rng, 200, 0.4, 0.0, 0.0),
        // Heavy ties: scores on a 0.5 grid.
        binary_case(&mut rng, 300, 0.3, 0.0, 0.5),
        // Masked targets (−1 and NaN), with ties.
        binary_case(&mut rng, 250, 0.5, 0.3, 0.25),
        // One positive among many.
        {
            let (mut t, s) = binary_case(&mut rng, 500, 0.0, 0.0, 0.0);
            t[123] = 1.0;
            (t, s)
        },
        // Constant scores: 0.5.
        (vec![0.0, 1.0, 1.0, 0.0, 1.0], vec![0.3; 5]),
        // Tiny samples.
        (vec![0.0, 1.0], vec![0.9, 0.1]),
        (vec![1.0, 0.0, 1.0], vec![0.5, 0.5, 0.7]),
        // Perfect separation.
        (vec![0.0, 0.0, 1.0, 1.0, 1.0], vec![-3.0, -2.0, 5.0, 6.0, 7.0]),
    ];
    // Single class after masking: undefined on both sides.
    cases.push((vec![1.0, -1.0, 1.0, f64::NAN, 1.0], vec![0.1, 0.2, 0.3, 0.4, 0.5]));
    let req = cases.iter().map(|(t, s)| json!({"kind": "auc", "targets": json_targets(t), "scores": s})).collect();
    let results = reference(req);
    for (i, ((t, s), r)) in cases.iter().zip(&results).enumerate() {
        if r.get("error").is_some() || num(&r["auc"]).is_nan() {
            // scikit-learn 1.9 warns and returns NaN (older versions raised).
            assert!(
                matches!(roc_auc(t, s), Err(MetricsError::SingleClass { class: 1, n: 3 })),
                "case {i}: {:?}",
                roc_auc(t, s)
            );
            assert!(roc_curve(t, s).is_err());
            continue;
        }
        let ours = roc_auc(t, s).unwrap();
        assert_close(&format!("case {i} AUC"), ours, num(&r["auc"]), 0.0, 1e-9);
        let curve = roc_curve(t, s).unwrap();
        for (name, got) in [("fpr", &curve.fpr), ("tpr", &curve.tpr), ("thresholds", &curve.thresholds)] {
            let want = nums(&r[name]);
            assert_eq!(got.len(), want.len(), "case {i} {name}: {got:?} vs {want:?}");
            for (g, w) in got.iter().zip(&want) {
                assert_close(&format!("case {i} {name}"), *g, *w, 1e-12, 1e-12);
            }
        }
    }
    // The constant-score case really is 0.5, and the tiny ones are what they look like.
    assert_eq!(roc_auc(&cases[4].0, &cases[4].1).unwrap(), 0.5);
    assert_eq!(roc_auc(&cases[5].0, &cases[5].1).unwrap(), 0.0);
    assert_eq!(roc_auc(&cases[6].0, &cases[6].1).unwrap(), 0.75);
}

#[test]
fn mean_auc_and_confusion_match_scikit_learn() {
    let mut rng = Rng::new(2);
    let labels: Vec<(Vec<f64>, Vec<f64>)> = (0..5)
        .map(|l| binary_case(&mut rng, 150, 0.15 + 0.1 * l as f64, 0.0, if l % 2 == 0 { 0.5 } else { 0.0 }))
        .collect();
    let t: Vec<&[f64]> = labels.iter().map(|(t, _)| t.as_slice()).collect();
    let s: Vec<&[f64]> = labels.iter().map(|(_, s)| s.as_slice()).collect();
    // Six classes, predictions right about 60% of the time.
    let truth: Vec<usize> = (0..400).map(|_| rng.below(6)).collect();
    let pred: Vec<usize> = truth.iter().map(|&c| if rng.uniform() < 0.6 { c } else { rng.below(6) }).collect();
    let r = reference(vec![
        json!({"kind": "auc_macro", "targets": labels.iter().map(|(t, _)| t.clone()).collect::<Vec<_>>(), "scores": labels.iter().map(|(_, s)| s.clone()).collect::<Vec<_>>()}),
        json!({"kind": "confusion", "targets": truth, "predictions": pred, "classes": 6}),
    ]);
    let per = per_label_auc(&t, &s).unwrap();
    for (i, (o, p)) in per.iter().zip(nums(&r[0]["per_label"])).enumerate() {
        assert_close(&format!("label {i}"), *o, p, 0.0, 1e-9);
    }
    assert_close("mean AUC", mean_auc(&t, &s).unwrap(), num(&r[0]["mean"]), 0.0, 1e-9);
    let m = confusion_matrix(&truth, &pred, 6).unwrap();
    let want: Vec<Vec<u64>> = r[1]["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect())
        .collect();
    assert_eq!(m, want);
    assert_close("accuracy", accuracy(&truth, &pred).unwrap(), num(&r[1]["accuracy"]), 0.0, 1e-15);
    // A label with a single class is named in the error.
    let ones = vec![1.0; 150];
    let bad: Vec<&[f64]> = vec![t[0], &ones];
    match mean_auc(&bad, &s[..2]) {
        Err(MetricsError::Label { index: 1, source }) => assert!(matches!(*source, MetricsError::SingleClass { .. })),
        other => panic!("expected a label-1 error, got {other:?}"),
    }
}

#[test]
fn special_functions_match_scipy() {
    let mut calls: Vec<(&str, Vec<f64>)> = Vec::new();
    let ab = [0.05, 0.5, 1.0, 2.5, 10.0, 50.0, 500.0, 5000.0];
    let xs = [1e-10, 1e-4, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.9999];
    for &a in &ab {
        for &b in &ab {
            for &x in &xs {
                calls.push(("betainc", vec![a, b, x]));
                calls.push(("betaincc", vec![a, b, x]));
            }
        }
    }
    for &a in &[0.01, 0.5, 1.0, 3.7, 20.0, 150.0, 1000.0] {
        for &x in &[1e-8, 0.01, 0.5, 1.0, 3.0, 10.0, 30.0, 100.0, 500.0, 1500.0] {
            calls.push(("gammainc", vec![a, x]));
            calls.push(("gammaincc", vec![a, x]));
        }
    }
    for &x in &[1e-5, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 10.0, 100.0, 1e4, 1e7] {
        calls.push(("gammaln", vec![x]));
    }
    for &df in &[1.0, 2.0, 3.0, 5.0, 9.0, 29.0, 100.0, 1000.0] {
        for &t in &[0.0, 1e-6, 0.1, 1.0, 2.0, 5.0, 10.0, 50.0, 1e3, 1e6] {
            calls.push(("t_two_sided", vec![t, df]));
            calls.push(("t_cdf", vec![-t, df]));
            calls.push(("t_cdf", vec![t, df]));
        }
    }
    for &df in &[1.0, 2.0, 3.0, 5.0, 10.0, 30.0] {
        for &x in &[0.0, 1e-6, 0.5, 3.0, 20.0, 100.0, 700.0, 1500.0] {
            calls.push(("chi2_sf", vec![x, df]));
            calls.push(("chi2_cdf", vec![x, df]));
        }
    }
    let req = json!({"kind": "special", "calls": calls.iter().map(|(f, a)| json!([f, a])).collect::<Vec<_>>()});
    let want = nums(&reference(vec![req])[0]["values"]);
    let mut worst = 0.0f64;
    let mut tiny = 0;
    for ((f, a), w) in calls.iter().zip(want) {
        let ours = match *f {
            "betainc" => special::beta_inc(a[0], a[1], a[2]),
            "betaincc" => special::beta_inc_complement(a[0], a[1], a[2]),
            "gammainc" => special::gamma_inc(a[0], a[1]),
            "gammaincc" => special::gamma_inc_complement(a[0], a[1]),
            "gammaln" => special::ln_gamma(a[0]),
            "t_two_sided" => special::student_t_two_sided(a[0], a[1]),
            "t_cdf" => special::student_t_cdf(a[0], a[1]),
            "chi2_sf" => special::chi2_sf(a[0], a[1]),
            "chi2_cdf" => special::chi2_cdf(a[0], a[1]),
            _ => unreachable!(),
        };
        if w != 0.0 && w.abs() < 1e-250 {
            tiny += 1;
        }
        // Relative 1e-9 down to 1e-250; below that SciPy itself is subnormal-limited.
        let ok = if *f == "gammaln" { close(ours, w, 1e-13, 1e-13) } else { close(ours, w, 1e-9, 1e-250) };
        assert!(ok, "{f}{a:?}: ours {ours:e}, SciPy {w:e}");
        if w.abs() > 1e-250 {
            worst = worst.max((ours - w).abs() / w.abs());
        }
    }
    eprintln!("{} calls, worst relative error {worst:.1e}, {tiny} peer values below 1e-250", calls.len());
}

#[test]
fn paired_t_test_matches_scipy() {
    let mut rng = Rng::new(3);
    // Ten repeats of two inits' mean AUCs: a small real difference.
    let a: Vec<f64> = (0..10).map(|_| 0.80 + 0.01 * rng.normal()).collect();
    let b: Vec<f64> = a.iter().map(|v| v - 0.006 + 0.004 * rng.normal()).collect();
    // A huge effect (p far below 1e-20) and a negligible one (p near 1).
    let big_a: Vec<f64> = (0..40).map(|i| i as f64 + 100.0).collect();
    let big_b: Vec<f64> = (0..40).map(|i| i as f64 + 0.01 * rng.normal()).collect();
    let near_a: Vec<f64> = (0..30).map(|_| rng.normal()).collect();
    let mut near_b: Vec<f64> = near_a.iter().map(|v| v + rng.normal()).collect();
    // Make the mean difference almost exactly zero.
    let shift = near_a.iter().zip(&near_b).map(|(x, y)| x - y).sum::<f64>() / 30.0 - 1e-4;
    near_b.iter_mut().for_each(|v| *v += shift);
    let cases: Vec<(Vec<f64>, Vec<f64>)> = vec![
        (a, b),
        (big_a, big_b),
        (near_a, near_b),
        (vec![1.0, 2.0], vec![0.5, 1.2]),
        // Every difference 1: t = ∞, p = 0 (as SciPy).
        (vec![1.0, 2.0, 3.0], vec![0.0, 1.0, 2.0]),
        // Identical samples: NaN (as SciPy).
        (vec![0.5, 0.6, 0.7], vec![0.5, 0.6, 0.7]),
    ];
    let r = reference(cases.iter().map(|(a, b)| json!({"kind": "ttest", "a": a, "b": b})).collect());
    for (i, ((a, b), r)) in cases.iter().zip(&r).enumerate() {
        let t = paired_t_test(a, b).unwrap();
        assert_close(&format!("case {i} t"), t.t, num(&r["t"]), 1e-10, 0.0);
        assert_close(&format!("case {i} df"), t.df, num(&r["df"]), 0.0, 0.0);
        assert_close(&format!("case {i} p"), t.p, num(&r["p"]), 1e-9, 1e-300);
    }
    assert!(paired_t_test(&cases[1].0, &cases[1].1).unwrap().p < 1e-20);
    assert!(paired_t_test(&cases[2].0, &cases[2].1).unwrap().p > 0.99);
    assert!(paired_t_test(&[1.0], &[2.0]).is_err());
    assert!(paired_t_test(&[1.0, 2.0], &[2.0]).is_err());
}

#[test]
fn stuart_maxwell_matches_statsmodels() {
    let mut rng = Rng::new(4);
    // Two 6-class classifiers on 500 images; B over-predicts class 0.
    let a: Vec<usize> = (0..500).map(|_| rng.below(6)).collect();
    let b: Vec<usize> = a
        .iter()
        .map(|&c| {
            if rng.uniform() < 0.7 {
                c
            } else if rng.uniform() < 0.5 {
                0
            } else {
                rng.below(6)
            }
        })
        .collect();
    // Nearly homogeneous margins (p near 1): B = A with symmetric swaps.
    let c: Vec<usize> = a
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if i % 10 == 0 {
                (x + 1) % 6
            } else if i % 10 == 5 {
                (x + 5) % 6
            } else {
                x
            }
        })
        .collect();
    let tables: Vec<Vec<Vec<u64>>> = vec![
        confusion_matrix(&a, &b, 6).unwrap(),
        confusion_matrix(&a, &c, 6).unwrap(),
        vec![vec![20, 10, 5], vec![3, 30, 15], vec![0, 7, 40]],
        // Very unequal margins: p ~ 1e-40.
        vec![vec![50, 200, 3], vec![1, 60, 150], vec![0, 2, 80]],
        vec![vec![5, 1], vec![7, 9]],
    ];
    let r = reference(tables.iter().map(|t| json!({"kind": "stuart_maxwell", "table": t})).collect());
    for (i, (t, r)) in tables.iter().zip(&r).enumerate() {
        let ours = stuart_maxwell_table(t).unwrap();
        assert_close(&format!("table {i} statistic"), ours.statistic, num(&r["statistic"]), 1e-9, 1e-12);
        assert_eq!(ours.df as f64, num(&r["df"]), "table {i} df");
        // statsmodels' own p (1 − cdf) where it is meaningful, its sf always.
        assert_close(&format!("table {i} p (sf)"), ours.p, num(&r["p_sf"]), 1e-9, 1e-300);
        assert_close(&format!("table {i} p (statsmodels)"), ours.p, num(&r["p"]), 0.0, 1e-13);
    }
    let from_preds = stuart_maxwell(&a, &b, 6).unwrap();
    assert_eq!(from_preds.statistic, stuart_maxwell_table(&tables[0]).unwrap().statistic);
    assert!(stuart_maxwell_table(&tables[3]).unwrap().p < 1e-30);
    assert!(stuart_maxwell_table(&tables[1]).unwrap().p > 0.5);

    // Where statsmodels' V is singular: a class nobody predicted, and
    // classes that are never confused across two groups. Generalised inverse.
    let singular: Vec<Vec<Vec<u64>>> = vec![
        vec![vec![20, 10, 0, 5], vec![3, 30, 0, 15], vec![0, 0, 0, 0], vec![0, 7, 0, 40]],
        vec![vec![10, 8, 0, 0], vec![2, 12, 0, 0], vec![0, 0, 9, 1], vec![0, 0, 6, 20]],
        vec![vec![10, 8, 0], vec![2, 12, 0], vec![0, 0, 9]],
    ];
    let r = reference(singular.iter().map(|t| json!({"kind": "stuart_maxwell_pinv", "table": t})).collect());
    for (i, (t, r)) in singular.iter().zip(&r).enumerate() {
        let ours = stuart_maxwell_table(t).unwrap();
        assert_close(&format!("singular {i} statistic"), ours.statistic, num(&r["statistic"]), 1e-9, 1e-12);
        assert_eq!(ours.df as f64, num(&r["df"]), "singular {i} df");
        assert_close(&format!("singular {i} p"), ours.p, num(&r["p"]), 1e-9, 1e-300);
    }
    assert!(stuart_maxwell_table(&[vec![1, 2], vec![3]]).is_err());
    assert!(stuart_maxwell_table(&[vec![0, 0], vec![0, 0]]).is_err());
}

#[test]
fn mean_sd_quantiles_and_bootstrap_match_numpy() {
    let mut rng = Rng::new(5);
    let x: Vec<f64> = (0..200).map(|_| 3.0 + 2.0 * rng.normal()).collect();
    let qs = [0.0, 0.025, 0.1, 0.5, 0.77, 0.975, 1.0];
    let mean = |idx: &[usize]| idx.iter().map(|&i| x[i]).sum::<f64>() / idx.len() as f64;
    let ci = bootstrap_ci(x.len(), 2000, 0.95, 42, mean).unwrap();
    let r = reference(vec![
        json!({"kind": "mean_sd", "values": x}),
        json!({"kind": "quantile", "values": x, "qs": qs}),
        json!({"kind": "quantile", "values": ci.replicates, "qs": [0.025, 0.975]}),
    ]);
    let m = mean_sd(&x).unwrap();
    assert_close("mean", m.mean, num(&r[0]["mean"]), 1e-14, 0.0);
    assert_close("sd", m.sd, num(&r[0]["sd"]), 1e-13, 0.0);
    for (q, w) in qs.iter().zip(nums(&r[1]["values"])) {
        assert_close(&format!("quantile {q}"), quantile(&x, *q).unwrap(), w, 1e-14, 0.0);
    }
    // The interval is exactly NumPy's percentiles of the replicates...
    let w = nums(&r[2]["values"]);
    assert_close("CI lower", ci.lower, w[0], 1e-14, 0.0);
    assert_close("CI upper", ci.upper, w[1], 1e-14, 0.0);
    assert_eq!(ci.resamples_used, 2000);
    assert_eq!(ci.estimate, m.mean);
    // ...and close to the normal-theory interval mean ± 1.96 SD/√n.
    let half = 1.96 * m.sd / (x.len() as f64).sqrt();
    assert!((ci.lower - (m.mean - half)).abs() < 0.15 * half, "{ci:?} vs ±{half}");
    assert!((ci.upper - (m.mean + half)).abs() < 0.15 * half, "{ci:?} vs ±{half}");
    // AUC bootstrap with a rare positive: undefined resamples are left out.
    let t: Vec<f64> = (0..30).map(|i| if i < 2 { 1.0 } else { 0.0 }).collect();
    let s: Vec<f64> = (0..30).map(|i| i as f64).collect();
    let auc = |idx: &[usize]| {
        let tt: Vec<f64> = idx.iter().map(|&i| t[i]).collect();
        let ss: Vec<f64> = idx.iter().map(|&i| s[i]).collect();
        roc_auc(&tt, &ss).unwrap_or(f64::NAN)
    };
    let ci = bootstrap_ci(30, 500, 0.9, 1, auc).unwrap();
    assert!(ci.resamples_used < 500 && ci.resamples_used > 300, "{}", ci.resamples_used);
    assert!(ci.replicates.iter().all(|v| v.is_finite()));
}

/// Smooth random field in [0, 1]: noise blurred by repeated box averaging.
fn smooth_image(rng: &mut Rng, h: usize, w: usize) -> Vec<f64> {
    let mut img: Vec<f64> = (0..h * w).map(|_| rng.uniform()).collect();
    for _ in 0..3 {
        let prev = img.clone();
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                let mut n = 0.0;
                for dy in -1i64..=1 {
                    for dx in -1i64..=1 {
                        let (yy, xx) = (y as i64 + dy, x as i64 + dx);
                        if yy >= 0 && xx >= 0 && (yy as usize) < h && (xx as usize) < w {
                            s += prev[yy as usize * w + xx as usize];
                            n += 1.0;
                        }
                    }
                }
                img[y * w + x] = s / n;
            }
        }
    }
    img
}

#[test]
fn image_metrics_match_scikit_image() {
    use chess_schemas::PixelDtype;
    let mut rng = Rng::new(6);
    let mut cases = Vec::new();
    let mut ours = Vec::new();
    // uint16 phantom (chess-shards demo) against its bone-free target.
    let sample = chess_shards::demo::demo_sample(3, 96, PixelDtype::Uint16, true);
    let (src, tgt) = (sample.image.to_u16(), sample.extras[0].1.to_u16());
    cases.push(json!({"kind": "images", "shape": [96, 96], "dtype": "uint16", "reference": tgt, "test": src, "data_range": 65535.0}));
    ours.push((
        ssim(&tgt, &src, 96, 96, 65535.0).unwrap(),
        psnr(&tgt, &src, 65535.0).unwrap(),
        rmse(&tgt, &src).unwrap(),
    ));
    // uint8 phantom against a noisy copy.
    let s8 = chess_shards::demo::demo_sample(5, 64, PixelDtype::Uint8, false).image.to_u16();
    let r8: Vec<u8> = s8.iter().map(|&v| v as u8).collect();
    let n8: Vec<u8> = r8.iter().map(|&v| (v as f64 + 8.0 * rng.normal()).clamp(0.0, 255.0) as u8).collect();
    cases.push(json!({"kind": "images", "shape": [64, 64], "dtype": "uint8", "reference": r8, "test": n8, "data_range": 255.0}));
    ours.push((ssim(&r8, &n8, 64, 64, 255.0).unwrap(), psnr(&r8, &n8, 255.0).unwrap(), rmse(&r8, &n8).unwrap()));
    // float64: smooth fields, non-square, and the smallest allowed side (11).
    for &(h, w) in &[(48usize, 70usize), (11, 11), (13, 40)] {
        let a = smooth_image(&mut rng, h, w);
        let b: Vec<f64> = a.iter().map(|v| 0.9 * v + 0.05 + 0.02 * rng.normal()).collect();
        cases.push(json!({"kind": "images", "shape": [h, w], "dtype": "float64", "reference": a, "test": b, "data_range": 1.0}));
        ours.push((ssim(&a, &b, h, w, 1.0).unwrap(), psnr(&a, &b, 1.0).unwrap(), rmse(&a, &b).unwrap()));
    }
    let r = reference(cases);
    for (i, ((s, p, e), r)) in ours.iter().zip(&r).enumerate() {
        assert_close(&format!("case {i} SSIM"), *s, num(&r["ssim"]), 0.0, 1e-6);
        assert_close(&format!("case {i} PSNR"), *p, num(&r["psnr"]), 1e-9, 0.0);
        assert_close(&format!("case {i} RMSE"), *e, num(&r["rmse"]), 1e-9, 0.0);
        // Not a trivial agreement: the images do differ.
        assert!(*s < 0.999 && *s > 0.0, "case {i} SSIM {s}");
    }
}

/// How far rounding can move a Fréchet distance computed from `a`, `b`:
/// FD = |μa − μb|² + tr Σa + tr Σb − 2 tr √(Σa Σb) cancels terms of size
/// `scale` = tr Σa + tr Σb + |μa − μb|². A backward-stable eigensolver
/// perturbs the eigenvalues of Σa Σb (each ≤ tr Σa · tr Σb) by about
/// δ = d·ε·tr Σa·tr Σb. Where all of them are well away from zero the trace
/// of the square root moves by ≲ d·δ/√λ, a few hundred ulps of `scale`; but
/// a singular product (fewer vectors than dimensions) has eigenvalues at
/// zero, where √ is not Lipschitz: each moves the trace by up to √δ, so the
/// bound is 2·d·√δ (≈ 4e-8 measured on an AMD EPYC, 1e-3 bound, FD ≈ 90).
fn fd_rounding_bound(a: &FeatureStats, b: &FeatureStats, singular: bool) -> f64 {
    let d = a.dim as f64;
    let trace = |s: &FeatureStats| (0..s.dim).map(|j| s.cov[j * s.dim + j]).sum::<f64>();
    let (ta, tb) = (trace(a), trace(b));
    let mean_gap: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let eps = f64::EPSILON;
    if singular {
        2.0 * d * (d * eps * ta * tb).sqrt()
    } else {
        256.0 * d * eps * (ta + tb + mean_gap)
    }
}

#[test]
fn frechet_distance_matches_scipy_sqrtm() {
    let mut rng = Rng::new(7);
    for &(dim, na, nb) in &[(8usize, 120usize, 90usize), (32, 400, 300)] {
        let a: Vec<f64> = (0..na * dim).map(|_| rng.normal()).collect();
        // b: a different mean and a correlated, anisotropic covariance.
        let mix: Vec<f64> = (0..dim * dim).map(|_| 0.3 * rng.normal()).collect();
        let b: Vec<f64> = (0..nb)
            .flat_map(|_| {
                let z: Vec<f64> = (0..dim).map(|_| rng.normal()).collect();
                (0..dim)
                    .map(|j| 0.5 + (0..dim).map(|k| mix[j * dim + k] * z[k]).sum::<f64>() + z[j])
                    .collect::<Vec<_>>()
            })
            .collect();
        let r = &reference(vec![json!({"kind": "fid", "dim": dim, "a": a, "b": b})])[0];
        let (sa, sb) = (FeatureStats::from_rows(&a, dim).unwrap(), FeatureStats::from_rows(&b, dim).unwrap());
        for (j, w) in nums(&r["mean_a"]).iter().enumerate() {
            assert_close("mean", sa.mean[j], *w, 1e-12, 1e-14);
        }
        for (j, w) in nums(&r["cov_a_diag"]).iter().enumerate() {
            assert_close("variance", sa.cov[j * dim + j], *w, 1e-12, 1e-14);
        }
        assert_close("covariance", sa.cov[1], num(&r["cov_a_01"]), 1e-10, 1e-13);
        let fd = frechet_distance(&sa, &sb).unwrap();
        // SciPy's Schur-based sqrtm and our eigendecomposition round differently: both within the bound.
        let bound = fd_rounding_bound(&sa, &sb, false);
        assert_close(&format!("FD (d={dim})"), fd, num(&r["fid"]), 0.0, 2.0 * bound);
        assert!(fd > 1.0, "{fd}");
        // Symmetric, and zero against itself.
        assert_close("symmetry", frechet_distance(&sb, &sa).unwrap(), fd, 0.0, 2.0 * bound);
        let self_fd = frechet_distance(&sa, &sa).unwrap();
        assert!(self_fd.abs() <= fd_rounding_bound(&sa, &sa, false), "FD(a, a) = {self_fd}");
    }
    // Fewer vectors than dimensions (singular covariances): the exact
    // small-set route; SciPy's sqrtm of a singular product is itself only
    // approximate there, and so is the d × d route.
    let (dim, na, nb) = (64usize, 40usize, 30usize);
    let a: Vec<f64> = (0..na * dim).map(|_| rng.normal()).collect();
    let b: Vec<f64> = (0..nb * dim).map(|i| 0.2 + 1.3 * rng.normal() + 0.1 * (i % dim) as f64 / dim as f64).collect();
    let r = &reference(vec![json!({"kind": "fid", "dim": dim, "a": a, "b": b})])[0];
    let (sa, sb) = (FeatureStats::from_rows(&a, dim).unwrap(), FeatureStats::from_rows(&b, dim).unwrap());
    assert!(sa.centred.is_some() && sb.centred.is_some());
    let exact = frechet_distance(&sa, &sb).unwrap();
    let general = frechet_distance(&sa.clone().without_rows(), &sb.clone().without_rows()).unwrap();
    let mixed = frechet_distance(&sa.clone().without_rows(), &sb).unwrap();
    eprintln!("n < d: small-set {exact}, d×d {general}, mixed {mixed}, SciPy sqrtm {}", num(&r["fid"]));
    let bound = fd_rounding_bound(&sa, &sb, true);
    eprintln!("rounding bound for singular covariances: {bound:.2e}");
    assert_close("FD n<d vs SciPy", exact, num(&r["fid"]), 0.0, 2.0 * bound);
    assert_close("FD n<d, d×d route", general, exact, 0.0, 2.0 * bound);
    assert_close("FD n<d, mixed route", mixed, exact, 0.0, 2.0 * bound);
    let self_fd = frechet_distance(&sa, &sa).unwrap();
    assert!(self_fd.abs() <= fd_rounding_bound(&sa, &sa, true), "FD(a, a) = {self_fd}");
    // The bound still tells a wrong distance from a right one.
    assert!(bound < 1e-3 * exact, "bound {bound} vs FD {exact}");
    let short = FeatureStats::from_rows(&[1.0, 2.0, 3.0], 3);
    assert!(short.is_err(), "one row has no covariance");
}

/// A random-init ResNet-50 written as an exported encoder.
fn random_encoder(path: &Path) {
    use chess_train::models::resnet::{Arch, HeadKind, ResNet};
    tch::manual_seed(0);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _m = ResNet::new(&vs.root(), Arch::Resnet50, HeadKind::None);
    chess_train::io::weights::write_atomic(path, &chess_train::io::weights::torchvision_state(&vs, 0, true)).unwrap();
}

fn write_png16(path: &Path, h: u32, w: u32, px: &[u16]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Sixteen);
    let bytes: Vec<u8> = px.iter().flat_map(|v| v.to_be_bytes()).collect();
    enc.write_header().unwrap().write_image_data(&bytes).unwrap();
}

fn fid_value(out: &str) -> f64 {
    let line = out.lines().find(|l| l.starts_with("FID ")).unwrap_or_else(|| panic!("no FID line in:\n{out}"));
    line[4..].trim().parse().unwrap()
}

#[test]
fn fid_command_on_datasets_and_png_directories() {
    use chess_schemas::PixelDtype;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let w = d.join("enc.safetensors");
    random_encoder(&w);
    common::demo_dataset(&d.join("real"), 6, 64, PixelDtype::Uint16);
    // The same images as PNGs (16-bit, as the dataset holds them).
    std::fs::create_dir(d.join("pngs")).unwrap();
    for i in 0..6 {
        let s = chess_shards::demo::demo_sample(i, 64, PixelDtype::Uint16, false);
        write_png16(&d.join(format!("pngs/{i:02}.png")), 64, 64, &s.image.to_u16());
    }
    // Other images: the demo's bone-free targets, flipped upside down.
    std::fs::create_dir(d.join("other")).unwrap();
    for i in 0..6 {
        let s = chess_shards::demo::demo_sample(i, 64, PixelDtype::Uint16, true);
        let px: Vec<u16> = s.extras[0].1.to_u16().chunks(64).rev().flatten().copied().collect();
        write_png16(&d.join(format!("other/{i:02}.png")), 64, 64, &px);
    }
    let features = format!("chess={}", w.display());
    let run = |fake: &str| {
        let real = d.join("real");
        let fake = d.join(fake);
        common::ok(&[
            "fid",
            "--real",
            real.to_str().unwrap(),
            "--fake",
            fake.to_str().unwrap(),
            "--features",
            &features,
            "--size",
            "64",
            "--device",
            "cpu",
            "--batch-size",
            "4",
        ])
    };
    let same = run("pngs");
    assert!(same.contains("CheSS ResNet-50 pooled features"), "{same}");
    assert!(same.contains("only Inception-v3 features give FIDs comparable"), "{same}");
    assert!(same.contains("real: 6 images") && same.contains("fake: 6 images"), "{same}");
    let fd_same = fid_value(&same);
    let fd_other = fid_value(&run("other"));
    assert!(fd_same.abs() < 1e-6 * fd_other.max(1.0), "identical images: FID {fd_same} (other: {fd_other})");
    assert!(fd_other > 0.0, "{fd_other}");

    // A missing weights file is an input error, an unknown network a usage error.
    let (code, _, err) = common::chess_train(&[
        "fid",
        "--real",
        "a",
        "--fake",
        "b",
        "--features",
        "chess=/nonexistent.safetensors",
        "--device",
        "cpu",
    ]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("/nonexistent.safetensors"), "{err}");
    let (code, _, err) = common::chess_train(&["fid", "--real", "a", "--fake", "b", "--features", "resnet=x"]);
    assert_eq!(code, 2, "{err}");
}

fn write_png8(path: &Path, h: u32, w: u32, px: &[u8]) {
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header().unwrap().write_image_data(px).unwrap();
}

#[test]
fn fid_inception_matches_pytorch_fid() {
    use chess_train::metrics::fid::{FeatureNet, FeatureSpec};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (h, w) = (64usize, 80usize);
    let mut rng = Rng::new(8);
    // 8-bit images, so that the PNGs pytorch-fid reads hold exactly the same values.
    let images: Vec<Vec<u8>> = (0..6)
        .map(|_| {
            smooth_image(&mut rng, h, w)
                .iter()
                .map(|v| ((v - 0.5) * 4.0 * 255.0 + 128.0).clamp(0.0, 255.0).round() as u8)
                .collect()
        })
        .collect();
    for (i, img) in images.iter().enumerate() {
        let sub = if i < 3 { "real" } else { "fake" };
        std::fs::create_dir_all(d.join(sub)).unwrap();
        write_png8(&d.join(format!("{sub}/{i}.png")), h as u32, w as u32, img);
    }
    let unit: Vec<f32> = images[..3].iter().flatten().map(|&v| v as f32 / 255.0).collect();
    let weights = d.join("inception.safetensors");
    let r = &reference(vec![json!({
        "kind": "inception", "seed": 0, "weights": weights, "shape": [h, w],
        "images": unit, "dirs": [d.join("real"), d.join("fake")],
    })])[0];
    let net = FeatureNet::load(&FeatureSpec::Inception(weights.clone()), 0, tch::Device::Cpu).unwrap();
    assert!(net.is_inception());
    let ours: Vec<f32> =
        Vec::try_from(net.features(&tch::Tensor::from_slice(&unit).view([3, 1, h as i64, w as i64])).flatten(0, -1))
            .unwrap();
    let theirs = nums(&r["features"]);
    assert_eq!(ours.len(), theirs.len());
    let scale = theirs.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = ours.iter().zip(&theirs).fold(0.0f64, |m, (a, b)| m.max((*a as f64 - b).abs()));
    eprintln!("Inception features: max |Δ| {worst:.2e} of max |f| {scale:.2e}");
    assert!(scale > 1e-3, "features vanished: {scale}");
    assert!(worst <= 1e-4 * scale, "features differ by {worst} (scale {scale})");

    let out = common::ok(&[
        "fid",
        "--real",
        d.join("real").to_str().unwrap(),
        "--fake",
        d.join("fake").to_str().unwrap(),
        "--features",
        &format!("inception={}", weights.display()),
        "--device",
        "cpu",
    ]);
    assert!(out.contains("FID Inception-v3") && out.contains("pt_inception-2015-12-05"), "{out}");
    // The command's FID equals the Fréchet distance of pytorch-fid's own
    // activations for the two directories (the formula is checked against
    // SciPy's sqrtm above).
    let peer = |k: &str| FeatureStats::from_rows(&nums(&r[k]), 2048).unwrap();
    let theirs = frechet_distance(&peer("dir0"), &peer("dir1")).unwrap();
    let ours = fid_value(&out);
    eprintln!("FID: chess-train {ours}, on pytorch-fid's activations {theirs}");
    assert!(close(ours, theirs, 1e-6, 1e-4), "FID: chess-train {ours}, on pytorch-fid's activations {theirs}");
}

#[test]
fn imagenet_features_sum_an_rgb_conv1() {
    use chess_train::metrics::fid::{FeatureNet, FeatureSpec};
    use chess_train::models::resnet::{Arch, HeadKind, ResNet};
    use tch::nn::ModuleT;
    let dir = tempfile::tempdir().unwrap();
    tch::manual_seed(1);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let model = ResNet::new(&vs.root(), Arch::Resnet50, HeadKind::None);
    // A torchvision-style state dict: conv1 over RGB, a third of the grey kernel each.
    let mut state = chess_train::io::weights::torchvision_state(&vs, 0, true);
    for (name, t) in state.iter_mut() {
        if name == "conv1.weight" {
            *t = t.repeat([1, 3, 1, 1]) / 3.0;
        }
    }
    let w = dir.path().join("imagenet.safetensors");
    chess_train::io::weights::write_atomic(&w, &state).unwrap();
    let net = FeatureNet::load(&FeatureSpec::Imagenet(w), 64, tch::Device::Cpu).unwrap();
    let x = tch::Tensor::rand([2, 1, 64, 64], (tch::Kind::Float, tch::Device::Cpu));
    let ours = net.features(&x);
    let mean = (0.485 + 0.456 + 0.406) / 3.0;
    let std = (0.229 + 0.224 + 0.225) / 3.0;
    let want = tch::no_grad(|| model.forward_t(&((&x - mean) / std), false));
    let diff = (&ours - &want).abs().max().double_value(&[]);
    let scale = want.abs().max().double_value(&[]);
    assert!(scale > 0.0 && diff <= 1e-5 * scale, "max |Δ| {diff} (scale {scale})");
}
