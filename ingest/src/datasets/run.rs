//! Importing a [`Plan`] through the shared [`crate::frontend`] skeleton:
//! duplicate keys rejected, the items still to do decoded in parallel
//! (JPEG/PNG through [`crate::image`], DICOM through the DICOM path with
//! de-identification) and written in plan order, every item accounted for,
//! `dataset.json` with the release's mapping.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chess_schemas::{layout, LabelColumn};
use chess_shards::{encode_sample, EncodedSample, LabelValue, Sample, SampleFields, WriterOptions};
use serde::{Deserialize, Serialize};

use super::tally::{tally, SplitCounts};
use super::{DicomIds, Format, Item, Plan, Rejected, BOXES, DUPLICATE_ROW, MISSING_IMAGE, SOURCE_DATASET};
use crate::deid::{self, Key};
use crate::error::{IngestError, Result};
use crate::frontend::{self, Opened, PixelSettings};
use crate::image::{decode_dicom, process_image, semantics};
use crate::label_space::{self, Mapper, TORCHXRAYVISION};
use crate::pipeline::{self, PipelineOptions};
use crate::progress::{Progress, ProgressEvent};
use crate::reject::Reason;

/// Everything an import needs besides its plan.
#[derive(Debug, Clone)]
pub struct Config {
    pub out: PathBuf,
    pub pipeline: PipelineOptions,
    pub threads: usize,
    pub max_shard_samples: u64,
    pub max_shard_bytes: u64,
    pub zstd_level: i32,
    /// `--labels-as torchxrayvision`: the common label space instead of the release's labels.
    pub common_labels: bool,
    /// The secret key for DICOM pseudonyms (default `<out>/private/key`, created when missing).
    pub key_file: Option<PathBuf>,
}

impl Config {
    pub fn new(out: PathBuf) -> Config {
        Config {
            out,
            pipeline: PipelineOptions::default(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            max_shard_samples: 10_000,
            max_shard_bytes: 1 << 30,
            zstd_level: 3,
            common_labels: false,
            key_file: None,
        }
    }

    fn key_path(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.out.join(layout::PRIVATE_DIR).join(frontend::KEY_FILE))
    }
}

/// The options an interrupted import must be resumed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    #[serde(flatten)]
    pub pixels: PixelSettings,
    pub release: String,
    pub source_dataset: String,
    pub inputs: Vec<String>,
    pub labels_as: Option<String>,
    pub options: serde_json::Value,
    /// A keyed hash of a constant when DICOM is read (tells keys apart without revealing them).
    pub key_fingerprint: Option<String>,
}

/// The result of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Input rows or files (= samples + rejected).
    pub rows: u64,
    pub samples: u64,
    /// Counts per reason code.
    pub rejected: BTreeMap<String, u64>,
    /// Per split (`none` for items without one).
    pub splits: BTreeMap<String, SplitCounts>,
    pub inputs: Vec<String>,
    /// Images converted from colour to luma.
    pub colour_converted: u64,
    /// DICOM files stored as MONOCHROME1 (inverted by the pipeline).
    pub monochrome1: u64,
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
    #[serde(skip)]
    pub key_created: Option<PathBuf>,
}

enum Outcome {
    Sample { encoded: Box<EncodedSample>, colour: bool, monochrome1: bool },
    Reject { code: &'static str, message: String },
}

/// The label columns written and how a row's release labels become them.
struct Labels {
    columns: Vec<LabelColumn>,
    mapper: Option<Mapper>,
    boxes: Option<usize>,
    name: String,
}

impl Labels {
    fn of(plan: &Plan, common: bool) -> Labels {
        let name = plan.name.clone();
        if !common {
            let mut columns = plan.columns.clone();
            columns.push(super::text_column(SOURCE_DATASET));
            return Labels { columns, mapper: None, boxes: plan.boxes, name };
        }
        let mapper = if plan.vocabulary == label_space::Vocabulary::Classes {
            let mut classes: Vec<String> = plan
                .items
                .iter()
                .filter_map(|i| match i.as_ref().ok()?.fields.labels.first() {
                    Some(LabelValue::Str(c)) => Some(c.clone()),
                    _ => None,
                })
                .collect();
            classes.sort();
            classes.dedup();
            Mapper::for_classes(&classes)
        } else {
            let names: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
            Mapper::new(plan.vocabulary, &names)
        };
        let mut columns = label_space::columns();
        columns.push(super::text_column(BOXES));
        columns.push(super::text_column(SOURCE_DATASET));
        Labels { columns, mapper: Some(mapper), boxes: plan.boxes, name }
    }

    fn values(&self, native: &[LabelValue]) -> Vec<LabelValue> {
        let mut v = match &self.mapper {
            None => native.to_vec(),
            Some(m) => {
                let mut v = m.map(native);
                v.push(self.boxes.and_then(|b| native.get(b).cloned()).unwrap_or(LabelValue::Null));
                v
            }
        };
        v.push(LabelValue::Str(self.name.clone()));
        v
    }
}

fn read_item(item: &Item) -> std::result::Result<Vec<u8>, (&'static str, String)> {
    std::fs::read(&item.file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => (MISSING_IMAGE, format!("{} does not exist", item.file.display())),
        _ => (Reason::ReadError.code(), format!("{}: {e}", item.file.display())),
    })
}

struct Ctx {
    pipeline: PipelineOptions,
    writer_opts: WriterOptions,
    labels: Labels,
    key: Option<Key>,
    dicom_ids: DicomIds,
}

fn process(item: &Item, ctx: &Ctx) -> Outcome {
    let reject = |(code, message): (&'static str, String)| Outcome::Reject { code, message };
    let bytes = match read_item(item) {
        Ok(b) => b,
        Err(f) => return reject(f),
    };
    let named = |(code, m): (&'static str, String)| (code, format!("{}: {m}", item.file.display()));
    let mut fields = SampleFields { labels: ctx.labels.values(&item.fields.labels), ..item.fields.clone() };
    let mut key = item.key.clone();
    let (out, colour, monochrome1) = match item.format {
        Format::Image => match process_image(&bytes, &ctx.pipeline) {
            Ok((gray, out)) => {
                fields.modality = Some(gray.format.to_string());
                (out, gray.from_colour, false)
            }
            Err(f) => return reject(named(f)),
        },
        Format::Dicom => {
            let (h, stored) = match decode_dicom(&bytes) {
                Ok(x) => x,
                Err(f) => return reject(named(f)),
            };
            let out = pipeline::run(&stored.values, stored.rows, stored.columns, &semantics(&h), &ctx.pipeline);
            let d = deid::deidentify(ctx.key.as_ref().expect("a key when DICOM is read"), &h);
            match ctx.dicom_ids {
                DicomIds::Pseudonyms => {
                    key = d.key.clone();
                    fields.patient_id = d.patient_id;
                    fields.study_id = d.study_id;
                    fields.series_id = d.series_id;
                }
                DicomIds::Release => {
                    fields.patient_id = fields.patient_id.or(d.patient_id);
                }
            }
            fields.view_position = fields.view_position.or(d.view_position);
            fields.sex = fields.sex.or(d.sex);
            fields.age_years = fields.age_years.or(d.age_years);
            fields.modality = d.modality;
            fields.transfer_syntax = d.transfer_syntax;
            (out, false, h.photometric == "MONOCHROME1")
        }
    };
    fields.clip_value = Some(out.clip_value);
    let sample = Sample {
        key,
        image: frontend::to_image(&out.pixels, out.size, ctx.pipeline.bit_depth),
        extras: Vec::new(),
        fields,
    };
    match encode_sample(&sample, &ctx.writer_opts) {
        Ok(e) => Outcome::Sample { encoded: Box::new(e), colour, monochrome1 },
        Err(e) => {
            Outcome::Reject { code: Reason::DecodeError.code(), message: format!("could not encode the sample: {e}") }
        }
    }
}

/// Rejects the later of two items with the same key (for a DICOM item
/// whose key comes from its header, the writer's check applies instead).
fn reject_duplicates(items: &mut [Result<Item, Rejected>]) {
    let mut first: HashMap<String, String> = HashMap::new();
    for r in items.iter_mut() {
        let Ok(item) = r else { continue };
        if let Some(prev) = first.get(&item.key) {
            *r = Err(Rejected {
                source: item.source.clone(),
                code: DUPLICATE_ROW.into(),
                message: format!("{}: same image (key `{}`) as `{prev}`, listed earlier", item.place, item.key),
            });
        } else {
            first.insert(item.key.clone(), item.source.clone());
        }
    }
}

/// Imports `plan` into `cfg.out`, reporting to `progress`.
pub fn run(mut plan: Plan, cfg: &Config, progress: Progress<'_>) -> Result<Summary> {
    let started = Instant::now();
    frontend::check_settings(&cfg.pipeline, cfg.max_shard_samples)?;
    let release = plan.release;
    let import = release.import();
    let pseudonym_keys = plan.dicom_ids == DicomIds::Pseudonyms
        && plan.items.iter().any(|i| i.as_ref().is_ok_and(|i| i.format == Format::Dicom));
    if !pseudonym_keys {
        reject_duplicates(&mut plan.items);
    }
    let labels = Labels::of(&plan, cfg.common_labels);
    let out = &cfg.out;
    let writer_opts = WriterOptions {
        shard_name: release.name().into(),
        max_shard_bytes: cfg.max_shard_bytes,
        max_shard_samples: cfg.max_shard_samples,
        zstd_level: cfg.zstd_level,
        dtype: frontend::dtype(cfg.pipeline.bit_depth),
        with_split: true,
        labels: labels.columns.clone(),
        ..WriterOptions::default()
    };
    let any_dicom = plan.items.iter().any(|i| i.as_ref().is_ok_and(|i| i.format == Format::Dicom));
    let run_json = out.join(layout::PRIVATE_DIR).join(format!("{}-run.json", release.name()));
    let resuming = run_json.exists() || out.join(chess_shards::writer::STAGING_DIR).exists();
    let (key, key_created) = if any_dicom {
        let path = cfg.key_path();
        let (key, created) = Key::load_or_create(&path)?;
        (Some(key), created.then_some(path))
    } else {
        (None, None)
    };
    let opts_now = RunOptions {
        pixels: PixelSettings::of(&cfg.pipeline),
        release: release.name().into(),
        source_dataset: plan.name.clone(),
        inputs: plan.inputs.clone(),
        labels_as: cfg.common_labels.then(|| TORCHXRAYVISION.to_string()),
        options: plan.options.clone(),
        key_fingerprint: key.as_ref().map(|k| k.sample_key("chess-ingest datasets key fingerprint")),
    };
    let mut summary = Summary { root: out.clone(), inputs: plan.inputs.clone(), key_created, ..Default::default() };
    if frontend::finished(out, &run_json, import, &opts_now)? {
        summary.already_complete = true;
        return Ok(summary);
    }
    let Opened { mut writer, done } =
        frontend::open_dataset(out, &writer_opts, &run_json, import, &opts_now, resuming)?;
    summary.resumed = resuming;
    let ctx = Ctx { pipeline: cfg.pipeline, writer_opts: writer_opts.clone(), labels, key, dicom_ids: plan.dicom_ids };
    let items = &plan.items;
    // DICOM pseudonym keys are known only after reading: those items are redone on resume.
    let known_key = |item: &Item| !(pseudonym_keys && item.format == Format::Dicom);
    let mut outcome_of: Vec<Option<Result<(), Rejected>>> = vec![None; items.len()];
    let mut todo = Vec::new();
    for (i, r) in items.iter().enumerate() {
        match r {
            Ok(item) if known_key(item) && done.contains(&item.key) => outcome_of[i] = Some(Ok(())),
            Ok(_) => todo.push(i),
            Err(rej) => outcome_of[i] = Some(Err(rej.clone())),
        }
    }
    let mut written: HashSet<String> =
        items.iter().filter_map(|r| r.as_ref().ok()).filter(|i| known_key(i)).map(|i| i.key.clone()).collect();
    written.retain(|k| done.contains(k));
    let threads = cfg.threads.max(1);
    let pool = frontend::pool(threads, "chess-datasets")?;
    progress(ProgressEvent::Total(items.len() as u64));
    progress(ProgressEvent::Advanced((items.len() - todo.len()) as u64));
    let (mut colour, mut mono1) = (0u64, 0u64);
    let mut n_samples = done.len() as u64;
    let mut n_rejects = outcome_of.iter().filter(|o| matches!(o, Some(Err(_)))).count() as u64;
    let item_of = |i: usize| items[i].as_ref().expect("todo items are planned");
    frontend::process_in_order(
        &pool,
        &todo,
        8 * threads,
        |&i| {
            frontend::unpanicked(
                || process(item_of(i), &ctx),
                || Outcome::Reject { code: Reason::DecodeError.code(), message: "decoding panicked".into() },
            )
        },
        |&i, o| {
            let item = item_of(i);
            summary.processed_now += 1;
            let rejected = |code: &str, message: String| Rejected {
                source: item.source.clone(),
                code: code.into(),
                message: format!("{}: {message}", item.place),
            };
            outcome_of[i] = Some(match o {
                Outcome::Sample { encoded, colour: c, monochrome1 } => {
                    let k = encoded.key().to_string();
                    if done.contains(&k) && !known_key(item) {
                        Ok(()) // written by the interrupted run
                    } else if !written.insert(k.clone()) {
                        n_rejects += 1;
                        Err(rejected(DUPLICATE_ROW, format!("the same image (key {k}) as an earlier item")))
                    } else {
                        writer.write_encoded(*encoded).map_err(IngestError::dataset(out))?;
                        colour += u64::from(c);
                        mono1 += u64::from(monochrome1);
                        n_samples += 1;
                        Ok(())
                    }
                }
                Outcome::Reject { code, message } => {
                    n_rejects += 1;
                    Err(rejected(code, message))
                }
            });
            progress(ProgressEvent::Advanced(1));
            progress(ProgressEvent::Counts { samples: n_samples, rejected: n_rejects });
            Ok(())
        },
    )?;
    progress(ProgressEvent::Finished);

    let t = tally(
        &outcome_of,
        |i| items[i].as_ref().ok().and_then(|it| it.fields.split.clone()).unwrap_or_else(|| "none".into()),
        |i| items[i].as_ref().ok().and_then(|it| it.fields.patient_id.as_deref()),
    )?;
    (summary.rows, summary.samples) = (t.rows, t.samples);
    summary.rejected = t.rejected.clone();
    summary.splits = t.splits.clone();
    summary.colour_converted = colour;
    summary.monochrome1 = mono1;
    frontend::account(out, &t.rejections(), summary.samples, &writer)?;

    let mut provenance = BTreeMap::new();
    provenance.insert("source".into(), serde_json::json!(import));
    provenance.insert("source_dataset".into(), serde_json::json!(plan.name));
    provenance.insert("options".into(), serde_json::to_value(&opts_now).expect("serialisable"));
    provenance.insert("summary".into(), serde_json::to_value(&summary).expect("serialisable"));
    provenance.insert("mapping".into(), plan.mapping.clone());
    if cfg.common_labels {
        provenance.insert(
            "label_space".into(),
            serde_json::json!("torchxrayvision: the 18 default pathologies (see chess_ingest::label_space and the README's table); `boxes` and `source_dataset` as Utf8"),
        );
    }
    provenance.insert(
        "pipeline".into(),
        serde_json::json!("JPEG/PNG grey levels (colour -> BT.601 luma, alpha ignored) or DICOM stored values (modality LUT/rescale, MONOCHROME1 inverted) -> antialiased resize -> clip at percentile -> min-max to full dtype range"),
    );
    frontend::finish(writer, out, Some(release.name()), plan.deid.clone(), provenance)?;
    summary.wall = started.elapsed();
    Ok(summary)
}
