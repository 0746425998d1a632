//! One ingest run: discovery → parallel decode/pipeline/encode → one writer.
//!
//! Threads: a producer walks the inputs (and reads archive members) into a
//! bounded channel; a rayon pool of `threads` workers turns each item into an
//! outcome ([`worker`]: parse, select, decode, pixel pipeline, de-identify,
//! encode the sample's tar members); the calling thread is the only writer:
//! it de-duplicates ([`ledger`]), appends to the dataset writer and the
//! [`Journal`], and reports progress. Both channels hold at most `4 × threads` items,
//! so memory is bounded by the images in flight, not by the archive size.
//!
//! Resume: when `<out>` holds an unfinished run, the writer is resumed
//! (complete shards kept, partial ones dropped) and the journal says which
//! sources are done; only the rest is processed. The options must be the
//! same as the interrupted run's (`private/run.json`). [`partition`] splits
//! one import across jobs.
//!
//! The steps every front end shares (settings check, resume check, the
//! accounting and `rejected.parquet`, finishing) are [`crate::frontend`]'s.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chess_schemas::{layout, LabelColumn, LabelType};
use chess_shards::WriterOptions;
use rayon::iter::{ParallelBridge, ParallelIterator};
use serde::{Deserialize, Serialize};

use self::ledger::Ledger;
use self::order::ShardOrder;
use self::worker::{process, Clocks, Ctx, Outcome};
use crate::burned_in::sheet::Tile;
use crate::burned_in::{self, sheet::Sheet};
use crate::deid::{self, Key};
use crate::discover::{self, Item};
use crate::frontend::{self, Opened, PixelSettings, Rejections};
use crate::journal::Journal;
use crate::labels::{LabelKey, Labels};
use crate::pipeline::PipelineOptions;
use crate::progress::{Progress, ProgressEvent};
use crate::reject::{Reason, Reject};
use crate::select::Selection;

mod ledger;
mod order;
mod partition;
mod worker;

pub use self::ledger::{restore_from_journal, Restored};
pub use self::partition::{parse_partition, partition_from_env, partition_of};
pub use crate::decode_and_process;

/// Label column holding the shifted study date with `--dates shifted`.
pub const SHIFTED_DATE_COLUMN: &str = "study_date_shifted";
/// Label column holding the shifted study year with `--dates year`.
pub const SHIFTED_YEAR_COLUMN: &str = "study_year_shifted";
/// Name of the journal under `private/`.
pub const JOURNAL: &str = "journal.jsonl";
/// The run file under `private/` (the options of the run, for resumption).
pub const RUN_JSON: &str = "run.json";
/// The burned-in contact sheet under `private/`.
pub const BURNED_IN_SHEET: &str = "burned-in.png";
pub use crate::frontend::{KEY_FILE, REJECTED};

pub use crate::error::{IngestError, Result};

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub inputs: Vec<PathBuf>,
    /// Top-level output directory.
    pub out: PathBuf,
    /// `None`: `<private dir>/key`, created if missing.
    pub key_file: Option<PathBuf>,
    /// Where the private files go (`--private-dir`; journal, run file,
    /// reject list, key, contact sheet). `None`: `<out>/private`.
    pub private_dir: Option<PathBuf>,
    pub pipeline: PipelineOptions,
    pub selection: Selection,
    pub labels: Option<(PathBuf, LabelKey)>,
    /// `(index, count)`, 0-based index.
    pub partition: Option<(u32, u32)>,
    pub threads: usize,
    /// What becomes of the study date (`--dates`).
    pub dates: deid::Dates,
    /// Burned-in text: policy, markers, rules, OCR.
    pub burned_in: burned_in::Options,
    pub max_shard_samples: u64,
    pub max_shard_bytes: u64,
    pub zstd_level: i32,
    /// Decoder options (`--j2k-reduce`).
    pub decode: crate::dicom::DecodeOptions,
}

impl Config {
    pub fn new(inputs: Vec<PathBuf>, out: PathBuf) -> Config {
        Config {
            inputs,
            out,
            key_file: None,
            private_dir: None,
            pipeline: PipelineOptions::default(),
            selection: Selection::default(),
            labels: None,
            partition: None,
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            dates: deid::Dates::None,
            burned_in: burned_in::Options::default(),
            max_shard_samples: 10_000,
            max_shard_bytes: 1 << 30,
            zstd_level: 3,
            decode: Default::default(),
        }
    }

    /// Where this run's dataset goes: `<out>`, or `<out>/part-IIIII-of-NNNNN`.
    pub fn dataset_root(&self) -> PathBuf {
        match self.partition {
            None => self.out.clone(),
            Some((i, n)) => self.out.join(format!("part-{i:05}-of-{n:05}")),
        }
    }

    /// The private directory of the whole import (the key's default home):
    /// `--private-dir`, or `<out>/private`.
    fn private_base(&self) -> PathBuf {
        self.private_dir.clone().unwrap_or_else(|| self.out.join(layout::PRIVATE_DIR))
    }

    /// This run's private directory: `<out>/private` (`<out>/part-…/private`
    /// for a partition), or `--private-dir` (`<private-dir>/part-…`).
    pub fn private_root(&self) -> PathBuf {
        match (&self.private_dir, self.partition) {
            (None, _) => self.dataset_root().join(layout::PRIVATE_DIR),
            (Some(p), None) => p.clone(),
            (Some(p), Some((i, n))) => p.join(format!("part-{i:05}-of-{n:05}")),
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.private_base().join(KEY_FILE))
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
    pub dates: deid::Dates,
    pub burned_in: BurnedInSettings,
    pub partition: Option<(u32, u32)>,
    /// `--j2k-reduce` (left out of the file when off).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub j2k_reduce: bool,
}

/// The burned-in settings as `run.json` and `dataset.json` record them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BurnedInSettings {
    pub policy: burned_in::Policy,
    pub markers: Vec<String>,
    /// BLAKE3 of the rules file, if any.
    pub rules_digest: Option<String>,
    pub ocr: bool,
}

/// The result of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Source files accounted for (samples + rejects + duplicates).
    pub files: u64,
    pub samples: u64,
    /// Samples whose burned-in text (or rules regions) was blanked.
    pub masked: u64,
    /// Counts per reason code (duplicates included).
    pub rejected: BTreeMap<String, u64>,
    /// Files read leniently, per note code (`no_file_meta`,
    /// `encoding_fallback:explicit_le->implicit_le`, …; a file counts once
    /// under each of its codes); their journal lines name the codes.
    pub read_notes: BTreeMap<String, u64>,
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
    /// Where the private files are (never part of the dataset).
    #[serde(skip)]
    pub private: PathBuf,
    #[serde(skip)]
    pub key_created: Option<PathBuf>,
}

/// Where the workers' time went (summed over threads).
#[derive(Debug, Clone, Default)]
pub struct Timing {
    pub wall: Duration,
    pub read: Duration,
    pub decode: Duration,
    /// The burned-in text scan (detector and OCR).
    pub burned_in: Duration,
    pub pipeline: Duration,
    pub encode: Duration,
}

fn run_options(cfg: &Config, label_columns: &[LabelColumn]) -> RunOptions {
    RunOptions {
        pixels: PixelSettings::of(&cfg.pipeline),
        modalities: cfg.selection.modalities.clone(),
        views: cfg.selection.views.clone(),
        label_key: cfg.labels.as_ref().map(|(_, k)| k.keyword().to_string()),
        label_columns: label_columns.to_vec(),
        dates: cfg.dates,
        burned_in: BurnedInSettings {
            policy: cfg.burned_in.policy,
            markers: cfg.burned_in.markers.clone(),
            rules_digest: cfg.burned_in.rules.digest.clone(),
            ocr: cfg.burned_in.ocr,
        },
        partition: cfg.partition,
        j2k_reduce: cfg.decode.j2k_reduce_to.is_some(),
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
    let private = cfg.private_root();
    let journal_path = private.join(JOURNAL);
    let run_json = private.join(RUN_JSON);
    let elsewhere = private != root.join(layout::PRIVATE_DIR);
    let staged = root.join(chess_shards::writer::STAGING_DIR).exists();
    // An interrupted run (or, with --private-dir, a finished one) keeps its
    // journal and run file in its private directory: without them the run
    // would start over into the shards it left, or call the dataset foreign.
    if !run_json.exists() && (staged || (elsewhere && root.join(layout::DATASET_JSON).exists())) {
        return Err(IngestError::InvalidOption(format!(
            "{} holds a dataset, but no run file of the DICOM import is in {}: pass the --private-dir of \
             the run that made it (or another --out)",
            root.display(),
            private.display()
        )));
    }
    let key_path = cfg.key_path();
    let (key, created) = Key::load_or_create(&key_path)?;
    let labels = match &cfg.labels {
        None => None,
        Some((p, k)) => Some(Labels::load(p, *k)?),
    };
    let mut label_columns: Vec<LabelColumn> = labels.as_ref().map(|l| l.columns.clone()).unwrap_or_default();
    let date_column = match cfg.dates {
        deid::Dates::None => None,
        deid::Dates::Shifted => Some(SHIFTED_DATE_COLUMN),
        deid::Dates::Year => Some(SHIFTED_YEAR_COLUMN),
    };
    if let Some(column) = date_column {
        if label_columns.iter().any(|c| c.name == column) {
            return Err(IngestError::InvalidOption(format!(
                "--dates {}: the labels file already has a `{column}` column",
                cfg.dates.name()
            )));
        }
        label_columns.push(LabelColumn { name: column.into(), label_type: LabelType::Utf8 });
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
        ..WriterOptions::default()
    };

    // Fresh run or resumption?
    let opts_now = run_options(cfg, &label_columns);
    if frontend::finished(&root, &run_json, "DICOM import", &opts_now)? {
        return Ok(Summary { already_complete: true, root, private, ..Default::default() });
    }
    let resuming = journal_path.exists() || staged;
    let Opened { mut writer, done: complete } =
        frontend::open_dataset(&root, &writer_opts, &run_json, "DICOM import", &opts_now, resuming)?;
    if elsewhere {
        // The dataset's own private/ (made by the writer) stays empty: remove it.
        let _ = std::fs::remove_dir(root.join(layout::PRIVATE_DIR));
    }
    let (mut ledger, _) = Ledger::restore(&journal_path, complete).map_err(IngestError::write(&journal_path))?;
    let mut journal = Journal::append_to(&journal_path).map_err(IngestError::write(&journal_path))?;
    let skip = Arc::new(ledger.skip());
    tracing::info!(root = %root.display(), resuming, done = skip.len(), "ingest starting");

    let threads = cfg.threads.max(1);
    let pool = frontend::pool(threads, "chess-ingest")?;
    let ctx = Ctx {
        key,
        selection: cfg.selection.clone(),
        pipeline: cfg.pipeline,
        labels,
        dates: cfg.dates,
        burned_in: cfg.burned_in.clone(),
        writer_opts,
        clocks: Clocks::default(),
        decode: cfg.decode,
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
    let (item_tx, item_rx) = sync_channel::<(u64, Item)>(depth);
    let (out_tx, out_rx) = sync_channel::<(u64, String, Outcome, Option<Tile>)>(depth);
    // Outcomes back in walk order, at most 2 × depth of them in flight.
    let (window, mut in_order) = order::window::<(String, Outcome, Option<Tile>)>(2 * depth);
    let mut sheet = Sheet::default();
    let mut shard_order = ShardOrder::new(&writer);
    let mut processed_now = 0u64;
    let mut write_error: Option<IngestError> = None;

    std::thread::scope(|s| -> Result<()> {
        let inputs = &cfg.inputs;
        let skip = Arc::clone(&skip);
        s.spawn(move || {
            let mut seq = 0u64;
            let mut send = |item: Item| {
                let sent = window.acquire() && item_tx.send((seq, item)).is_ok();
                seq += 1;
                sent
            };
            for f in discover::walk_files(inputs) {
                match f {
                    Err(item) => {
                        if !send(item) {
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
                            alive = send(item);
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
                item_rx.into_iter().par_bridge().for_each_with(out_tx, |tx, (seq, item)| {
                    let source = item.source.clone();
                    let (outcome, tile) = frontend::unpanicked(
                        || process(ctx, item),
                        || (Outcome::Reject(Reject::new(Reason::DecodeError, "processing panicked"), Vec::new()), None),
                    );
                    let _ = tx.send((seq, source, outcome, tile));
                });
            });
        });
        // The writer: this thread.
        let (mut n_samples, mut n_rejects) = ledger.counts();
        for (seq, source, outcome, tile) in out_rx {
            in_order.push(seq, (source, outcome, tile), |(source, outcome, tile)| {
                if write_error.is_some() {
                    return; // drain so the workers can finish
                }
                processed_now += 1;
                if let Some(tile) = tile {
                    sheet.add(source.clone(), tile);
                }
                let recorded = ledger.record(source, outcome, |encoded| shard_order.push(encoded, &mut writer));
                let entry = match recorded {
                    Ok(entry) => entry,
                    Err(e) => {
                        write_error = Some(IngestError::Dataset { root: root.clone(), source: e });
                        return;
                    }
                };
                match &entry {
                    crate::journal::Entry::Sample { .. } => n_samples += 1,
                    _ => n_rejects += 1,
                }
                if let Err(e) = journal.append(&entry) {
                    write_error = Some(IngestError::WriteOutput { path: journal_path.clone(), source: e });
                }
                progress(ProgressEvent::Advanced(1));
                progress(ProgressEvent::Counts { samples: n_samples, rejected: n_rejects });
            });
        }
        debug_assert_eq!(in_order.waiting(), 0, "every outcome was due by the end");
        Ok(())
    })?;
    if write_error.is_none() {
        if let Err(e) = shard_order.flush(&mut writer) {
            write_error = Some(IngestError::Dataset { root: root.clone(), source: e });
        }
    }
    progress(ProgressEvent::Finished);
    if let Some(e) = write_error {
        return Err(e);
    }
    journal.sync().map_err(IngestError::write(&journal_path))?;
    if !sheet.is_empty() {
        sheet.write(&private).map_err(IngestError::write(&private.join(BURNED_IN_SHEET)))?;
    }

    // Accounting.
    let mut summary = Summary {
        processed_now,
        resumed: resuming,
        root: root.clone(),
        private: private.clone(),
        key_created: created.then(|| key_path.clone()),
        ..Default::default()
    };
    let rejected_rows = ledger.tally(&mut summary, ctx.labels.as_ref());
    let rejections = Rejections {
        locator: (
            "source_path",
            Arc::new(arrow_array::StringArray::from_iter_values(rejected_rows.iter().map(|r| r.0))),
        ),
        codes: rejected_rows.iter().map(|r| r.1).collect(),
        messages: rejected_rows.iter().map(|r| r.2).collect(),
    };
    frontend::account_in(&private, &rejections, summary.samples, &writer)?;

    frontend::finish(writer, &root, None, deid_method(cfg), provenance(cfg, &opts_now, &summary))?;
    summary.timing = ctx.clocks.timing(started.elapsed());
    Ok(summary)
}

/// What `dataset.json` says about how the dataset was made.
fn provenance(cfg: &Config, opts_now: &RunOptions, summary: &Summary) -> BTreeMap<String, serde_json::Value> {
    let mut provenance = BTreeMap::new();
    let codes: Vec<serde_json::Value> = deid::DEID_CODES
        .iter()
        .filter(|(code, _)| cfg.dates == deid::Dates::Shifted || *code != "113107")
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
    provenance.insert(
        "burned_in".into(),
        serde_json::json!({
            "policy": opts_now.burned_in.policy,
            "rules_digest": opts_now.burned_in.rules_digest,
            "ocr": opts_now.burned_in.ocr,
            "markers": opts_now.burned_in.markers,
            "masked": summary.masked,
            "rejected": summary.rejected.get(Reason::BurnedInText.code()).copied().unwrap_or(0),
            "detector": "cascade: a first pass on a copy of blocks of up to 4x4 px (max and min; top-hats wider than 56 px, text-height components grouped into lines) names candidate regions; the fine pass looks there only (stroke top-hats at <= 2048 px, glyph-sized components, lines of >= 2.8 glyph sizes); Tesseract 5 (eng) reads each line: allowed markers only do not count, words read (2+ alphanumerics, mean confidence >= 50) do, an unread line does with 5+ glyphs (without OCR every line does)",
        }),
    );
    provenance.insert("dates".into(), serde_json::json!(cfg.dates.name()));
    provenance.insert("options".into(), serde_json::to_value(opts_now).expect("serialisable"));
    provenance.insert("summary".into(), serde_json::to_value(summary).expect("serialisable"));
    provenance.insert(
        "pipeline".into(),
        serde_json::json!("stored values masked/sign-extended -> Modality LUT -> MONOCHROME1 inverted -> antialiased resize -> clip at percentile (low: image minimum) -> min-max to full dtype range; no VOI LUT/windowing"),
    );
    provenance
}

fn deid_method(cfg: &Config) -> String {
    let option = " and the Retain Longitudinal Temporal Information with Modified Dates Option";
    match cfg.dates {
        deid::Dates::Shifted => deid::DEID_METHOD.to_string(),
        deid::Dates::None => deid::DEID_METHOD.replace(option, " (dates not kept)"),
        deid::Dates::Year => deid::DEID_METHOD
            .replace(option, " (dates: only the year of the shifted study date kept, as HIPAA Safe Harbor allows)"),
    }
}
