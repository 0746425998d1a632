//! CheXpert import: CheXpert's own folder and CSV layout to a CheSS dataset.
//!
//! Input (the official release, e.g. `CheXpert-v1.0-small/`): `ROOT/train.csv`,
//! `ROOT/valid.csv` and, when present, a test label CSV (`ROOT/test_labels.csv`
//! or `ROOT/test.csv`; `test_labels.csv` wins when both exist). Every CSV has
//! CheXpert's header, exactly ([`HEADER`]):
//!
//! ```text
//! Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,…,Support Devices
//! ```
//!
//! or, for a test label file only, `Path` followed by the 14 observations
//! (the demographic columns then stay null and the view comes from the file
//! name, `view1_frontal.jpg` / `view2_lateral.jpg`). `Path` is relative to
//! the *parent* of ROOT when its first component is ROOT's folder name (as in
//! the release: `CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg`),
//! otherwise relative to ROOT, or, when that file does not exist, relative
//! to ROOT without its first component (a renamed release folder, e.g.
//! `~/data/chexpert` holding `CheXpert-v1.0-small/...` paths); absolute paths
//! and `..` are refused.
//!
//! Output: one sample per CSV row, in CSV order (train, valid, test), keyed
//! `<split>_<patient>_<study>_<view file stem>` (e.g.
//! `train_patient00001_study1_view1_frontal`), with
//! - the 14 observations as Float32 label columns named as in the CSV:
//!   1, 0, −1 (uncertain) exactly as written, null for a blank cell;
//! - `sex` (`Male`→M, `Female`→F, `Unknown`/blank→null), `age_years`;
//! - `view_position`: for a frontal image the AP/PA cell when it is AP or
//!   PA, otherwise `FRONTAL`; for a lateral image `LL`/`RL` when the AP/PA
//!   cell says so, otherwise `LATERAL`;
//! - `patient_id` = the patient folder (`patient00001`), `study_id` =
//!   `patient00001/study1`: CheXpert's ids are already public pseudonyms
//!   assigned by Stanford, so they are kept (no key, no hashing);
//! - `split` (train/valid/test), `modality` = the source format (`JPEG` or
//!   `PNG`), `clip_value` in source grey levels.
//!
//! Pixels: JPEG (8-bit baseline/progressive, 8–16-bit lossless) and PNG
//! (1–16-bit) are decoded to grey values (colour images to BT.601 luma,
//! rounded; alpha ignored) and go through [`pipeline::run`] with the same
//! options as DICOM ingest, as MONOCHROME2 with no rescale.
//!
//! Accounting: every CSV row ends as a manifest row or as a row of
//! `<out>/private/rejected.parquet` (same columns as DICOM ingest:
//! `source_path`, `reason_code`, `message`), with the codes [`MISSING_IMAGE`],
//! [`BAD_ROW`], [`DUPLICATE_ROW`], [`UNSUPPORTED_FORMAT`], `read_error`,
//! `decode_error` and `bad_dimensions`. A bad header stops the run before
//! anything is written. An interrupted run resumes into the same `--out`
//! with the same options (complete shards are kept).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chess_schemas::{layout, LabelColumn, LabelType, PixelDtype};
use chess_shards::{
    encode_sample, DatasetWriter, EncodedSample, FinishInfo, Image, LabelValue, Sample, SampleFields, WriterOptions,
};
use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use serde::{Deserialize, Serialize};

use crate::pipeline::{self, Aspect, BitDepth, PipelineOptions, PixelSemantics};
use crate::reject::Reason;

/// The 14 CheXpert observations, in CSV order.
pub const OBSERVATIONS: [&str; 14] = [
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
];

/// The columns before the observations.
pub const LEADING: [&str; 5] = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"];

/// CheXpert's CSV header, exactly.
pub const HEADER: [&str; 19] = [
    "Path",
    "Sex",
    "Age",
    "Frontal/Lateral",
    "AP/PA",
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
];

/// Test label CSV names, in order of preference.
pub const TEST_CSV_NAMES: [&str; 2] = ["test_labels.csv", "test.csv"];

/// Reject code: the image named by `Path` does not exist.
pub const MISSING_IMAGE: &str = "missing_image";
/// Reject code: the CSV row cannot be used (wrong field count, bad value, bad path).
pub const BAD_ROW: &str = "bad_csv_row";
/// Reject code: the row names an image (key) an earlier row already named.
pub const DUPLICATE_ROW: &str = "duplicate_row";
/// Reject code: the file is neither JPEG nor PNG.
pub const UNSUPPORTED_FORMAT: &str = "unsupported_format";

/// Largest accepted image side.
pub const MAX_SIDE: u32 = 16_384;

/// `private/` file recording the options of a run, for resumption.
pub const RUN_JSON: &str = "chexpert-run.json";

/// Errors that stop an import (rejected rows never do).
#[derive(Debug, thiserror::Error)]
pub enum ChexpertError {
    #[error("'{}': {message}", path.display())]
    Layout { path: PathBuf, message: String },
    #[error("'{}': not CheXpert's header: {message}", path.display())]
    Header { path: PathBuf, message: String },
    #[error("'{}': {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("'{}': {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("dataset '{}': {source}", root.display())]
    Shards { root: PathBuf, source: chess_shards::ShardError },
    #[error("'{}' holds an interrupted CheXpert import with different options (was {before}, now {now}); re-run with the same options or choose another --out", root.display())]
    OptionsChanged { root: PathBuf, before: String, now: String },
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = ChexpertError> = std::result::Result<T, E>;

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ChexpertError + '_ {
    move |source| ChexpertError::Io { path: path.to_path_buf(), source }
}

/// A CheXpert split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Split {
    Train,
    Valid,
    Test,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Valid => "valid",
            Split::Test => "test",
        }
    }
}

/// Which header a CSV has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLayout {
    /// [`HEADER`]: the official train/valid layout.
    Full,
    /// `Path` + the 14 observations (test labels only).
    PathAndLabels,
}

/// Checks a header row; says exactly what is wrong when it is not CheXpert's.
pub fn check_header(fields: &[&str], split: Split) -> Result<CsvLayout, String> {
    let fields: Vec<&str> =
        fields.iter().enumerate().map(|(i, f)| if i == 0 { f.trim_start_matches('\u{feff}') } else { f }).collect();
    if fields == HEADER {
        return Ok(CsvLayout::Full);
    }
    let short: Vec<&str> = std::iter::once("Path").chain(OBSERVATIONS).collect();
    if split == Split::Test && fields == short {
        return Ok(CsvLayout::PathAndLabels);
    }
    // Compare against the layout it looks like.
    let expected: &[&str] = if split == Split::Test && fields.get(1) == Some(&"No Finding") { &short } else { &HEADER };
    let mut problems = Vec::new();
    for (i, want) in expected.iter().enumerate() {
        match fields.get(i) {
            Some(got) if got == want => {}
            Some(got) if got.trim() == *want => {
                problems.push(format!("column {} is `{got}` with extra spaces; expected `{want}`", i + 1))
            }
            Some(got) if got.eq_ignore_ascii_case(want) => {
                problems.push(format!("column {} is `{got}`; expected `{want}` (names are case-sensitive)", i + 1))
            }
            Some(got) => problems.push(format!("column {} is `{got}`; expected `{want}`", i + 1)),
            None => problems.push(format!("column {} `{want}` is missing", i + 1)),
        }
        if problems.len() >= 3 {
            break;
        }
    }
    if fields.len() > expected.len() && problems.is_empty() {
        problems.push(format!(
            "unexpected extra column(s) after `{}`: {}",
            expected[expected.len() - 1],
            fields[expected.len()..].iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    let mut msg = format!("{}; CheXpert's header is `{}`", problems.join("; "), HEADER.join(","));
    if split == Split::Test {
        msg.push_str(" (a test label file may also have just `Path` and the 14 observations)");
    }
    Err(msg)
}

/// A label cell: `1.0`/`0.0`/`-1.0` (or `1`/`0`/`-1`), blank = null.
pub fn parse_label(cell: &str) -> Result<Option<f32>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f32>() {
        Ok(v) if v == 1.0 || v == 0.0 || v == -1.0 => Ok(Some(if v == 0.0 { 0.0 } else { v })),
        _ => Err(format!("`{t}` is not 1, 0, -1 or blank")),
    }
}

/// `Male`/`Female` (or `M`/`F`) → M/F; `Unknown` or blank → null.
pub fn parse_sex(cell: &str) -> Result<Option<String>, String> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "male" | "m" => Ok(Some("M".into())),
        "female" | "f" => Ok(Some("F".into())),
        "unknown" | "" => Ok(None),
        other => Err(format!("Sex `{other}` is not Male, Female, Unknown or blank")),
    }
}

/// Age in years, blank = null.
pub fn parse_age(cell: &str) -> Result<Option<f32>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f32>() {
        Ok(a) if (0.0..=150.0).contains(&a) => Ok(Some(a)),
        _ => Err(format!("Age `{t}` is not a number of years (0 to 150)")),
    }
}

/// (is frontal, view_position) from the `Frontal/Lateral` and `AP/PA` cells.
pub fn view_position(frontal_lateral: &str, ap_pa: &str) -> Result<(bool, String), String> {
    let ap_pa = ap_pa.trim().to_ascii_uppercase();
    match frontal_lateral.trim().to_ascii_lowercase().as_str() {
        "frontal" => Ok((true, if ap_pa == "AP" || ap_pa == "PA" { ap_pa } else { "FRONTAL".into() })),
        "lateral" => Ok((false, if ap_pa == "LL" || ap_pa == "RL" { ap_pa } else { "LATERAL".into() })),
        other => Err(format!("Frontal/Lateral `{other}` is neither Frontal nor Lateral")),
    }
}

fn key_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect()
}

/// What a `Path` cell says: the file, patient, study and sample key.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePath {
    pub file: PathBuf,
    /// Where else to look when `file` does not exist: ROOT plus the path
    /// without its first component (a renamed CheXpert folder).
    pub alt: Option<PathBuf>,
    pub patient_id: String,
    pub study_id: String,
    pub key: String,
    /// File stem, e.g. `view1_frontal`.
    pub stem: String,
}

/// Resolves a `Path` cell against ROOT (see the module docs).
pub fn parse_path(root: &Path, split: Split, cell: &str) -> Result<ImagePath, String> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err("Path is blank".into());
    }
    let rel = Path::new(cell);
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| format!("Path `{cell}` is not UTF-8"))?),
            Component::CurDir => {}
            _ => return Err(format!("Path `{cell}` must be relative and must not contain `..`")),
        }
    }
    if parts.len() < 3 {
        return Err(format!("Path `{cell}` is not <patient>/<study>/<view file> (e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg)"));
    }
    let root_name = root.file_name().and_then(|n| n.to_str());
    let (file, alt) = if root_name.is_some_and(|n| n == parts[0]) {
        (root.parent().unwrap_or(Path::new("")).join(rel), None)
    } else {
        (root.join(rel), Some(parts[1..].iter().fold(root.to_path_buf(), |p, c| p.join(c))))
    };
    let n = parts.len();
    let (patient, study, name) = (parts[n - 3], parts[n - 2], parts[n - 1]);
    let stem = Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or(name).to_string();
    let mut key = format!("{}_{}_{}_{}", split.name(), key_part(patient), key_part(study), key_part(&stem));
    if key.len() > chess_schemas::MAX_KEY_LEN {
        let h = blake3::hash(cell.as_bytes());
        key = format!("{}_{}", split.name(), &h.to_hex()[..32]);
    }
    Ok(ImagePath { file, alt, patient_id: patient.to_string(), study_id: format!("{patient}/{study}"), key, stem })
}

/// One usable CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub split: Split,
    /// The CSV's file name.
    pub csv: String,
    /// 1-based line of the record in its CSV (header = line 1).
    pub line: u64,
    /// The `Path` cell as written.
    pub path: String,
    pub image: ImagePath,
    pub sex: Option<String>,
    pub age_years: Option<f32>,
    pub frontal: bool,
    pub view_position: String,
    pub labels: [Option<f32>; 14],
}

/// A CSV row that cannot become a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The `Path` cell, or `<csv>:<line>` when there is none.
    pub source: String,
    pub code: String,
    pub message: String,
}

/// One CSV's rows, good and bad, in order.
#[derive(Debug)]
pub struct CsvRows {
    pub path: PathBuf,
    pub split: Split,
    pub layout: CsvLayout,
    pub rows: Vec<Result<Row, Rejected>>,
}

/// Reads one CheXpert CSV. Header problems are errors; row problems are
/// [`Rejected`] rows.
pub fn read_csv(root: &Path, csv_path: &Path, split: Split) -> Result<CsvRows> {
    let csv_name = csv_path.file_name().and_then(|n| n.to_str()).unwrap_or("csv").to_string();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(csv_path)
        .map_err(|source| ChexpertError::Csv { path: csv_path.to_path_buf(), source })?;
    let mut records = rdr.byte_records();
    let header = match records.next() {
        None => {
            return Err(ChexpertError::Header { path: csv_path.to_path_buf(), message: "the file is empty".into() })
        }
        Some(Err(source)) => return Err(ChexpertError::Csv { path: csv_path.to_path_buf(), source }),
        Some(Ok(h)) => h,
    };
    let header_text: Vec<String> = header.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let header_refs: Vec<&str> = header_text.iter().map(String::as_str).collect();
    let layout = check_header(&header_refs, split)
        .map_err(|message| ChexpertError::Header { path: csv_path.to_path_buf(), message })?;
    let width = header_refs.len();
    let mut rows = Vec::new();
    for (i, rec) in records.enumerate() {
        let fallback_line = i as u64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(fallback_line, |p| p.line());
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    return Err(ChexpertError::Csv { path: csv_path.to_path_buf(), source: e });
                }
                rows.push(Err(Rejected {
                    source: format!("{csv_name}:{line}"),
                    code: BAD_ROW.into(),
                    message: format!("{csv_name} line {line}: {e}"),
                }));
                continue;
            }
        };
        let line = rec.position().map_or(fallback_line, |p| p.line());
        rows.push(parse_record(root, split, layout, &csv_name, line, &rec, width));
    }
    Ok(CsvRows { path: csv_path.to_path_buf(), split, layout, rows })
}

fn parse_record(
    root: &Path,
    split: Split,
    layout: CsvLayout,
    csv_name: &str,
    line: u64,
    rec: &csv::ByteRecord,
    width: usize,
) -> Result<Row, Rejected> {
    let path_cell = rec.get(0).map(|b| String::from_utf8_lossy(b).trim().to_string()).unwrap_or_default();
    let source = if path_cell.is_empty() { format!("{csv_name}:{line}") } else { path_cell.clone() };
    let bad = |message: String| Rejected {
        source: source.clone(),
        code: BAD_ROW.into(),
        message: format!("{csv_name} line {line}: {message}"),
    };
    if rec.len() != width {
        return Err(bad(format!("{} fields, the header has {width}", rec.len())));
    }
    let mut cells = Vec::with_capacity(width);
    for (j, b) in rec.iter().enumerate() {
        cells.push(std::str::from_utf8(b).map_err(|_| bad(format!("column {} is not UTF-8", j + 1)))?);
    }
    let image = parse_path(root, split, cells[0]).map_err(&bad)?;
    let (sex, age_years, frontal, view_position, first_label) = match layout {
        CsvLayout::Full => {
            let sex = parse_sex(cells[1]).map_err(&bad)?;
            let age = parse_age(cells[2]).map_err(&bad)?;
            let (frontal, view) = view_position(cells[3], cells[4]).map_err(&bad)?;
            (sex, age, frontal, view, LEADING.len())
        }
        CsvLayout::PathAndLabels => {
            let stem = image.stem.to_ascii_lowercase();
            let (frontal, view) = if stem.contains("frontal") {
                (true, "FRONTAL".to_string())
            } else if stem.contains("lateral") {
                (false, "LATERAL".to_string())
            } else {
                return Err(bad(format!("cannot tell frontal from lateral: `{}` has neither word and the file has no Frontal/Lateral column", image.stem)));
            };
            (None, None, frontal, view, 1)
        }
    };
    let mut labels = [None; 14];
    for (k, name) in OBSERVATIONS.iter().enumerate() {
        labels[k] = parse_label(cells[first_label + k]).map_err(|m| bad(format!("{name}: {m}")))?;
    }
    Ok(Row {
        split,
        csv: csv_name.to_string(),
        line,
        path: path_cell,
        image,
        sex,
        age_years,
        frontal,
        view_position,
        labels,
    })
}

/// The CSVs of a CheXpert folder: train, valid and the test labels if any.
pub fn find_csvs(root: &Path) -> Result<Vec<(Split, PathBuf)>> {
    if !root.is_dir() {
        return Err(ChexpertError::Layout {
            path: root.to_path_buf(),
            message:
                "not a folder; give the CheXpert folder that holds train.csv and valid.csv (e.g. CheXpert-v1.0-small)"
                    .into(),
        });
    }
    let mut out = Vec::new();
    for (split, name) in [(Split::Train, "train.csv"), (Split::Valid, "valid.csv")] {
        let p = root.join(name);
        if !p.is_file() {
            return Err(ChexpertError::Layout {
                path: root.to_path_buf(),
                message: format!("no {name}: CheXpert's layout is ROOT/train.csv, ROOT/valid.csv (and optionally ROOT/test_labels.csv or ROOT/test.csv) with the images under ROOT/train, ROOT/valid, ..."),
            });
        }
        out.push((split, p));
    }
    if let Some(p) = TEST_CSV_NAMES.iter().map(|n| root.join(n)).find(|p| p.is_file()) {
        out.push((Split::Test, p));
    }
    Ok(out)
}

/// Grey values decoded from a JPEG or PNG.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    pub rows: u32,
    pub cols: u32,
    /// Row-major grey levels, `0..2^bits`.
    pub values: Vec<i32>,
    /// 8 or 16 (JPEG lossless may give 9–16 bits stored in 16).
    pub bits: u8,
    /// `JPEG` or `PNG`.
    pub format: &'static str,
    /// Colour was converted to luma.
    pub from_colour: bool,
}

/// Why a file did not decode: (reason code, message).
pub type DecodeFailure = (&'static str, String);

fn luma(r: u32, g: u32, b: u32) -> i32 {
    if r == g && g == b {
        return r as i32;
    }
    // BT.601, rounded.
    ((299 * r + 587 * g + 114 * b + 500) / 1000) as i32
}

fn check_dims(rows: u32, cols: u32) -> Result<(), DecodeFailure> {
    if rows == 0 || cols == 0 || rows > MAX_SIDE || cols > MAX_SIDE {
        return Err((
            Reason::BadDimensions.code(),
            format!("{cols}×{rows} pixels (each side must be 1 to {MAX_SIDE})"),
        ));
    }
    Ok(())
}

/// Decodes a JPEG or PNG (recognised by content) to grey values.
pub fn decode_image(bytes: &[u8]) -> Result<Gray, DecodeFailure> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes)
    } else if bytes.is_empty() {
        Err((Reason::DecodeError.code(), "the file is empty".into()))
    } else {
        Err((UNSUPPORTED_FORMAT, "neither JPEG nor PNG (by content)".into()))
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<Gray, DecodeFailure> {
    let fail = |e: jpeg_decoder::Error| (Reason::DecodeError.code(), format!("JPEG: {e}"));
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    dec.read_info().map_err(fail)?;
    let info = dec.info().ok_or((Reason::DecodeError.code(), "JPEG: no frame header".to_string()))?;
    let (rows, cols) = (info.height as u32, info.width as u32);
    check_dims(rows, cols)?;
    dec.set_max_decoding_buffer_size((MAX_SIDE as usize).pow(2) * 4);
    let data = dec.decode().map_err(fail)?;
    let n = rows as usize * cols as usize;
    use jpeg_decoder::PixelFormat as F;
    let need = n * info.pixel_format.pixel_bytes();
    if data.len() < need {
        return Err((Reason::DecodeError.code(), format!("JPEG: {} bytes decoded, {need} expected", data.len())));
    }
    let (values, bits, from_colour) = match info.pixel_format {
        F::L8 => (data[..n].iter().map(|&v| v as i32).collect(), 8, false),
        // jpeg-decoder hands lossless 9-16-bit samples over in native byte order.
        F::L16 => (data[..2 * n].chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]]) as i32).collect(), 16, false),
        F::RGB24 => {
            (data[..3 * n].chunks_exact(3).map(|c| luma(c[0] as u32, c[1] as u32, c[2] as u32)).collect(), 8, true)
        }
        F::CMYK32 => return Err((Reason::Colour.code(), "JPEG: CMYK image".into())),
    };
    Ok(Gray { rows, cols, values, bits, format: "JPEG", from_colour })
}

fn decode_png(bytes: &[u8]) -> Result<Gray, DecodeFailure> {
    let fail = |e: png::DecodingError| (Reason::DecodeError.code(), format!("PNG: {e}"));
    let limits = png::Limits { bytes: (MAX_SIDE as usize).pow(2) * 8 };
    let mut dec = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    // Palette → RGB, 1/2/4-bit grey → 8-bit; 16-bit stays 16-bit.
    dec.set_transformations(png::Transformations::EXPAND);
    let hdr = dec.read_header_info().map_err(fail)?;
    check_dims(hdr.height, hdr.width)?;
    let mut reader = dec.read_info().map_err(fail)?;
    let size = reader.output_buffer_size().ok_or((Reason::BadDimensions.code(), "PNG: image too large".to_string()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(fail)?;
    let (rows, cols) = (info.height, info.width);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err((Reason::DecodeError.code(), "PNG: palette not expanded".into())),
    };
    let bits: u8 = match info.bit_depth {
        png::BitDepth::Sixteen => 16,
        png::BitDepth::Eight => 8,
        other => return Err((Reason::DecodeError.code(), format!("PNG: unexpected output depth {other:?}"))),
    };
    let bps = bits as usize / 8;
    let n = rows as usize * cols as usize;
    let mut values = Vec::with_capacity(n);
    let sample = |row: &[u8], x: usize, c: usize| -> u32 {
        let o = (x * channels + c) * bps;
        if bps == 2 {
            u16::from_be_bytes([row[o], row[o + 1]]) as u32
        } else {
            row[o] as u32
        }
    };
    for y in 0..rows as usize {
        let row = &buf[y * info.line_size..y * info.line_size + cols as usize * channels * bps];
        for x in 0..cols as usize {
            values.push(if channels >= 3 {
                luma(sample(row, x, 0), sample(row, x, 1), sample(row, x, 2))
            } else {
                sample(row, x, 0) as i32
            });
        }
    }
    Ok(Gray { rows, cols, values, bits, format: "PNG", from_colour: channels >= 3 })
}

/// Decodes an image and runs the shared pixel pipeline on it, exactly as the
/// import does (grey values as MONOCHROME2 stored values, no rescale).
pub fn process_image(bytes: &[u8], opts: &PipelineOptions) -> Result<(Gray, pipeline::Processed), DecodeFailure> {
    let gray = decode_image(bytes)?;
    let out = pipeline::run(&gray.values, gray.rows, gray.cols, &PixelSemantics::default(), opts);
    Ok((gray, out))
}

/// Everything an import needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The CheXpert folder (holding train.csv).
    pub root: PathBuf,
    pub out: PathBuf,
    pub pipeline: PipelineOptions,
    pub threads: usize,
    pub progress: bool,
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
            progress: false,
            max_shard_samples: 10_000,
            max_shard_bytes: 1 << 30,
            zstd_level: 3,
        }
    }
}

/// The options an interrupted import must be resumed with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    pub size: u32,
    pub clip_percentile: f64,
    pub aspect: String,
    pub bit_depth: u32,
    pub csvs: Vec<String>,
}

/// Per-split counts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SplitCounts {
    pub rows: u64,
    pub samples: u64,
    pub rejected: u64,
    pub patients: u64,
}

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
    let n = out.size;
    let image = match opts.bit_depth {
        BitDepth::U16 => Image::from_u16(n, n, &out.pixels),
        BitDepth::U8 => Image::from_u8(n, n, out.pixels.iter().map(|&p| p as u8).collect()),
    };
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

/// Runs a CheXpert import.
pub fn run(cfg: &Config) -> Result<Summary> {
    let started = Instant::now();
    if cfg.pipeline.size == 0 || cfg.pipeline.size > 8192 {
        return Err(ChexpertError::Invalid(format!("--size {} (1..=8192)", cfg.pipeline.size)));
    }
    if !(cfg.pipeline.clip_percentile > 0.0 && cfg.pipeline.clip_percentile <= 100.0) {
        return Err(ChexpertError::Invalid(format!(
            "--clip-percentile {} (0 < p <= 100)",
            cfg.pipeline.clip_percentile
        )));
    }
    if cfg.max_shard_samples == 0 {
        return Err(ChexpertError::Invalid("--shard-samples must be at least 1".into()));
    }
    let root_in = &cfg.root;
    let csv_files = find_csvs(root_in)?;
    // Resolve ROOT so that `Path` cells naming its folder work for `.`-style roots too.
    let root = std::fs::canonicalize(root_in).map_err(io_err(root_in))?;
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
    if out.join(layout::DATASET_JSON).exists() {
        summary.already_complete = true;
        return Ok(summary);
    }
    let dtype = match cfg.pipeline.bit_depth {
        BitDepth::U16 => PixelDtype::Uint16,
        BitDepth::U8 => PixelDtype::Uint8,
    };
    let writer_opts = WriterOptions {
        shard_name: "chexpert".into(),
        max_shard_bytes: cfg.max_shard_bytes,
        max_shard_samples: cfg.max_shard_samples,
        zstd_level: cfg.zstd_level,
        dtype,
        with_split: true,
        labels: label_columns(),
        extra_fields: Vec::new(),
    };
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
        csvs: summary.csvs.clone(),
    };
    let private = out.join(layout::PRIVATE_DIR);
    let run_json = private.join(RUN_JSON);
    let resuming = run_json.exists() || out.join(chess_shards::writer::STAGING_DIR).exists();
    let shards_err = |source| ChexpertError::Shards { root: out.clone(), source };
    let (mut writer, done) = if resuming {
        if let Ok(text) = std::fs::read(&run_json) {
            let before: RunOptions = serde_json::from_slice(&text)
                .map_err(|e| ChexpertError::Io { path: run_json.clone(), source: std::io::Error::other(e) })?;
            if before != opts_now {
                return Err(ChexpertError::OptionsChanged {
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
    summary.resumed = resuming;
    if !done.is_empty() {
        let listed: HashSet<&str> =
            all.iter().filter_map(|r| r.as_ref().ok().map(|row| row.image.key.as_str())).collect();
        if let Some(k) = done.iter().find(|k| !listed.contains(k.as_str())) {
            return Err(ChexpertError::Layout {
                path: out.clone(),
                message: format!("the interrupted import wrote sample `{k}`, which the CSVs no longer list; import into a fresh --out"),
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
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("chess-chexpert-{i}"))
        .build()
        .map_err(|e| ChexpertError::Internal(e.to_string()))?;
    let pb = crate::outputs::progress_bar(cfg.progress, all.len() as u64, "images");
    pb.set_position((all.len() - todo.len()) as u64);
    // Bounded in-flight work: a chunk being decoded, one waiting, one being written.
    let chunk = 8 * threads;
    let (tx, rx) = sync_channel::<Vec<(usize, Outcome)>>(1);
    let colour = AtomicU64::new(0);
    let mut write_error: Option<ChexpertError> = None;
    std::thread::scope(|s| {
        let (all, todo, pool, writer_opts, pipeline) = (&all, &todo, &pool, &writer_opts, &cfg.pipeline);
        s.spawn(move || {
            for ids in todo.chunks(chunk) {
                let outs: Vec<(usize, Outcome)> = pool.install(|| {
                    ids.par_iter()
                        .map(|&i| {
                            let row = all[i].as_ref().expect("todo rows parsed");
                            let o = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                process(row, pipeline, writer_opts)
                            }))
                            .unwrap_or_else(|_| Outcome::Reject {
                                code: Reason::DecodeError.code(),
                                message: "decoding panicked".into(),
                            });
                            (i, o)
                        })
                        .collect()
                });
                if tx.send(outs).is_err() {
                    return;
                }
            }
        });
        let (mut n_samples, mut n_rejects) =
            (done.len() as u64, outcome_of.iter().filter(|o| matches!(o, Some(Err(_)))).count() as u64);
        for outs in rx {
            for (i, o) in outs {
                if write_error.is_some() {
                    continue;
                }
                let row = all[i].as_ref().expect("todo rows parsed");
                summary.processed_now += 1;
                match o {
                    Outcome::Sample { encoded, colour: c } => {
                        if let Err(e) = writer.write_encoded(*encoded) {
                            write_error = Some(ChexpertError::Shards { root: out.clone(), source: e });
                            continue;
                        }
                        if c {
                            colour.fetch_add(1, Ordering::Relaxed);
                        }
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
                pb.inc(1);
                pb.set_message(format!("{n_samples} samples, {n_rejects} rejected"));
            }
        }
    });
    pb.finish_and_clear();
    if let Some(e) = write_error {
        return Err(e);
    }

    // Accounting: every row is a sample or a rejection.
    let mut rejected_rows: Vec<&Rejected> = Vec::new();
    let mut patients: BTreeMap<String, HashSet<&str>> = BTreeMap::new();
    for (i, o) in outcome_of.iter().enumerate() {
        let split = row_split[i];
        let c = summary.splits.entry(split.name().to_string()).or_default();
        c.rows += 1;
        summary.rows += 1;
        match o {
            Some(Ok(())) => {
                c.samples += 1;
                summary.samples += 1;
                if let Ok(row) = &all[i] {
                    patients.entry(split.name().to_string()).or_default().insert(row.image.patient_id.as_str());
                }
            }
            Some(Err(rej)) => {
                c.rejected += 1;
                *summary.rejected.entry(rej.code.clone()).or_default() += 1;
                rejected_rows.push(rej);
            }
            None => return Err(ChexpertError::Internal(format!("row {i} was never processed"))),
        }
    }
    for (split, p) in patients {
        summary.splits.entry(split).or_default().patients = p.len() as u64;
    }
    summary.colour_converted = colour.load(Ordering::Relaxed);
    let rejected_path = private.join(crate::run::REJECTED);
    let sources = arrow_array::StringArray::from_iter_values(rejected_rows.iter().map(|r| r.source.as_str()));
    crate::outputs::write_rejected(
        &rejected_path,
        ("source_path", Arc::new(sources)),
        rejected_rows.iter().map(|r| r.code.as_str()),
        rejected_rows.iter().map(|r| r.message.as_str()),
    )
    .map_err(io_err(&rejected_path))?;
    if summary.samples != writer.sample_count() as u64 {
        return Err(ChexpertError::Internal(format!(
            "accounting mismatch: {} samples counted, {} in the dataset",
            summary.samples,
            writer.sample_count()
        )));
    }

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
    let info = FinishInfo {
        tool_version: format!("chess-ingest {} (chexpert)", env!("CARGO_PKG_VERSION")),
        deid_method: "none applied here: CheXpert is released de-identified; its patient/study folder names (public pseudonyms) are kept as patient_id/study_id".into(),
        provenance,
    };
    writer.finish(info).map_err(|source| ChexpertError::Shards { root: out.clone(), source })?;
    summary.wall = started.elapsed();
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_checked_exactly() {
        assert_eq!(check_header(&HEADER, Split::Train), Ok(CsvLayout::Full));
        let mut bom = HEADER;
        bom[0] = "\u{feff}Path";
        assert_eq!(check_header(&bom, Split::Valid), Ok(CsvLayout::Full));
        let short: Vec<&str> = std::iter::once("Path").chain(OBSERVATIONS).collect();
        assert_eq!(check_header(&short, Split::Test), Ok(CsvLayout::PathAndLabels));
        let e = check_header(&short, Split::Train).unwrap_err();
        assert!(e.starts_with("column 2 is `No Finding`; expected `Sex`"), "{e}");
        let mut swapped = HEADER;
        swapped.swap(5, 6);
        let e = check_header(&swapped, Split::Train).unwrap_err();
        assert!(e.contains("column 6 is `Enlarged Cardiomediastinum`; expected `No Finding`"), "{e}");
        let mut spaced = HEADER;
        spaced[2] = " Age";
        assert!(check_header(&spaced, Split::Train).unwrap_err().contains("extra spaces"));
    }

    #[test]
    fn cells_parse_as_chexpert_writes_them() {
        assert_eq!(parse_label("1.0"), Ok(Some(1.0)));
        assert_eq!(parse_label("0.0"), Ok(Some(0.0)));
        assert_eq!(parse_label("-0.0"), Ok(Some(0.0)));
        assert_eq!(parse_label("-1.0"), Ok(Some(-1.0)));
        assert_eq!(parse_label("-1"), Ok(Some(-1.0)));
        assert_eq!(parse_label(" "), Ok(None));
        assert!(parse_label("0.5").is_err() && parse_label("yes").is_err() && parse_label("NaN").is_err());
        assert_eq!(parse_sex("Male"), Ok(Some("M".into())));
        assert_eq!(parse_sex("Female"), Ok(Some("F".into())));
        assert_eq!(parse_sex("Unknown"), Ok(None));
        assert!(parse_sex("X").is_err());
        assert_eq!(parse_age("68"), Ok(Some(68.0)));
        assert_eq!(parse_age(""), Ok(None));
        assert!(parse_age("-3").is_err() && parse_age("old").is_err());
        assert_eq!(view_position("Frontal", "AP"), Ok((true, "AP".into())));
        assert_eq!(view_position("Frontal", "PA"), Ok((true, "PA".into())));
        assert_eq!(view_position("Frontal", ""), Ok((true, "FRONTAL".into())));
        assert_eq!(view_position("Frontal", "LL"), Ok((true, "FRONTAL".into())));
        assert_eq!(view_position("Lateral", ""), Ok((false, "LATERAL".into())));
        assert_eq!(view_position("Lateral", "LL"), Ok((false, "LL".into())));
        assert!(view_position("Oblique", "").is_err());
    }

    #[test]
    fn paths_resolve_like_the_release() {
        let root = Path::new("/data/CheXpert-v1.0-small");
        let p =
            parse_path(root, Split::Train, "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg").unwrap();
        assert_eq!(p.file, Path::new("/data/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"));
        assert_eq!(p.alt, None);
        assert_eq!(
            (p.patient_id.as_str(), p.study_id.as_str(), p.key.as_str()),
            ("patient00001", "patient00001/study1", "train_patient00001_study1_view1_frontal")
        );
        // Relative to ROOT, or a renamed folder.
        let p = parse_path(root, Split::Test, "test/patient64741/study1/view1_frontal.jpg").unwrap();
        assert_eq!(p.file, Path::new("/data/CheXpert-v1.0-small/test/patient64741/study1/view1_frontal.jpg"));
        assert_eq!(p.key, "test_patient64741_study1_view1_frontal");
        let p = parse_path(
            Path::new("/data/cx"),
            Split::Valid,
            "CheXpert-v1.0/valid/patient64541/study1/view1_frontal.jpg",
        )
        .unwrap();
        assert_eq!(p.alt.as_deref(), Some(Path::new("/data/cx/valid/patient64541/study1/view1_frontal.jpg")));
        for bad in ["", "/etc/passwd/x/y", "CheXpert-v1.0-small/../../x/y/z.jpg", "a/b.jpg"] {
            assert!(parse_path(root, Split::Train, bad).is_err(), "{bad}");
        }
        // Odd characters are replaced; over-long keys fall back to a hash.
        let p = parse_path(root, Split::Train, "x/patient 1/study.1/view1 frontal.jpg").unwrap();
        assert_eq!(p.key, "train_patient-1_study-1_view1-frontal");
        let long = format!("x/p/s/{}.jpg", "v".repeat(80));
        let p = parse_path(root, Split::Train, &long).unwrap();
        assert!(chess_schemas::validate_key(&p.key).is_ok() && p.key.starts_with("train_"), "{}", p.key);
    }
}
