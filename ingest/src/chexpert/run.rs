//! The CheXpert import run: every CSV row read and checked before
//! anything is written, duplicate images rejected, then the rows still to
//! do decoded in parallel and written in CSV order through the shared
//! [`crate::frontend`] skeleton.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chess_schemas::{layout, LabelColumn, LabelType};
use chess_shards::{encode_sample, EncodedSample, LabelValue, Sample, SampleFields, WriterOptions};
use serde::{Deserialize, Serialize};

use super::csv::{find_csvs, read_csv, Rejected, Row};
use super::{Split, DUPLICATE_ROW, MISSING_IMAGE, OBSERVATIONS, RUN_JSON};
use crate::datasets::tally::tally;
use crate::error::{IngestError, Result};
use crate::frontend::{self, Opened, PixelSettings};
use crate::image::process_image;
use crate::pipeline::PipelineOptions;
use crate::progress::{Progress, ProgressEvent};
use crate::reject::Reason;

/// Everything an import needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The CheXpert folder (holding train.csv).
    pub root: PathBuf,
    pub out: PathBuf,
    pub pipeline: PipelineOptions,
    pub threads: usize,
    pub max_shard_samples: u64,
    pub max_shard_bytes: u64,
    pub zstd_level: i32,
}

impl Config {
    pub fn new(root: PathBuf, out: PathBuf) -> Config {
        Config {
            root,
            out,
            pipeline: PipelineOptions::default(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            max_shard_samples: 10_000,
            max_shard_bytes: 1 << 30,
            zstd_level: 3,
        }
    }
}

/// The options an interrupted import must be resumed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    #[serde(flatten)]
    pub pixels: PixelSettings,
    pub csvs: Vec<String>,
}

pub use crate::datasets::tally::SplitCounts;

/// The result of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// CSV rows read (= samples + rejected).
    pub rows: u64,
    pub samples: u64,
    /// Counts per reason code.
    pub rejected: BTreeMap<String, u64>,
    pub splits: BTreeMap<String, SplitCounts>,
    /// The CSVs read, by file name.
    pub csvs: Vec<String>,
    /// Images converted from colour to luma.
    pub colour_converted: u64,
    #[serde(skip)]
    pub processed_now: u64,
    #[serde(skip)]
    pub resumed: bool,
    #[serde(skip)]
    pub already_complete: bool,
    #[serde(skip)]
    pub wall: Duration,
    #[serde(skip)]
    pub root: PathBuf,
    /// A CSV that was present but not read (test.csv when test_labels.csv exists).
    #[serde(skip)]
    pub ignored: Vec<PathBuf>,
}

enum Outcome {
    Sample { encoded: Box<EncodedSample>, colour: bool },
    Reject { code: &'static str, message: String },
}

fn label_columns() -> Vec<LabelColumn> {
    OBSERVATIONS.iter().map(|n| LabelColumn { name: n.to_string(), label_type: LabelType::Float32 }).collect()
}

fn process(row: &Row, opts: &PipelineOptions, writer_opts: &WriterOptions) -> Outcome {
    let mut file = &row.image.file;
    let mut read = std::fs::read(file);
    if let (Err(e), Some(alt)) = (&read, &row.image.alt) {
        if e.kind() == std::io::ErrorKind::NotFound {
            file = alt;
            read = std::fs::read(file);
        }
    }
    let bytes = match read {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let also = row.image.alt.as_ref().map(|a| format!(" (nor does {})", a.display())).unwrap_or_default();
            return Outcome::Reject {
                code: MISSING_IMAGE,
                message: format!("{} does not exist{also}", row.image.file.display()),
            };
        }
        Err(e) => {
            return Outcome::Reject { code: Reason::ReadError.code(), message: format!("{}: {e}", file.display()) }
        }
    };
    let (gray, out) = match process_image(&bytes, opts) {
        Ok(x) => x,
        Err((code, message)) => return Outcome::Reject { code, message: format!("{}: {message}", file.display()) },
    };
    let image = frontend::to_image(&out.pixels, out.size, opts.bit_depth);
    let sample = Sample {
        key: row.image.key.clone(),
        image,
        extras: Vec::new(),
        fields: SampleFields {
            patient_id: Some(row.image.patient_id.clone()),
            study_id: Some(row.image.study_id.clone()),
            series_id: None,
            view_position: Some(row.view_position.clone()),
            sex: row.sex.clone(),
            age_years: row.age_years,
            modality: Some(gray.format.to_string()),
            transfer_syntax: None,
            clip_value: Some(out.clip_value),
            split: Some(row.split.name().to_string()),
            labels: row.labels.iter().map(|v| v.map_or(LabelValue::Null, |x| LabelValue::Float(x as f64))).collect(),
        },
    };
    match encode_sample(&sample, writer_opts) {
        Ok(e) => Outcome::Sample { encoded: Box::new(e), colour: gray.from_colour },
        Err(e) => {
            Outcome::Reject { code: Reason::DecodeError.code(), message: format!("could not encode the sample: {e}") }
        }
    }
}

/// Runs a CheXpert import, reporting to `progress`.
pub fn run(cfg: &Config, progress: Progress<'_>) -> Result<Summary> {
    let started = Instant::now();
    frontend::check_settings(&cfg.pipeline, cfg.max_shard_samples)?;
    let root_in = &cfg.root;
    let csv_files = find_csvs(root_in)?;
    // Resolve ROOT so that `Path` cells naming its folder work for `.`-style roots too.
    let root = std::fs::canonicalize(root_in).map_err(IngestError::read(root_in))?;
    let mut summary = Summary { root: cfg.out.clone(), ..Default::default() };
    if csv_files.iter().any(|(_, p)| p.ends_with("test_labels.csv")) && root.join("test.csv").is_file() {
        summary.ignored.push(root_in.join("test.csv"));
    }
    // Read and check every CSV before writing anything.
    let mut all: Vec<Result<Row, Rejected>> = Vec::new();
    let mut row_split: Vec<Split> = Vec::new();
    for (split, path) in &csv_files {
        let rows = read_csv(&root, path, *split)?;
        summary.csvs.push(path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string());
        row_split.extend(std::iter::repeat_n(*split, rows.rows.len()));
        all.extend(rows.rows);
    }
    // The same image (key) twice: the later rows are rejected.
    let mut first: HashMap<String, String> = HashMap::new();
    for r in all.iter_mut() {
        if let Ok(row) = r {
            if let Some(prev) = first.get(&row.image.key) {
                *r = Err(Rejected {
                    source: row.path.clone(),
                    code: DUPLICATE_ROW.into(),
                    message: format!(
                        "{} line {}: same image key `{}` as `{prev}`, listed earlier",
                        row.csv, row.line, row.image.key
                    ),
                });
            } else {
                first.insert(row.image.key.clone(), row.path.clone());
            }
        }
    }
    drop(first);

    let out = &cfg.out;
    let writer_opts = WriterOptions {
        shard_name: "chexpert".into(),
        max_shard_bytes: cfg.max_shard_bytes,
        max_shard_samples: cfg.max_shard_samples,
        zstd_level: cfg.zstd_level,
        dtype: frontend::dtype(cfg.pipeline.bit_depth),
        with_split: true,
        labels: label_columns(),
        extra_fields: Vec::new(),
        ..WriterOptions::default()
    };
    let opts_now = RunOptions { pixels: PixelSettings::of(&cfg.pipeline), csvs: summary.csvs.clone() };
    let run_json = out.join(layout::PRIVATE_DIR).join(RUN_JSON);
    if frontend::finished(out, &run_json, "CheXpert import", &opts_now)? {
        summary.already_complete = true;
        return Ok(summary);
    }
    let resuming = run_json.exists() || out.join(chess_shards::writer::STAGING_DIR).exists();
    let Opened { mut writer, done } =
        frontend::open_dataset(out, &writer_opts, &run_json, "CheXpert import", &opts_now, resuming)?;
    summary.resumed = resuming;
    if !done.is_empty() {
        let listed: HashSet<&str> =
            all.iter().filter_map(|r| r.as_ref().ok().map(|row| row.image.key.as_str())).collect();
        // The written keys are fingerprints: count those the CSVs still list.
        let still_listed = listed.iter().filter(|k| done.contains(k)).count();
        if still_listed < done.len() {
            return Err(IngestError::StaleOutput {
                root: out.clone(),
                message: format!(
                    "the interrupted import wrote {} samples that the CSVs no longer list; import into a fresh --out",
                    done.len() - still_listed
                ),
            });
        }
    }

    // Rows still to process, in CSV order.
    let todo: Vec<usize> = all
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().ok().filter(|row| !done.contains(&row.image.key)).map(|_| i))
        .collect();
    let mut outcome_of: Vec<Option<Result<(), Rejected>>> = vec![None; all.len()];
    for (i, r) in all.iter().enumerate() {
        match r {
            Ok(row) if done.contains(&row.image.key) => outcome_of[i] = Some(Ok(())),
            Ok(_) => {}
            Err(rej) => outcome_of[i] = Some(Err(rej.clone())),
        }
    }

    let threads = cfg.threads.max(1);
    let pool = frontend::pool(threads, "chess-chexpert")?;
    progress(ProgressEvent::Total(all.len() as u64));
    progress(ProgressEvent::Advanced((all.len() - todo.len()) as u64));
    let mut colour = 0u64;
    let (mut n_samples, mut n_rejects) =
        (done.len() as u64, outcome_of.iter().filter(|o| matches!(o, Some(Err(_)))).count() as u64);
    let row_of = |i: usize| all[i].as_ref().expect("todo rows parsed");
    // Bounded in-flight work: a chunk being decoded, one waiting, one being written.
    frontend::process_in_order(
        &pool,
        &todo,
        8 * threads,
        |&i| {
            frontend::unpanicked(
                || process(row_of(i), &cfg.pipeline, &writer_opts),
                || Outcome::Reject { code: Reason::DecodeError.code(), message: "decoding panicked".into() },
            )
        },
        |&i, o| {
            let row = row_of(i);
            summary.processed_now += 1;
            match o {
                Outcome::Sample { encoded, colour: c } => {
                    writer.write_encoded(*encoded).map_err(IngestError::dataset(out))?;
                    colour += u64::from(c);
                    n_samples += 1;
                    outcome_of[i] = Some(Ok(()));
                }
                Outcome::Reject { code, message } => {
                    n_rejects += 1;
                    outcome_of[i] = Some(Err(Rejected {
                        source: row.path.clone(),
                        code: code.into(),
                        message: format!("{} line {}: {message}", row.csv, row.line),
                    }));
                }
            }
            progress(ProgressEvent::Advanced(1));
            progress(ProgressEvent::Counts { samples: n_samples, rejected: n_rejects });
            Ok(())
        },
    )?;
    progress(ProgressEvent::Finished);

    // Accounting: every row is a sample or a rejection.
    let t = tally(
        &outcome_of,
        |i| row_split[i].name().to_string(),
        |i| all[i].as_ref().ok().map(|row| row.image.patient_id.as_str()),
    )?;
    (summary.rows, summary.samples) = (t.rows, t.samples);
    summary.rejected = t.rejected.clone();
    summary.splits = t.splits.clone();
    summary.colour_converted = colour;
    frontend::account(out, &t.rejections(), summary.samples, &writer)?;

    let mut provenance = BTreeMap::new();
    provenance.insert(
        "source".into(),
        serde_json::json!("CheXpert (Stanford ML Group); CSV layout and folder names as released"),
    );
    provenance.insert("options".into(), serde_json::to_value(&opts_now).expect("serialisable"));
    provenance.insert("summary".into(), serde_json::to_value(&summary).expect("serialisable"));
    provenance.insert(
        "mapping".into(),
        serde_json::json!({
            "labels": "the 14 observations as Float32 columns named as in the CSV: 1, 0, -1 (uncertain) as written, null for blank",
            "sex": "Male -> M, Female -> F, Unknown or blank -> null",
            "age_years": "Age as written",
            "view_position": "frontal: AP/PA cell if AP or PA, else FRONTAL; lateral: LL/RL if the AP/PA cell says so, else LATERAL",
            "patient_id": "CheXpert patient folder (public pseudonym), e.g. patient00001",
            "study_id": "<patient folder>/<study folder>, e.g. patient00001/study1",
            "key": "<split>_<patient>_<study>_<view file stem>",
            "modality": "source file format: JPEG or PNG",
        }),
    );
    provenance.insert(
        "pipeline".into(),
        serde_json::json!("JPEG/PNG grey levels (colour -> BT.601 luma) as MONOCHROME2 stored values -> antialiased resize -> clip at percentile (low: image minimum) -> min-max to full dtype range"),
    );
    let deid_method = "none applied here: CheXpert is released de-identified; its patient/study folder names (public pseudonyms) are kept as patient_id/study_id";
    frontend::finish(writer, out, Some("chexpert"), deid_method.into(), provenance)?;
    summary.wall = started.elapsed();
    Ok(summary)
}
