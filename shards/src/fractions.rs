//! Per-fraction training manifests (the CheSS/CheXpert downstream protocol).
//!
//! Given a dataset with train/valid/test splits (or fractions to carve them),
//! writes one training manifest per (fraction, repeat), sampled by patient,
//! nested across fractions within a repeat, and deterministic in the seed
//! alone: each group (patient) gets a priority from a keyed hash of
//! (seed, repeat, group id), groups are taken in priority order, and a
//! fraction takes the shortest prefix reaching its share of the images. The
//! resolved training targets (`target_<label>`) follow the uncertainty policy.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use chess_schemas::col;

use crate::dataset::Dataset;
use crate::error::{Result, ShardError};
use crate::filter::{cell, Value};
use crate::manifest::{take_rows, write_parquet};

/// CheXpert competition labels, the default targets.
pub const COMPETITION_LABELS: [&str; 5] = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"];

/// How sampling groups images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Patient,
    Study,
    Image,
}

/// Which views enter the manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Views {
    /// PA and AP (and their variants): what CheXpert's classifiers train on.
    Frontal,
    All,
}

/// Uncertain (−1) labels: U-Ones, U-Zeros or masked (null target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uncertain {
    Ones,
    Zeros,
    Ignore,
}

/// Settings of [`build`].
#[derive(Debug, Clone)]
pub struct FractionOptions {
    pub fractions: Vec<f64>,
    pub repeats: u32,
    pub seed: u64,
    pub group_by: GroupBy,
    pub views: Views,
    pub labels: Vec<String>,
    pub uncertain: Uncertain,
    /// Carve a test split of this share of groups when the data has none.
    pub test_fraction: Option<f64>,
    /// Carve a validation split of this share of groups when the data has none.
    pub valid_fraction: Option<f64>,
}

/// One manifest written, with its summary.
#[derive(Debug, Clone)]
pub struct ManifestSummary {
    pub name: String,
    pub path: PathBuf,
    pub images: usize,
    pub groups: usize,
    /// Per label: (positives, non-null targets).
    pub positives: Vec<(usize, usize)>,
}

/// Is this view frontal (PA/AP and their variants such as `AP SUPINE`)?
pub fn is_frontal(view: Option<&str>) -> bool {
    view.is_some_and(|v| {
        let v = v.trim().to_ascii_uppercase();
        v == "PA" || v == "AP" || v.starts_with("PA ") || v.starts_with("AP ") || v == "FRONTAL"
    })
}

/// A 64-bit priority for a group: BLAKE3 of (purpose, seed, repeat, group).
fn priority(purpose: &str, seed: u64, repeat: u32, group: &str) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(purpose.as_bytes());
    h.update(&seed.to_le_bytes());
    h.update(&repeat.to_le_bytes());
    h.update(group.as_bytes());
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// Groups in priority order, then the shortest prefix holding at least
/// `target` images (so a fraction is within one group's images of exact).
fn take_prefix(order: &[(u64, &str)], sizes: &HashMap<&str, usize>, target: usize) -> usize {
    let mut total = 0;
    for (i, (_, g)) in order.iter().enumerate() {
        if total >= target {
            return i;
        }
        total += sizes[g];
    }
    order.len()
}

fn label_target(value: &Value, uncertain: Uncertain) -> Option<f32> {
    match value {
        // CheXpert convention: a blank observation is a negative.
        Value::Null => Some(0.0),
        Value::Num(v) if *v == 1.0 => Some(1.0),
        Value::Num(v) if *v == 0.0 => Some(0.0),
        Value::Num(v) if *v == -1.0 => match uncertain {
            Uncertain::Ones => Some(1.0),
            Uncertain::Zeros => Some(0.0),
            Uncertain::Ignore => None,
        },
        Value::Bool(b) => Some(*b as u8 as f32),
        _ => None,
    }
}

/// The name of the target column for a label.
pub fn target_column(label: &str) -> String {
    format!("target_{label}")
}

/// Formats a fraction for file names: `0.01`, `0.1`, `1`.
pub fn fraction_name(f: f64) -> String {
    format!("{f}")
}

/// Builds and writes the manifests into `out`; returns their summaries.
pub fn build(ds: &Dataset, opts: &FractionOptions, out: &Path) -> Result<Vec<ManifestSummary>> {
    for &f in &opts.fractions {
        if !(f > 0.0 && f <= 1.0) {
            return Err(ShardError::Usage(format!("fraction {f} is not in (0, 1]")));
        }
    }
    if opts.repeats == 0 {
        return Err(ShardError::Usage("--repeats must be at least 1".into()));
    }
    let batch = &ds.manifest.batch;
    let schema = batch.schema();
    let label_arrays: Vec<&ArrayRef> = opts
        .labels
        .iter()
        .map(|l| {
            batch.column_by_name(l).ok_or_else(|| {
                let have: Vec<&str> = ds.manifest.columns.labels.iter().map(|c| c.name.as_str()).collect();
                ShardError::Usage(format!(
                    "label column `{l}` is not in the manifest (label columns: {})",
                    have.join(", ")
                ))
            })
        })
        .collect::<Result<_>>()?;
    let view = ds.manifest.view();
    let n = batch.num_rows();

    // Rows that enter at all, and their group ids.
    let vp = batch.column_by_name(col::VIEW_POSITION).expect("required column");
    let group_of = |i: usize| -> String {
        let id = match opts.group_by {
            GroupBy::Patient => batch.column_by_name(col::PATIENT_ID),
            GroupBy::Study => batch.column_by_name(col::STUDY_ID),
            GroupBy::Image => None,
        };
        match id.map(|a| cell(a, i)) {
            Some(Value::Str(s)) => s,
            // Without an id a row is its own group.
            _ => format!("\u{1}key:{}", view.key(i)),
        }
    };
    let rows: Vec<usize> = (0..n)
        .filter(|&i| {
            opts.views == Views::All
                || is_frontal(match cell(vp, i) {
                    Value::Str(ref s) => Some(s.as_str()),
                    _ => None,
                })
        })
        .collect();
    let groups: Vec<String> = (0..n).map(group_of).collect();

    // Official splits, checked for leakage.
    let split_array = batch.column_by_name(col::SPLIT);
    let split_of = |i: usize| -> String {
        match split_array.map(|a| cell(a, i)) {
            Some(Value::Str(s)) => s.to_ascii_lowercase(),
            _ => "train".into(),
        }
    };
    let mut group_split: HashMap<&str, String> = HashMap::new();
    for &i in &rows {
        let split = split_of(i);
        if !["train", "valid", "test"].contains(&split.as_str()) {
            return Err(ShardError::Manifest {
                path: ds.manifest.path.clone(),
                reason: format!("row {} has split `{split}` (expected train, valid or test)", view.key(i)),
            });
        }
        if let Some(prev) = group_split.insert(groups[i].as_str(), split.clone()) {
            if prev != split {
                return Err(ShardError::Manifest {
                    path: ds.manifest.path.clone(),
                    reason: format!(
                        "group {} appears in both {prev} and {split}: the input splits leak patients",
                        groups[i]
                    ),
                });
            }
        }
    }
    // Carve missing splits by group.
    for (name, share) in [("test", opts.test_fraction), ("valid", opts.valid_fraction)] {
        let present = group_split.values().any(|v| v == name);
        match (present, share) {
            (true, Some(_)) => {
                return Err(ShardError::Usage(format!(
                    "the dataset already has a {name} split; drop --{name}-fraction"
                )))
            }
            (false, Some(share)) => {
                if !(share > 0.0 && share < 1.0) {
                    return Err(ShardError::Usage(format!("--{name}-fraction {share} is not in (0, 1)")));
                }
                let mut train: Vec<(u64, &str)> = group_split
                    .iter()
                    .filter(|(_, s)| s.as_str() == "train")
                    .map(|(g, _)| (priority(name, opts.seed, 0, g), *g))
                    .collect();
                train.sort();
                let total_groups = group_split.len();
                let k = ((share * total_groups as f64).round() as usize).min(train.len());
                for (_, g) in &train[..k] {
                    group_split.insert(g, name.to_string());
                }
            }
            (false, None) => {
                return Err(ShardError::Usage(format!(
                    "the dataset has no {name} split: give --{name}-fraction to carve one by {}",
                    match opts.group_by {
                        GroupBy::Patient => "patient",
                        GroupBy::Study => "study",
                        GroupBy::Image => "image",
                    }
                )))
            }
            (true, None) => {}
        }
    }
    let split_rows = |name: &str| -> Vec<usize> {
        rows.iter().copied().filter(|&i| group_split[groups[i].as_str()] == name).collect()
    };
    let train_rows = split_rows("train");
    if train_rows.is_empty() {
        return Err(ShardError::Usage("no training images after the view filter".into()));
    }
    let mut sizes: HashMap<&str, usize> = HashMap::new();
    for &i in &train_rows {
        *sizes.entry(groups[i].as_str()).or_default() += 1;
    }

    // Output schema: the manifest's columns plus the targets.
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for l in &opts.labels {
        if schema.field_with_name(&target_column(l)).is_ok() {
            return Err(ShardError::Manifest {
                path: ds.manifest.path.clone(),
                reason: format!("already has a `{}` column", target_column(l)),
            });
        }
        fields.push(Field::new(target_column(l), DataType::Float32, true));
    }
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let targets: Vec<Vec<Option<f32>>> =
        label_arrays.iter().map(|a| (0..n).map(|i| label_target(&cell(a, i), opts.uncertain)).collect()).collect();
    let root = std::fs::canonicalize(&ds.root).map_err(ShardError::read(&ds.root))?;
    let root_text = root.to_string_lossy().into_owned();
    std::fs::create_dir_all(out).map_err(ShardError::write(out))?;

    let write = |name: &str, mut chosen: Vec<usize>| -> Result<ManifestSummary> {
        chosen.sort_unstable();
        let mut columns = take_rows(batch, &chosen)?;
        let mut positives = Vec::new();
        for t in &targets {
            let values: Float32Array = chosen.iter().map(|&i| t[i]).collect();
            let pos = values.iter().flatten().filter(|&v| v == 1.0).count();
            positives.push((pos, values.len() - values.null_count()));
            columns.push(Arc::new(values));
        }
        let out_batch = RecordBatch::try_new(out_schema.clone(), columns).map_err(ShardError::internal)?;
        let path = out.join(format!("{name}.parquet"));
        write_parquet(&path, &out_schema, &[out_batch], Some(&root_text))?;
        let groups_in: HashSet<&str> = chosen.iter().map(|&i| groups[i].as_str()).collect();
        Ok(ManifestSummary { name: name.to_string(), path, images: chosen.len(), groups: groups_in.len(), positives })
    };

    let mut summaries = Vec::new();
    let mut fractions = opts.fractions.clone();
    fractions.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    fractions.dedup();
    let mut group_list: Vec<&str> = sizes.keys().copied().collect();
    group_list.sort_unstable();
    for repeat in 0..opts.repeats {
        let mut order: Vec<(u64, &str)> =
            group_list.iter().map(|g| (priority("train", opts.seed, repeat, g), *g)).collect();
        order.sort();
        for &f in &fractions {
            if f == 1.0 && repeat > 0 {
                continue;
            }
            let target = (f * train_rows.len() as f64).round().max(1.0) as usize;
            let k = take_prefix(&order, &sizes, target);
            let chosen_groups: HashSet<&str> = order[..k].iter().map(|(_, g)| *g).collect();
            let chosen: Vec<usize> =
                train_rows.iter().copied().filter(|&i| chosen_groups.contains(groups[i].as_str())).collect();
            summaries.push(write(&format!("train-f{}-r{repeat:02}", fraction_name(f)), chosen)?);
        }
    }
    summaries.push(write("valid", split_rows("valid"))?);
    summaries.push(write("test", split_rows("test"))?);
    write_summary_csv(&out.join("summary.csv"), &opts.labels, &summaries)?;
    let params = serde_json::json!({
        "fractions": fractions, "repeats": opts.repeats, "seed": opts.seed,
        "group_by": format!("{:?}", opts.group_by).to_lowercase(),
        "views": format!("{:?}", opts.views).to_lowercase(),
        "labels": opts.labels, "uncertain": format!("{:?}", opts.uncertain).to_lowercase(),
        "test_fraction": opts.test_fraction, "valid_fraction": opts.valid_fraction,
        "dataset_root": root_text, "train_images": train_rows.len(),
    });
    let params_path = out.join("fractions.json");
    std::fs::write(&params_path, serde_json::to_vec_pretty(&params).expect("json"))
        .map_err(ShardError::write(&params_path))?;
    Ok(summaries)
}

fn write_summary_csv(path: &Path, labels: &[String], summaries: &[ManifestSummary]) -> Result<()> {
    let quote =
        |s: &str| if s.contains([',', '"']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
    let mut text = String::from("manifest,images,groups");
    for l in labels {
        text.push_str(&format!(",{}", quote(&format!("{l} positive rate"))));
    }
    text.push('\n');
    for s in summaries {
        text.push_str(&format!("{},{},{}", s.name, s.images, s.groups));
        for &(pos, n) in &s.positives {
            text.push_str(&format!(
                ",{}",
                if n == 0 { String::new() } else { format!("{:.4}", pos as f64 / n as f64) }
            ));
        }
        text.push('\n');
    }
    std::fs::write(path, text).map_err(ShardError::write(path))
}

/// Counts of a label column's values, for reports.
pub fn value_counts(batch: &RecordBatch, column: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    if let Some(a) = batch.column_by_name(column) {
        for i in 0..a.len() {
            *out.entry(cell(a, i).to_string()).or_default() += 1;
        }
    }
    out
}
