//! One ingest run: discovery → parallel decode/pipeline/encode → one writer.
//!
//! Threads: a producer walks the inputs (and reads archive members) into a
//! bounded channel; a rayon pool of `threads` workers turns each item into an
//! [`Outcome`] (parse, select, decode, pixel pipeline, de-identify, encode the
//! sample's tar members); the calling thread is the only writer: it
//! de-duplicates, appends to the [`DatasetWriter`] and the [`Journal`], and
//! reports progress. Both channels hold at most `4 × threads` items,
//! so memory is bounded by the images in flight, not by the archive size.
//!
//! Resume: when `<out>` holds an unfinished run, the writer is resumed
//! (complete shards kept, partial ones dropped) and the journal says which
//! sources are done; only the rest is processed. The options must be the
//! same as the interrupted run's (`private/run.json`).
//!
//! The steps every front end shares (settings check, resume check, the
//! accounting and `rejected.parquet`, finishing) are [`crate::frontend`]'s.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chess_schemas::{layout, LabelColumn, LabelType};
use chess_shards::{encode_sample, EncodedSample, LabelValue, Sample, SampleFields, WriterOptions};
use rayon::iter::{ParallelBridge, ParallelIterator};
use serde::{Deserialize, Serialize};

use crate::deid::{self, Key};
use crate::dicom::{self, Header};
use crate::discover::{self, Item};
use crate::frontend::{self, Opened, PixelSettings, Rejections};
use crate::journal::{Entry, Journal};
use crate::labels::{LabelKey, Labels};
use crate::pipeline::{self, PipelineOptions, PixelSemantics};
use crate::progress::{Progress, ProgressEvent};
use crate::reject::{Reason, Reject};
use crate::select::Selection;

/// Label column holding the shifted study date when `keep_shifted_dates`.
pub const SHIFTED_DATE_COLUMN: &str = "study_date_shifted";
/// Name of the journal under `private/`.
pub const JOURNAL: &str = "journal.jsonl";
/// The run file under `private/` (the options of the run, for resumption).
pub const RUN_JSON: &str = "run.json";
pub use crate::frontend::{KEY_FILE, REJECTED};

pub use crate::error::{IngestError, Result};

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub inputs: Vec<PathBuf>,
    /// Top-level output directory.
    pub out: PathBuf,
    /// `None`: `<out>/private/key`, created if missing.
    pub key_file: Option<PathBuf>,
    pub pipeline: PipelineOptions,
    pub selection: Selection,
    pub labels: Option<(PathBuf, LabelKey)>,
    /// `(index, count)`, 0-based index.
    pub partition: Option<(u32, u32)>,
    pub threads: usize,
    pub keep_shifted_dates: bool,
    pub max_shard_samples: u64,
    pub max_shard_bytes: u64,
    pub zstd_level: i32,
}

impl Config {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Config {
        Config {
            inputs,
            out,
            key_file: None,
            pipeline: PipelineOptions::default(),
            selection: Selection::default(),
            labels: None,
            partition: None,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            keep_shifted_dates: false,
            max_shard_samples: 10_000,
            max_shard_bytes: 1 << 30,
            zstd_level: 3,
        }
    }

    /// Where this run's dataset goes: `<out>`, or `<out>/part-IIIII-of-NNNNN`.
    pub fn dataset_root(&self) -> PathBuf {
        match self.partition {
            None => self.out.clone(),
            Some((i, n)) => self.out.join(format!("part-{i:05}-of-{n:05}")),
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.out.join(layout::PRIVATE_DIR).join(KEY_FILE))
    }
}

/// The options that must not change between an interrupted run and its
/// resumption (stored in `private/run.json`; non-identifying).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    #[serde(flatten)]
    pub pixels: PixelSettings,
    pub modalities: Vec<String>,
    pub views: Option<Vec<String>>,
    pub label_key: Option<String>,
    pub label_columns: Vec<LabelColumn>,
    pub keep_shifted_dates: bool,
    pub partition: Option<(u32, u32)>,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Source files accounted for (samples + rejects + duplicates).
    pub files: u64,
    pub samples: u64,
    /// Counts per reason code (duplicates included).
    pub rejected: BTreeMap<String, u64>,
    pub label_rows: Option<u64>,
    pub label_rows_unmatched: Option<u64>,
    pub images_without_labels: Option<u64>,
    pub label_rows_duplicate_keys: Option<u64>,
    /// Sources processed by this invocation (the rest were done before).
    #[serde(skip)]
    pub processed_now: u64,
    #[serde(skip)]
    pub resumed: bool,
    #[serde(skip)]
    pub already_complete: bool,
    #[serde(skip)]
    pub timing: Timing,
    #[serde(skip)]
    pub root: PathBuf,
    #[serde(skip)]
    pub key_created: Option<PathBuf>,
}

/// Where the workers' time went (summed over threads).
#[derive(Debug, Clone, Default)]
pub struct Timing {
    pub wall: Duration,
    pub read: Duration,
    pub decode: Duration,
    pub pipeline: Duration,
    pub encode: Duration,
}

#[derive(Default)]
struct Clocks {
    read: AtomicU64,
    decode: AtomicU64,
    pipeline: AtomicU64,
    encode: AtomicU64,
}

fn tick(c: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    c.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
    now
}

/// What a worker made of one item.
enum Outcome {
    Sample { key: String, hash: String, label_row: Option<usize>, encoded: Box<EncodedSample> },
    Reject(Reject),
}

/// Read-only context shared by the workers.
struct Ctx {
    key: Key,
    selection: Selection,
    pipeline: PipelineOptions,
    labels: Option<Labels>,
    keep_shifted_dates: bool,
    writer_opts: WriterOptions,
    clocks: Clocks,
}

/// Stable partition of a top-level path.
pub fn partition_of(path: &Path, count: u32) -> u32 {
    let h = blake3::hash(path.as_os_str().as_encoded_bytes());
    (u64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes")) % count as u64) as u32
}

/// Processes one item: everything short of writing it.
fn process(ctx: &Ctx, item: Item) -> Outcome {
    let t = Instant::now();
    let bytes = match item.payload.read() {
        Ok(b) => b,
        Err((code, message)) => {
            let reason = Reason::from_code(code).unwrap_or(Reason::ReadError);
            return Outcome::Reject(Reject::new(reason, message));
        }
    };
    let t = tick(&ctx.clocks.read, t);
    match process_bytes(ctx, &bytes, t) {
        Ok(o) => o,
        Err(r) => Outcome::Reject(r),
    }
}

fn process_bytes(ctx: &Ctx, bytes: &[u8], t: Instant) -> Result<Outcome, Reject> {
    let obj = dicom::parse(bytes)?;
    let h = Header::from_object(&obj);
    ctx.selection.check(&h)?;
    if h.sop_instance_uid.is_empty() {
        return Err(Reject::new(Reason::MissingSopInstanceUid, "no SOPInstanceUID"));
    }
    let stored = dicom::decode(&obj, &h)?;
    drop(obj);
    let t = tick(&ctx.clocks.decode, t);
    let sem = PixelSemantics {
        monochrome1: h.photometric == "MONOCHROME1",
        rescale_slope: h.rescale_slope,
        rescale_intercept: h.rescale_intercept,
        modality_lut: h.modality_lut.as_ref(),
    };
    let out = pipeline::run(&stored.values, stored.rows, stored.columns, &sem, &ctx.pipeline);
    drop(stored);
    let image = frontend::to_image(&out.pixels, out.size, ctx.pipeline.bit_depth);
    let t = tick(&ctx.clocks.pipeline, t);
    let hash = chess_shards::pixel_hash(&image);
    let d = deid::deidentify(&ctx.key, &h);
    let (label_row, mut labels) = match &ctx.labels {
        None => (None, Vec::new()),
        Some(l) => match l.lookup(&h) {
            Some((row, values)) => (Some(row), values),
            None => (None, l.nulls()),
        },
    };
    if ctx.keep_shifted_dates {
        labels.push(d.shifted_study_date.clone().map(LabelValue::Str).unwrap_or(LabelValue::Null));
    }
    let sample = Sample {
        key: d.key.clone(),
        image,
        extras: Vec::new(),
        fields: SampleFields {
            patient_id: d.patient_id,
            study_id: d.study_id,
            series_id: d.series_id,
            view_position: d.view_position,
            sex: d.sex,
            age_years: d.age_years,
            modality: d.modality,
            transfer_syntax: d.transfer_syntax,
            clip_value: Some(out.clip_value),
            split: None,
            labels,
        },
    };
    let encoded = encode_sample(&sample, &ctx.writer_opts)
        .map_err(|e| Reject::new(Reason::DecodeError, format!("could not encode the sample: {e}")))?;
    tick(&ctx.clocks.encode, t);
    Ok(Outcome::Sample { key: d.key, hash, label_row, encoded: Box::new(encoded) })
}

pub use crate::decode_and_process;

/// Final state of a source.
#[derive(Debug, Clone)]
enum Done {
    Sample { label_row: Option<usize> },
    Reject { reason: String, message: String },
}

/// Writer-side bookkeeping.
#[derive(Default)]
struct Ledger {
    done: HashMap<String, Done>,
    /// Keys in the dataset, with the source that produced them.
    owner: HashMap<String, String>,
    written: HashSet<String>,
    by_hash: HashMap<String, String>,
}

impl Ledger {
    /// Rebuilds the state of an interrupted run from its journal and the
    /// keys of its complete shards.
    fn restore(entries: Vec<Entry>, complete: HashSet<String>) -> Ledger {
        let mut last: HashMap<String, Entry> = HashMap::new();
        for e in entries {
            last.insert(e.source().to_string(), e);
        }
        let mut l = Ledger { written: complete, ..Default::default() };
        let mut dups = Vec::new();
        for (src, e) in last {
            match e {
                Entry::Sample { k, h, l: row, .. } if l.written.contains(&k) && !l.owner.contains_key(&k) => {
                    l.owner.insert(k.clone(), src.clone());
                    l.by_hash.insert(h, k.clone());
                    l.done.insert(src, Done::Sample { label_row: row });
                }
                Entry::Reject { r, m, .. } => {
                    l.done.insert(src, Done::Reject { reason: r, message: m });
                }
                Entry::Duplicate { r, k, m, .. } => dups.push((src, r, k, m)),
                _ => {} // its shard was lost: redo
            }
        }
        for (src, r, k, m) in dups {
            if l.owner.contains_key(&k) {
                l.done.insert(src, Done::Reject { reason: r, message: m });
            }
        }
        l
    }
}

fn run_options(cfg: &Config, label_columns: &[LabelColumn]) -> RunOptions {
    RunOptions {
        pixels: PixelSettings::of(&cfg.pipeline),
        modalities: cfg.selection.modalities.clone(),
        views: cfg.selection.views.clone(),
        label_key: cfg.labels.as_ref().map(|(_, k)| k.keyword().to_string()),
        label_columns: label_columns.to_vec(),
        keep_shifted_dates: cfg.keep_shifted_dates,
        partition: cfg.partition,
    }
}

/// Runs an ingest, reporting to `progress`.
pub fn run(cfg: &Config, progress: Progress<'_>) -> Result<Summary> {
    let started = Instant::now();
    discover::check_inputs(&cfg.inputs)?;
    if let Some((i, n)) = cfg.partition {
        if n == 0 || i >= n {
            return Err(IngestError::InvalidOption(format!("partition {i}/{n}: the index must be below the count")));
        }
    }
    frontend::check_settings(&cfg.pipeline, cfg.max_shard_samples)?;
    let root = cfg.dataset_root();
    if root.join(layout::DATASET_JSON).exists() {
        return Ok(Summary { already_complete: true, root, ..Default::default() });
    }
    let key_path = cfg.key_path();
    let (key, created) = Key::load_or_create(&key_path)?;
    let labels = match &cfg.labels {
        None => None,
        Some((p, k)) => Some(Labels::load(p, *k)?),
    };
    let mut label_columns: Vec<LabelColumn> = labels.as_ref().map(|l| l.columns.clone()).unwrap_or_default();
    if cfg.keep_shifted_dates {
        if label_columns.iter().any(|c| c.name == SHIFTED_DATE_COLUMN) {
            return Err(IngestError::InvalidOption(format!(
                "--keep-shifted-dates: the labels file already has a `{SHIFTED_DATE_COLUMN}` column"
            )));
        }
        label_columns.push(LabelColumn { name: SHIFTED_DATE_COLUMN.into(), label_type: LabelType::Utf8 });
    }
    let dtype = frontend::dtype(cfg.pipeline.bit_depth);
    let writer_opts = WriterOptions {
        shard_name: match cfg.partition {
            None => "shard".into(),
            Some((i, _)) => format!("part{i:05}"),
        },
        max_shard_bytes: cfg.max_shard_bytes,
        max_shard_samples: cfg.max_shard_samples,
        zstd_level: cfg.zstd_level,
        dtype,
        with_split: false,
        labels: label_columns.clone(),
        extra_fields: Vec::new(),
    };

    // Fresh run or resumption?
    let private = root.join(layout::PRIVATE_DIR);
    let journal_path = private.join(JOURNAL);
    let run_json = private.join(RUN_JSON);
    let opts_now = run_options(cfg, &label_columns);
    let resuming = journal_path.exists() || root.join(chess_shards::writer::STAGING_DIR).exists();
    let Opened { mut writer, done: complete } =
        frontend::open_dataset(&root, &writer_opts, &run_json, "DICOM import", &opts_now, resuming)?;
    let (mut journal, entries) = Journal::open(&journal_path).map_err(IngestError::write(&journal_path))?;
    let mut ledger = Ledger::restore(entries, complete);
    let skip: Arc<HashSet<String>> = Arc::new(ledger.done.keys().cloned().collect());
    tracing::info!(root = %root.display(), resuming, done = skip.len(), "ingest starting");

    let threads = cfg.threads.max(1);
    let pool = frontend::pool(threads, "chess-ingest")?;
    let ctx = Ctx {
        key,
        selection: cfg.selection.clone(),
        pipeline: cfg.pipeline,
        labels,
        keep_shifted_dates: cfg.keep_shifted_dates,
        writer_opts,
        clocks: Clocks::default(),
    };
    let ours = |p: &Path| cfg.partition.is_none_or(|(i, n)| partition_of(p, n) == i);
    let total = discover::walk_files(&cfg.inputs)
        .filter(|f| match f {
            Ok(p) => ours(p),
            Err(_) => true,
        })
        .count() as u64;
    progress(ProgressEvent::Total(total));
    let depth = 4 * threads;
    let (item_tx, item_rx) = sync_channel::<Item>(depth);
    let (out_tx, out_rx) = sync_channel::<(String, Outcome)>(depth);
    let mut processed_now = 0u64;
    let mut write_error: Option<IngestError> = None;

    std::thread::scope(|s| -> Result<()> {
        let inputs = &cfg.inputs;
        let skip = Arc::clone(&skip);
        s.spawn(move || {
            for f in discover::walk_files(inputs) {
                match f {
                    Err(item) => {
                        if item_tx.send(item).is_err() {
                            return;
                        }
                    }
                    Ok(path) => {
                        if !ours(&path) {
                            continue;
                        }
                        // The bar counts items: a file counts one; an
                        // archive's members replace it as they are found.
                        let mut alive = true;
                        let mut n = 0u64;
                        discover::expand_file(&path, &mut |item| {
                            n += 1;
                            if n > 1 {
                                progress(ProgressEvent::Grew(1));
                            }
                            if skip.contains(&item.source) {
                                progress(ProgressEvent::Advanced(1));
                                return true;
                            }
                            alive = item_tx.send(item).is_ok();
                            alive
                        });
                        if !alive {
                            return;
                        }
                        if n == 0 {
                            progress(ProgressEvent::Advanced(1));
                        }
                    }
                }
            }
        });
        let ctx = &ctx;
        let pool = &pool;
        s.spawn(move || {
            pool.install(|| {
                item_rx.into_iter().par_bridge().for_each_with(out_tx, |tx, item| {
                    let source = item.source.clone();
                    let outcome = frontend::unpanicked(
                        || process(ctx, item),
                        || Outcome::Reject(Reject::new(Reason::DecodeError, "processing panicked")),
                    );
                    let _ = tx.send((source, outcome));
                });
            });
        });
        // The writer: this thread.
        let mut n_samples = ledger.written.len() as u64;
        let mut n_rejects =
            ledger.done.len() as u64 - ledger.done.values().filter(|d| matches!(d, Done::Sample { .. })).count() as u64;
        for (source, outcome) in out_rx {
            if write_error.is_some() {
                continue; // drain so the workers can finish
            }
            processed_now += 1;
            let entry = match outcome {
                Outcome::Reject(r) => {
                    let e = Entry::Reject { s: source.clone(), r: r.reason.code().into(), m: r.message.clone() };
                    ledger.done.insert(source, Done::Reject { reason: r.reason.code().into(), message: r.message });
                    e
                }
                Outcome::Sample { key, hash, label_row, encoded } => {
                    if ledger.written.contains(&key) {
                        match ledger.owner.get(&key) {
                            Some(o) if *o != source => {
                                let m = format!("same SOPInstanceUID as {o}");
                                ledger.done.insert(
                                    source.clone(),
                                    Done::Reject {
                                        reason: Reason::DuplicateSopInstance.code().into(),
                                        message: m.clone(),
                                    },
                                );
                                Entry::Duplicate { s: source, r: Reason::DuplicateSopInstance.code().into(), k: key, m }
                            }
                            _ => {
                                // Written by an earlier run whose journal line was lost.
                                ledger.owner.insert(key.clone(), source.clone());
                                ledger.by_hash.insert(hash.clone(), key.clone());
                                ledger.done.insert(source.clone(), Done::Sample { label_row });
                                Entry::Sample { s: source, k: key, h: hash, l: label_row }
                            }
                        }
                    } else if let Some(k) = ledger.by_hash.get(&hash) {
                        let m = format!(
                            "same pixels as {}",
                            ledger.owner.get(k).map(String::as_str).unwrap_or("an earlier file")
                        );
                        ledger.done.insert(
                            source.clone(),
                            Done::Reject { reason: Reason::DuplicatePixels.code().into(), message: m.clone() },
                        );
                        Entry::Duplicate { s: source, r: Reason::DuplicatePixels.code().into(), k: k.clone(), m }
                    } else {
                        if let Err(e) = writer.write_encoded(*encoded) {
                            write_error = Some(IngestError::Dataset { root: root.clone(), source: e });
                            continue;
                        }
                        ledger.written.insert(key.clone());
                        ledger.owner.insert(key.clone(), source.clone());
                        ledger.by_hash.insert(hash.clone(), key.clone());
                        ledger.done.insert(source.clone(), Done::Sample { label_row });
                        Entry::Sample { s: source, k: key, h: hash, l: label_row }
                    }
                }
            };
            match &entry {
                Entry::Sample { .. } => n_samples += 1,
                _ => n_rejects += 1,
            }
            if let Err(e) = journal.append(&entry) {
                write_error = Some(IngestError::WriteOutput { path: journal_path.clone(), source: e });
            }
            progress(ProgressEvent::Advanced(1));
            progress(ProgressEvent::Counts { samples: n_samples, rejected: n_rejects });
        }
        Ok(())
    })?;
    progress(ProgressEvent::Finished);
    if let Some(e) = write_error {
        return Err(e);
    }
    journal.sync().map_err(IngestError::write(&journal_path))?;

    // Accounting.
    let mut summary = Summary {
        processed_now,
        resumed: resuming,
        root: root.clone(),
        key_created: created.then(|| key_path.clone()),
        ..Default::default()
    };
    let mut rejected_rows: Vec<(&str, &str, &str)> = Vec::new();
    let mut sources: Vec<&String> = ledger.done.keys().collect();
    sources.sort();
    let mut used_rows = HashSet::new();
    let mut without_labels = 0u64;
    for src in sources {
        summary.files += 1;
        match &ledger.done[src] {
            Done::Sample { label_row, .. } => {
                summary.samples += 1;
                match label_row {
                    Some(r) => {
                        used_rows.insert(*r);
                    }
                    None => without_labels += 1,
                }
            }
            Done::Reject { reason, message } => {
                *summary.rejected.entry(reason.clone()).or_default() += 1;
                rejected_rows.push((src.as_str(), reason.as_str(), message.as_str()));
            }
        }
    }
    if let Some(l) = &ctx.labels {
        summary.label_rows = Some(l.len() as u64);
        summary.label_rows_unmatched = Some((l.len() - used_rows.len()) as u64);
        summary.images_without_labels = Some(without_labels);
        summary.label_rows_duplicate_keys = Some(l.duplicate_rows as u64);
    }
    let rejections = Rejections {
        locator: (
            "source_path",
            Arc::new(arrow_array::StringArray::from_iter_values(rejected_rows.iter().map(|r| r.0))),
        ),
        codes: rejected_rows.iter().map(|r| r.1).collect(),
        messages: rejected_rows.iter().map(|r| r.2).collect(),
    };
    frontend::account(&root, &rejections, summary.samples, &writer)?;

    let mut provenance = BTreeMap::new();
    let codes: Vec<serde_json::Value> = deid::DEID_CODES
        .iter()
        .filter(|(code, _)| cfg.keep_shifted_dates || *code != "113107")
        .map(|(code, meaning)| serde_json::json!({"code": code, "scheme": "DCM", "meaning": meaning}))
        .collect();
    provenance.insert(
        "deidentification".into(),
        serde_json::json!({
            "PatientIdentityRemoved": "YES",
            "DeidentificationMethod": deid_method(cfg),
            "DeidentificationMethodCodeSequence": codes,
            "kept": ["patient_id (pseudonym)", "study_id (2.25 UID)", "series_id (2.25 UID)", "sex", "age_years (capped at 90)", "view_position", "modality", "transfer_syntax"],
        }),
    );
    provenance.insert("options".into(), serde_json::to_value(&opts_now).expect("serialisable"));
    provenance.insert("summary".into(), serde_json::to_value(&summary).expect("serialisable"));
    provenance.insert(
        "pipeline".into(),
        serde_json::json!("stored values masked/sign-extended -> Modality LUT -> MONOCHROME1 inverted -> antialiased resize -> clip at percentile (low: image minimum) -> min-max to full dtype range; no VOI LUT/windowing"),
    );
    frontend::finish(writer, &root, None, deid_method(cfg), provenance)?;
    let c = &ctx.clocks;
    summary.timing = Timing {
        wall: started.elapsed(),
        read: Duration::from_nanos(c.read.load(Ordering::Relaxed)),
        decode: Duration::from_nanos(c.decode.load(Ordering::Relaxed)),
        pipeline: Duration::from_nanos(c.pipeline.load(Ordering::Relaxed)),
        encode: Duration::from_nanos(c.encode.load(Ordering::Relaxed)),
    };
    Ok(summary)
}

fn deid_method(cfg: &Config) -> String {
    if cfg.keep_shifted_dates {
        deid::DEID_METHOD.to_string()
    } else {
        deid::DEID_METHOD.replace(
            " and the Retain Longitudinal Temporal Information with Modified Dates Option",
            " (dates not kept)",
        )
    }
}

/// Reads `--partition` from the environment when not given: Slurm arrays
/// (`SLURM_ARRAY_TASK_ID` / `SLURM_ARRAY_TASK_COUNT`, minus
/// `SLURM_ARRAY_TASK_MIN` when set) or Kubernetes indexed Jobs
/// (`JOB_COMPLETION_INDEX` with the count in `JOB_COMPLETIONS`).
pub fn partition_from_env(get: impl Fn(&str) -> Option<String>) -> Result<Option<(u32, u32)>> {
    let num = |name: &str| -> Result<Option<u32>> {
        match get(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| IngestError::InvalidOption(format!("{name}={v:?} is not a number"))),
        }
    };
    if let (Some(id), Some(count)) = (num("SLURM_ARRAY_TASK_ID")?, num("SLURM_ARRAY_TASK_COUNT")?) {
        let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
        return Ok(Some((id.saturating_sub(min), count)));
    }
    if let Some(idx) = num("JOB_COMPLETION_INDEX")? {
        let count = num("JOB_COMPLETIONS")?.ok_or_else(|| {
            IngestError::InvalidOption(
                "JOB_COMPLETION_INDEX is set but JOB_COMPLETIONS is not (pass --partition I/N)".into(),
            )
        })?;
        return Ok(Some((idx, count)));
    }
    Ok(None)
}

/// Parses `I/N` (0-based index).
pub fn parse_partition(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("`{s}`: expected I/N, e.g. 0/8"))?;
    let i: u32 = i.trim().parse().map_err(|_| format!("`{s}`: I is not a number"))?;
    let n: u32 = n.trim().parse().map_err(|_| format!("`{s}`: N is not a number"))?;
    if n == 0 || i >= n {
        return Err(format!("`{s}`: need 0 <= I < N"));
    }
    Ok((i, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_split_deterministically() {
        let paths: Vec<PathBuf> = (0..1000).map(|i| PathBuf::from(format!("in/{i}.dcm"))).collect();
        let mut counts = [0; 4];
        for p in &paths {
            let k = partition_of(p, 4);
            assert_eq!(k, partition_of(p, 4));
            counts[k as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 200), "{counts:?}");
        assert_eq!(parse_partition("3/8"), Ok((3, 8)));
        assert!(parse_partition("8/8").is_err());
        assert!(parse_partition("x").is_err());
    }

    #[test]
    fn partition_comes_from_slurm_or_kubernetes() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(partition_from_env(env(&[])).unwrap(), None);
        assert_eq!(
            partition_from_env(env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "8"),
                ("SLURM_ARRAY_TASK_MIN", "1")
            ]))
            .unwrap(),
            Some((4, 8))
        );
        assert_eq!(
            partition_from_env(env(&[("JOB_COMPLETION_INDEX", "2"), ("JOB_COMPLETIONS", "3")])).unwrap(),
            Some((2, 3))
        );
        assert!(partition_from_env(env(&[("JOB_COMPLETION_INDEX", "2")])).is_err());
    }
}
