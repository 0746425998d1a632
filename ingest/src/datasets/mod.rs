//! Importers of the chest X-ray releases researchers already have, each to
//! a CheSS dataset with its labels, patient ids and official split:
//!
//! - [`folders`]: an ImageFolder tree (`ROOT/<class>/*.png|jpg|dcm`), or a
//!   flat tree of unlabelled images;
//! - [`mimic`]: MIMIC-CXR-JPG (its four CSVs, `files/pXX/pXXXXXXXX/sXXXXXXXX/*.jpg`);
//! - [`nih`]: NIH ChestX-ray14 (`Data_Entry_2017.csv`, `BBox_List_2017.csv`,
//!   the two split lists, `images*/`);
//! - [`padchest`]: PadChest (its label CSV, 16-bit PNGs in numbered folders);
//! - [`vindr`]: VinDr-CXR (DICOM through the DICOM path, readers' labels
//!   aggregated, boxes as JSON).
//!
//! Each importer reads and checks its release's files into a [`Plan`]: one
//! [`Item`] (or a [`Rejected`] row) per input row or file, the label columns
//! and what the mapping keeps. [`run`] then imports a plan through the
//! shared [`crate::frontend`] skeleton exactly as CheXpert's import does
//! (settings, open/resume with the options check, ordered workers,
//! accounting into `private/rejected.parquet`, `dataset.json`), adding the
//! `source_dataset` column and, with `--labels-as torchxrayvision`, the
//! common label space of [`crate::label_space`]. CSV headers are checked
//! exactly by [`table`], which names the file and the column.

pub mod folders;
pub mod mimic;
pub mod nih;
pub mod padchest;
mod run;
pub mod table;
pub mod tally;
pub mod vindr;

use std::path::PathBuf;

use chess_schemas::LabelColumn;
use chess_shards::SampleFields;
use serde::{Deserialize, Serialize};

pub use self::run::{run, Config, RunOptions, Summary};
pub use self::tally::SplitCounts;
pub use crate::chexpert::Rejected;
pub use crate::error::{IngestError, Result};
pub use crate::label_space::Vocabulary;

/// Reject code: the image or DICOM file a row names does not exist.
pub const MISSING_IMAGE: &str = "missing_image";
/// Reject code: a second row for an image an earlier row already named.
pub const DUPLICATE_ROW: &str = "duplicate_row";
/// The `source_dataset` label column every importer adds.
pub const SOURCE_DATASET: &str = "source_dataset";
/// The JSON box column (NIH, VinDr; null for the others in the common space).
pub const BOXES: &str = "boxes";

/// The releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Release {
    Folders,
    Mimic,
    Nih,
    Padchest,
    Vindr,
}

impl Release {
    /// The subcommand, the shard name and the run file's stem.
    pub fn name(self) -> &'static str {
        match self {
            Release::Folders => "folders",
            Release::Mimic => "mimic",
            Release::Nih => "nih",
            Release::Padchest => "padchest",
            Release::Vindr => "vindr",
        }
    }

    /// How the import is called in messages.
    pub fn import(self) -> &'static str {
        match self {
            Release::Folders => "folders import",
            Release::Mimic => "MIMIC-CXR-JPG import",
            Release::Nih => "NIH ChestX-ray14 import",
            Release::Padchest => "PadChest import",
            Release::Vindr => "VinDr-CXR import",
        }
    }
}

/// How an item's file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JPEG or PNG (recognised by content).
    Image,
    /// DICOM, through the DICOM path: decode, BurnedInAnnotation check,
    /// de-identification of the header.
    Dicom,
}

/// What DICOM de-identification may set on an item's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DicomIds {
    /// Key, patient, study and series from the keyed pseudonyms (the DICOM import's).
    Pseudonyms,
    /// The release's own public ids stay (key, study); the patient is the keyed
    /// pseudonym of the header's PatientID when it has one.
    Release,
}

/// One input row or file that will become a sample.
#[derive(Debug, Clone)]
pub struct Item {
    /// Locates the input in `rejected.parquet` (a relative path or CSV cell).
    pub source: String,
    /// `<file> line <n>` or the relative path, for messages.
    pub place: String,
    pub file: PathBuf,
    pub format: Format,
    pub key: String,
    /// The fields the release gives; `clip_value` and `modality` are set
    /// by the import, DICOM header fields by de-identification.
    pub fields: SampleFields,
}

/// What an importer read from a release, ready to import.
#[derive(Debug, Clone)]
pub struct Plan {
    pub release: Release,
    /// The `source_dataset` value.
    pub name: String,
    pub vocabulary: Vocabulary,
    /// The release's own label columns (the values in each item's fields).
    pub columns: Vec<LabelColumn>,
    /// The index of the box column among `columns`, if any.
    pub boxes: Option<usize>,
    pub items: Vec<Result<Item, Rejected>>,
    /// The files read, relative to ROOT (stored with the run's options).
    pub inputs: Vec<String>,
    /// What the release's ids and cells became (`dataset.json` provenance).
    pub mapping: serde_json::Value,
    /// How ids are kept (`dataset.json`'s `deid_method`).
    pub deid: String,
    pub dicom_ids: DicomIds,
    /// Options of the importer that change the output (stored for resume).
    pub options: serde_json::Value,
}

/// A label cell of a 0/1 vocabulary as written.
pub(crate) fn present(x: bool) -> chess_shards::LabelValue {
    chess_shards::LabelValue::Float(if x { 1.0 } else { 0.0 })
}

/// The `Float32` label columns named `names`.
pub(crate) fn float_columns<S: AsRef<str>>(names: &[S]) -> Vec<LabelColumn> {
    names
        .iter()
        .map(|n| LabelColumn { name: n.as_ref().to_string(), label_type: chess_schemas::LabelType::Float32 })
        .collect()
}

/// A `Utf8` label column.
pub(crate) fn text_column(name: &str) -> LabelColumn {
    LabelColumn { name: name.to_string(), label_type: chess_schemas::LabelType::Utf8 }
}

/// `root`, checked to be a folder.
pub(crate) fn root_folder(root: &std::path::Path, what: &str) -> Result<PathBuf> {
    if !root.is_dir() {
        return Err(IngestError::Layout { path: root.to_path_buf(), message: format!("not a folder; give {what}") });
    }
    std::fs::canonicalize(root).map_err(IngestError::read(root))
}
