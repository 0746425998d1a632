//! A pretraining run's curves as one PNG: MoCo loss, top-1 of the positive
//! key and the learning rate against the step (line plots, shards' charts
//! with the bundled font), plus the kNN monitor's accuracy when the run has
//! one. Long runs are drawn as means over bins of steps.

use std::path::Path;

use chess_shards::plot::{save_panels, Panel, Series};

use crate::tasks::pretrain::record::Metrics;
use crate::{read_err, Result, TrainError};

/// Points drawn per curve at most; longer runs are averaged over bins of steps.
const MAX_POINTS: usize = 1000;

/// `(x, y)` points, as bin means (of x and of y) when there are more than [`MAX_POINTS`].
fn binned(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_POINTS {
        return points.to_vec();
    }
    let per = points.len().div_ceil(MAX_POINTS);
    points
        .chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (c.iter().map(|p| p.0).sum::<f64>() / n, c.iter().map(|p| p.1).sum::<f64>() / n)
        })
        .collect()
}

fn line(title: &str, name: &str, points: Vec<(f64, f64)>) -> Panel {
    Panel::lines(title, "step", vec![Series { name: name.into(), points: binned(&points) }])
}

/// Reads `metrics.jsonl` and draws loss, top-1 and lr against the step into `png`.
pub fn curves(metrics: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(metrics).map_err(read_err(metrics))?;
    let rows: Vec<Metrics> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    if rows.is_empty() {
        return Err(TrainError::Input { path: metrics.to_path_buf(), msg: "no metrics yet".into() });
    }
    let col = |f: fn(&Metrics) -> f64| rows.iter().map(|m| (m.step as f64, f(m))).collect::<Vec<_>>();
    let mut panels = vec![
        line("MoCo loss (InfoNCE)", "loss", col(|m| m.loss)),
        line("top-1 of the positive key (%)", "top-1", col(|m| m.acc1)),
        line("learning rate", "lr", col(|m| m.lr)),
    ];
    let knn: Vec<(f64, f64)> = rows.iter().filter_map(|m| m.knn_acc.map(|a| (m.step as f64, a))).collect();
    if !knn.is_empty() {
        panels.push(line("kNN monitor: leave-one-out accuracy (%)", "kNN", knn));
    }
    save_panels(png, &panels).map_err(|e| TrainError::Output { path: png.to_path_buf(), msg: e.to_string() })
}
