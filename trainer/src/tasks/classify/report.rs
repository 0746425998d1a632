//! What a fine-tuning run writes for people: `predictions.csv` and the
//! curves of its epochs.

use std::path::Path;

use chess_shards::plot::{save_panels, Panel, Series};

use crate::io::atomic::write_bytes_atomic;
use crate::io::csv::csv_cell;
use crate::tasks::classify::config::Task;
use crate::tasks::classify::eval::{argmax, Scored};
use crate::tasks::classify::run::EpochMetrics;
use crate::{read_err, Result, TrainError};

/// `predictions.csv`: `key`, then per output its target and `<name>_score`
/// (multi-class adds `target` and `predicted` class names first).
pub fn write_predictions(path: &Path, task: Task, outputs: &[String], s: &Scored) -> Result<()> {
    let mut text = String::from("key");
    if task == Task::Multiclass {
        text.push_str(",target,predicted");
    }
    for o in outputs {
        text.push_str(&format!(",{},{}", csv_cell(o), csv_cell(&format!("{o}_score"))));
    }
    text.push('\n');
    let n = outputs.len();
    for (i, key) in s.keys.iter().enumerate() {
        text.push_str(&csv_cell(key));
        let scores = &s.scores[i * n..(i + 1) * n];
        match task {
            Task::Multilabel => {
                for (j, score) in scores.iter().enumerate() {
                    let t = s.targets.get(i * n + j).copied().unwrap_or(f32::NAN);
                    let t = if t.is_nan() { String::new() } else { format!("{t}") };
                    text.push_str(&format!(",{t},{score}"));
                }
            }
            Task::Multiclass => {
                let t = s.targets.get(i).copied().unwrap_or(f32::NAN);
                let target = if t.is_nan() { String::new() } else { csv_cell(&outputs[t as usize]) };
                text.push_str(&format!(",{target},{}", csv_cell(&outputs[argmax(scores)])));
                for (j, score) in scores.iter().enumerate() {
                    let onehot = if t.is_nan() { String::new() } else { ((t as usize == j) as u8).to_string() };
                    text.push_str(&format!(",{onehot},{score}"));
                }
            }
        }
        text.push('\n');
    }
    write_bytes_atomic(path, text.as_bytes())
}

/// Training and validation loss, the validation metric and the learning
/// rate against the epoch, as line plots in one PNG (a non-finite value
/// leaves a gap).
pub fn curves(metrics: &Path, png: &Path) -> Result<()> {
    let text = std::fs::read_to_string(metrics).map_err(read_err(metrics))?;
    let rows: Vec<EpochMetrics> =
        text.lines().filter(|l| !l.trim().is_empty()).filter_map(|l| serde_json::from_str(l).ok()).collect();
    if rows.is_empty() {
        return Err(TrainError::Input { path: metrics.to_path_buf(), msg: "no epochs yet".into() });
    }
    let series = |name: &str, f: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        points: rows.iter().map(|m| (m.epoch as f64, f(m))).collect(),
    };
    let panels = [
        Panel::lines(
            "loss",
            "epoch",
            vec![series("training", |m| m.train_loss), series("validation", |m| m.valid_loss)],
        ),
        Panel::lines(
            "validation metric (mean AUC or accuracy)",
            "epoch",
            vec![series("validation", |m| m.valid_metric)],
        ),
        Panel::lines("learning rate", "epoch", vec![series("lr", |m| m.lr)]),
    ];
    save_panels(png, &panels).map_err(|e| TrainError::Output { path: png.to_path_buf(), msg: e.to_string() })
}
