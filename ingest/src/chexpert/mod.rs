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
//!
//! Files: [`csv`] reads and checks the CSVs, [`run`] imports their rows.

mod csv;
mod run;

pub use self::csv::{
    check_header, find_csvs, parse_age, parse_label, parse_path, parse_sex, read_csv, view_position, CsvLayout,
    CsvRows, ImagePath, Rejected, Row,
};
pub use self::run::{run, Config, RunOptions, SplitCounts, Summary};
pub use crate::error::{IngestError, Result};
pub use crate::image::{decode_image, process_image, DecodeFailure, Gray, MAX_SIDE, UNSUPPORTED_FORMAT};

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

/// CheXpert's CSV header, exactly: [`LEADING`] then [`OBSERVATIONS`].
pub const HEADER: [&str; 19] = {
    let mut header = [""; 19];
    let mut i = 0;
    while i < header.len() {
        header[i] = if i < LEADING.len() { LEADING[i] } else { OBSERVATIONS[i - LEADING.len()] };
        i += 1;
    }
    header
};

/// Test label CSV names, in order of preference.
pub const TEST_CSV_NAMES: [&str; 2] = ["test_labels.csv", "test.csv"];

/// Reject code: the image named by `Path` does not exist.
pub const MISSING_IMAGE: &str = "missing_image";
/// Reject code: the CSV row cannot be used (wrong field count, bad value, bad path).
pub const BAD_ROW: &str = "bad_csv_row";
/// Reject code: the row names an image (key) an earlier row already named.
pub const DUPLICATE_ROW: &str = "duplicate_row";
/// `private/` file recording the options of a run, for resumption.
pub const RUN_JSON: &str = "chexpert-run.json";

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
