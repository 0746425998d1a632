//! Class-balanced training manifests: the paper's Table 1 settings for a
//! multi-class dataset — all images (`full`), the same number per class
//! (`undersample`), or given per-class counts (`counts`).
//!
//! Sampling is without replacement; only a class asked for more images than
//! it has is repeated (every image once per full pass, then a seeded sample
//! for the remainder), and the report says so. A `copy` column numbers the
//! repetitions (0 for the first use of an image). Deterministic in the seed.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{Int32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use crate::dataset::Dataset;
use crate::error::{Result, ShardError};
use crate::filter::{cell, Value};
use crate::manifest::{take_rows, write_parquet};
use crate::rng::SplitMix64;

/// The balancing setting.
#[derive(Debug, Clone, PartialEq)]
pub enum BalanceMode {
    Full,
    /// Same number per class; `None` = the smallest class size.
    Undersample(Option<usize>),
    /// Exact per-class counts.
    Counts(BTreeMap<String, usize>),
}

/// Per class: images available, selected, and how many selections are repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassReport {
    pub class: String,
    pub available: usize,
    pub selected: usize,
    pub repeated: usize,
}

/// Parses `normal=336,nodule=560`.
pub fn parse_counts(text: &str) -> Result<BTreeMap<String, usize>> {
    let mut out = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .rsplit_once('=')
            .ok_or_else(|| ShardError::Usage(format!("--counts entry `{part}` is not CLASS=COUNT")))?;
        let v: usize =
            v.trim().parse().map_err(|_| ShardError::Usage(format!("--counts entry `{part}`: bad count")))?;
        if out.insert(k.trim().to_string(), v).is_some() {
            return Err(ShardError::Usage(format!("--counts names class `{}` twice", k.trim())));
        }
    }
    Ok(out)
}

fn class_name(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::Str(s) => Some(s.clone()),
        Value::Num(n) if n.fract() == 0.0 => Some(format!("{}", *n as i64)),
        other => Some(other.to_string()),
    }
}

/// Selects rows per class; writes the manifest to `out` (recording the
/// dataset root) and returns the per-class report and rows without a class.
pub fn balance(
    ds: &Dataset,
    column: &str,
    mode: &BalanceMode,
    seed: u64,
    out: &Path,
) -> Result<(Vec<ClassReport>, usize)> {
    let batch = &ds.manifest.batch;
    let array = batch
        .column_by_name(column)
        .ok_or_else(|| ShardError::Usage(format!("no column `{column}` in {}", ds.manifest.path.display())))?;
    let view = ds.manifest.view();
    let mut classes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut unlabelled = 0;
    for i in 0..batch.num_rows() {
        match class_name(&cell(array, i)) {
            Some(c) => classes.entry(c).or_default().push(i),
            None => unlabelled += 1,
        }
    }
    if classes.is_empty() {
        return Err(ShardError::Usage(format!("column `{column}` has no values")));
    }
    let wanted: BTreeMap<String, usize> = match mode {
        BalanceMode::Full => classes.iter().map(|(c, rows)| (c.clone(), rows.len())).collect(),
        BalanceMode::Undersample(n) => {
            let n = n.unwrap_or_else(|| classes.values().map(Vec::len).min().unwrap_or(0));
            classes.keys().map(|c| (c.clone(), n)).collect()
        }
        BalanceMode::Counts(counts) => {
            let unknown: Vec<&String> = counts.keys().filter(|c| !classes.contains_key(*c)).collect();
            let missing: Vec<&String> = classes.keys().filter(|c| !counts.contains_key(*c)).collect();
            if !unknown.is_empty() || !missing.is_empty() {
                return Err(ShardError::Usage(format!(
                    "--counts must name every class of `{column}` exactly: unknown {unknown:?}, missing {missing:?} (classes: {:?})",
                    classes.keys().collect::<Vec<_>>()
                )));
            }
            counts.clone()
        }
    };
    let mut chosen: Vec<(usize, i32)> = Vec::new();
    let mut reports = Vec::new();
    for (class, rows) in &classes {
        let want = wanted[class];
        // Order within a class by key so the input row order does not matter.
        let mut pool: Vec<usize> = rows.clone();
        pool.sort_by(|&a, &b| view.key(a).cmp(view.key(b)));
        let class_seed = u64::from_le_bytes(blake3::hash(class.as_bytes()).as_bytes()[..8].try_into().expect("8"));
        SplitMix64::seeded(seed ^ class_seed).shuffle(&mut pool);
        let full_passes = want / pool.len();
        let rest = want % pool.len();
        for copy in 0..full_passes {
            chosen.extend(pool.iter().map(|&i| (i, copy as i32)));
        }
        chosen.extend(pool[..rest].iter().map(|&i| (i, full_passes as i32)));
        reports.push(ClassReport {
            class: class.clone(),
            available: pool.len(),
            selected: want,
            repeated: want.saturating_sub(pool.len()),
        });
    }
    chosen.sort_unstable();
    let schema = batch.schema();
    let mut columns = take_rows(batch, &chosen.iter().map(|&(i, _)| i).collect::<Vec<_>>())?;
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    if schema.field_with_name("copy").is_err() {
        fields.push(Field::new("copy", DataType::Int32, true));
        columns.push(Arc::new(Int32Array::from(chosen.iter().map(|&(_, c)| c).collect::<Vec<_>>())));
    }
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let out_batch = RecordBatch::try_new(out_schema.clone(), columns).map_err(ShardError::internal)?;
    let root = std::fs::canonicalize(&ds.root).map_err(ShardError::read(&ds.root))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(ShardError::write(parent))?;
    }
    write_parquet(out, &out_schema, &[out_batch], Some(&root.to_string_lossy()))?;
    Ok((reports, unlabelled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_parse_and_reject_garbage() {
        let c = parse_counts("normal=336, nodule=560,pleural effusion=12").unwrap();
        assert_eq!(c["pleural effusion"], 12);
        assert!(parse_counts("normal").is_err());
        assert!(parse_counts("a=1,a=2").is_err());
        assert!(parse_counts("a=x").is_err());
    }
}
