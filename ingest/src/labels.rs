//! Labels: joining a CSV to the images by an original identifier.
//!
//! `--labels FILE.csv --label-key AccessionNumber|StudyInstanceUID|
//! SOPInstanceUID|PatientID`: the CSV must have a column named like the key
//! attribute; every other column becomes a typed label column of the
//! manifest. Types are inferred from the non-blank values: all `true`/`false`
//! → bool, all integers → int64, all numbers → float64, else utf8; a blank
//! cell is null. The join happens on the original value, before
//! de-identification; the key column itself is never written anywhere
//! shareable. Rows whose key repeats keep the first occurrence (counted).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chess_schemas::{LabelColumn, LabelType};
use chess_shards::LabelValue;

use crate::dicom::Header;

/// The identifier the CSV is joined on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKey {
    AccessionNumber,
    StudyInstanceUid,
    SopInstanceUid,
    PatientId,
}

impl LabelKey {
    /// The DICOM keyword, which is also the CSV column name.
    pub fn keyword(self) -> &'static str {
        match self {
            LabelKey::AccessionNumber => "AccessionNumber",
            LabelKey::StudyInstanceUid => "StudyInstanceUID",
            LabelKey::SopInstanceUid => "SOPInstanceUID",
            LabelKey::PatientId => "PatientID",
        }
    }

    pub fn value(self, h: &Header) -> &str {
        match self {
            LabelKey::AccessionNumber => &h.accession_number,
            LabelKey::StudyInstanceUid => &h.study_instance_uid,
            LabelKey::SopInstanceUid => &h.sop_instance_uid,
            LabelKey::PatientId => &h.patient_id,
        }
    }
}

impl std::str::FromStr for LabelKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [LabelKey::AccessionNumber, LabelKey::StudyInstanceUid, LabelKey::SopInstanceUid, LabelKey::PatientId]
            .into_iter()
            .find(|k| k.keyword().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                format!("unknown label key `{s}` (AccessionNumber, StudyInstanceUID, SOPInstanceUID, PatientID)")
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("labels file '{}': {source}", path.display())]
    Csv { path: PathBuf, source: csv::Error },
    #[error("labels file '{}' has no column `{column}` to join on (columns: {columns})", path.display())]
    NoKeyColumn { path: PathBuf, column: String, columns: String },
    #[error("labels file '{}': label column `{column}` is not a valid manifest column name: {reason}", path.display())]
    BadColumn { path: PathBuf, column: String, reason: String },
}

/// Every labels error is about the labels CSV, an input (exit 3).
impl chess_cli::Classify for LabelsError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        chess_cli::ExitClass::Input
    }
}

/// A loaded labels table.
#[derive(Debug, Clone)]
pub struct Labels {
    pub key: LabelKey,
    pub columns: Vec<LabelColumn>,
    rows: Vec<Vec<LabelValue>>,
    index: HashMap<String, usize>,
    pub duplicate_rows: usize,
}

fn infer(values: &[&str]) -> LabelType {
    let present: Vec<&str> = values.iter().copied().filter(|v| !v.is_empty()).collect();
    if present.is_empty() {
        return LabelType::Utf8;
    }
    if present.iter().all(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "false")) {
        LabelType::Bool
    } else if present.iter().all(|v| v.parse::<i64>().is_ok()) {
        LabelType::Int64
    } else if present.iter().all(|v| v.parse::<f64>().is_ok()) {
        LabelType::Float64
    } else {
        LabelType::Utf8
    }
}

fn convert(v: &str, t: LabelType) -> LabelValue {
    if v.is_empty() {
        return LabelValue::Null;
    }
    match t {
        LabelType::Bool => LabelValue::Bool(v.eq_ignore_ascii_case("true")),
        LabelType::Int8 | LabelType::Int16 | LabelType::Int32 | LabelType::Int64 => {
            v.parse().map(LabelValue::Int).unwrap_or(LabelValue::Null)
        }
        LabelType::Float32 | LabelType::Float64 => v.parse().map(LabelValue::Float).unwrap_or(LabelValue::Null),
        LabelType::Utf8 => LabelValue::Str(v.to_string()),
    }
}

/// Manifest columns a label may not shadow.
fn reserved(name: &str) -> bool {
    chess_schemas::required_columns().iter().any(|c| c.name == name)
        || chess_schemas::known_optional_columns().iter().any(|c| c.name == name)
}

impl Labels {
    pub fn load(path: &Path, key: LabelKey) -> Result<Labels, LabelsError> {
        let err = |source| LabelsError::Csv { path: path.to_path_buf(), source };
        let mut rdr = csv::ReaderBuilder::new().flexible(false).from_path(path).map_err(err)?;
        let headers: Vec<String> = rdr.headers().map_err(err)?.iter().map(|s| s.trim().to_string()).collect();
        let Some(key_col) = headers.iter().position(|h| h.eq_ignore_ascii_case(key.keyword())) else {
            return Err(LabelsError::NoKeyColumn {
                path: path.to_path_buf(),
                column: key.keyword().to_string(),
                columns: headers.join(", "),
            });
        };
        let mut raw: Vec<Vec<String>> = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(err)?;
            raw.push(rec.iter().map(|s| s.trim().to_string()).collect());
        }
        let label_idx: Vec<usize> = (0..headers.len()).filter(|&i| i != key_col).collect();
        let mut columns = Vec::new();
        for &i in &label_idx {
            let name = &headers[i];
            if name.is_empty() || reserved(name) {
                return Err(LabelsError::BadColumn {
                    path: path.to_path_buf(),
                    column: name.clone(),
                    reason: "empty or the name of a built-in manifest column".into(),
                });
            }
            let vals: Vec<&str> = raw.iter().map(|r| r[i].as_str()).collect();
            columns.push(LabelColumn { name: name.clone(), label_type: infer(&vals) });
        }
        let mut index = HashMap::new();
        let mut rows = Vec::new();
        let mut duplicate_rows = 0;
        for r in &raw {
            let k = r[key_col].clone();
            if k.is_empty() || index.contains_key(&k) {
                duplicate_rows += 1;
                continue;
            }
            index.insert(k, rows.len());
            rows.push(label_idx.iter().zip(&columns).map(|(&i, c)| convert(&r[i], c.label_type)).collect());
        }
        Ok(Labels { key, columns, rows, index, duplicate_rows })
    }

    /// Number of distinct keyed rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The row index and values for an image, if its identifier is in the CSV.
    pub fn lookup(&self, h: &Header) -> Option<(usize, Vec<LabelValue>)> {
        let i = *self.index.get(self.key.value(h))?;
        Some((i, self.rows[i].clone()))
    }

    /// Nulls for an image without a row.
    pub fn nulls(&self) -> Vec<LabelValue> {
        vec![LabelValue::Null; self.columns.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_inferred_and_blank_is_null() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv");
        std::fs::write(
            &p,
            "AccessionNumber,Cardiomegaly,count,flag,note\nA1,1.0,3,true,x\nA2,,-1,false,\nA1,0.0,1,true,dup\n",
        )
        .unwrap();
        let l = Labels::load(&p, LabelKey::AccessionNumber).unwrap();
        let types: Vec<_> = l.columns.iter().map(|c| (c.name.as_str(), c.label_type)).collect();
        assert_eq!(
            types,
            [
                ("Cardiomegaly", LabelType::Float64),
                ("count", LabelType::Int64),
                ("flag", LabelType::Bool),
                ("note", LabelType::Utf8)
            ]
        );
        assert_eq!(l.len(), 2);
        assert_eq!(l.duplicate_rows, 1);
        let h = Header { accession_number: "A2".into(), ..Default::default() };
        let (_, v) = l.lookup(&h).unwrap();
        assert_eq!(v[0], LabelValue::Null);
        assert_eq!(v[1], LabelValue::Int(-1));
        assert_eq!(v[3], LabelValue::Null);
        assert!(l.lookup(&Header::default()).is_none());
    }

    #[test]
    fn missing_key_column_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv");
        std::fs::write(&p, "a,b\n1,2\n").unwrap();
        let e = Labels::load(&p, LabelKey::PatientId).unwrap_err().to_string();
        assert!(e.contains("PatientID") && e.contains("a, b"), "{e}");
        std::fs::write(&p, "PatientID,key\n1,2\n").unwrap();
        assert!(matches!(Labels::load(&p, LabelKey::PatientId), Err(LabelsError::BadColumn { .. })));
    }
}
