//! `chess-ingest mimic`: MIMIC-CXR-JPG as released (PhysioNet,
//! `mimic-cxr-jpg/2.0.0/`): the four CSVs (each also as `.csv.gz`) and
//! `files/pXX/pXXXXXXXX/sXXXXXXXX/<dicom_id>.jpg`.
//!
//! One item per row of `mimic-cxr-2.0.0-metadata.csv` (one image), with
//! - the labeler's 14 observations (`--labeler chexpert`, default, reads
//!   `mimic-cxr-2.0.0-chexpert.csv`; `negbio` reads `-negbio.csv`) joined
//!   by (subject_id, study_id) as Float32 columns named as in the CSV:
//!   1, 0, −1 (uncertain) as written, null for blank or for a study the
//!   labeler did not label; a label row with another value rejects that
//!   study's images, naming the label row;
//! - `split` from `mimic-cxr-2.0.0-split.csv` by dicom_id (`train`,
//!   `validate` → `valid`, `test`); an image without a split row is rejected;
//! - `view_position` = metadata's ViewPosition as written (blank → null);
//! - `patient_id` = subject_id, `study_id` = study_id (MIMIC's public
//!   pseudonyms, kept as CheXpert's are), key `mimic_<dicom_id>`.

use std::collections::HashMap;
use std::path::Path;

use chess_shards::{LabelValue, SampleFields};

use super::table::{bad, relative, required, sample_key, Table};
use super::{DicomIds, Format, Item, Plan, Rejected, Release, Result, Vocabulary};
use crate::chexpert::parse_label;

/// The labelers' header (both files).
pub const LABEL_HEADER: [&str; 16] = [
    "subject_id",
    "study_id",
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
];

/// `mimic-cxr-2.0.0-metadata.csv`'s header.
pub const METADATA_HEADER: [&str; 12] = [
    "dicom_id",
    "subject_id",
    "study_id",
    "PerformedProcedureStepDescription",
    "ViewPosition",
    "Rows",
    "Columns",
    "StudyDate",
    "StudyTime",
    "ProcedureCodeSequence_CodeMeaning",
    "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
];

/// `mimic-cxr-2.0.0-split.csv`'s header.
pub const SPLIT_HEADER: [&str; 4] = ["dicom_id", "study_id", "subject_id", "split"];

/// Which labeler's CSV to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Labeler {
    #[default]
    Chexpert,
    Negbio,
}

impl Labeler {
    pub fn name(self) -> &'static str {
        match self {
            Labeler::Chexpert => "chexpert",
            Labeler::Negbio => "negbio",
        }
    }
}

const LAYOUT: &str = "MIMIC-CXR-JPG's layout is ROOT/mimic-cxr-2.0.0-{chexpert,negbio,metadata,split}.csv[.gz] and ROOT/files/pXX/pXXXXXXXX/sXXXXXXXX/*.jpg";

fn digits(cell: &str, what: &str) -> Result<String, String> {
    let t = cell.trim();
    if !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()) {
        Ok(t.to_string())
    } else {
        Err(format!("{what} `{t}` is not a number"))
    }
}

/// Reads a MIMIC-CXR-JPG folder into a plan.
pub fn plan(root: &Path, labeler: Labeler) -> Result<Plan> {
    let root = super::root_folder(root, "the MIMIC-CXR-JPG folder holding mimic-cxr-2.0.0-metadata.csv")?;
    let labels_path = required(&root, &format!("mimic-cxr-2.0.0-{}.csv", labeler.name()), LAYOUT)?;
    let meta_path = required(&root, "mimic-cxr-2.0.0-metadata.csv", LAYOUT)?;
    let split_path = required(&root, "mimic-cxr-2.0.0-split.csv", LAYOUT)?;
    let labels = Table::read(&labels_path, &LABEL_HEADER, "MIMIC-CXR-JPG")?;
    let meta = Table::read(&meta_path, &METADATA_HEADER, "MIMIC-CXR-JPG")?;
    let splits = Table::read(&split_path, &SPLIT_HEADER, "MIMIC-CXR-JPG")?;

    // (subject, study) → the 14 values, or the reason that study's label row is unusable.
    let mut by_study: HashMap<(String, String), Result<Vec<LabelValue>, String>> = HashMap::new();
    for r in labels.rows.iter().flatten() {
        let at = labels.at(r.line);
        let parsed = (|| {
            let subject = digits(&r.cells[0], "subject_id")?;
            let study = digits(&r.cells[1], "study_id")?;
            let mut v = Vec::with_capacity(14);
            for (k, name) in LABEL_HEADER[2..].iter().enumerate() {
                let x = parse_label(&r.cells[k + 2]).map_err(|m| format!("{name}: {m}"))?;
                v.push(x.map_or(LabelValue::Null, |x| LabelValue::Float(x as f64)));
            }
            Ok::<_, String>(((subject, study), v))
        })();
        match parsed {
            Ok((k, v)) => {
                if by_study.insert(k.clone(), Ok(v)).is_some() {
                    by_study.insert(k, Err(format!("{at}: a second label row for this study")));
                }
            }
            Err(m) => {
                if let (Ok(s), Ok(t)) = (digits(&r.cells[0], ""), digits(&r.cells[1], "")) {
                    by_study.insert((s, t), Err(format!("{at}: {m}")));
                }
            }
        }
    }
    let mut split_of: HashMap<String, Result<(String, String, String), String>> = HashMap::new();
    for r in splits.rows.iter().flatten() {
        let at = splits.at(r.line);
        let split = match r.cells[3].trim() {
            "train" => Ok("train"),
            "validate" => Ok("valid"),
            "test" => Ok("test"),
            other => Err(format!("{at}: split `{other}` is not train, validate or test")),
        };
        let v = split.map(|s| (s.to_string(), r.cells[2].trim().to_string(), r.cells[1].trim().to_string()));
        split_of.insert(r.cells[0].trim().to_string(), v);
    }

    let mut items = Vec::with_capacity(meta.rows.len());
    for r in &meta.rows {
        let r = match r {
            Ok(r) => r,
            Err(rej) => {
                items.push(Err(rej.clone()));
                continue;
            }
        };
        let at = meta.at(r.line);
        let dicom_id = r.cells[0].trim().to_string();
        let fail = |m: String| bad(&meta.name, r.line, dicom_id.clone(), m);
        let item = (|| {
            if dicom_id.is_empty() || !dicom_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
                return Err(fail(format!("dicom_id `{dicom_id}` is not MIMIC's hex id")));
            }
            let subject = digits(&r.cells[1], "subject_id").map_err(fail)?;
            let study = digits(&r.cells[2], "study_id").map_err(fail)?;
            let split = match split_of.get(&dicom_id) {
                None => return Err(fail(format!("dicom_id {dicom_id} has no row in {}", splits.name))),
                Some(Err(m)) => {
                    return Err(Rejected {
                        source: dicom_id.clone(),
                        code: super::table::BAD_ROW.into(),
                        message: m.clone(),
                    })
                }
                Some(Ok((split, s, t))) if *s == subject && *t == study => split.clone(),
                Some(Ok(_)) => {
                    return Err(fail(format!("{} gives another subject/study for dicom_id {dicom_id}", splits.name)))
                }
            };
            let labels = match by_study.get(&(subject.clone(), study.clone())) {
                None => vec![LabelValue::Null; 14],
                Some(Ok(v)) => v.clone(),
                Some(Err(m)) => {
                    return Err(Rejected {
                        source: dicom_id.clone(),
                        code: super::table::BAD_ROW.into(),
                        message: format!("{at}: the study's label row is unusable: {m}"),
                    })
                }
            };
            let view = r.cells[4].trim().to_ascii_uppercase();
            let file = root
                .join("files")
                .join(format!("p{}", &subject[..subject.len().min(2)]))
                .join(format!("p{subject}"))
                .join(format!("s{study}"))
                .join(format!("{dicom_id}.jpg"));
            Ok(Item {
                source: relative(&root, &file),
                place: at.clone(),
                file,
                format: Format::Image,
                key: sample_key(&["mimic", &dicom_id]),
                fields: SampleFields {
                    patient_id: Some(subject),
                    study_id: Some(study),
                    view_position: (!view.is_empty()).then_some(view),
                    split: Some(split),
                    labels,
                    ..SampleFields::default()
                },
            })
        })();
        items.push(item);
    }
    Ok(Plan {
        release: Release::Mimic,
        name: "mimic-cxr-jpg".into(),
        vocabulary: Vocabulary::Chexpert,
        columns: super::float_columns(&LABEL_HEADER[2..]),
        boxes: None,
        items,
        inputs: vec![labels.name.clone(), meta.name.clone(), splits.name.clone()],
        mapping: serde_json::json!({
            "labels": format!("the 14 observations of {} (labeler {}), joined by subject_id and study_id: 1, 0, -1 (uncertain) as written, null for blank or an unlabelled study", labels.name, labeler.name()),
            "split": "mimic-cxr-2.0.0-split.csv by dicom_id: train, validate -> valid, test",
            "view_position": "metadata ViewPosition as written (upper case), blank -> null",
            "patient_id": "subject_id (MIMIC's public pseudonym)",
            "study_id": "study_id (MIMIC's public pseudonym)",
            "key": "mimic_<dicom_id>",
        }),
        deid: "none applied here: MIMIC-CXR-JPG is released de-identified; its subject_id and study_id (public pseudonyms) are kept as patient_id/study_id".into(),
        dicom_ids: DicomIds::Release,
        options: serde_json::json!({ "labeler": labeler.name() }),
    })
}
