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
//!
//! Files: [`csv`] reads the CSV, [`labelmap`] resizes masks, [`run`]
//! imports the rows.

mod csv;
mod labelmap;
mod run;

pub use self::csv::{read_csv, Rejected, Row};
pub use self::labelmap::resize_labels;
pub use self::run::{run, Config, RunOptions, Summary};
pub use crate::error::{IngestError, Result};
pub use crate::image::UNSUPPORTED_FORMAT;

/// A file named by the CSV does not exist.
pub const MISSING_FILE: &str = "missing_file";
/// A CSV row that is not `source,target[,mask]`.
pub const BAD_ROW: &str = "bad_csv_row";
/// Target or mask dimensions differ from the source's.
pub const DIMENSION_MISMATCH: &str = "dimension_mismatch";
/// A mask value that does not fit a uint8 label map.
pub const BAD_MASK: &str = "bad_mask";
/// A row whose sample key another row already produced.
pub const DUPLICATE_ROW: &str = "duplicate_row";

/// The run file under `private/`.
pub const RUN_JSON: &str = "pairs-run.json";
