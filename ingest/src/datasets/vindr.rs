//! `chess-ingest vindr`: VinDr-CXR as released (PhysioNet,
//! `vindr-cxr/1.0.0/`): `annotations/image_labels_{train,test}.csv`,
//! `annotations/annotations_{train,test}.csv` (or the same names in ROOT)
//! and the DICOM files `train/<image_id>.dicom`, `test/<image_id>.dicom`.
//!
//! One item per image listed in an image-label CSV, read through the DICOM
//! path (decode with MONOCHROME1 inverted, BurnedInAnnotation refused, the
//! header de-identified by the allow-list), with
//! - the 28 labels (22 findings, 6 diagnoses, named as in the CSV) as
//!   Float32 columns: the training images have one row per reader and are
//!   aggregated by `--readers any` (1 when any reader says 1; default) or
//!   `majority` (1 when more than half of the image's readers say 1), else
//!   0; the test images have one consensus row, kept as written; a cell
//!   other than 0 or 1 rejects the image, naming the row;
//! - `boxes`: the image's rows of `annotations_<split>.csv` other than
//!   `No finding` as a JSON list of `{"rad_id", "class", "x_min", "y_min",
//!   "x_max", "y_max"}` in the original pixel frame (null without any); a
//!   broken row or an unknown class rejects the image;
//! - `split` train/test; key `vindr_<image_id>`, `study_id` = image_id:
//!   VinDr's pseudonymised image ids are kept, as CheXpert's ids are (said
//!   in `dataset.json`); `patient_id` = the keyed pseudonym of the header's
//!   PatientID when it has one (VinDr publishes no patient ids), sex, age
//!   and view from the de-identified header.
//!
//! A DICOM file under `train/` or `test/` that no CSV lists is rejected
//! (`unlisted_file`), so every file is accounted for.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use chess_shards::{LabelValue, SampleFields};

use super::table::{relative, required, sample_key, Table, BAD_ROW};
use super::{DicomIds, Format, Item, Plan, Rejected, Release, Result, Vocabulary};

/// VinDr-CXR's 28 labels, in CSV order.
pub const LABELS: [&str; 28] = [
    "Aortic enlargement",
    "Atelectasis",
    "Calcification",
    "Cardiomegaly",
    "Clavicle fracture",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Enlarged PA",
    "ILD",
    "Infiltration",
    "Lung Opacity",
    "Lung cavity",
    "Lung cyst",
    "Mediastinal shift",
    "Nodule/Mass",
    "Pleural effusion",
    "Pleural thickening",
    "Pneumothorax",
    "Pulmonary fibrosis",
    "Rib fracture",
    "Other lesion",
    "COPD",
    "Lung tumor",
    "Pneumonia",
    "Tuberculosis",
    "Other diseases",
    "No finding",
];

/// The classes a box row may name (the 22 findings and `No finding`).
pub fn box_classes() -> impl Iterator<Item = &'static str> {
    LABELS[..22].iter().copied().chain(std::iter::once("No finding"))
}

/// `annotations_<split>.csv`'s header.
pub const ANNOTATION_HEADER: [&str; 7] = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"];

/// Reject code: a DICOM file that no image-label CSV lists.
pub const UNLISTED_FILE: &str = "unlisted_file";

/// How the readers' labels of a training image become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Readers {
    #[default]
    Any,
    Majority,
}

impl Readers {
    pub fn name(self) -> &'static str {
        match self {
            Readers::Any => "any",
            Readers::Majority => "majority",
        }
    }

    /// The label from `positives` of `readers` readers.
    pub fn aggregate(self, positives: usize, readers: usize) -> bool {
        match self {
            Readers::Any => positives > 0,
            Readers::Majority => 2 * positives > readers,
        }
    }
}

fn header(with_reader: bool) -> Vec<&'static str> {
    let lead: &[&'static str] = if with_reader { &["image_id", "rad_ID"] } else { &["image_id"] };
    lead.iter().copied().chain(LABELS).collect()
}

fn image_id(cell: &str) -> Result<String, String> {
    let t = cell.trim();
    if !t.is_empty() && t.len() <= 58 && t.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(t.to_string())
    } else {
        Err(format!("image_id `{t}` is not VinDr's hex id"))
    }
}

/// Per image: (readers, positives per label), or why the image is rejected.
type Votes = BTreeMap<String, Result<(usize, [usize; 28]), String>>;

fn read_labels(path: &Path, split: &str) -> Result<(Table, Votes)> {
    // The training file has one row per reader (rad_ID), the test file one consensus row.
    let first_line = {
        let t = Table::read(path, &header(split == "train"), "VinDr-CXR");
        match t {
            Ok(t) => t,
            Err(_) if split == "test" => Table::read(path, &header(false), "VinDr-CXR")?,
            Err(e) => return Err(e),
        }
    };
    let table = first_line;
    let lead = table.rows.iter().flatten().next().map_or(2, |r| r.cells.len() - LABELS.len());
    let mut votes: Votes = BTreeMap::new();
    for r in table.rows.iter().flatten() {
        let Ok(id) = image_id(&r.cells[0]) else { continue };
        let at = table.at(r.line);
        let mut row = [0usize; 28];
        let mut problem = None;
        for (k, name) in LABELS.iter().enumerate() {
            match r.cells[lead + k].trim() {
                "1" | "1.0" => row[k] = 1,
                "0" | "0.0" => {}
                other => {
                    problem = Some(format!("{at}: {name} `{other}` is neither 0 nor 1"));
                    break;
                }
            }
        }
        let slot = votes.entry(id).or_insert(Ok((0, [0; 28])));
        match (problem, slot.as_mut()) {
            (Some(p), Ok(_)) => *slot = Err(p),
            (None, Ok((n, pos))) => {
                *n += 1;
                for k in 0..28 {
                    pos[k] += row[k];
                }
            }
            (_, Err(_)) => {}
        }
    }
    Ok((table, votes))
}

/// Per image: its boxes as JSON values, or why the image is rejected.
type Boxes = BTreeMap<String, Result<Vec<serde_json::Value>, String>>;

fn read_boxes(path: &Path) -> Result<(Table, Boxes)> {
    let table = Table::read(path, &ANNOTATION_HEADER, "VinDr-CXR")?;
    let mut boxes: Boxes = BTreeMap::new();
    let classes: HashSet<&str> = box_classes().collect();
    for r in &table.rows {
        let r = match r {
            Ok(r) => r,
            Err(rej) => {
                boxes.insert(rej.source.clone(), Err(rej.message.clone()));
                continue;
            }
        };
        let Ok(id) = image_id(&r.cells[0]) else { continue };
        let parsed = (|| {
            let class = r.cells[2].trim();
            if !classes.contains(class) {
                return Err(format!("class_name `{class}` is not one of VinDr-CXR's 22 findings or No finding"));
            }
            if class == "No finding" {
                return Ok(None);
            }
            let mut xy = [0f64; 4];
            for (k, name) in ANNOTATION_HEADER[3..].iter().enumerate() {
                let c = r.cells[3 + k].trim();
                xy[k] = c
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("{name} `{c}` is not a non-negative number"))?;
            }
            Ok(Some(serde_json::json!({
                "rad_id": r.cells[1].trim(), "class": class,
                "x_min": xy[0], "y_min": xy[1], "x_max": xy[2], "y_max": xy[3],
            })))
        })();
        let slot = boxes.entry(id).or_insert_with(|| Ok(Vec::new()));
        match (parsed, slot.as_mut()) {
            (Ok(Some(b)), Ok(list)) => list.push(b),
            (Ok(None), _) | (_, Err(_)) => {}
            (Err(m), Ok(_)) => *slot = Err(format!("{}: {m}", table.at(r.line))),
        }
    }
    Ok((table, boxes))
}

/// Reads a VinDr-CXR folder into a plan.
pub fn plan(root: &Path, readers: Readers) -> Result<Plan> {
    let root = super::root_folder(root, "the VinDr-CXR folder holding annotations/ and train/")?;
    let layout = "VinDr-CXR's layout is ROOT/annotations/image_labels_train.csv (and _test), ROOT/annotations/annotations_train.csv (and _test), ROOT/train/<image_id>.dicom, ROOT/test/<image_id>.dicom";
    let ann = if root.join("annotations").is_dir() { root.join("annotations") } else { root.clone() };
    let mut items: Vec<Result<Item, Rejected>> = Vec::new();
    let mut inputs = Vec::new();
    for split in ["train", "test"] {
        let labels_name = format!("image_labels_{split}.csv");
        if split == "test" && !ann.join(&labels_name).is_file() {
            continue; // the test labels are optional
        }
        let (labels, votes) = read_labels(&required(&ann, &labels_name, layout)?, split)?;
        let (boxes_table, boxes) = read_boxes(&required(&ann, &format!("annotations_{split}.csv"), layout)?)?;
        inputs.push(relative(&root, &labels.path));
        inputs.push(relative(&root, &boxes_table.path));
        for r in labels.rows.iter().filter_map(|r| r.as_ref().err()) {
            items.push(Err(r.clone()));
        }
        for r in labels.rows.iter().flatten() {
            if let Err(m) = image_id(&r.cells[0]) {
                items.push(Err(super::table::bad(&labels.name, r.line, r.cells[0].clone(), m)));
            }
        }
        let dir = root.join(split);
        let mut listed = HashSet::new();
        for (id, v) in &votes {
            listed.insert(format!("{id}.dicom"));
            let file = dir.join(format!("{id}.dicom"));
            let source = relative(&root, &file);
            let reject = |message: String| Rejected { source: source.clone(), code: BAD_ROW.into(), message };
            let item = (|| {
                let (n, pos) = v.as_ref().map_err(|m| reject(m.clone()))?;
                let mut values: Vec<LabelValue> =
                    pos.iter().map(|&p| super::present(readers.aggregate(p, *n))).collect();
                values.push(match boxes.get(id) {
                    None => LabelValue::Null,
                    Some(Ok(list)) if list.is_empty() => LabelValue::Null,
                    Some(Ok(list)) => LabelValue::Str(serde_json::Value::Array(list.clone()).to_string()),
                    Some(Err(m)) => return Err(reject(format!("its annotation row is unusable: {m}"))),
                });
                Ok(Item {
                    source: source.clone(),
                    place: format!("{} ({id})", labels.name),
                    file: file.clone(),
                    format: Format::Dicom,
                    key: sample_key(&["vindr", id]),
                    fields: SampleFields {
                        study_id: Some(id.clone()),
                        split: Some(split.to_string()),
                        labels: values,
                        ..SampleFields::default()
                    },
                })
            })();
            items.push(item);
        }
        let mut unlisted: Vec<PathBuf> =
            std::fs::read_dir(&dir).map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).collect()).unwrap_or_default();
        unlisted.retain(|p| {
            p.is_file() && !listed.contains(&p.file_name().unwrap_or_default().to_string_lossy().into_owned())
        });
        unlisted.sort();
        for p in unlisted {
            let source = relative(&root, &p);
            items.push(Err(Rejected {
                source: source.clone(),
                code: UNLISTED_FILE.into(),
                message: format!("{source}: not listed in {labels_name}"),
            }));
        }
    }
    let mut columns = super::float_columns(&LABELS);
    columns.push(super::text_column(super::BOXES));
    Ok(Plan {
        release: Release::Vindr,
        name: "vindr-cxr".into(),
        vocabulary: Vocabulary::Vindr,
        columns,
        boxes: Some(LABELS.len()),
        items,
        inputs,
        mapping: serde_json::json!({
            "labels": format!("the 28 image labels as Float32 0/1; training images: readers aggregated by --readers {} ({}); test images: the consensus row", readers.name(), match readers { Readers::Any => "1 when any reader says 1", Readers::Majority => "1 when more than half of the image's readers say 1" }),
            "boxes": "annotations_<split>.csv rows other than No finding as JSON [{rad_id, class, x_min, y_min, x_max, y_max}] in the original pixel frame, null without",
            "split": "train/ -> train, test/ -> test",
            "key": "vindr_<image_id>",
            "study_id": "image_id (VinDr's pseudonymised id, kept)",
            "patient_id": "keyed pseudonym of the DICOM PatientID when present, else null",
            "sex/age_years/view_position/modality": "from the de-identified DICOM header (allow-list)",
        }),
        deid: format!(
            "DICOM headers de-identified by chess-ingest ({}); VinDr-CXR is released pseudonymised and its image_id pseudonyms are kept as key suffix and study_id (as CheXpert's ids are kept)",
            crate::deid::DEID_METHOD
        ),
        dicom_ids: DicomIds::Release,
        options: serde_json::json!({ "readers": readers.name() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_aggregate_by_the_documented_rule() {
        assert!(Readers::Any.aggregate(1, 3));
        assert!(!Readers::Any.aggregate(0, 3));
        assert!(!Readers::Majority.aggregate(1, 3));
        assert!(Readers::Majority.aggregate(2, 3));
        assert!(!Readers::Majority.aggregate(1, 2), "a tie is not a majority");
        assert_eq!(box_classes().count(), 23);
    }
}
