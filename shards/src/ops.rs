//! Dataset operations: `subset` (by keys or a `--where` expression),
//! `merge` (datasets from partitioned runs into one) and `export` (one
//! image as an 8-bit PNG).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use chess_schemas::{col, layout, DatasetInfo, LabelType, ManifestColumns};

use crate::dataset::{Dataset, DatasetFiles};
use crate::error::{Result, ShardError};
use crate::filter;
use crate::image::{Image, NpyZstDecoder};
use crate::manifest::write_parquet;
use crate::writer::write_dataset_json;

/// Rows of `ds` whose key is in `keys` and that match `expr` (each optional).
/// Keys that the dataset lacks are an error listing them, so nothing asked
/// for is silently left out.
pub fn subset(ds: &Dataset, keys: Option<&[String]>, expr: Option<&str>) -> Result<RecordBatch> {
    let batch = &ds.manifest.batch;
    let view = ds.manifest.view();
    let mut keep: Vec<bool> = vec![true; batch.num_rows()];
    if let Some(keys) = keys {
        let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
        let present: HashSet<&str> = (0..batch.num_rows()).map(|i| view.key(i)).collect();
        let missing: Vec<&str> = keys.iter().map(String::as_str).filter(|k| !present.contains(k)).collect();
        if !missing.is_empty() {
            return Err(ShardError::Incompatible(format!(
                "{} of the requested keys are not in {}: {}{}",
                missing.len(),
                ds.manifest.path.display(),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if missing.len() > 5 { ", ..." } else { "" }
            )));
        }
        for (i, k) in keep.iter_mut().enumerate() {
            *k = wanted.contains(view.key(i));
        }
    }
    if let Some(src) = expr {
        let columns: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        let e = filter::parse(src, &columns)?;
        for (i, k) in keep.iter_mut().enumerate() {
            *k = *k && e.matches(batch, i);
        }
    }
    let mask = BooleanArray::from(keep);
    arrow_select::filter::filter_record_batch(batch, &mask).map_err(ShardError::internal)
}

/// What [`subset_to`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubsetReport {
    pub selected: usize,
    pub total: usize,
}

/// [`subset`] then [`write_subset`], streamed: the manifest is read a batch
/// at a time (all columns) and matching rows written as they come, so
/// memory does not grow with the manifest. Keys the dataset lacks are an
/// error (and no file is left at `out`).
pub fn subset_to(
    files: &DatasetFiles,
    keys: Option<&[String]>,
    expr: Option<&str>,
    out: &Path,
) -> Result<SubsetReport> {
    let file = &files.manifest;
    let columns: Vec<String> = file.schema.fields().iter().map(|f| f.name().clone()).collect();
    let expr = expr.map(|src| filter::parse(src, &columns)).transpose()?;
    let wanted: Option<HashSet<&str>> = keys.map(|k| k.iter().map(String::as_str).collect());
    let mut found: HashSet<&str> = HashSet::new();
    let root = fs::canonicalize(&files.root).map_err(ShardError::read(&files.root))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(ShardError::write(parent))?;
    }
    let mut sink = crate::manifest::ParquetSink::create(
        out,
        &file.schema,
        &[(chess_schemas::META_DATASET_ROOT, root.to_string_lossy().into_owned())],
    )?;
    let key_index = file.schema.index_of(col::KEY).map_err(ShardError::internal)?;
    let mut report = SubsetReport { selected: 0, total: 0 };
    for batch in file.batches(None, 64 * 1024)? {
        let batch = batch?;
        let key = batch.column(key_index).as_any().downcast_ref::<StringArray>().ok_or_else(|| {
            ShardError::Manifest { path: file.path.clone(), reason: "key is not a string column".into() }
        })?;
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|i| {
                let by_key = match &wanted {
                    Some(w) => match w.get(key.value(i)) {
                        Some(k) => {
                            found.insert(k);
                            true
                        }
                        None => false,
                    },
                    None => true,
                };
                Some(by_key && expr.as_ref().is_none_or(|e| e.matches(&batch, i)))
            })
            .collect();
        let selected = arrow_select::filter::filter_record_batch(&batch, &keep).map_err(ShardError::internal)?;
        report.total += batch.num_rows();
        report.selected += selected.num_rows();
        if selected.num_rows() > 0 {
            sink.write(&selected)?;
        }
    }
    if let Some(keys) = keys {
        let missing: Vec<&str> = keys.iter().map(String::as_str).filter(|k| !found.contains(k)).collect();
        if !missing.is_empty() {
            drop(sink);
            let _ = fs::remove_file(crate::manifest::tmp_path(out));
            return Err(ShardError::Incompatible(format!(
                "{} of the requested keys are not in {}: {}{}",
                missing.len(),
                file.path.display(),
                missing.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if missing.len() > 5 { ", ..." } else { "" }
            )));
        }
    }
    sink.finish()?;
    Ok(report)
}

/// Writes a subset manifest that records its dataset root (absolute), so
/// it can live anywhere.
pub fn write_subset(ds: &Dataset, batch: RecordBatch, out: &Path) -> Result<()> {
    let root = fs::canonicalize(&ds.root).map_err(ShardError::read(&ds.root))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(ShardError::write(parent))?;
    }
    write_parquet(out, &ds.manifest.schema, &[batch], Some(&root.to_string_lossy()))
}

/// What `merge` did.
#[derive(Debug, Clone)]
pub struct MergeReport {
    pub info: DatasetInfo,
    pub inputs: usize,
    /// Shards hard-linked (same filesystem) rather than copied.
    pub linked: u64,
    pub copied: u64,
}

fn link_or_copy(from: &Path, to: &Path) -> Result<bool> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(true);
    }
    fs::copy(from, to).map_err(ShardError::write(to))?;
    Ok(false)
}

/// The label column naming each sample's dataset of origin (the importers'
/// `source_dataset`), kept and filled by [`merge_with`].
pub const SOURCE_DATASET: &str = "source_dataset";

/// Settings of [`merge_with`].
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// Stem of the output shard names.
    pub shard_name: String,
    /// `source_dataset` values for inputs without that column, by input
    /// directory (as given); others get their `dataset.json` provenance's
    /// `source_dataset`, else their directory's name.
    pub source_names: Vec<(PathBuf, String)>,
}

impl Default for MergeOptions {
    fn default() -> Self {
        MergeOptions { shard_name: "shard".into(), source_names: Vec::new() }
    }
}

/// [`merge_with`] with default options but the shard name.
pub fn merge(inputs: &[PathBuf], out: &Path, shard_name: &str) -> Result<MergeReport> {
    merge_with(inputs, out, &MergeOptions { shard_name: shard_name.to_string(), ..MergeOptions::default() })
}

/// The output columns of a merge: the union of the inputs' label columns
/// (in order of first appearance; a name shared by inputs must have one
/// type), `split` when any input has it.
fn union_columns(datasets: &[DatasetFiles], inputs: &[PathBuf]) -> Result<ManifestColumns> {
    let mut union = ManifestColumns::default();
    let mut first_seen: Vec<usize> = Vec::new();
    for (i, ds) in datasets.iter().enumerate() {
        union.has_split |= ds.manifest.columns.has_split;
        for label in &ds.manifest.columns.labels {
            match union.labels.iter().position(|l| l.name == label.name) {
                Some(j) if union.labels[j].label_type != label.label_type => {
                    return Err(ShardError::Incompatible(format!(
                        "label column `{}` is {:?} in {} but {:?} in {}: cannot merge (convert one of them first)",
                        label.name,
                        label.label_type,
                        inputs[i].display(),
                        union.labels[j].label_type,
                        inputs[first_seen[j]].display()
                    )));
                }
                Some(_) => {}
                None => {
                    union.labels.push(label.clone());
                    first_seen.push(i);
                }
            }
        }
    }
    if let Some(l) = union.labels.iter().position(|l| l.name == SOURCE_DATASET) {
        if union.labels[l].label_type != LabelType::Utf8 {
            return Err(ShardError::Incompatible(format!(
                "label column `{SOURCE_DATASET}` is {:?} in {}, it must be utf8 to be filled for the other inputs",
                union.labels[l].label_type,
                inputs[first_seen[l]].display()
            )));
        }
    }
    Ok(union)
}

/// The `source_dataset` value for an input that lacks the column.
fn source_name(ds: &DatasetFiles, input: &Path, opts: &MergeOptions) -> String {
    if let Some((_, name)) = opts.source_names.iter().find(|(p, _)| p == input) {
        return name.clone();
    }
    let recorded = ds.info.as_ref().and_then(|i| i.provenance.get(SOURCE_DATASET)).and_then(|v| v.as_str());
    match recorded {
        Some(name) => name.to_string(),
        None => fs::canonicalize(input)
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| input.display().to_string()),
    }
}

/// Merges datasets into a new dataset at `out`: the partitions of one
/// ingest run, or different datasets (imported releases, a PACS export) into
/// one pretraining set. Shards are hard-linked when possible, else copied,
/// and renamed `<shard_name>-NNNNNN.tar`; byte offsets are unchanged, so the
/// samples of each shard keep their order (ascending key for `chess-ingest`
/// output) and manifest rows keep the inputs' order.
///
/// Columns: the union of the inputs' (see [`union_columns`]); a row gets
/// null in a label column its input lacks, and when any input has
/// `source_dataset` every row gets one (an input without the column is
/// named by [`MergeOptions::source_names`], its provenance, or its
/// directory). The samples' `.json` members are left as their inputs wrote
/// them; the manifest is authoritative. Refuses duplicate keys across the
/// inputs (naming both), different pixel types, and a column name with two
/// types.
pub fn merge_with(inputs: &[PathBuf], out: &Path, opts: &MergeOptions) -> Result<MergeReport> {
    let shard_name = opts.shard_name.as_str();
    if inputs.is_empty() {
        return Err(ShardError::Usage("merge needs at least one input dataset".into()));
    }
    chess_schemas::validate_key(shard_name).map_err(|e| ShardError::Usage(format!("shard name: {e}")))?;
    if out.exists() && fs::read_dir(out).map_err(ShardError::write(out))?.next().is_some() {
        return Err(ShardError::OutputExists { path: out.to_path_buf(), reason: "exists and is not empty".into() });
    }
    for (p, _) in &opts.source_names {
        if !inputs.contains(p) {
            return Err(ShardError::Usage(format!("--source-name names {}, which is not an input", p.display())));
        }
    }
    // Footers only: rows are streamed below, one batch at a time.
    let datasets: Vec<DatasetFiles> = inputs
        .iter()
        .map(|p| {
            if !p.is_dir() {
                return Err(ShardError::Usage(format!("{}: merge takes dataset directories", p.display())));
            }
            DatasetFiles::open(p)
        })
        .collect::<Result<_>>()?;
    let first = &datasets[0];
    let first_info = first.info.clone().expect("dataset directories have dataset.json");
    for (ds, path) in datasets.iter().zip(inputs).skip(1) {
        let info = ds.info.as_ref().expect("dataset directories have dataset.json");
        if info.pixel_dtype != first_info.pixel_dtype {
            return Err(ShardError::Incompatible(format!(
                "{} stores {}, {} stores {}: cannot merge",
                path.display(),
                info.pixel_dtype,
                inputs[0].display(),
                first_info.pixel_dtype
            )));
        }
    }
    let union = union_columns(&datasets, inputs)?;
    // Inputs with the same columns (partitions of one run) keep their schema as it is.
    let same_columns = datasets.iter().all(|d| d.manifest.schema.fields() == first.manifest.schema.fields());
    let schema = if same_columns {
        first.manifest.schema.clone()
    } else {
        chess_schemas::manifest_schema(union.has_split, &union.labels)
    };
    let fill_source = union.labels.iter().any(|l| l.name == SOURCE_DATASET);
    let sources: Vec<Option<String>> = datasets
        .iter()
        .zip(inputs)
        .map(|(ds, p)| {
            let has = ds.manifest.schema.field_with_name(SOURCE_DATASET).is_ok();
            (fill_source && !has).then(|| source_name(ds, p, opts))
        })
        .collect();
    let string_column = |batch: &RecordBatch, name: &str, path: &Path| -> Result<StringArray> {
        batch.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned()).ok_or_else(|| {
            ShardError::Manifest { path: path.to_path_buf(), reason: format!("column `{name}` is not a string column") }
        })
    };
    // Duplicate keys across inputs, by 128-bit key fingerprint (16 bytes a row).
    let mut owner: HashMap<u128, usize> = HashMap::new();
    let mut duplicates = Vec::new();
    let mut input_shards: Vec<Vec<String>> = Vec::with_capacity(datasets.len());
    // The source_dataset values of each input, for dataset.json.
    let mut source_values: Vec<Vec<String>> = Vec::with_capacity(datasets.len());
    for (i, ds) in datasets.iter().enumerate() {
        let mut shards = Vec::new();
        let mut seen = HashSet::new();
        let mut values: Vec<String> = sources[i].iter().cloned().collect();
        let has_source = fill_source && sources[i].is_none();
        let columns: &[&str] =
            if has_source { &[col::KEY, col::SHARD, SOURCE_DATASET] } else { &[col::KEY, col::SHARD] };
        for batch in ds.manifest.batches(Some(columns), 64 * 1024)? {
            let batch = batch?;
            let keys = string_column(&batch, col::KEY, &ds.manifest.path)?;
            let shard = string_column(&batch, col::SHARD, &ds.manifest.path)?;
            if has_source {
                let names = string_column(&batch, SOURCE_DATASET, &ds.manifest.path)?;
                for name in names.iter().flatten() {
                    // Few distinct values (one per release); at most 100 are listed.
                    if values.len() < 100 && !values.iter().any(|v| v == name) {
                        values.push(name.to_string());
                    }
                }
            }
            for r in 0..batch.num_rows() {
                let key = keys.value(r);
                let fingerprint = u128::from_le_bytes(
                    blake3::hash(key.as_bytes()).as_bytes()[..16].try_into().expect("16 of 32 bytes"),
                );
                if let Some(prev) = owner.insert(fingerprint, i) {
                    if duplicates.len() < 1000 {
                        duplicates.push(format!("{key} (in {} and {})", inputs[prev].display(), inputs[i].display()));
                    } else {
                        duplicates.push(String::new());
                    }
                }
                if !seen.contains(shard.value(r)) {
                    seen.insert(shard.value(r).to_string());
                    shards.push(shard.value(r).to_string());
                }
            }
        }
        input_shards.push(shards);
        source_values.push(values);
    }
    drop(owner);
    if !duplicates.is_empty() {
        return Err(ShardError::Incompatible(format!(
            "refusing to merge: {} duplicate keys, e.g. {}",
            duplicates.len(),
            duplicates.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
        )));
    }

    let shards_dir = out.join(layout::SHARDS_DIR);
    fs::create_dir_all(&shards_dir).map_err(ShardError::write(&shards_dir))?;
    let manifest_path = out.join(layout::MANIFEST);
    let mut sink = crate::manifest::ParquetSink::create(&manifest_path, &schema, &[])?;
    let (mut linked, mut copied, mut next) = (0u64, 0u64, 0u64);
    let mut sizes = HashSet::new();
    let mut deid = Vec::new();
    let mut extra_fields: Vec<String> = Vec::new();
    let mut sample_count = 0u64;
    let mut frames = Some((0u64, 0u64));
    let shard_idx = schema.index_of(col::SHARD).map_err(ShardError::internal)?;
    for (i, (ds, shards)) in datasets.iter().zip(&input_shards).enumerate() {
        let info = ds.info.as_ref().expect("dataset directories have dataset.json");
        if !deid.contains(&info.deid_method) {
            deid.push(info.deid_method.clone());
        }
        for f in &info.extra_fields {
            if !extra_fields.contains(f) {
                extra_fields.push(f.clone());
            }
        }
        sizes.insert(info.image_size);
        let counted = info
            .provenance
            .get(crate::writer::FRAMES_KEY)
            .and_then(|f| Some((f.get("compressed")?.as_u64()?, f.get("raw")?.as_u64()?)));
        frames = frames.zip(counted).map(|((c, r), (dc, dr))| (c + dc, r + dr));
        let mut renamed: HashMap<&str, String> = HashMap::new();
        for shard in shards {
            let new_rel = format!("{}/{shard_name}-{next:06}.tar", layout::SHARDS_DIR);
            next += 1;
            let path = Dataset::shard_path_in(&ds.root, &ds.manifest.path, shard)?;
            if link_or_copy(&path, &out.join(&new_rel))? {
                linked += 1;
            } else {
                copied += 1;
            }
            renamed.insert(shard.as_str(), new_rel);
        }
        for batch in ds.manifest.batches(None, 64 * 1024)? {
            let batch = batch?;
            let rows = batch.num_rows();
            let shard = string_column(&batch, col::SHARD, &ds.manifest.path)?;
            let new_shards: StringArray = (0..rows).map(|r| renamed.get(shard.value(r)).map(String::as_str)).collect();
            let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
            for (c, field) in schema.fields().iter().enumerate() {
                let column: ArrayRef = if c == shard_idx {
                    Arc::new(new_shards.clone())
                } else if let Some(column) = batch.column_by_name(field.name()) {
                    column.clone()
                } else if let (true, Some(name)) = (field.name() == SOURCE_DATASET, &sources[i]) {
                    Arc::new(StringArray::from_iter_values(std::iter::repeat_n(name.as_str(), rows)))
                } else {
                    arrow_array::new_null_array(field.data_type(), rows)
                };
                columns.push(column);
            }
            let out_batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| ShardError::Manifest {
                path: ds.manifest.path.clone(),
                reason: format!("its rows do not fit the merged columns: {e}"),
            })?;
            sink.write(&out_batch)?;
            sample_count += rows as u64;
        }
        // Keep each input's private files (reject lists, key material) apart.
        let private = ds.root.join(layout::PRIVATE_DIR);
        if private.is_dir() {
            let dest = out.join(layout::PRIVATE_DIR).join(format!("input-{i:03}"));
            copy_tree(&private, &dest)?;
        }
    }
    sink.finish()?;
    let mut provenance = first_info.provenance.clone();
    provenance.remove(crate::writer::FRAMES_KEY);
    if let Some((compressed, raw)) = frames {
        let mut merged = first_info.provenance[crate::writer::FRAMES_KEY].clone();
        merged["compressed"] = compressed.into();
        merged["raw"] = raw.into();
        provenance.insert(crate::writer::FRAMES_KEY.into(), merged);
    }
    if !same_columns {
        // A union's own provenance is its sources', listed below.
        provenance.retain(|k, _| k == crate::writer::FRAMES_KEY);
    }
    provenance.insert(
        "merged_from".into(),
        serde_json::json!(datasets
            .iter()
            .enumerate()
            .map(|(i, d)| serde_json::json!({
                "input": i,
                "samples": d.manifest.num_rows(),
                "source_datasets": source_values[i],
                "labels": d.manifest.columns.labels.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
                "has_split": d.manifest.columns.has_split,
                "tool_version": d.info.as_ref().map(|i| i.tool_version.clone()),
                "deid_method": d.info.as_ref().map(|i| i.deid_method.clone()),
                "provenance": d.info.as_ref().map(|i| i.provenance.clone()),
            }))
            .collect::<Vec<_>>()),
    );
    if fill_source {
        provenance.insert(
            "source_dataset_filled".into(),
            serde_json::json!("inputs without a source_dataset column: --source-name, else their provenance's source_dataset, else their directory's name"),
        );
    }
    let info = DatasetInfo {
        tool_version: format!("chess-shards {} (merge)", crate::VERSION),
        image_size: if sizes.len() == 1 { first_info.image_size } else { None },
        sample_count,
        shard_count: next,
        shard_name: shard_name.to_string(),
        deid_method: deid.join("; "),
        extra_fields,
        labels: union.labels,
        provenance,
        ..first_info
    };
    fs::create_dir_all(out.join(layout::PRIVATE_DIR)).map_err(ShardError::write(out))?;
    write_dataset_json(out, &info)?;
    Ok(MergeReport { info, inputs: datasets.len(), linked, copied })
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).map_err(ShardError::write(to))?;
    for entry in fs::read_dir(from).map_err(ShardError::read(from))? {
        let entry = entry.map_err(ShardError::read(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            fs::copy(&src, &dst).map_err(ShardError::write(&dst))?;
            #[cfg(unix)]
            if let Ok(meta) = fs::metadata(&src) {
                let _ = fs::set_permissions(&dst, meta.permissions());
            }
        }
    }
    Ok(())
}

/// Maps an image to 8 bits for viewing: linear from its minimum to its maximum.
pub fn to_display_u8(image: &Image) -> Vec<u8> {
    let n = image.pixel_count();
    let (mut lo, mut hi) = (u32::MAX, 0u32);
    for i in 0..n {
        let v = image.get(i);
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let span = (hi.saturating_sub(lo)).max(1) as f64;
    (0..n).map(|i| (((image.get(i) - lo) as f64 / span) * 255.0).round() as u8).collect()
}

/// Writes an 8-bit grayscale PNG of `image`.
pub fn save_png_u8(image: &Image, path: &Path) -> Result<()> {
    let file = fs::File::create(path).map_err(ShardError::write(path))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), image.width, image.height);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| ShardError::Png { path: path.to_path_buf(), cause: e };
    let mut writer = encoder.write_header().map_err(err)?;
    writer.write_image_data(&to_display_u8(image)).map_err(err)?;
    writer.finish().map_err(err)?;
    Ok(())
}

/// Exports the sample `key` (or one of its extra arrays) as an 8-bit PNG.
pub fn export(ds: &Dataset, key: &str, field: Option<&str>, out: &Path) -> Result<()> {
    let index = ds
        .find_key(key)
        .ok_or_else(|| ShardError::Usage(format!("no sample with key `{key}` in {}", ds.manifest.path.display())))?;
    let row = ds.manifest.view().row(index);
    let mut decoder = NpyZstDecoder::new();
    let image = match field {
        None => ds.read_image(&row, &mut decoder)?,
        Some(f) => {
            let sample = ds.read_sample(&row, &mut decoder)?;
            sample
                .extras
                .into_iter()
                .find(|(name, _)| name == f)
                .map(|(_, img)| img)
                .ok_or_else(|| ShardError::Usage(format!("sample `{key}` has no `{f}` array")))?
        }
    };
    save_png_u8(&image, out)
}
