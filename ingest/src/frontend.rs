//! The skeleton every import front end (DICOM in [`crate::run`], CheXpert
//! in [`crate::chexpert`], pairs in [`crate::pairs`]) follows, written once:
//!
//! 1. [`check_settings`]: the pixel and shard settings are in range;
//! 2. [`open_dataset`]: create the dataset, or resume an interrupted one
//!    after checking that its stored run file (`private/<name>.json`) holds
//!    the same options, then store the options of this run;
//! 3. [`process_in_order`]: a pool of workers turns inputs into outcomes
//!    (panics become rejections), handed to the writer in input order;
//! 4. [`account`]: every input is one manifest row or one row of
//!    `private/rejected.parquet` (written here), checked against the writer;
//! 5. [`finish`]: `manifest.parquet` and `dataset.json` with the provenance.
//!
//! Progress goes to the caller's [`crate::progress::Progress`] callback.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chess_schemas::{layout, PixelDtype};
use chess_shards::{DatasetWriter, FinishInfo, Image, LabelValue, SampleFields, WriterOptions, WrittenKeys};
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{IngestError, Result};
use crate::pipeline::{Aspect, BitDepth, PipelineOptions};

/// The reject list under `private/`.
pub const REJECTED: &str = "rejected.parquet";
/// The default key file under `private/`.
pub const KEY_FILE: &str = "key";
/// Largest `--size`.
pub const MAX_SIZE: u32 = 8192;

/// Checks the settings every front end takes (`--size`, `--clip-percentile`,
/// `--shard-samples`) before anything is read or written.
pub fn check_settings(pipeline: &PipelineOptions, max_shard_samples: u64) -> Result<()> {
    if pipeline.size == 0 || pipeline.size > MAX_SIZE {
        return Err(IngestError::InvalidOption(format!("--size {} (1..={MAX_SIZE})", pipeline.size)));
    }
    if !(pipeline.clip_percentile > 0.0 && pipeline.clip_percentile <= 100.0) {
        return Err(IngestError::InvalidOption(format!(
            "--clip-percentile {} (0 < p <= 100)",
            pipeline.clip_percentile
        )));
    }
    if max_shard_samples == 0 {
        return Err(IngestError::InvalidOption("--shard-samples must be at least 1".into()));
    }
    Ok(())
}

/// The pixel settings as every run file stores them (flattened into each
/// front end's own run options).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PixelSettings {
    pub size: u32,
    pub clip_percentile: f64,
    pub aspect: String,
    pub bit_depth: u32,
}

impl PixelSettings {
    pub fn of(p: &PipelineOptions) -> PixelSettings {
        PixelSettings {
            size: p.size,
            clip_percentile: p.clip_percentile,
            aspect: match p.aspect {
                Aspect::Stretch => "stretch".into(),
                Aspect::Pad => "pad".into(),
            },
            bit_depth: match p.bit_depth {
                BitDepth::U16 => 16,
                BitDepth::U8 => 8,
            },
        }
    }
}

/// The dataset dtype of a bit depth.
pub fn dtype(depth: BitDepth) -> PixelDtype {
    match depth {
        BitDepth::U16 => PixelDtype::Uint16,
        BitDepth::U8 => PixelDtype::Uint8,
    }
}

/// The pipeline's output pixels as a sample image of the dataset's dtype.
pub fn to_image(pixels: &[u16], size: u32, depth: BitDepth) -> Image {
    match depth {
        BitDepth::U16 => Image::from_u16(size, size, pixels),
        BitDepth::U8 => Image::from_u8(size, size, pixels.iter().map(|&p| p as u8).collect()),
    }
}

/// Whether `root` already holds the finished dataset this run would make:
/// `Ok(true)` when its `dataset.json` exists and the options stored in
/// `run_file` equal `options` (re-running the same command does nothing),
/// [`IngestError::FinishedWithOtherOptions`] when they differ (a re-run with
/// another `--size` must not report success over the old dataset),
/// [`IngestError::OtherDataset`] when this import did not make it (no run
/// file: another front end or another tool), and `Ok(false)` when there is
/// no finished dataset.
pub fn finished<O: Serialize + DeserializeOwned + PartialEq>(
    root: &Path,
    run_file: &Path,
    import: &'static str,
    options: &O,
) -> Result<bool> {
    if !root.join(chess_schemas::layout::DATASET_JSON).exists() {
        return Ok(false);
    }
    let Some(before) = stored_options::<O>(run_file)? else {
        return Err(IngestError::OtherDataset { root: root.to_path_buf(), import });
    };
    if let Some((before, now)) = differing(&before, options) {
        return Err(IngestError::FinishedWithOtherOptions { root: root.to_path_buf(), import, before, now });
    }
    Ok(true)
}

/// The options a run stored in `run_file`; `None` when there is no such file.
fn stored_options<O: DeserializeOwned>(run_file: &Path) -> Result<Option<O>> {
    let Ok(text) = std::fs::read(run_file) else {
        return Ok(None);
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| IngestError::RunFile { path: run_file.to_path_buf(), source })
}

/// Both option sets as JSON when they differ, for the message that names them.
fn differing<O: Serialize + PartialEq>(before: &O, now: &O) -> Option<(String, String)> {
    (before != now)
        .then(|| (serde_json::to_string(before).unwrap_or_default(), serde_json::to_string(now).unwrap_or_default()))
}

/// The manifest fields of a de-identified DICOM sample (DICOM and pairs
/// imports): the pseudonyms and kept attributes, its clip value, `labels`.
pub fn dicom_fields(d: crate::deid::Deidentified, clip_value: f64, labels: Vec<LabelValue>) -> SampleFields {
    SampleFields {
        patient_id: d.patient_id,
        study_id: d.study_id,
        series_id: d.series_id,
        view_position: d.view_position,
        sex: d.sex,
        age_years: d.age_years,
        modality: d.modality,
        transfer_syntax: d.transfer_syntax,
        clip_value: Some(clip_value),
        split: None,
        labels,
    }
}

/// A dataset being written, and what an interrupted run left in it.
pub struct Opened {
    pub writer: DatasetWriter,
    /// Keys of the samples in the interrupted run's complete shards.
    pub done: WrittenKeys,
}

/// Creates the dataset at `root`, or resumes it when `resuming` (the front
/// end knows its own signs of an interrupted run): the options stored in
/// `run_file` must equal `options`, else [`IngestError::OptionsChanged`]
/// names both. Then stores `options` in `run_file` for a later resumption.
pub fn open_dataset<O: Serialize + DeserializeOwned + PartialEq>(
    root: &Path,
    writer_opts: &WriterOptions,
    run_file: &Path,
    import: &'static str,
    options: &O,
    resuming: bool,
) -> Result<Opened> {
    // private/ first, 0700, before anything (the writer included) creates it.
    let private = root.join(layout::PRIVATE_DIR);
    crate::private::create_dir(&private).map_err(IngestError::write(&private))?;
    let (writer, done) = if resuming {
        if let Some((before, now)) = stored_options::<O>(run_file)?.and_then(|b| differing(&b, options)) {
            return Err(IngestError::OptionsChanged { root: root.to_path_buf(), import, before, now });
        }
        DatasetWriter::resume(root, writer_opts.clone()).map_err(IngestError::dataset(root))?
    } else {
        (DatasetWriter::create(root, writer_opts.clone()).map_err(IngestError::dataset(root))?, WrittenKeys::default())
    };
    if let Some(private) = run_file.parent() {
        crate::private::create_dir(private).map_err(IngestError::write(private))?;
    }
    crate::private::write(run_file, &serde_json::to_vec_pretty(options).expect("serialisable"))
        .map_err(IngestError::write(run_file))?;
    Ok(Opened { writer, done })
}

/// A pool of `threads` workers named `<name>-<i>`.
pub fn pool(threads: usize, name: &'static str) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(move |i| format!("{name}-{i}"))
        .build()
        .map_err(|e| IngestError::Worker(e.to_string()))
}

/// Runs `work`, turning a panic into `on_panic()`: one bad input must not end the run.
pub fn unpanicked<O>(work: impl FnOnce() -> O, on_panic: impl FnOnce() -> O) -> O {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| on_panic())
}

/// Processes `items` on `pool` in chunks of `chunk`, and hands each outcome
/// to `consume` on the calling thread (the writer) in the order of `items`.
/// At most one chunk is decoded while one waits and one is written, so
/// memory is bounded by `3 × chunk` outcomes. The first error of `consume`
/// stops the run (the workers finish their chunk) and is returned.
pub fn process_in_order<I: Sync, O: Send>(
    pool: &rayon::ThreadPool,
    items: &[I],
    chunk: usize,
    process: impl Fn(&I) -> O + Sync,
    mut consume: impl FnMut(&I, O) -> Result<()>,
) -> Result<()> {
    let (tx, rx) = sync_channel::<Vec<O>>(1);
    std::thread::scope(|s| {
        let process = &process;
        s.spawn(move || {
            for ids in items.chunks(chunk.max(1)) {
                let outs: Vec<O> = pool.install(|| ids.par_iter().map(process).collect());
                if tx.send(outs).is_err() {
                    return; // the writer stopped
                }
            }
        });
        let mut next = items.iter();
        for outs in rx {
            for o in outs {
                consume(next.next().expect("one outcome per item"), o)?;
            }
        }
        Ok(())
    })
}

/// The rejected inputs of a run: the front end's locating column (its
/// name and values: `source_path` strings, `csv_line` numbers), reason
/// codes and messages, one entry per rejected input.
pub struct Rejections<'a> {
    pub locator: (&'static str, ArrayRef),
    pub codes: Vec<&'a str>,
    pub messages: Vec<&'a str>,
}

impl Rejections<'_> {
    /// Counts per reason code.
    pub fn by_code(&self) -> BTreeMap<String, u64> {
        let mut counts = BTreeMap::new();
        for c in &self.codes {
            *counts.entry(c.to_string()).or_default() += 1;
        }
        counts
    }
}

/// The accounting step: writes `private/rejected.parquet` and checks that
/// the samples the front end counted are the samples in the dataset.
pub fn account(root: &Path, rejections: &Rejections<'_>, samples: u64, writer: &DatasetWriter) -> Result<()> {
    account_in(&root.join(layout::PRIVATE_DIR), rejections, samples, writer)
}

/// [`account`] with the reject list in the private directory `private`
/// (`--private-dir`).
pub fn account_in(private: &Path, rejections: &Rejections<'_>, samples: u64, writer: &DatasetWriter) -> Result<()> {
    let path = private.join(REJECTED);
    write_rejected(&path, rejections).map_err(IngestError::write(&path))?;
    if samples != writer.sample_count() as u64 {
        return Err(IngestError::Accounting(format!(
            "{samples} samples counted, {} in the dataset",
            writer.sample_count()
        )));
    }
    Ok(())
}

/// Writes `rejected.parquet` atomically (a temporary name, then a rename).
fn write_rejected(path: &Path, r: &Rejections<'_>) -> std::io::Result<()> {
    let (name, locations) = &r.locator;
    let schema = Arc::new(Schema::new(vec![
        Field::new(*name, locations.data_type().clone(), false),
        Field::new("reason_code", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        locations.clone(),
        Arc::new(StringArray::from_iter_values(r.codes.iter().copied())),
        Arc::new(StringArray::from_iter_values(r.messages.iter().copied())),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("parquet.tmp");
    let file = crate::private::create_file(&tmp)?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(std::io::Error::other)?;
    w.write(&batch).map_err(std::io::Error::other)?;
    w.close().map_err(std::io::Error::other)?;
    std::fs::rename(&tmp, path)
}

/// The last step: `manifest.parquet` and `dataset.json`, with `tool`
/// (`chess-ingest <version>` plus the front end) and the provenance.
pub fn finish(
    writer: DatasetWriter,
    root: &Path,
    front_end: Option<&str>,
    deid_method: String,
    provenance: BTreeMap<String, serde_json::Value>,
) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let tool_version = match front_end {
        None => format!("chess-ingest {version}"),
        Some(f) => format!("chess-ingest {version} ({f})"),
    };
    writer.finish(FinishInfo { tool_version, deid_method, provenance }).map_err(IngestError::dataset(root))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_usage_errors() {
        let ok = PipelineOptions::default();
        assert!(check_settings(&ok, 1).is_ok());
        for (p, shard) in [
            (PipelineOptions { size: 0, ..ok }, 1),
            (PipelineOptions { size: MAX_SIZE + 1, ..ok }, 1),
            (PipelineOptions { clip_percentile: 0.0, ..ok }, 1),
            (PipelineOptions { clip_percentile: 100.5, ..ok }, 1),
            (ok, 0),
        ] {
            assert!(matches!(check_settings(&p, shard), Err(IngestError::InvalidOption(_))), "{p:?} {shard}");
        }
    }

    #[test]
    fn outcomes_reach_the_writer_in_input_order_until_it_fails() {
        let pool = pool(4, "test").unwrap();
        let items: Vec<u32> = (0..100).collect();
        let mut seen = Vec::new();
        process_in_order(
            &pool,
            &items,
            7,
            |&i| i * 2,
            |&i, o| {
                seen.push((i, o));
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, items.iter().map(|&i| (i, i * 2)).collect::<Vec<_>>());
        let mut consumed = 0;
        let r = process_in_order(
            &pool,
            &items,
            7,
            |&i| i,
            |&i, _| {
                consumed += 1;
                if i == 10 {
                    return Err(IngestError::Accounting("stop".into()));
                }
                Ok(())
            },
        );
        assert!(matches!(r, Err(IngestError::Accounting(_))));
        assert_eq!(consumed, 11, "nothing is consumed after the first error");
    }

    #[test]
    fn a_panicking_input_becomes_its_fallback() {
        assert_eq!(unpanicked(|| -> u32 { panic!("bad input") }, || 7), 7);
        assert_eq!(unpanicked(|| 3, || 7), 3);
    }
}
