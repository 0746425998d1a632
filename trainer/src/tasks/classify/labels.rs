//! Targets from manifest columns: `target_<label>` (resolved by
//! `chess-shards fractions`, null = masked), a raw CheXpert column (1, 0,
//! −1 uncertain, blank; the config decides −1, blank is negative), or one
//! class column for multi-class; and the model's outputs they define.

use std::collections::{BTreeSet, HashMap};

use chess_shards::loader::{Batch, Loader};
use chess_shards::manifest::label_value;
use chess_shards::LabelValue;

use crate::tasks::classify::config::{LabelConfig, Task, Uncertain};
use crate::{Result, TrainError};

/// How one output's target is read from a manifest's label columns.
#[derive(Debug, Clone, Copy)]
enum Column {
    /// `target_<label>`: 1/0, null masked.
    Resolved(usize),
    /// Raw CheXpert-style: 1, 0, −1 (by the policy), null = 0.
    Raw(usize),
}

/// Targets of a batch: multi-label `[B, L]` (NaN = masked) or multi-class `[B]` (−100 = none).
pub(crate) enum Targets {
    Multilabel(Vec<f32>),
    Multiclass(Vec<i64>),
}

/// Reads targets from one manifest's columns.
pub(crate) struct TargetReader {
    task: Task,
    uncertain: Uncertain,
    columns: Vec<Column>,
    /// Multi-class: class name → index.
    classes: HashMap<String, i64>,
    manifest: String,
}

/// A class value's name (`3`, `nodule`, `true`).
pub fn class_name(v: &LabelValue) -> Option<String> {
    match v {
        LabelValue::Null => None,
        LabelValue::Str(s) => Some(s.clone()),
        LabelValue::Int(i) => Some(i.to_string()),
        LabelValue::Bool(b) => Some(b.to_string()),
        LabelValue::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => Some(format!("{}", *f as i64)),
        LabelValue::Float(f) => Some(f.to_string()),
    }
}

fn number(v: &LabelValue) -> Option<f64> {
    match v {
        LabelValue::Bool(b) => Some(*b as u8 as f64),
        LabelValue::Int(i) => Some(*i as f64),
        LabelValue::Float(f) => Some(*f),
        LabelValue::Str(s) => s.trim().parse().ok(),
        LabelValue::Null => None,
    }
}

impl TargetReader {
    pub(crate) fn new(loader: &Loader, location: &str, cfg: &LabelConfig, outputs: &[String]) -> Result<TargetReader> {
        let names = loader.label_names();
        let find = |n: &str| names.iter().position(|c| c == n);
        let missing = |what: String| TrainError::Dataset { location: location.to_string(), msg: what };
        let columns = match cfg.task {
            Task::Multilabel => outputs
                .iter()
                .map(|l| match (find(&format!("target_{l}")), find(l)) {
                    (Some(i), _) => Ok(Column::Resolved(i)),
                    (None, Some(i)) => Ok(Column::Raw(i)),
                    (None, None) => {
                        Err(missing(format!("no column `target_{l}` or `{l}` (label columns: {})", names.join(", "))))
                    }
                })
                .collect::<Result<Vec<_>>>()?,
            Task::Multiclass => {
                let col = class_column(names, cfg).ok_or_else(|| {
                    missing(format!(
                        "no class column {:?} (label columns: {})",
                        class_column_wanted(cfg),
                        names.join(", ")
                    ))
                })?;
                vec![Column::Resolved(find(&col).expect("found"))]
            }
        };
        let classes = outputs.iter().enumerate().map(|(i, c)| (c.clone(), i as i64)).collect();
        Ok(TargetReader { task: cfg.task, uncertain: cfg.uncertain, columns, classes, manifest: location.to_string() })
    }

    pub(crate) fn read(&self, batch: &Batch) -> Result<Targets> {
        match self.task {
            Task::Multilabel => {
                let mut out = Vec::with_capacity(batch.len() * self.columns.len());
                for row in &batch.labels {
                    for c in &self.columns {
                        out.push(match *c {
                            Column::Resolved(i) => number(&row[i]).map_or(f32::NAN, |v| v as f32),
                            Column::Raw(i) => match number(&row[i]) {
                                None => 0.0,
                                Some(v) if v < 0.0 => match self.uncertain {
                                    Uncertain::Ones => 1.0,
                                    Uncertain::Zeros => 0.0,
                                    Uncertain::Ignore => f32::NAN,
                                },
                                Some(v) => (v > 0.0) as u8 as f32,
                            },
                        });
                    }
                }
                Ok(Targets::Multilabel(out))
            }
            Task::Multiclass => {
                let Column::Resolved(i) = self.columns[0] else { unreachable!("multiclass columns are resolved") };
                let mut out = Vec::with_capacity(batch.len());
                for (row, key) in batch.labels.iter().zip(&batch.keys) {
                    out.push(match class_name(&row[i]) {
                        None => -100,
                        Some(c) => *self.classes.get(&c).ok_or_else(|| TrainError::Dataset {
                            location: self.manifest.clone(),
                            msg: format!(
                                "sample {key} has class `{c}`, not one of the model's classes {:?}",
                                self.class_list()
                            ),
                        })?,
                    });
                }
                Ok(Targets::Multiclass(out))
            }
        }
    }

    pub(crate) fn class_list(&self) -> Vec<String> {
        let mut v: Vec<(&String, &i64)> = self.classes.iter().collect();
        v.sort_by_key(|(_, i)| **i);
        v.into_iter().map(|(c, _)| c.clone()).collect()
    }
}

fn class_column_wanted(cfg: &LabelConfig) -> Vec<String> {
    if cfg.labels.is_empty() {
        vec!["label".into(), "class".into()]
    } else {
        cfg.labels.clone()
    }
}

fn class_column(names: &[String], cfg: &LabelConfig) -> Option<String> {
    class_column_wanted(cfg).into_iter().find(|c| names.contains(c))
}

/// The model's outputs: labels (multi-label) or classes (multi-class).
pub(crate) fn resolve_outputs(train: &Loader, location: &str, cfg: &LabelConfig) -> Result<Vec<String>> {
    let names = train.label_names();
    let bad = |msg: String| TrainError::Dataset { location: location.to_string(), msg };
    match cfg.task {
        Task::Multilabel => {
            if !cfg.labels.is_empty() {
                return Ok(cfg.labels.clone());
            }
            let found: Vec<String> =
                names.iter().filter_map(|n| n.strip_prefix("target_").map(str::to_string)).collect();
            if found.is_empty() {
                return Err(bad(format!(
                    "no --labels given and no `target_*` columns (label columns: {})",
                    names.join(", ")
                )));
            }
            Ok(found)
        }
        Task::Multiclass => {
            if !cfg.classes.is_empty() {
                return Ok(cfg.classes.clone());
            }
            let col = class_column(names, cfg).ok_or_else(|| {
                bad(format!("no class column {:?} (label columns: {})", class_column_wanted(cfg), names.join(", ")))
            })?;
            let b = &train.manifest()?.batch;
            let arr = b.column_by_name(&col).expect("a label column of this manifest");
            let set: BTreeSet<String> = (0..b.num_rows()).filter_map(|i| class_name(&label_value(arr, i))).collect();
            if set.len() < 2 {
                return Err(bad(format!("column `{col}` has {} class(es); a classifier needs at least 2", set.len())));
            }
            Ok(set.into_iter().collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_of_label_values() {
        assert_eq!(class_name(&LabelValue::Float(3.0)).as_deref(), Some("3"));
        assert_eq!(class_name(&LabelValue::Str("nodule".into())).as_deref(), Some("nodule"));
        assert_eq!(class_name(&LabelValue::Null), None);
    }
}
