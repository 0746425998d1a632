//! `chess-train bone-compare`: paired t-tests of per-image PSNR, SSIM and
//! RMSE between two bone-suppression runs on the same test images.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::metrics::stats::paired_t_test;
use crate::{read_err, Result, TrainError};

/// Reads a run's `test_metrics.csv`: key → (PSNR, SSIM, RMSE).
pub fn read_test_metrics(run: &Path) -> Result<HashMap<String, [f64; 3]>> {
    let path = run.join("test_metrics.csv");
    let text = std::fs::read_to_string(&path).map_err(read_err(&path))?;
    let bad = |line: usize, msg: String| TrainError::Input { path: path.clone(), msg: format!("line {line}: {msg}") };
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.starts_with("key,psnr,ssim,rmse") => {}
        _ => return Err(bad(1, "expected the header `key,psnr,ssim,rmse,…`".into())),
    }
    let mut out = HashMap::new();
    for (i, line) in lines.enumerate() {
        // The key may be quoted and hold commas: the numbers are the last six fields.
        let fields: Vec<&str> = line.rsplitn(7, ',').collect();
        if fields.len() != 7 {
            return Err(bad(i + 2, format!("expected 7 fields: `{line}`")));
        }
        let num = |s: &str| s.parse::<f64>().map_err(|_| bad(i + 2, format!("`{s}` is not a number")));
        let key = fields[6].trim_matches('"').replace("\"\"", "\"");
        out.insert(key, [num(fields[5])?, num(fields[4])?, num(fields[3])?]);
    }
    Ok(out)
}

/// One metric compared between two runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricComparison {
    pub metric: String,
    pub mean_a: f64,
    pub mean_b: f64,
    /// Paired t-test of A − B (`scipy.stats.ttest_rel(a, b)`).
    pub t: f64,
    pub p: f64,
    pub n: usize,
}

/// Paired t-tests of PSNR, SSIM and RMSE between two runs over the test images both scored.
pub fn compare(run_a: &Path, run_b: &Path) -> Result<Vec<MetricComparison>> {
    let (a, b) = (read_test_metrics(run_a)?, read_test_metrics(run_b)?);
    let mut keys: Vec<&String> = a.keys().filter(|k| b.contains_key(*k)).collect();
    keys.sort();
    if keys.len() != a.len() || keys.len() != b.len() {
        return Err(TrainError::Settings(format!(
            "{} and {} scored different test images ({} and {}, {} in common): compare runs on the same test set",
            run_a.display(),
            run_b.display(),
            a.len(),
            b.len(),
            keys.len()
        )));
    }
    let mut out = Vec::new();
    for (j, name) in ["psnr", "ssim", "rmse"].iter().enumerate() {
        let va: Vec<f64> = keys.iter().map(|k| a[*k][j]).collect();
        let vb: Vec<f64> = keys.iter().map(|k| b[*k][j]).collect();
        if va.iter().chain(&vb).any(|v| !v.is_finite()) {
            return Err(TrainError::Settings(format!(
                "{name}: a test image has an infinite value (an output equal to its target); no t-test"
            )));
        }
        let t = paired_t_test(&va, &vb)?;
        let n = va.len();
        out.push(MetricComparison {
            metric: name.to_string(),
            mean_a: va.iter().sum::<f64>() / n as f64,
            mean_b: vb.iter().sum::<f64>() / n as f64,
            t: t.t,
            p: t.p,
            n,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_metrics_csv_reads_quoted_keys() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("test_metrics.csv"),
            "key,psnr,ssim,rmse,input_psnr,input_ssim,input_rmse\n\"a,b\",30,0.9,5,20,0.8,9\nc,31,0.95,4,21,0.85,8\n",
        )
        .unwrap();
        let m = read_test_metrics(d.path()).unwrap();
        assert_eq!(m["a,b"], [30.0, 0.9, 5.0]);
        assert_eq!(m["c"], [31.0, 0.95, 4.0]);
        std::fs::write(
            d.path().join("test_metrics.csv"),
            "key,psnr,ssim,rmse,input_psnr,input_ssim,input_rmse\nc,x,0.95,4,21,0.85,8\n",
        )
        .unwrap();
        assert!(read_test_metrics(d.path()).unwrap_err().to_string().contains("line 2"));
    }
}
