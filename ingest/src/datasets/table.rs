//! The CSV side every importer of a released dataset shares (CheXpert's
//! included): the exact header check that names the file and the column,
//! reading the records with their line numbers (a bad record becomes a
//! [`Rejected`] row, never an error), cells by column name, and sample keys
//! from public ids.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::chexpert::Rejected;
use crate::error::{IngestError, Result};

/// Reject code: a CSV row (or a row it depends on) that cannot be used.
pub const BAD_ROW: &str = "bad_csv_row";

/// What is wrong with `fields` as the header `expected` (at most three
/// problems, each naming the 1-based column); empty when they are equal.
/// A byte-order mark before the first name is ignored.
pub fn header_problems(fields: &[&str], expected: &[&str]) -> Vec<String> {
    let fields: Vec<&str> =
        fields.iter().enumerate().map(|(i, f)| if i == 0 { f.trim_start_matches('\u{feff}') } else { f }).collect();
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
            return problems;
        }
    }
    if fields.len() > expected.len() && problems.is_empty() {
        let last = expected.last().map_or(String::new(), |l| format!(" after `{l}`"));
        problems.push(format!(
            "unexpected extra column(s){last}: {}",
            fields[expected.len()..].iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")
        ));
    }
    problems
}

/// One CSV record that has the header's width, as UTF-8 cells.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based line of the record (header = line 1).
    pub line: u64,
    pub cells: Vec<String>,
}

/// A CSV read against its exact header.
#[derive(Debug)]
pub struct Table {
    pub path: PathBuf,
    /// The file name, for messages (`Data_Entry_2017.csv line 7: …`).
    pub name: String,
    columns: HashMap<&'static str, usize>,
    /// Good records and rejected ones, in file order.
    pub rows: Vec<Result<Record, Rejected>>,
}

impl Table {
    /// Reads `path`, whose header must be `header` exactly; `what` names the
    /// file in messages (`NIH's Data_Entry_2017.csv`). Trailing header names
    /// that are empty (as some releases write them) may be absent from the
    /// header and from each record, and must be empty in a record.
    pub fn read(path: &Path, header: &[&'static str], what: &str) -> Result<Table> {
        Table::read_checked(path, what, |got| {
            let optional = header.iter().rev().take_while(|h| h.is_empty()).count();
            let expected = if got.len() < header.len() && got.len() >= header.len() - optional {
                &header[..got.len()]
            } else {
                header
            };
            let problems = header_problems(got, expected);
            if problems.is_empty() {
                Ok(header.to_vec())
            } else {
                Err(format!("{}; the header is `{}`", problems.join("; "), header.join(",")))
            }
        })
    }

    /// Reads `path` with a header that `check` accepts: it returns the
    /// header the records are read against (see [`Table::read`] for its
    /// trailing empty names) or what is wrong, reported as
    /// `not <what>'s header: <problem>`.
    pub fn read_checked(
        path: &Path,
        what: &str,
        check: impl FnOnce(&[&str]) -> Result<Vec<&'static str>, String>,
    ) -> Result<Table> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("csv").to_string();
        let csv_err = |source| IngestError::Csv { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(IngestError::read(path))?;
        let input: Box<dyn std::io::Read> = if name.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file)))
        } else {
            Box::new(std::io::BufReader::new(file))
        };
        let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
        let mut records = rdr.byte_records();
        let head = match records.next() {
            None => {
                return Err(IngestError::Header {
                    path: path.to_path_buf(),
                    message: format!("not {what}'s header: the file is empty"),
                })
            }
            Some(r) => r.map_err(csv_err)?,
        };
        let head: Vec<String> = head.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        let got: Vec<&str> = head.iter().map(String::as_str).collect();
        let header = check(&got).map_err(|problem| IngestError::Header {
            path: path.to_path_buf(),
            message: format!("not {what}'s header: {problem}"),
        })?;
        let min_width = header.len() - header.iter().rev().take_while(|h| h.is_empty()).count();
        let columns = header.iter().enumerate().filter(|(_, h)| !h.is_empty()).map(|(i, h)| (*h, i)).collect();
        let mut rows = Vec::new();
        for (i, rec) in records.enumerate() {
            let fallback = i as u64 + 2;
            let rec = match rec {
                Ok(r) => r,
                Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(csv_err(e)),
                Err(e) => {
                    let line = e.position().map_or(fallback, |p| p.line());
                    rows.push(Err(bad(&name, line, format!("{name}:{line}"), e.to_string())));
                    continue;
                }
            };
            let line = rec.position().map_or(fallback, |p| p.line());
            rows.push(record(&name, line, &rec, min_width, header.len()));
        }
        Ok(Table { path: path.to_path_buf(), name, columns, rows })
    }

    /// The column index of a header name (one of the names given to [`Table::read`]).
    pub fn col(&self, name: &str) -> usize {
        *self.columns.get(name).unwrap_or_else(|| panic!("`{name}` is not a column of {}", self.name))
    }

    /// `<file> line <n>`, for messages.
    pub fn at(&self, line: u64) -> String {
        format!("{} line {line}", self.name)
    }
}

/// A rejected row: `source` locates it in `rejected.parquet`, the message
/// starts with `<file> line <n>`.
pub fn bad(file: &str, line: u64, source: String, message: String) -> Rejected {
    Rejected { source, code: BAD_ROW.into(), message: format!("{file} line {line}: {message}") }
}

fn record(name: &str, line: u64, rec: &csv::ByteRecord, min: usize, max: usize) -> Result<Record, Rejected> {
    let first = rec.get(0).map(|b| String::from_utf8_lossy(b).trim().to_string()).unwrap_or_default();
    let source = if first.is_empty() { format!("{name}:{line}") } else { first };
    if rec.len() < min || rec.len() > max {
        let width = if min == max { min.to_string() } else { format!("{min} to {max}") };
        return Err(bad(name, line, source, format!("{} fields, the header has {width}", rec.len())));
    }
    let mut cells = Vec::with_capacity(max);
    for (j, b) in rec.iter().enumerate() {
        let cell = std::str::from_utf8(b)
            .map_err(|_| bad(name, line, source.clone(), format!("column {} is not UTF-8", j + 1)))?;
        if j >= min && !cell.trim().is_empty() {
            return Err(bad(name, line, source, format!("column {} has a value where the header has none", j + 1)));
        }
        cells.push(cell.to_string());
    }
    cells.resize(max, String::new());
    Ok(Record { line, cells })
}

/// A sample key from public ids: `parts` joined by `_`, characters other
/// than ASCII letters, digits, `_` and `-` replaced by `-`; longer than a
/// key may be, `<first part>_<hash of all parts>`.
pub fn sample_key(parts: &[&str]) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect()
    };
    let key = parts.iter().map(|p| clean(p)).collect::<Vec<_>>().join("_");
    if key.len() <= chess_schemas::MAX_KEY_LEN && !key.is_empty() {
        return key;
    }
    let h = blake3::hash(parts.join("\u{0}").as_bytes());
    format!("{}_{}", clean(parts.first().copied().unwrap_or("x")), &h.to_hex()[..32])
}

/// Lines of a list file (`train_val_list.txt`): trimmed, blank lines skipped.
pub fn read_list(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(IngestError::read(path))?;
    Ok(text
        .lines()
        .map(|l| l.trim().trim_start_matches('\u{feff}'))
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// The file `dir/name` (or `dir/name.gz`, as some releases ship their
/// CSVs), or an error saying which release file is missing.
pub fn required(dir: &Path, name: &str, layout: &str) -> Result<PathBuf> {
    let p = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if p.is_file() {
        Ok(p)
    } else if gz.is_file() {
        Ok(gz)
    } else {
        Err(IngestError::Layout { path: dir.to_path_buf(), message: format!("no {name}; {layout}") })
    }
}

/// The name of `path` relative to `root`, for the stored inputs.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).unwrap_or(path).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_compared_name_by_name() {
        assert!(header_problems(&["\u{feff}a", "b"], &["a", "b"]).is_empty());
        assert_eq!(
            header_problems(&["a", "B"], &["a", "b"]),
            ["column 2 is `B`; expected `b` (names are case-sensitive)"]
        );
        assert_eq!(header_problems(&["a"], &["a", "b"]), ["column 2 `b` is missing"]);
        assert_eq!(header_problems(&["a", "b", "c"], &["a", "b"]), ["unexpected extra column(s) after `b`: `c`"]);
    }

    #[test]
    fn records_keep_their_lines_and_trailing_empty_columns_are_optional() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.csv");
        std::fs::write(&p, "x,y,\n1,2\n3,4,\n5,6,7\n8\n").unwrap();
        let t = Table::read(&p, &["x", "y", ""], "test").unwrap();
        let lines: Vec<_> = t.rows.iter().map(|r| r.as_ref().map(|r| r.line).map_err(|e| e.message.clone())).collect();
        assert_eq!(lines[0], Ok(2));
        assert_eq!(lines[1], Ok(3));
        assert_eq!(lines[2], Err("t.csv line 4: column 3 has a value where the header has none".into()));
        assert_eq!(lines[3], Err("t.csv line 5: 1 fields, the header has 2 to 3".into()));
        assert_eq!(t.rows[0].as_ref().unwrap().cells[t.col("y")], "2");
        std::fs::write(&p, "x,z\n").unwrap();
        let e = Table::read(&p, &["x", "y"], "test").unwrap_err().to_string();
        assert!(e.contains("t.csv") && e.contains("column 2 is `z`; expected `y`"), "{e}");
    }

    #[test]
    fn keys_are_clean_and_bounded() {
        assert_eq!(sample_key(&["nih", "00000001_000"]), "nih_00000001_000");
        assert_eq!(sample_key(&["a b", "c.d"]), "a-b_c-d");
        let long = "v".repeat(80);
        let k = sample_key(&["padchest", &long]);
        assert!(chess_schemas::validate_key(&k).is_ok() && k.starts_with("padchest_"), "{k}");
    }
}
