//! Loss and learning-rate curves of a run as one PNG (drawn with the
//! shards crate's bundled-font charts; each bar is the mean over a bin of
//! steps), plus the kNN monitor's accuracy when the run has one.

use std::path::Path;

use chess_shards::plot::{save_panels, Panel};

use crate::tasks::pretrain::record::Metrics;
use crate::{io_err, Result, TrainError};

const MAX_BINS: usize = 300;

fn binned(values: &[f64]) -> Vec<f64> {
    if values.len() <= MAX_BINS {
        return values.to_vec();
    }
    let per = values.len().div_ceil(MAX_BINS);
    values.chunks(per).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect()
}

/// Reads `metrics.jsonl` and draws loss, top-1 and lr against the step into `png`.
pub fn curves(metrics: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(metrics).map_err(io_err(metrics))?;
    let rows: Vec<Metrics> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    if rows.is_empty() {
        return Err(TrainError::File { path: metrics.to_path_buf(), msg: "no metrics yet".into() });
    }
    let range = (rows[0].step as f64, rows[rows.len() - 1].step as f64 + 1.0);
    let col = |f: fn(&Metrics) -> f64| binned(&rows.iter().map(f).collect::<Vec<_>>());
    let mut panels = vec![
        Panel::histogram("MoCo loss (InfoNCE)", "step", col(|m| m.loss), range),
        Panel::histogram("top-1 of the positive key (%)", "step", col(|m| m.acc1), range),
        Panel::histogram("learning rate", "step", col(|m| m.lr), range),
    ];
    let knn: Vec<(u64, f64)> = rows.iter().filter_map(|m| m.knn_acc.map(|a| (m.step, a))).collect();
    if !knn.is_empty() {
        let title = "kNN monitor: leave-one-out accuracy (%)";
        panels.push(if knn.len() <= 24 {
            // Few evaluations: one labelled bar each.
            Panel::bars(
                title,
                "step",
                knn.iter().map(|(s, _)| s.to_string()).collect(),
                knn.iter().map(|(_, a)| *a).collect(),
            )
        } else {
            Panel::histogram(
                title,
                "step",
                binned(&knn.iter().map(|(_, a)| *a).collect::<Vec<_>>()),
                (knn[0].0 as f64, knn[knn.len() - 1].0 as f64 + 1.0),
            )
        });
    }
    save_panels(png, &panels).map_err(|e| TrainError::File { path: png.to_path_buf(), msg: e.to_string() })
}
