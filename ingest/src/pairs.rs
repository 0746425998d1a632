//! `chess-ingest pairs`: paired image-to-image data (a CSV of
//! `source,target[,mask]` DICOM/PNG paths) → a CheSS dataset whose samples
//! carry `<key>.npy.zst` (source), `<key>.target.npy.zst` and, with a mask
//! column, `<key>.mask.npy.zst`.
//!
//! Source and target each run through the ingest pixel pipeline on their own
//! (same `--size`/`--aspect` geometry, own percentile clip and min-max);
//! masks are label maps, resized with nearest neighbour and never clipped or
//! normalised. All three must have the source's original dimensions.
//!
//! De-identification: a DICOM source takes its key and metadata from the
//! DICOM ingest path ([`crate::deid::deidentify`], pseudonyms from the key
//! file); a PNG source's key is a keyed hash of the row's pixel content,
//! never of its paths. A DICOM file with BurnedInAnnotation = YES is
//! rejected, as by `chess-ingest`. Rejected rows (CSV line, reason, message) go only to
//! `<out>/private/rejected.parquet`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chess_schemas::{layout, PixelDtype};
use chess_shards::{
    encode_sample, DatasetWriter, EncodedSample, FinishInfo, Image, Sample, SampleFields, WriterOptions,
};
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use serde::{Deserialize, Serialize};

use crate::deid::{self, Key};
use crate::dicom::{self, Header};
use crate::pipeline::{self, Aspect, BitDepth, PipelineOptions, PixelSemantics};
use crate::reject::Reason;

/// A file named by the CSV does not exist.
pub const MISSING_FILE: &str = "missing_file";
/// A CSV row that is not `source,target[,mask]`.
pub const BAD_ROW: &str = "bad_csv_row";
/// Target or mask dimensions differ from the source's.
pub const DIMENSION_MISMATCH: &str = "dimension_mismatch";
/// Neither DICOM nor PNG, or a colour/16-bit mask where a label map is expected.
pub const UNSUPPORTED_FORMAT: &str = "unsupported_format";
/// A mask value that does not fit a uint8 label map.
pub const BAD_MASK: &str = "bad_mask";
/// A row whose sample key another row already produced.
pub const DUPLICATE_ROW: &str = "duplicate_row";

/// Fatal errors (rejected rows are not errors).
#[derive(Debug, thiserror::Error)]
pub enum PairsError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Csv { path: PathBuf, message: String },
    #[error("invalid settings: {0}")]
    Invalid(String),
    #[error(transparent)]
    Key(#[from] deid::KeyError),
    #[error("dataset {root}: {source}")]
    Shards { root: PathBuf, source: chess_shards::ShardError },
    #[error("{root} holds an interrupted import made with different options (before: {before}; now: {now}); re-run with the same options or use a fresh --out")]
    OptionsChanged { root: PathBuf, before: String, now: String },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, PairsError>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PairsError + '_ {
    move |source| PairsError::Io { path: path.to_path_buf(), source }
}

/// Everything a pairs import needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub csv: PathBuf,
    pub out: PathBuf,
    /// Default: `<out>/private/key`, created when missing.
    pub key_file: Option<PathBuf>,
    pub pipeline: PipelineOptions,
    pub threads: usize,
    pub progress: bool,
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
            progress: false,
            max_shard_samples: 10_000,
        }
    }

    pub fn key_path(&self) -> PathBuf {
        self.key_file.clone().unwrap_or_else(|| self.out.join(layout::PRIVATE_DIR).join(crate::run::KEY_FILE))
    }
}

/// Written to `private/pairs-run.json`.
pub const RUN_JSON: &str = "pairs-run.json";

/// The options an interrupted import must be resumed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub size: u32,
    pub clip_percentile: f64,
    pub aspect: String,
    pub bit_depth: u32,
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
    #[serde(skip)]
    pub key_created: Option<PathBuf>,
    #[serde(skip)]
    pub wall: Duration,
    #[serde(skip)]
    pub root: PathBuf,
}

/// One CSV data row, paths resolved.
#[derive(Debug, Clone)]
pub struct Row {
    /// 1-based line in the CSV (the header is line 1).
    pub line: u64,
    pub source: PathBuf,
    pub target: PathBuf,
    pub mask: Option<PathBuf>,
}

/// A rejected row, for `private/rejected.parquet`.
#[derive(Debug, Clone)]
pub struct Rejected {
    pub line: u64,
    pub code: String,
    pub message: String,
}

/// Reads the pairs CSV: header `source,target` or `source,target,mask`;
/// relative paths are taken from the CSV's folder. Returns the rows (or
/// their rejections) and whether there is a mask column.
pub fn read_csv(path: &Path) -> Result<(Vec<std::result::Result<Row, Rejected>>, bool)> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
    let csv_err = |e: csv::Error| PairsError::Csv { path: path.to_path_buf(), message: e.to_string() };
    let header: Vec<String> =
        rdr.headers().map_err(csv_err)?.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect();
    let with_mask = match header.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["source", "target"] => false,
        ["source", "target", "mask"] => true,
        other => {
            return Err(PairsError::Csv {
                path: path.to_path_buf(),
                message: format!("header is {other:?}; expected `source,target` or `source,target,mask`"),
            })
        }
    };
    let resolve = |cell: &str| {
        let p = PathBuf::from(cell.trim());
        if p.is_absolute() {
            p
        } else {
            base.join(p)
        }
    };
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        let line = rec.position().map_or(0, |p| p.line());
        let want = if with_mask { 3 } else { 2 };
        let cells: Vec<&str> = rec.iter().collect();
        if cells.len() != want || cells.iter().any(|c| c.trim().is_empty()) {
            rows.push(Err(Rejected {
                line,
                code: BAD_ROW.into(),
                message: format!("line {line}: {} cells ({want} non-empty expected)", cells.len()),
            }));
            continue;
        }
        rows.push(Ok(Row {
            line,
            source: resolve(cells[0]),
            target: resolve(cells[1]),
            mask: with_mask.then(|| resolve(cells[2])),
        }));
    }
    Ok((rows, with_mask))
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
        let g = crate::chexpert::decode_image(&bytes).map_err(named)?;
        return Ok(Loaded {
            rows: g.rows,
            cols: g.cols,
            values: g.values,
            header: None,
            png_bits: Some(g.bits),
            png_colour: g.from_colour,
        });
    }
    let obj = dicom::parse(&bytes).map_err(|r| {
        let code = if r.reason == Reason::NotDicom { UNSUPPORTED_FORMAT } else { r.reason.code() };
        (code, format!("{}: neither PNG nor readable DICOM ({})", path.display(), r.message))
    })?;
    let h = Header::from_object(&obj);
    // Text burned into the pixels is not removed by header de-identification.
    if h.burned_in_annotation == "YES" {
        return Err((Reason::BurnedInAnnotation.code(), format!("{}: BurnedInAnnotation = YES", path.display())));
    }
    let stored =
        dicom::decode(&obj, &h).map_err(|r| (r.reason.code(), format!("{}: {}", path.display(), r.message)))?;
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
    match &l.header {
        Some(h) => PixelSemantics {
            monochrome1: h.photometric == "MONOCHROME1",
            rescale_slope: h.rescale_slope,
            rescale_intercept: h.rescale_intercept,
            modality_lut: h.modality_lut.as_ref(),
        },
        None => PixelSemantics::default(),
    }
}

/// Nearest-neighbour resize of a label map to `size`×`size` (padded to
/// square with 0 first for `Aspect::Pad`, as the image pipeline pads).
/// Output pixel `i` samples input `floor((i + ½)·in/out)` in exact integer
/// arithmetic, as PyTorch's `interpolate(mode="nearest-exact")` (PIL's
/// NEAREST rounds some exact ties the other way through float error).
pub fn resize_labels(values: &[u8], rows: usize, cols: usize, size: usize, aspect: Aspect) -> Vec<u8> {
    let (src, h, w) = match aspect {
        Aspect::Stretch => (values.to_vec(), rows, cols),
        Aspect::Pad => {
            let n = rows.max(cols);
            let (top, left) = ((n - rows) / 2, (n - cols) / 2);
            let mut p = vec![0u8; n * n];
            for y in 0..rows {
                p[(top + y) * n + left..(top + y) * n + left + cols].copy_from_slice(&values[y * cols..(y + 1) * cols]);
            }
            (p, n, n)
        }
    };
    let pick = |i: usize, inn: usize| (((2 * i + 1) * inn) / (2 * size)).min(inn - 1);
    let xs: Vec<usize> = (0..size).map(|x| pick(x, w)).collect();
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let sy = pick(y, h);
        out.extend(xs.iter().map(|&sx| src[sy * w + sx]));
    }
    out
}

fn to_image(px: &[u16], size: u32, depth: BitDepth) -> Image {
    match depth {
        BitDepth::U16 => Image::from_u16(size, size, px),
        BitDepth::U8 => Image::from_u8(size, size, px.iter().map(|&p| p as u8).collect()),
    }
}

enum Outcome {
    Sample(Box<EncodedSample>),
    Reject(Failure),
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
    extras.push(("target".to_string(), to_image(&t_out.pixels, size, opts.bit_depth)));
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
    let image = to_image(&s_out.pixels, size, opts.bit_depth);
    let fields_from = |d: deid::Deidentified| SampleFields {
        patient_id: d.patient_id,
        study_id: d.study_id,
        series_id: d.series_id,
        view_position: d.view_position,
        sex: d.sex,
        age_years: d.age_years,
        modality: d.modality,
        transfer_syntax: d.transfer_syntax,
        clip_value: Some(s_out.clip_value),
        split: None,
        labels: Vec::new(),
    };
    let (sample_key, fields) = match &src.header {
        Some(h) if !h.sop_instance_uid.is_empty() => {
            let d = deid::deidentify(key, h);
            (d.key.clone(), fields_from(d))
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
/// (rows are re-read; samples in its complete shards are not written again).
pub fn run(cfg: &Config) -> Result<Summary> {
    let started = Instant::now();
    if cfg.pipeline.size == 0 || cfg.pipeline.size > 8192 {
        return Err(PairsError::Invalid(format!("--size {} (1..=8192)", cfg.pipeline.size)));
    }
    if !(cfg.pipeline.clip_percentile > 0.0 && cfg.pipeline.clip_percentile <= 100.0) {
        return Err(PairsError::Invalid(format!("--clip-percentile {} (0 < p <= 100)", cfg.pipeline.clip_percentile)));
    }
    if cfg.max_shard_samples == 0 {
        return Err(PairsError::Invalid("--shard-samples must be at least 1".into()));
    }
    let (rows, with_mask) = read_csv(&cfg.csv)?;
    let out = &cfg.out;
    let writer_opts = WriterOptions {
        shard_name: "pairs".into(),
        max_shard_samples: cfg.max_shard_samples,
        dtype: match cfg.pipeline.bit_depth {
            BitDepth::U16 => PixelDtype::Uint16,
            BitDepth::U8 => PixelDtype::Uint8,
        },
        extra_fields: if with_mask { vec!["target".into(), "mask".into()] } else { vec!["target".into()] },
        ..WriterOptions::default()
    };
    let shards_err = |source| PairsError::Shards { root: out.clone(), source };
    let private = out.join(layout::PRIVATE_DIR);
    let run_json = private.join(RUN_JSON);
    let resuming = !out.join(layout::DATASET_JSON).exists()
        && (run_json.exists() || out.join(chess_shards::writer::STAGING_DIR).exists());
    let key_path = cfg.key_path();
    let (key, created) = Key::load_or_create(&key_path)?;
    let opts_now = RunOptions {
        size: cfg.pipeline.size,
        clip_percentile: cfg.pipeline.clip_percentile,
        aspect: match cfg.pipeline.aspect {
            Aspect::Stretch => "stretch".into(),
            Aspect::Pad => "pad".into(),
        },
        bit_depth: match cfg.pipeline.bit_depth {
            BitDepth::U16 => 16,
            BitDepth::U8 => 8,
        },
        with_mask,
        // A keyed hash of a constant: tells keys apart without revealing them.
        key_fingerprint: key.sample_key("chess-ingest pairs key fingerprint"),
    };
    let (mut writer, done) = if resuming {
        if let Ok(text) = std::fs::read(&run_json) {
            let before: RunOptions = serde_json::from_slice(&text)
                .map_err(|e| PairsError::Io { path: run_json.clone(), source: std::io::Error::other(e) })?;
            if before != opts_now {
                return Err(PairsError::OptionsChanged {
                    root: out.clone(),
                    before: serde_json::to_string(&before).unwrap_or_default(),
                    now: serde_json::to_string(&opts_now).unwrap_or_default(),
                });
            }
        }
        DatasetWriter::resume(out, writer_opts.clone()).map_err(shards_err)?
    } else {
        (DatasetWriter::create(out, writer_opts.clone()).map_err(shards_err)?, HashSet::new())
    };
    std::fs::create_dir_all(&private).map_err(io_err(&private))?;
    std::fs::write(&run_json, serde_json::to_vec_pretty(&opts_now).expect("serialisable"))
        .map_err(io_err(&run_json))?;
    let mut summary = Summary {
        root: out.clone(),
        with_mask,
        key_created: created.then(|| key_path.clone()),
        resumed: resuming,
        ..Default::default()
    };

    let threads = cfg.threads.max(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("chess-pairs-{i}"))
        .build()
        .map_err(|e| PairsError::Internal(e.to_string()))?;
    let pb = crate::outputs::progress_bar(cfg.progress, rows.len() as u64, "pairs");
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut written: HashSet<String> = HashSet::new();
    // Bounded memory: one chunk of rows in flight at a time.
    for chunk in rows.chunks(4 * threads) {
        let outs: Vec<Outcome> = pool.install(|| {
            chunk
                .par_iter()
                .map(|r| match r {
                    Err(_) => Outcome::Reject(("", String::new())),
                    Ok(row) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        process(row, &key, &cfg.pipeline, &writer_opts)
                    }))
                    .unwrap_or_else(|_| Err((Reason::DecodeError.code(), "decoding panicked".into())))
                    .map_or_else(Outcome::Reject, |e| Outcome::Sample(Box::new(e))),
                })
                .collect()
        });
        for (r, o) in chunk.iter().zip(outs) {
            summary.rows += 1;
            pb.inc(1);
            let row = match r {
                Err(rej) => {
                    rejected.push(rej.clone());
                    continue;
                }
                Ok(row) => row,
            };
            match o {
                Outcome::Sample(e) => {
                    if !written.insert(e.key().to_string()) {
                        rejected.push(Rejected {
                            line: row.line,
                            code: DUPLICATE_ROW.into(),
                            message: format!("line {}: the same sample as an earlier row (key {})", row.line, e.key()),
                        });
                        continue;
                    }
                    summary.samples += 1;
                    // Written by the interrupted run: already in a complete shard.
                    if done.contains(e.key()) {
                        continue;
                    }
                    writer.write_encoded(*e).map_err(shards_err)?;
                    summary.processed_now += 1;
                }
                Outcome::Reject((code, message)) => rejected.push(Rejected {
                    line: row.line,
                    code: code.into(),
                    message: format!("line {}: {message}", row.line),
                }),
            }
        }
    }
    pb.finish_and_clear();
    if let Some(k) = done.iter().find(|k| !written.contains(k.as_str())) {
        return Err(PairsError::Layout {
            path: out.clone(),
            message: format!(
                "the interrupted import wrote sample `{k}`, which no row of {} produces now; import into a fresh --out",
                cfg.csv.display()
            ),
        });
    }
    for r in &rejected {
        *summary.rejected.entry(r.code.clone()).or_default() += 1;
    }
    let rejected_path = private.join(crate::run::REJECTED);
    let lines = arrow_array::UInt64Array::from_iter_values(rejected.iter().map(|r| r.line));
    crate::outputs::write_rejected(
        &rejected_path,
        ("csv_line", Arc::new(lines)),
        rejected.iter().map(|r| r.code.as_str()),
        rejected.iter().map(|r| r.message.as_str()),
    )
    .map_err(io_err(&rejected_path))?;
    if summary.samples != writer.sample_count() as u64 {
        return Err(PairsError::Internal(format!(
            "accounting mismatch: {} samples counted, {} in the dataset",
            summary.samples,
            writer.sample_count()
        )));
    }
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
    let info = FinishInfo {
        tool_version: format!("chess-ingest {} (pairs)", env!("CARGO_PKG_VERSION")),
        deid_method: format!("DICOM sources: {}; PNG sources: no metadata kept, keyed-hash keys", deid::DEID_METHOD),
        provenance,
    };
    writer.finish(info).map_err(shards_err)?;
    summary.wall = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_labels_keep_values_and_geometry() {
        // 2×4 map to 4×4: each column pair maps to one source column.
        let m = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let out = resize_labels(&m, 2, 4, 4, Aspect::Stretch);
        assert_eq!(out, vec![0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]);
        // Pad: the 2 rows sit in the middle of a 4×4 of zeros.
        let out = resize_labels(&m, 2, 4, 4, Aspect::Pad);
        assert_eq!(out, vec![0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]);
        // Downscaling picks, never averages.
        let big: Vec<u8> = (0..64).map(|i| if i % 2 == 0 { 9 } else { 0 }).collect();
        let out = resize_labels(&big, 8, 8, 3, Aspect::Stretch);
        assert!(out.iter().all(|&v| v == 9 || v == 0));
    }
}
