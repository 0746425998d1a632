//! What every ingest front end (DICOM, CheXpert, pairs) writes the same way:
//! the `private/rejected.parquet` table and the progress bar.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};

/// Writes `rejected.parquet` atomically (a temporary name, then a rename):
/// the front end's own locating column (`source_path`, `csv_line`, …) first,
/// then `reason_code` and `message`, one row per rejected input.
pub(crate) fn write_rejected<'a>(
    path: &Path,
    locator: (&str, ArrayRef),
    codes: impl Iterator<Item = &'a str>,
    messages: impl Iterator<Item = &'a str>,
) -> std::io::Result<()> {
    let (name, locations) = locator;
    let schema = Arc::new(Schema::new(vec![
        Field::new(name, locations.data_type().clone(), false),
        Field::new("reason_code", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        locations,
        Arc::new(StringArray::from_iter_values(codes)),
        Arc::new(StringArray::from_iter_values(messages)),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp)?;
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(std::io::Error::other)?;
    w.write(&batch).map_err(std::io::Error::other)?;
    w.close().map_err(std::io::Error::other)?;
    std::fs::rename(&tmp, path)
}

/// A progress bar over `total` inputs named `unit` (files, images, pairs),
/// hidden when `enabled` is false; stderr's draw target also hides itself
/// when stderr is not a terminal.
pub(crate) fn progress_bar(enabled: bool, total: u64, unit: &str) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    let template = format!(
        "{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{pos}}/{{len}} {unit} ({{per_sec}}, ETA {{eta}}) {{msg}}"
    );
    pb.set_style(indicatif::ProgressStyle::with_template(&template).expect("static template"));
    pb.enable_steady_tick(Duration::from_millis(200));
    pb
}
