//! Per-fraction training manifests (the CheSS/CheXpert downstream protocol).
//!
//! Given a dataset with train/valid/test splits (or fractions to carve them),
//! writes one training manifest per (fraction, repeat), sampled by patient,
//! nested across fractions within a repeat, and deterministic in the seed
//! alone: each group (patient) gets a priority from a keyed hash of
//! (seed, repeat, group id), groups are taken in priority order, and a
//! fraction takes the shortest prefix reaching its share of the images. The
//! resolved training targets (`target_<label>`) follow the uncertainty policy.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BooleanArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use chess_schemas::col;

use crate::dataset::{Dataset, DatasetFiles};
use crate::error::{Result, ShardError};
use crate::filter::{cell, Value};
use crate::manifest::ParquetSink;

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
fn priority(purpose: &str, seed: u64, repeat: u32, group: GroupName<'_>) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(purpose.as_bytes());
    h.update(&seed.to_le_bytes());
    h.update(&repeat.to_le_bytes());
    group.hash_into(&mut h);
    let bytes = h.finalize();
    u64::from_le_bytes(bytes.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// A group's name, borrowed from the manifest columns: its id, or for a row
/// without one (its own group) the row's key behind a marker no id has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GroupName<'a> {
    Id(&'a str),
    Key(&'a str),
}

const KEY_GROUP_MARK: &str = "\u{1}key:";

impl GroupName<'_> {
    fn hash_into(self, h: &mut blake3::Hasher) {
        match self {
            GroupName::Id(id) => h.update(id.as_bytes()),
            GroupName::Key(key) => h.update(KEY_GROUP_MARK.as_bytes()).update(key.as_bytes()),
        };
    }

    /// Orders like the names themselves (`\u{1}key:…` as written out).
    fn cmp_name(self, other: Self) -> std::cmp::Ordering {
        fn parts(g: GroupName<'_>) -> (&'static str, &str) {
            match g {
                GroupName::Id(id) => ("", id),
                GroupName::Key(key) => (KEY_GROUP_MARK, key),
            }
        }
        let ((pa, a), (pb, b)) = (parts(self), parts(other));
        pa.bytes().chain(a.bytes()).cmp(pb.bytes().chain(b.bytes()))
    }
}

impl std::fmt::Display for GroupName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupName::Id(id) => f.write_str(id),
            GroupName::Key(key) => write!(f, "{KEY_GROUP_MARK}{key}"),
        }
    }
}

/// Groups in priority order, then the shortest prefix holding at least
/// `target` images (so a fraction is within one group's images of exact).
fn take_prefix(order: &[(u64, u32)], sizes: &[u32], target: usize) -> usize {
    let mut total = 0;
    for (i, &(_, g)) in order.iter().enumerate() {
        if total >= target {
            return i;
        }
        total += sizes[g as usize] as usize;
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

/// Split codes of a group (a byte each).
const TRAIN: u8 = 0;
const VALID: u8 = 1;
const TEST: u8 = 2;
/// A group none of whose rows passes the view filter.
const UNSET: u8 = u8::MAX;

fn split_code(name: &str) -> Option<u8> {
    match name {
        "train" => Some(TRAIN),
        "valid" => Some(VALID),
        "test" => Some(TEST),
        _ => None,
    }
}

/// Rows to write, as a bitmap over the manifest's rows.
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn new(n: usize) -> Bitmap {
        Bitmap(vec![0; n.div_ceil(64)])
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn count(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }
    /// The rows `start..start + len` as a filter mask.
    fn mask(&self, start: usize, len: usize) -> BooleanArray {
        (start..start + len).map(|i| Some(self.get(i))).collect()
    }
}

/// Builds and writes the manifests into `out`; returns their summaries.
/// Works on a manifest already in memory; [`build_files`] reads only what
/// it needs from the file.
pub fn build(ds: &Dataset, opts: &FractionOptions, out: &Path) -> Result<Vec<ManifestSummary>> {
    let batch = &ds.manifest.batch;
    let input = Input {
        path: &ds.manifest.path,
        root: &ds.root,
        schema: ds.manifest.batch.schema(),
        label_names: ds.manifest.columns.labels.iter().map(|c| c.name.as_str()).collect(),
    };
    let n = batch.num_rows();
    let chunks = || Ok((0..n).step_by(OUT_BATCH).map(move |s| Ok(batch.slice(s, OUT_BATCH.min(n - s)))));
    build_from(&input, batch, chunks, opts, out)
}

/// [`build`] on a manifest file: it reads the key, group id, view and split
/// columns (kept columnar; the per-row state is a few bytes), then streams
/// the rows once into every output manifest. Memory does not hold the
/// manifest's other columns.
pub fn build_files(files: &DatasetFiles, opts: &FractionOptions, out: &Path) -> Result<Vec<ManifestSummary>> {
    let file = &files.manifest;
    let mut names = vec![col::KEY, col::VIEW_POSITION];
    match opts.group_by {
        GroupBy::Patient => names.push(col::PATIENT_ID),
        GroupBy::Study => names.push(col::STUDY_ID),
        GroupBy::Image => {}
    }
    if file.columns.has_split {
        names.push(col::SPLIT);
    }
    let projected = file.read_columns(Some(names.as_slice()))?;
    let input = Input {
        path: &file.path,
        root: &files.root,
        schema: file.schema.clone(),
        label_names: file.columns.labels.iter().map(|c| c.name.as_str()).collect(),
    };
    build_from(&input, &projected, || file.batches(None, OUT_BATCH), opts, out)
}

/// Rows per batch of the output pass.
const OUT_BATCH: usize = 64 * 1024;

struct Input<'a> {
    path: &'a Path,
    root: &'a Path,
    /// The manifest's schema (every column).
    schema: SchemaRef,
    label_names: Vec<&'a str>,
}

fn string_column<'b>(batch: &'b RecordBatch, name: &str, path: &Path) -> Result<Option<&'b StringArray>> {
    match batch.column_by_name(name) {
        None => Ok(None),
        Some(c) => c.as_any().downcast_ref::<StringArray>().map(Some).ok_or_else(|| ShardError::Manifest {
            path: path.to_path_buf(),
            reason: format!("column `{name}` is not a string column"),
        }),
    }
}

/// The shared body: `columns` holds at least key, view, the group id and the
/// split of every row; `chunks` gives every row, all columns, in file order.
fn build_from<I: Iterator<Item = Result<RecordBatch>>>(
    input: &Input<'_>,
    columns: &RecordBatch,
    chunks: impl FnOnce() -> Result<I>,
    opts: &FractionOptions,
    out: &Path,
) -> Result<Vec<ManifestSummary>> {
    for &f in &opts.fractions {
        if !(f > 0.0 && f <= 1.0) {
            return Err(ShardError::Usage(format!("fraction {f} is not in (0, 1]")));
        }
    }
    if opts.repeats == 0 {
        return Err(ShardError::Usage("--repeats must be at least 1".into()));
    }
    for l in &opts.labels {
        if input.schema.field_with_name(l).is_err() {
            return Err(ShardError::Usage(format!(
                "label column `{l}` is not in the manifest (label columns: {})",
                input.label_names.join(", ")
            )));
        }
    }
    let path = input.path;
    let n = columns.num_rows();
    let keys = string_column(columns, col::KEY, path)?.expect("key is projected");
    let vp = string_column(columns, col::VIEW_POSITION, path)?.expect("view is projected");
    let ids = match opts.group_by {
        GroupBy::Patient => string_column(columns, col::PATIENT_ID, path)?,
        GroupBy::Study => string_column(columns, col::STUDY_ID, path)?,
        GroupBy::Image => None,
    };
    let splits = string_column(columns, col::SPLIT, path)?;

    // Group of each row (an index), groups named by borrowing the columns.
    let mut group_of: Vec<u32> = Vec::with_capacity(n);
    let mut names: Vec<GroupName<'_>> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    for i in 0..n {
        let id = ids.filter(|a| a.is_valid(i)).map(|a| a.value(i));
        let g = match id {
            Some(id) => *index.entry(id).or_insert_with(|| {
                names.push(GroupName::Id(id));
                (names.len() - 1) as u32
            }),
            // Without an id a row is its own group.
            None => {
                names.push(GroupName::Key(keys.value(i)));
                (names.len() - 1) as u32
            }
        };
        group_of.push(g);
    }
    drop(index);
    let entered = |i: usize| opts.views == Views::All || is_frontal(vp.is_valid(i).then(|| vp.value(i)));

    // Official splits, checked for leakage.
    let mut group_split: Vec<u8> = vec![UNSET; names.len()];
    for i in (0..n).filter(|&i| entered(i)) {
        let split = match splits.filter(|a| a.is_valid(i)) {
            Some(a) => a.value(i).to_ascii_lowercase(),
            None => "train".into(),
        };
        let code = split_code(&split).ok_or_else(|| ShardError::Manifest {
            path: path.to_path_buf(),
            reason: format!("row {} has split `{split}` (expected train, valid or test)", keys.value(i)),
        })?;
        let g = group_of[i] as usize;
        let prev = std::mem::replace(&mut group_split[g], code);
        if prev != UNSET && prev != code {
            let name = |c: u8| ["train", "valid", "test"][c as usize];
            return Err(ShardError::Manifest {
                path: path.to_path_buf(),
                reason: format!(
                    "group {} appears in both {} and {}: the input splits leak patients",
                    names[g],
                    name(prev),
                    name(code)
                ),
            });
        }
    }
    // Carve missing splits by group.
    for (name, code, share) in [("test", TEST, opts.test_fraction), ("valid", VALID, opts.valid_fraction)] {
        let present = group_split.contains(&code);
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
                let mut train: Vec<(u64, u32)> = (0..names.len())
                    .filter(|&g| group_split[g] == TRAIN)
                    .map(|g| (priority(name, opts.seed, 0, names[g]), g as u32))
                    .collect();
                sort_order(&mut train, &names);
                let total_groups = group_split.iter().filter(|&&s| s != UNSET).count();
                let k = ((share * total_groups as f64).round() as usize).min(train.len());
                for &(_, g) in &train[..k] {
                    group_split[g as usize] = code;
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
    let split_rows = |code: u8| -> Bitmap {
        let mut b = Bitmap::new(n);
        for i in (0..n).filter(|&i| entered(i) && group_split[group_of[i] as usize] == code) {
            b.set(i);
        }
        b
    };
    let train_rows = split_rows(TRAIN);
    let train_count = train_rows.count();
    if train_count == 0 {
        return Err(ShardError::Usage("no training images after the view filter".into()));
    }
    let mut sizes: Vec<u32> = vec![0; names.len()];
    for i in (0..n).filter(|&i| train_rows.get(i)) {
        sizes[group_of[i] as usize] += 1;
    }

    // The output manifests: which rows each takes.
    let mut outputs: Vec<(String, Bitmap)> = Vec::new();
    let mut fractions = opts.fractions.clone();
    fractions.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    fractions.dedup();
    let train_groups: Vec<u32> = (0..names.len() as u32).filter(|&g| sizes[g as usize] > 0).collect();
    for repeat in 0..opts.repeats {
        let mut order: Vec<(u64, u32)> =
            train_groups.iter().map(|&g| (priority("train", opts.seed, repeat, names[g as usize]), g)).collect();
        sort_order(&mut order, &names);
        for &f in &fractions {
            if f == 1.0 && repeat > 0 {
                continue;
            }
            let target = (f * train_count as f64).round().max(1.0) as usize;
            let k = take_prefix(&order, &sizes, target);
            let mut chosen_groups = vec![false; names.len()];
            for &(_, g) in &order[..k] {
                chosen_groups[g as usize] = true;
            }
            let mut chosen = Bitmap::new(n);
            for i in (0..n).filter(|&i| train_rows.get(i) && chosen_groups[group_of[i] as usize]) {
                chosen.set(i);
            }
            outputs.push((format!("train-f{}-r{repeat:02}", fraction_name(f)), chosen));
        }
    }
    drop(train_rows);
    outputs.push(("valid".into(), split_rows(VALID)));
    outputs.push(("test".into(), split_rows(TEST)));

    // Output schema: the manifest's columns plus the targets.
    let schema = &input.schema;
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    for l in &opts.labels {
        if schema.field_with_name(&target_column(l)).is_ok() {
            return Err(ShardError::Manifest {
                path: path.to_path_buf(),
                reason: format!("already has a `{}` column", target_column(l)),
            });
        }
        fields.push(Field::new(target_column(l), DataType::Float32, true));
    }
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let root = std::fs::canonicalize(input.root).map_err(ShardError::read(input.root))?;
    let root_text = root.to_string_lossy().into_owned();
    std::fs::create_dir_all(out).map_err(ShardError::write(out))?;

    // One pass over every row and column, each batch filtered into each output.
    let meta = [(chess_schemas::META_DATASET_ROOT, root_text.clone())];
    let mut sinks = Vec::with_capacity(outputs.len());
    for (name, _) in &outputs {
        sinks.push(ParquetSink::create(&out.join(format!("{name}.parquet")), &out_schema, &meta)?);
    }
    let mut positives = vec![vec![(0usize, 0usize); opts.labels.len()]; outputs.len()];
    let mut start = 0;
    for batch in chunks()? {
        let batch = batch?;
        let len = batch.num_rows();
        let label_arrays: Vec<&ArrayRef> = opts
            .labels
            .iter()
            .map(|l| batch.column_by_name(l).expect("label columns checked against the schema"))
            .collect();
        for ((_, rows), (sink, pos)) in outputs.iter().zip(sinks.iter_mut().zip(&mut positives)) {
            let mask = rows.mask(start, len);
            if mask.true_count() == 0 {
                continue;
            }
            let selected = arrow_select::filter::filter_record_batch(&batch, &mask).map_err(ShardError::internal)?;
            let mut columns = selected.columns().to_vec();
            for (a, p) in label_arrays.iter().zip(pos.iter_mut()) {
                let values: Float32Array =
                    (0..len).filter(|&i| mask.value(i)).map(|i| label_target(&cell(a, i), opts.uncertain)).collect();
                p.0 += values.iter().flatten().filter(|&v| v == 1.0).count();
                p.1 += values.len() - values.null_count();
                columns.push(Arc::new(values));
            }
            let out_batch = RecordBatch::try_new(out_schema.clone(), columns).map_err(ShardError::internal)?;
            sink.write(&out_batch)?;
        }
        start += len;
    }
    if start != n {
        return Err(ShardError::Manifest {
            path: path.to_path_buf(),
            reason: format!("gave {start} rows on the second read, {n} on the first"),
        });
    }
    let mut summaries = Vec::with_capacity(outputs.len());
    let mut seen = vec![false; names.len()];
    for (((name, rows), sink), positives) in outputs.iter().zip(sinks).zip(positives) {
        sink.finish()?;
        seen.iter_mut().for_each(|s| *s = false);
        let mut groups = 0;
        for i in (0..n).filter(|&i| rows.get(i)) {
            let g = group_of[i] as usize;
            groups += usize::from(!std::mem::replace(&mut seen[g], true));
        }
        summaries.push(ManifestSummary {
            name: name.clone(),
            path: out.join(format!("{name}.parquet")),
            images: rows.count(),
            groups,
            positives,
        });
    }
    write_summary_csv(&out.join("summary.csv"), &opts.labels, &summaries)?;
    let params = serde_json::json!({
        "fractions": fractions, "repeats": opts.repeats, "seed": opts.seed,
        "group_by": format!("{:?}", opts.group_by).to_lowercase(),
        "views": format!("{:?}", opts.views).to_lowercase(),
        "labels": opts.labels, "uncertain": format!("{:?}", opts.uncertain).to_lowercase(),
        "test_fraction": opts.test_fraction, "valid_fraction": opts.valid_fraction,
        "dataset_root": root_text, "train_images": train_count,
    });
    let params_path = out.join("fractions.json");
    std::fs::write(&params_path, serde_json::to_vec_pretty(&params).expect("json"))
        .map_err(ShardError::write(&params_path))?;
    Ok(summaries)
}

/// Sorts by priority, ties by group name (as the names themselves sort).
fn sort_order(order: &mut [(u64, u32)], names: &[GroupName<'_>]) {
    order.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| names[a.1 as usize].cmp_name(names[b.1 as usize])));
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
