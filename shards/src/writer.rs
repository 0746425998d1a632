//! Writing datasets: rolling tar shards, staged manifest rows, `dataset.json`.
//!
//! Crash safety: a shard is written as `shards/<name>-NNNNNN.tar.tmp`; when it
//! closes, its manifest rows are written durably to
//! `.staging/<name>-NNNNNN.parquet`, then the tar is fsynced and renamed to
//! its final name. A shard therefore exists under its final name only when
//! its rows are safe, and [`DatasetWriter::resume`] keeps exactly those
//! shards, discarding anything partial. `manifest.parquet` and
//! `dataset.json` appear only in [`DatasetWriter::finish`], so no manifest
//! ever names a partial shard.

use std::collections::{BTreeMap, HashSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow_array::{Array, StringArray, UInt32Array};
use arrow_schema::SchemaRef;
use chess_schemas::{col, layout, DatasetInfo, LabelColumn, ManifestColumns, PixelDtype};

use crate::error::{Result, ShardError};
use crate::fingerprint::{key_fingerprint, FingerprintSet, WrittenKeys};
use crate::image::{encode_npy_zst_policy, pixel_hash, FrameKind, Image};
use crate::manifest::{rows_to_batch, tmp_path, LabelValue, ManifestFile, ManifestRow, ParquetSink};
use crate::tar;

/// Staged per-shard manifest rows live here until `finish`.
pub const STAGING_DIR: &str = ".staging";

/// The default [`WriterOptions::min_saving`].
pub const DEFAULT_MIN_SAVING: f64 = 0.10;

/// `dataset.json` provenance key of the member frame counts ([`FrameCounts`]).
pub const FRAMES_KEY: &str = "npy_zst_frames";

/// Parquet key-value metadata of a staged shard's frame counts (`compressed,raw`).
const STAGED_FRAMES_META: &str = "chess.npy_zst_frames";

/// How many `.npy.zst` members were stored compressed and raw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FrameCounts {
    pub compressed: u64,
    pub raw: u64,
}

impl FrameCounts {
    fn add(&mut self, other: FrameCounts) {
        self.compressed += other.compressed;
        self.raw += other.raw;
    }
    fn count(&mut self, kind: FrameKind) {
        match kind {
            FrameKind::Compressed => self.compressed += 1,
            FrameKind::Raw => self.raw += 1,
        }
    }
}

/// The de-identified fields of a sample (everything in its manifest row
/// besides what the writer computes).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SampleFields {
    pub patient_id: Option<String>,
    pub study_id: Option<String>,
    pub series_id: Option<String>,
    pub view_position: Option<String>,
    pub sex: Option<String>,
    pub age_years: Option<f32>,
    pub modality: Option<String>,
    pub transfer_syntax: Option<String>,
    pub clip_value: Option<f64>,
    pub split: Option<String>,
    /// One value per label column of [`WriterOptions::labels`], in order.
    pub labels: Vec<LabelValue>,
}

/// A sample to write.
#[derive(Debug, Clone)]
pub struct Sample {
    pub key: String,
    pub image: Image,
    /// Extra arrays for paired tasks, `(field, image)`, e.g. `("target", ..)`.
    pub extras: Vec<(String, Image)>,
    pub fields: SampleFields,
}

/// Settings of a [`DatasetWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Shards are named `<shard_name>-NNNNNN.tar`.
    pub shard_name: String,
    /// A shard closes before it would exceed this many bytes.
    pub max_shard_bytes: u64,
    /// A shard closes after this many samples.
    pub max_shard_samples: u64,
    /// zstd level of `.npy.zst` members.
    pub zstd_level: i32,
    /// A member keeps its level-`zstd_level` frame only when that frame is
    /// at least this share smaller than the `.npy` (default 0.10); otherwise
    /// it is stored as a zstd frame of raw blocks, which decodes at copy
    /// speed. 0 keeps every compressed frame.
    pub min_saving: f64,
    /// Pixel type every image must have.
    pub dtype: PixelDtype,
    /// Whether the manifest has a `split` column.
    pub with_split: bool,
    pub labels: Vec<LabelColumn>,
    /// Extra array fields samples may carry.
    pub extra_fields: Vec<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            shard_name: "shard".into(),
            max_shard_bytes: 1 << 30,
            max_shard_samples: 10_000,
            zstd_level: 3,
            min_saving: DEFAULT_MIN_SAVING,
            dtype: PixelDtype::Uint16,
            with_split: false,
            labels: Vec::new(),
            extra_fields: Vec::new(),
        }
    }
}

/// What `finish` records besides what the writer knows.
#[derive(Debug, Clone, Default)]
pub struct FinishInfo {
    /// e.g. `chess-ingest 0.1.0`.
    pub tool_version: String,
    pub deid_method: String,
    pub provenance: BTreeMap<String, serde_json::Value>,
}

/// A sample encoded into its tar members, ready to append to a shard.
/// Encoding is the expensive part; callers may do it on many threads.
#[derive(Debug, Clone)]
pub struct EncodedSample {
    key: String,
    members: Vec<(String, Vec<u8>)>,
    row: ManifestRow,
    frames: FrameCounts,
}

impl EncodedSample {
    pub fn key(&self) -> &str {
        &self.key
    }
    /// Bytes the sample takes in a shard.
    pub fn span(&self) -> u64 {
        self.members.iter().map(|(_, d)| tar::member_span(d.len() as u64)).sum()
    }
}

/// Encodes a sample: validates it, compresses its arrays, builds its JSON.
pub fn encode_sample(sample: &Sample, opts: &WriterOptions) -> Result<EncodedSample> {
    chess_schemas::validate_key(&sample.key).map_err(|e| ShardError::Sample(e.to_string()))?;
    let check_image = |what: &str, image: &Image| -> Result<()> {
        image.check().map_err(|e| ShardError::Sample(format!("{} {what}: {e}", sample.key)))?;
        if image.dtype != opts.dtype {
            return Err(ShardError::Sample(format!(
                "{} {what} is {}, the dataset stores {}",
                sample.key, image.dtype, opts.dtype
            )));
        }
        Ok(())
    };
    check_image("image", &sample.image)?;
    if sample.fields.labels.len() != opts.labels.len() {
        return Err(ShardError::Sample(format!(
            "{} has {} label values for {} label columns",
            sample.key,
            sample.fields.labels.len(),
            opts.labels.len()
        )));
    }
    let mut members = Vec::with_capacity(2 + sample.extras.len());
    let mut frames = FrameCounts::default();
    let mut encode = |image: &Image| {
        let (frame, kind) = encode_npy_zst_policy(image, opts.zstd_level, opts.min_saving)
            .map_err(|e| ShardError::Sample(format!("{}: zstd: {e}", sample.key)))?;
        frames.count(kind);
        Ok::<_, ShardError>(frame)
    };
    members.push((format!("{}.{}", sample.key, layout::IMAGE_SUFFIX), encode(&sample.image)?));
    let mut extra_names = Vec::new();
    for (field, image) in &sample.extras {
        chess_schemas::validate_field(field).map_err(|e| ShardError::Sample(e.to_string()))?;
        if !opts.extra_fields.contains(field) {
            return Err(ShardError::Sample(format!(
                "{}: extra field `{field}` is not declared in the writer options",
                sample.key
            )));
        }
        check_image(field, image)?;
        members.push((format!("{}.{field}.{}", sample.key, layout::IMAGE_SUFFIX), encode(image)?));
        extra_names.push(field.clone());
    }
    let f = &sample.fields;
    let hash = pixel_hash(&sample.image);
    let row = ManifestRow {
        key: sample.key.clone(),
        height: sample.image.height,
        width: sample.image.width,
        dtype: sample.image.dtype.name().to_string(),
        patient_id: f.patient_id.clone(),
        study_id: f.study_id.clone(),
        series_id: f.series_id.clone(),
        view_position: f.view_position.clone(),
        sex: f.sex.clone(),
        age_years: f.age_years,
        modality: f.modality.clone(),
        transfer_syntax: f.transfer_syntax.clone(),
        clip_value: f.clip_value,
        pixel_hash: hash,
        extra_fields: (!extra_names.is_empty()).then(|| extra_names.join(",")),
        split: f.split.clone(),
        labels: f.labels.clone(),
        ..ManifestRow::default()
    };
    let json = serde_json::to_vec(&row.sample_meta(&opts.labels)).map_err(ShardError::internal)?;
    members.push((format!("{}.{}", sample.key, layout::JSON_SUFFIX), json));
    Ok(EncodedSample { key: sample.key.clone(), members, row, frames })
}

struct OpenShard {
    index: u64,
    rel_path: String,
    tmp_path: PathBuf,
    out: BufWriter<File>,
    bytes: u64,
    rows: Vec<ManifestRow>,
    frames: FrameCounts,
}

/// Writes a dataset directory.
pub struct DatasetWriter {
    root: PathBuf,
    opts: WriterOptions,
    schema: SchemaRef,
    columns: ManifestColumns,
    /// 128-bit fingerprints of the keys written (16 bytes a sample, not the
    /// keys themselves: bounded memory at millions of samples).
    keys: FingerprintSet,
    next_index: u64,
    current: Option<OpenShard>,
    sizes: HashSet<(u32, u32)>,
    /// Frames of the closed shards.
    frames: FrameCounts,
}

fn shard_file_name(name: &str, index: u64) -> String {
    format!("{name}-{index:06}.tar")
}

impl DatasetWriter {
    /// Starts a new dataset at `root` (created if missing). Refuses a
    /// directory that already holds a dataset or staged work.
    pub fn create(root: &Path, opts: WriterOptions) -> Result<DatasetWriter> {
        if root.join(layout::DATASET_JSON).exists() {
            return Err(ShardError::OutputExists {
                path: root.to_path_buf(),
                reason: "already holds a dataset (dataset.json exists)".into(),
            });
        }
        let staging = root.join(STAGING_DIR);
        if staging.is_dir() && fs::read_dir(&staging).map_err(ShardError::write(&staging))?.next().is_some() {
            return Err(ShardError::OutputExists {
                path: root.to_path_buf(),
                reason: format!(
                    "holds an unfinished dataset ({} is not empty): resume it or remove it",
                    staging.display()
                ),
            });
        }
        Self::open(root, opts)
    }

    fn open(root: &Path, opts: WriterOptions) -> Result<DatasetWriter> {
        chess_schemas::validate_key(&opts.shard_name).map_err(|e| ShardError::Usage(format!("shard name: {e}")))?;
        for field in &opts.extra_fields {
            chess_schemas::validate_field(field).map_err(|e| ShardError::Usage(e.to_string()))?;
        }
        if opts.max_shard_samples == 0 {
            return Err(ShardError::Usage("max_shard_samples must be at least 1".into()));
        }
        if !(0.0..1.0).contains(&opts.min_saving) {
            return Err(ShardError::Usage(format!("min_saving must be a share in [0, 1), not {}", opts.min_saving)));
        }
        for dir in
            [root.to_path_buf(), root.join(layout::SHARDS_DIR), root.join(STAGING_DIR), root.join(layout::PRIVATE_DIR)]
        {
            fs::create_dir_all(&dir).map_err(ShardError::write(&dir))?;
        }
        let columns = ManifestColumns { has_split: opts.with_split, labels: opts.labels.clone() };
        let schema = chess_schemas::manifest_schema(columns.has_split, &columns.labels);
        Ok(DatasetWriter {
            root: root.to_path_buf(),
            opts,
            schema,
            columns,
            keys: FingerprintSet::default(),
            next_index: 0,
            current: None,
            sizes: HashSet::new(),
            frames: FrameCounts::default(),
        })
    }

    /// Reopens an unfinished dataset after a crash: complete shards (those
    /// whose rows were staged) are kept, anything partial is removed. Returns
    /// the keys already written, so the caller can skip them.
    pub fn resume(root: &Path, opts: WriterOptions) -> Result<(DatasetWriter, WrittenKeys)> {
        if root.join(layout::DATASET_JSON).exists() {
            return Err(ShardError::OutputExists {
                path: root.to_path_buf(),
                reason: "is already finished (dataset.json exists)".into(),
            });
        }
        let mut writer = Self::open(root, opts)?;
        let prefix = format!("{}-", writer.opts.shard_name);
        let shards_dir = root.join(layout::SHARDS_DIR);
        let staging = root.join(STAGING_DIR);
        let mut complete = Vec::new();
        for entry in fs::read_dir(&shards_dir).map_err(ShardError::write(&shards_dir))? {
            let path = entry.map_err(ShardError::write(&shards_dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
            let Some(rest) = name.strip_prefix(&prefix) else { continue };
            if name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(ShardError::write(&path))?;
                continue;
            }
            let Some(index) = rest.strip_suffix(".tar").and_then(|s| s.parse::<u64>().ok()) else { continue };
            let rows_path = staging.join(format!("{}.parquet", name.trim_end_matches(".tar")));
            if rows_path.exists() {
                complete.push((index, rows_path));
            } else {
                // A shard without staged rows cannot be named by a manifest: drop it.
                fs::remove_file(&path).map_err(ShardError::write(&path))?;
            }
        }
        // Staged rows whose shard never got its final name are partial work.
        for entry in fs::read_dir(&staging).map_err(ShardError::write(&staging))? {
            let path = entry.map_err(ShardError::write(&staging))?.path();
            let keep = complete.iter().any(|(_, p)| p == &path);
            if !keep && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix)) {
                fs::remove_file(&path).map_err(ShardError::write(&path))?;
            }
        }
        complete.sort();
        for (index, rows_path) in &complete {
            let staged = ManifestFile::open(rows_path)?;
            let batch = staged.read_columns(Some(&[col::KEY, col::HEIGHT, col::WIDTH]))?;
            let (keys, heights, widths) = (
                batch.column_by_name(col::KEY).and_then(|c| c.as_any().downcast_ref::<StringArray>()),
                batch.column_by_name(col::HEIGHT).and_then(|c| c.as_any().downcast_ref::<UInt32Array>()),
                batch.column_by_name(col::WIDTH).and_then(|c| c.as_any().downcast_ref::<UInt32Array>()),
            );
            let (Some(keys), Some(heights), Some(widths)) = (keys, heights, widths) else {
                return Err(ShardError::Manifest { path: rows_path.clone(), reason: "unexpected column types".into() });
            };
            for i in 0..batch.num_rows() {
                writer.keys.insert(key_fingerprint(keys.value(i)));
                writer.sizes.insert((heights.value(i), widths.value(i)));
            }
            // Shards staged before frame counts were recorded count as compressed.
            let frames = staged.key_value(STAGED_FRAMES_META).and_then(|v| parse_frames(&v)).unwrap_or(FrameCounts {
                compressed: batch.num_rows() as u64 * (1 + writer.opts.extra_fields.len() as u64),
                raw: 0,
            });
            writer.frames.add(frames);
            writer.next_index = writer.next_index.max(index + 1);
        }
        // The writer's own duplicate-check set is exactly the complete shards' keys.
        let done = WrittenKeys::from_fingerprints(writer.keys.clone());
        Ok((writer, done))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn options(&self) -> &WriterOptions {
        &self.opts
    }

    /// Samples accepted so far (including those of resumed shards).
    pub fn sample_count(&self) -> usize {
        self.keys.len()
    }

    /// `.npy.zst` members written so far, compressed and raw (including
    /// those of resumed shards).
    pub fn frame_counts(&self) -> FrameCounts {
        let mut total = self.frames;
        if let Some(s) = &self.current {
            total.add(s.frames);
        }
        total
    }

    /// Encodes and appends a sample.
    pub fn write(&mut self, sample: &Sample) -> Result<()> {
        let encoded = encode_sample(sample, &self.opts)?;
        self.write_encoded(encoded)
    }

    /// Appends a sample encoded by [`encode_sample`] with the same options.
    pub fn write_encoded(&mut self, sample: EncodedSample) -> Result<()> {
        let fingerprint = key_fingerprint(&sample.key);
        if self.keys.contains(&fingerprint) {
            return Err(ShardError::Sample(format!("duplicate key {}", sample.key)));
        }
        let span = sample.span();
        let roll = match &self.current {
            Some(s) => {
                s.rows.len() as u64 >= self.opts.max_shard_samples
                    || (!s.rows.is_empty() && s.bytes + span + 1024 > self.opts.max_shard_bytes)
            }
            None => false,
        };
        if roll {
            self.close_shard()?;
        }
        if self.current.is_none() {
            self.start_shard()?;
        }
        let shard = self.current.as_mut().expect("shard opened above");
        let sample_offset = shard.bytes;
        let mut row = sample.row;
        row.shard = shard.rel_path.clone();
        row.sample_offset = sample_offset;
        row.sample_size = span;
        for (i, (name, data)) in sample.members.iter().enumerate() {
            if i == 0 {
                row.offset = shard.bytes + tar::BLOCK;
                row.size = data.len() as u64;
            }
            shard.bytes += tar::write_member(&mut shard.out, name, data).map_err(|e| match e {
                tar::TarError::Io(cause) => ShardError::Write { path: shard.tmp_path.clone(), cause },
                other => ShardError::Sample(format!("{}: {other}", sample.key)),
            })?;
        }
        self.sizes.insert((row.height, row.width));
        self.keys.insert(fingerprint);
        shard.frames.add(sample.frames);
        shard.rows.push(row);
        Ok(())
    }

    fn start_shard(&mut self) -> Result<()> {
        let name = shard_file_name(&self.opts.shard_name, self.next_index);
        let rel_path = format!("{}/{name}", layout::SHARDS_DIR);
        let final_path = self.root.join(&rel_path);
        let tmp = tmp_path(&final_path);
        let file = File::create(&tmp).map_err(ShardError::write(&tmp))?;
        self.current = Some(OpenShard {
            index: self.next_index,
            rel_path,
            tmp_path: tmp,
            out: BufWriter::with_capacity(1 << 20, file),
            bytes: 0,
            rows: Vec::new(),
            frames: FrameCounts::default(),
        });
        self.next_index += 1;
        Ok(())
    }

    fn close_shard(&mut self) -> Result<()> {
        let Some(mut shard) = self.current.take() else { return Ok(()) };
        let tmp = shard.tmp_path.clone();
        tar::write_end(&mut shard.out).map_err(ShardError::write(&tmp))?;
        let file =
            shard.out.into_inner().map_err(|e| ShardError::Write { path: tmp.clone(), cause: e.into_error() })?;
        file.sync_all().map_err(ShardError::write(&tmp))?;
        drop(file);
        let rows_path = self
            .root
            .join(STAGING_DIR)
            .join(format!("{}.parquet", shard_file_name(&self.opts.shard_name, shard.index).trim_end_matches(".tar")));
        let batch = rows_to_batch(&self.schema, &self.columns, &shard.rows)?;
        let frames = format!("{},{}", shard.frames.compressed, shard.frames.raw);
        let mut sink = ParquetSink::create(&rows_path, &self.schema, &[(STAGED_FRAMES_META, frames)])?;
        sink.write(&batch)?;
        sink.finish()?;
        self.frames.add(shard.frames);
        let final_path = self.root.join(&shard.rel_path);
        fs::rename(&tmp, &final_path).map_err(ShardError::write(&final_path))?;
        sync_dir(&self.root.join(layout::SHARDS_DIR));
        tracing::debug!(shard = %shard.rel_path, samples = shard.rows.len(), bytes = shard.bytes, "shard closed");
        Ok(())
    }

    /// Closes the last shard and writes `manifest.parquet` (streamed from the
    /// staged shards' rows, one shard at a time) and `dataset.json`, whose
    /// provenance gains the frame counts under [`FRAMES_KEY`].
    pub fn finish(mut self, mut info: FinishInfo) -> Result<DatasetInfo> {
        self.close_shard()?;
        let staging = self.root.join(STAGING_DIR);
        let mut staged: Vec<PathBuf> = fs::read_dir(&staging)
            .map_err(ShardError::write(&staging))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        staged.sort();
        let manifest_path = self.root.join(layout::MANIFEST);
        let mut sink = ParquetSink::create(&manifest_path, &self.schema, &[])?;
        for path in &staged {
            let file = ManifestFile::open(path)?;
            if file.schema.fields() != self.schema.fields() {
                return Err(ShardError::Manifest {
                    path: path.clone(),
                    reason: "staged rows have other columns than this writer's".into(),
                });
            }
            for batch in file.batches(None, 64 * 1024)? {
                let batch = batch?.with_schema(self.schema.clone()).map_err(ShardError::internal)?;
                sink.write(&batch)?;
            }
        }
        sink.finish()?;
        info.provenance.insert(
            FRAMES_KEY.into(),
            serde_json::json!({
                "compressed": self.frames.compressed,
                "raw": self.frames.raw,
                "zstd_level": self.opts.zstd_level,
                "min_saving": self.opts.min_saving,
            }),
        );
        let image_size = match self.sizes.len() {
            1 => self.sizes.iter().next().map(|&(h, w)| [h, w]),
            _ => None,
        };
        let dataset_info = DatasetInfo {
            format_version: chess_schemas::FORMAT_VERSION,
            manifest_schema_version: chess_schemas::MANIFEST_SCHEMA_VERSION,
            tool_version: info.tool_version,
            pixel_dtype: self.opts.dtype,
            image_size,
            sample_count: self.keys.len() as u64,
            shard_count: staged.len() as u64,
            shard_name: self.opts.shard_name.clone(),
            deid_method: info.deid_method,
            extra_fields: self.opts.extra_fields.clone(),
            labels: self.opts.labels.clone(),
            provenance: info.provenance,
        };
        write_dataset_json(&self.root, &dataset_info)?;
        fs::remove_dir_all(&staging).map_err(ShardError::write(&staging))?;
        Ok(dataset_info)
    }
}

fn parse_frames(text: &str) -> Option<FrameCounts> {
    let (c, r) = text.split_once(',')?;
    Some(FrameCounts { compressed: c.trim().parse().ok()?, raw: r.trim().parse().ok()? })
}

/// Writes `dataset.json` atomically.
pub fn write_dataset_json(root: &Path, info: &DatasetInfo) -> Result<()> {
    let path = root.join(layout::DATASET_JSON);
    let tmp = tmp_path(&path);
    let mut text = serde_json::to_vec_pretty(info).map_err(ShardError::internal)?;
    text.push(b'\n');
    let mut file = File::create(&tmp).map_err(ShardError::write(&tmp))?;
    file.write_all(&text).map_err(ShardError::write(&tmp))?;
    file.sync_all().map_err(ShardError::write(&tmp))?;
    fs::rename(&tmp, &path).map_err(ShardError::write(&path))?;
    Ok(())
}

fn sync_dir(dir: &Path) {
    // Makes the rename durable; best effort (not all filesystems allow it).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}
