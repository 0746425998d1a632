//! The pairs import run: each row's files loaded (DICOM or PNG), checked
//! for matching dimensions, run through the pixel pipeline (masks through
//! [`super::labelmap`]), keyed, and written in CSV order through the
//! shared [`crate::frontend`] skeleton.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chess_schemas::layout;
use chess_shards::{encode_sample, EncodedSample, Image, Sample, SampleFields, WriterOptions};
use serde::{Deserialize, Serialize};

use super::csv::{read_csv, Rejected, Row};
use super::labelmap::resize_labels;
use super::{BAD_MASK, DIMENSION_MISMATCH, DUPLICATE_ROW, MISSING_FILE, RUN_JSON, UNSUPPORTED_FORMAT};
use crate::deid::{self, Key};
use crate::dicom::Header;
use crate::error::{IngestError, Result};
use crate::frontend::{self, Opened, PixelSettings, Rejections};
use crate::pipeline::{self, Aspect, BitDepth, PipelineOptions, PixelSemantics};
use crate::progress::{Progress, ProgressEvent};
use crate::reject::Reason;

/// Everything a pairs import needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub csv: PathBuf,
    pub out: PathBuf,
    /// Default: `<out>/private/key`, created when missing.
    pub key_file: Option<PathBuf>,
    pub pipeline: PipelineOptions,
    pub threads: usize,
    pub max_shard_samples: u64,
}

impl Config {
    pub fn new(csv: PathBuf, out: PathBuf) -> Config {
        Config {
            csv,
            out,
            key_file: None,
            pipeline: PipelineOptions::default(),
            threads: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            max_shard_samples: 10_000,
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.out.join(layout::PRIVATE_DIR).join(crate::frontend::KEY_FILE))
    }
}

/// The options an interrupted import must be resumed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    #[serde(flatten)]
    pub pixels: PixelSettings,
    pub with_mask: bool,
    pub key_fingerprint: String,
}

/// The result of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// CSV data rows read (= samples + rejected).
    pub rows: u64,
    pub samples: u64,
    /// Counts per reason code.
    pub rejected: BTreeMap<String, u64>,
    pub with_mask: bool,
    /// Samples written by this run (the rest came from an interrupted one).
    #[serde(skip)]
    pub processed_now: u64,
    #[serde(skip)]
    pub resumed: bool,
    /// `out` already held this dataset, made with the same options: nothing was done.
    #[serde(skip)]
    pub already_complete: bool,
    #[serde(skip)]
    pub key_created: Option<PathBuf>,
    #[serde(skip)]
    pub wall: Duration,
    #[serde(skip)]
    pub root: PathBuf,
}

/// A decoded file: stored values with what the pipeline needs, and the
/// DICOM header when it was DICOM.
struct Loaded {
    rows: u32,
    cols: u32,
    values: Vec<i32>,
    header: Option<Header>,
    /// Bits of a PNG sample (8 or 16); `None` for DICOM.
    png_bits: Option<u8>,
    png_colour: bool,
}

type Failure = (&'static str, String);

fn load(path: &Path) -> std::result::Result<Loaded, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound { MISSING_FILE } else { Reason::ReadError.code() };
        (code, format!("{}: {e}", path.display()))
    })?;
    let named = |(code, msg): Failure| (code, format!("{}: {msg}", path.display()));
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        let g = crate::image::decode_image(&bytes).map_err(named)?;
        return Ok(Loaded {
            rows: g.rows,
            cols: g.cols,
            values: g.values,
            header: None,
            png_bits: Some(g.bits),
            png_colour: g.from_colour,
        });
    }
    let (h, stored) = crate::image::decode_dicom(&bytes).map_err(|(code, msg)| {
        let msg = match msg.strip_prefix("not readable DICOM") {
            Some(rest) => format!("neither PNG nor readable DICOM{rest}"),
            None => msg,
        };
        (code, format!("{}: {msg}", path.display()))
    })?;
    Ok(Loaded {
        rows: stored.rows,
        cols: stored.columns,
        values: stored.values,
        header: Some(h),
        png_bits: None,
        png_colour: false,
    })
}

fn semantics(l: &Loaded) -> PixelSemantics<'_> {
    l.header.as_ref().map_or_else(PixelSemantics::default, crate::image::semantics)
}

fn process(
    row: &Row,
    key: &Key,
    opts: &PipelineOptions,
    writer_opts: &WriterOptions,
) -> std::result::Result<EncodedSample, Failure> {
    let src = load(&row.source)?;
    let tgt = load(&row.target)?;
    let mask = row.mask.as_deref().map(load).transpose()?;
    let dims = |l: &Loaded| (l.cols, l.rows);
    if dims(&tgt) != dims(&src) {
        return Err((
            DIMENSION_MISMATCH,
            format!(
                "target {} is {}×{}, source {} is {}×{}",
                row.target.display(),
                tgt.cols,
                tgt.rows,
                row.source.display(),
                src.cols,
                src.rows
            ),
        ));
    }
    let size = opts.size;
    let mut extras = Vec::new();
    let s_out = pipeline::run(&src.values, src.rows, src.cols, &semantics(&src), opts);
    let t_out = pipeline::run(&tgt.values, tgt.rows, tgt.cols, &semantics(&tgt), opts);
    extras.push(("target".to_string(), frontend::to_image(&t_out.pixels, size, opts.bit_depth)));
    let mut mask_hash = String::new();
    if let (Some(m), Some(mpath)) = (&mask, &row.mask) {
        if dims(m) != dims(&src) {
            return Err((
                DIMENSION_MISMATCH,
                format!(
                    "mask {} is {}×{}, source {} is {}×{}",
                    mpath.display(),
                    m.cols,
                    m.rows,
                    row.source.display(),
                    src.cols,
                    src.rows
                ),
            ));
        }
        if m.png_colour {
            return Err((
                UNSUPPORTED_FORMAT,
                format!("mask {}: a colour PNG; masks are grey label maps", mpath.display()),
            ));
        }
        let labels: Vec<u8> = m
            .values
            .iter()
            .map(|&v| {
                u8::try_from(v)
                    .map_err(|_| (BAD_MASK, format!("mask {}: value {v} is not a label id 0..=255", mpath.display())))
            })
            .collect::<std::result::Result<_, _>>()?;
        let resized = resize_labels(&labels, m.rows as usize, m.cols as usize, size as usize, opts.aspect);
        mask_hash = blake3::hash(&resized).to_hex().to_string();
        // The dataset has one dtype: class ids are stored as they are, in it.
        let img = match opts.bit_depth {
            BitDepth::U8 => Image::from_u8(size, size, resized),
            BitDepth::U16 => Image::from_u16(size, size, &resized.iter().map(|&v| v as u16).collect::<Vec<_>>()),
        };
        extras.push(("mask".to_string(), img));
    }
    let image = frontend::to_image(&s_out.pixels, size, opts.bit_depth);
    let (sample_key, fields) = match &src.header {
        Some(h) if !h.sop_instance_uid.is_empty() => {
            let d = deid::deidentify(key, h);
            (d.key.clone(), frontend::dicom_fields(d, s_out.clip_value, Vec::new()))
        }
        _ => {
            // Keyed hash of the row's content (never its paths, which may hold names).
            let basis = format!(
                "pair:{}:{}:{mask_hash}",
                chess_shards::pixel_hash(&image),
                chess_shards::pixel_hash(&extras[0].1)
            );
            let modality = if src.png_bits.is_some() { "PNG" } else { "DICOM" };
            let fields = SampleFields {
                modality: Some(modality.into()),
                clip_value: Some(s_out.clip_value),
                ..SampleFields::default()
            };
            (key.sample_key(&basis), fields)
        }
    };
    let sample = Sample { key: sample_key, image, extras, fields };
    encode_sample(&sample, writer_opts)
        .map_err(|e| (Reason::DecodeError.code(), format!("could not encode the sample: {e}")))
}

/// Runs a pairs import into `cfg.out`, resuming an interrupted one there
/// (rows are re-read; samples in its complete shards are not written
/// again), reporting to `progress`.
pub fn run(cfg: &Config, progress: Progress<'_>) -> Result<Summary> {
    let started = Instant::now();
    frontend::check_settings(&cfg.pipeline, cfg.max_shard_samples)?;
    let (rows, with_mask) = read_csv(&cfg.csv)?;
    let out = &cfg.out;
    let writer_opts = WriterOptions {
        shard_name: "pairs".into(),
        max_shard_samples: cfg.max_shard_samples,
        dtype: frontend::dtype(cfg.pipeline.bit_depth),
        extra_fields: if with_mask { vec!["target".into(), "mask".into()] } else { vec!["target".into()] },
        ..WriterOptions::default()
    };
    let run_json = out.join(layout::PRIVATE_DIR).join(RUN_JSON);
    let resuming = run_json.exists() || out.join(chess_shards::writer::STAGING_DIR).exists();
    let key_path = cfg.key_path();
    let (key, created) = Key::load_or_create(&key_path)?;
    let opts_now = RunOptions {
        pixels: PixelSettings::of(&cfg.pipeline),
        with_mask,
        // A keyed hash of a constant: tells keys apart without revealing them.
        key_fingerprint: key.sample_key("chess-ingest pairs key fingerprint"),
    };
    if frontend::finished(out, &run_json, "pairs import", &opts_now)? {
        return Ok(Summary { already_complete: true, root: out.clone(), with_mask, ..Default::default() });
    }
    let Opened { mut writer, done } =
        frontend::open_dataset(out, &writer_opts, &run_json, "pairs import", &opts_now, resuming)?;
    let mut summary = Summary {
        root: out.clone(),
        with_mask,
        key_created: created.then(|| key_path.clone()),
        resumed: resuming,
        ..Default::default()
    };

    let threads = cfg.threads.max(1);
    let pool = frontend::pool(threads, "chess-pairs")?;
    progress(ProgressEvent::Total(rows.len() as u64));
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut written: HashSet<String> = HashSet::new();
    frontend::process_in_order(
        &pool,
        &rows,
        4 * threads,
        |r| {
            r.as_ref().ok().map(|row| {
                frontend::unpanicked(
                    || process(row, &key, &cfg.pipeline, &writer_opts),
                    || Err((Reason::DecodeError.code(), "decoding panicked".into())),
                )
            })
        },
        |r, o| {
            summary.rows += 1;
            progress(ProgressEvent::Advanced(1));
            let (row, o) = match (r, o) {
                (Ok(row), Some(o)) => (row, o),
                (Err(rej), _) => {
                    rejected.push(rej.clone());
                    return Ok(());
                }
                (Ok(_), None) => unreachable!("every parsed row is processed"),
            };
            match o {
                Ok(e) => {
                    if !written.insert(e.key().to_string()) {
                        rejected.push(Rejected {
                            line: row.line,
                            code: DUPLICATE_ROW.into(),
                            message: format!("line {}: the same sample as an earlier row (key {})", row.line, e.key()),
                        });
                        return Ok(());
                    }
                    summary.samples += 1;
                    // Written by the interrupted run: already in a complete shard.
                    if !done.contains(e.key()) {
                        writer.write_encoded(e).map_err(IngestError::dataset(out))?;
                        summary.processed_now += 1;
                    }
                }
                Err((code, message)) => rejected.push(Rejected {
                    line: row.line,
                    code: code.into(),
                    message: format!("line {}: {message}", row.line),
                }),
            }
            progress(ProgressEvent::Counts { samples: summary.samples, rejected: rejected.len() as u64 });
            Ok(())
        },
    )?;
    progress(ProgressEvent::Finished);
    // The interrupted run's keys are fingerprints: count those a row produced now.
    let produced_again = written.iter().filter(|k| done.contains(k)).count();
    if produced_again < done.len() {
        return Err(IngestError::StaleOutput {
            root: out.clone(),
            message: format!(
                "the interrupted import wrote {} samples that no row of {} produces now; import into a fresh --out",
                done.len() - produced_again,
                cfg.csv.display()
            ),
        });
    }
    let rejections = Rejections {
        locator: ("csv_line", Arc::new(arrow_array::UInt64Array::from_iter_values(rejected.iter().map(|r| r.line)))),
        codes: rejected.iter().map(|r| r.code.as_str()).collect(),
        messages: rejected.iter().map(|r| r.message.as_str()).collect(),
    };
    summary.rejected = rejections.by_code();
    frontend::account(out, &rejections, summary.samples, &writer)?;
    let mut provenance = BTreeMap::new();
    provenance.insert(
        "source".into(),
        serde_json::json!(
            "paired images from a source,target[,mask] CSV (chess-ingest pairs); file paths are not recorded"
        ),
    );
    provenance.insert(
        "options".into(),
        serde_json::json!({
            "size": cfg.pipeline.size,
            "clip_percentile": cfg.pipeline.clip_percentile,
            "aspect": match cfg.pipeline.aspect { Aspect::Stretch => "stretch", Aspect::Pad => "pad" },
            "bit_depth": match cfg.pipeline.bit_depth { BitDepth::U16 => 16, BitDepth::U8 => 8 },
        }),
    );
    provenance.insert("summary".into(), serde_json::to_value(&summary).expect("serialisable"));
    provenance.insert(
        "pipeline".into(),
        serde_json::json!({
            "image": "source: the ingest pixel pipeline (DICOM: stored values -> Modality LUT -> MONOCHROME1 inverted; PNG: grey levels) -> antialiased resize -> clip at percentile -> min-max",
            "target": "the same pipeline and geometry as the source, clipped and normalised on its own",
            "mask": "label ids as stored (0..=255), padded with 0 for --aspect pad, nearest-neighbour resize (torch nearest-exact sampling), no clipping or normalisation, in the dataset's dtype",
            "key": "DICOM source: HMAC of its SOPInstanceUID (as chess-ingest); otherwise HMAC of the row's processed pixel content",
        }),
    );
    let deid_method = format!("DICOM sources: {}; PNG sources: no metadata kept, keyed-hash keys", deid::DEID_METHOD);
    frontend::finish(writer, out, Some("pairs"), deid_method, provenance)?;
    summary.wall = started.elapsed();
    Ok(summary)
}
