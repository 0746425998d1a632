//! Reading the pairs CSV: header `source,target` or `source,target,mask`,
//! paths relative to the CSV's folder; a short or blank row is a
//! [`Rejected`] row, a wrong header an error.

use std::path::{Path, PathBuf};

use super::BAD_ROW;
use crate::error::{IngestError, Result};

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
pub fn read_csv(path: &Path) -> Result<(Vec<Result<Row, Rejected>>, bool)> {
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let file = std::fs::File::open(path).map_err(IngestError::read(path))?;
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
    let csv_err = |source: csv::Error| IngestError::Csv { path: path.to_path_buf(), source };
    let header: Vec<String> =
        rdr.headers().map_err(csv_err)?.iter().map(|h| h.trim_start_matches('\u{feff}').trim().to_string()).collect();
    let with_mask = match header.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["source", "target"] => false,
        ["source", "target", "mask"] => true,
        other => {
            return Err(IngestError::Header {
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
