//! `chess-ingest nih`: NIH ChestX-ray14 as released (`Data_Entry_2017.csv`,
//! `BBox_List_2017.csv`, `train_val_list.txt`, `test_list.txt` and the
//! PNGs in `images/`, `images_001/images/` … `images_012/images/`).
//! NIH's current download names the entry file `Data_Entry_2017_v2020.csv`
//! and its sixth column `Patient Sex` (was `Patient Gender`); either file
//! is read (one of them, never both).
//!
//! One item per row of the entry file, with
//! - the `|`-separated `Finding Labels` as 15 Float32 columns (the 14
//!   findings and `No Finding`, named as NIH writes them): 1 when listed,
//!   else 0; a finding outside NIH's 15 rejects the row, naming it;
//! - `boxes`: the image's rows of `BBox_List_2017.csv` as a JSON list of
//!   `{"label", "x", "y", "w", "h"}` in the original 1024-pixel frame
//!   (label as written, e.g. `Infiltrate`), null for an image without one;
//!   a broken box row rejects its image;
//! - `split`: `train` for `train_val_list.txt`, `test` for `test_list.txt`
//!   (null for an image in neither; one in both is rejected);
//! - `patient_id` = Patient ID as written, `study_id` = the file stem
//!   (`<patient>_<follow-up>`), key `nih_<file stem>`; `sex` M/F; `age_years`
//!   from Patient Age (`58` or `058Y`), null for NIH's few impossible ages
//!   above 150; `view_position` PA/AP.
//!
//! Pixels: most files are 8-bit grey; the RGBA (and RGB) ones hold the grey
//! value in R = G = B with an opaque alpha, and are read as BT.601 luma with
//! alpha ignored, which equals that grey value (torchxrayvision reads the
//! first channel: the same value). They are counted as colour conversions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chess_shards::{LabelValue, SampleFields};

use super::table::{bad, read_list, relative, required, sample_key, Table, BAD_ROW};
use super::{DicomIds, Format, Item, Plan, Release, Result, Vocabulary};

/// `Data_Entry_2017.csv`'s header (its bracketed names split at their commas; the trailing empty name optional).
/// `Data_Entry_2017_v2020.csv` has [`SEX_V2020`] in place of `Patient Gender`.
pub const ENTRY_HEADER: [&str; 12] = [
    "Image Index",
    "Finding Labels",
    "Follow-up #",
    "Patient ID",
    "Patient Age",
    "Patient Gender",
    "View Position",
    "OriginalImage[Width",
    "Height]",
    "OriginalImagePixelSpacing[x",
    "y]",
    "",
];

/// The 2017 entry file and the column holding the patient's sex.
pub const ENTRY_2017: (&str, &str) = ("Data_Entry_2017.csv", "Patient Gender");
/// The 2020 re-release of the entry file and its name for that column.
pub const ENTRY_V2020: (&str, &str) = ("Data_Entry_2017_v2020.csv", SEX_V2020);
/// The 2020 re-release's name for `Patient Gender`.
pub const SEX_V2020: &str = "Patient Sex";

/// `BBox_List_2017.csv`'s header (the three trailing empty names optional).
pub const BBOX_HEADER: [&str; 9] = ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""];

/// NIH's findings, then `No Finding`: the label columns.
pub const FINDINGS: [&str; 15] = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
    "Consolidation",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Pleural_Thickening",
    "Hernia",
    "No Finding",
];

/// The labels a box may carry (as `BBox_List_2017.csv` writes them).
pub const BOX_LABELS: [&str; 9] = [
    "Atelectasis",
    "Cardiomegaly",
    "Effusion",
    "Infiltrate",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pneumonia",
    "Pneumothorax",
];

const LAYOUT: &str = "NIH ChestX-ray14's layout is ROOT/Data_Entry_2017.csv (or Data_Entry_2017_v2020.csv), ROOT/BBox_List_2017.csv, ROOT/train_val_list.txt, ROOT/test_list.txt and ROOT/images*/[images/]*.png";

/// The finding columns of a `Finding Labels` cell.
pub fn parse_findings(cell: &str) -> Result<Vec<LabelValue>, String> {
    let mut v = vec![super::present(false); FINDINGS.len()];
    for f in cell.split('|').map(str::trim) {
        match FINDINGS.iter().position(|n| *n == f) {
            Some(i) => v[i] = super::present(true),
            None => {
                return Err(format!("Finding Labels: `{f}` is not one of NIH's findings ({})", FINDINGS.join(", ")))
            }
        }
    }
    Ok(v)
}

/// Patient Age: `58` or `058Y`; above 150 (NIH's known errors) → null.
pub fn parse_age(cell: &str) -> Result<Option<f32>, String> {
    let t = cell.trim();
    let n = t.strip_suffix('Y').unwrap_or(t);
    match n.parse::<u32>() {
        Ok(a) if a <= 150 => Ok(Some(a as f32)),
        Ok(_) => Ok(None),
        Err(_) => Err(format!("Patient Age `{t}` is not a number of years")),
    }
}

fn image_files(root: &Path) -> Result<HashMap<String, PathBuf>> {
    let mut found = HashMap::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .map_err(crate::error::IngestError::read(root))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("images") && e.path().is_dir())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for d in dirs {
        for dir in [d.join("images"), d] {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.filter_map(|e| e.ok()) {
                if e.path().is_file() {
                    found.entry(e.file_name().to_string_lossy().into_owned()).or_insert(e.path());
                }
            }
        }
    }
    Ok(found)
}

/// The entry file present (2017 or its 2020 re-release) and its sex column;
/// both present is an error, since which one holds the truth is the user's call.
fn entry_file(root: &Path) -> Result<(PathBuf, &'static str)> {
    let found: Vec<_> = [ENTRY_2017, ENTRY_V2020]
        .into_iter()
        .filter_map(|(name, sex)| Some((required(root, name, LAYOUT).ok()?, sex)))
        .collect();
    match found.as_slice() {
        [(path, sex)] => Ok((path.clone(), sex)),
        [] => Err(crate::error::IngestError::Layout {
            path: root.to_path_buf(),
            message: format!("no {} (nor {}); {LAYOUT}", ENTRY_2017.0, ENTRY_V2020.0),
        }),
        _ => Err(crate::error::IngestError::Layout {
            path: root.to_path_buf(),
            message: format!(
                "both {} and {} are here: move the one not to be read elsewhere",
                ENTRY_2017.0, ENTRY_V2020.0
            ),
        }),
    }
}

/// Reads an NIH ChestX-ray14 folder into a plan.
pub fn plan(root: &Path) -> Result<Plan> {
    let root = super::root_folder(root, "the ChestX-ray14 folder holding Data_Entry_2017.csv")?;
    let (entry_path, sex_column) = entry_file(&root)?;
    let bbox_path = required(&root, "BBox_List_2017.csv", LAYOUT)?;
    let train_path = required(&root, "train_val_list.txt", LAYOUT)?;
    let test_path = required(&root, "test_list.txt", LAYOUT)?;
    let mut header = ENTRY_HEADER;
    header[5] = sex_column;
    let entries = Table::read(&entry_path, &header, "NIH ChestX-ray14")?;
    let boxes = Table::read(&bbox_path, &BBOX_HEADER, "NIH ChestX-ray14")?;
    let mut split_of: HashMap<String, &str> = HashMap::new();
    let mut in_both = Vec::new();
    for (path, split) in [(&train_path, "train"), (&test_path, "test")] {
        for name in read_list(path)? {
            if split_of.insert(name.clone(), split).is_some() {
                in_both.push(name);
            }
        }
    }
    // Image → its boxes as JSON values, or the box row that is broken.
    let mut boxes_of: HashMap<String, Result<Vec<serde_json::Value>, String>> = HashMap::new();
    for r in &boxes.rows {
        let r = match r {
            Ok(r) => r,
            Err(rej) => {
                boxes_of.insert(rej.source.clone(), Err(rej.message.clone()));
                continue;
            }
        };
        let image = r.cells[0].trim().to_string();
        let parsed = (|| {
            let label = r.cells[1].trim();
            if !BOX_LABELS.contains(&label) {
                return Err(format!("Finding Label `{label}` is not one of {}", BOX_LABELS.join(", ")));
            }
            let mut xywh = [0f64; 4];
            for (k, name) in ["x", "y", "w", "h"].iter().enumerate() {
                let c = r.cells[2 + k].trim();
                xywh[k] = c
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && *v >= 0.0)
                    .ok_or_else(|| format!("box {name} `{c}` is not a non-negative number"))?;
            }
            Ok(serde_json::json!({ "label": label, "x": xywh[0], "y": xywh[1], "w": xywh[2], "h": xywh[3] }))
        })();
        let slot = boxes_of.entry(image).or_insert_with(|| Ok(Vec::new()));
        match (parsed, slot.as_mut()) {
            (Ok(b), Ok(list)) => list.push(b),
            (Err(m), Ok(_)) => *slot = Err(format!("{}: {m}", boxes.at(r.line))),
            (_, Err(_)) => {}
        }
    }
    let files = image_files(&root)?;
    let mut items = Vec::with_capacity(entries.rows.len());
    for r in &entries.rows {
        let r = match r {
            Ok(r) => r,
            Err(rej) => {
                items.push(Err(rej.clone()));
                continue;
            }
        };
        let at = entries.at(r.line);
        let c = |name: &str| r.cells[entries.col(name)].trim();
        let image = c("Image Index").to_string();
        let fail = |m: String| bad(&entries.name, r.line, image.clone(), m);
        let item = (|| {
            let stem = image
                .strip_suffix(".png")
                .filter(|s| !s.is_empty() && !s.contains(['/', '\\']))
                .ok_or_else(|| fail(format!("Image Index `{image}` is not a .png file name")))?;
            let labels = parse_findings(c("Finding Labels")).map_err(fail)?;
            let patient = c("Patient ID");
            if patient.is_empty() || !patient.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(format!("Patient ID `{patient}` is not a number")));
            }
            let age = parse_age(c("Patient Age")).map_err(fail)?;
            let sex = match c(sex_column) {
                "M" => "M",
                "F" => "F",
                other => return Err(fail(format!("{sex_column} `{other}` is neither M nor F"))),
            };
            let view = match c("View Position") {
                v @ ("PA" | "AP") => v.to_string(),
                other => return Err(fail(format!("View Position `{other}` is neither PA nor AP"))),
            };
            if in_both.contains(&image) {
                return Err(fail(format!("{image} is in both train_val_list.txt and test_list.txt")));
            }
            let boxes = match boxes_of.get(&image) {
                None => LabelValue::Null,
                Some(Ok(list)) => LabelValue::Str(serde_json::Value::Array(list.clone()).to_string()),
                Some(Err(m)) => {
                    return Err(super::Rejected {
                        source: image.clone(),
                        code: BAD_ROW.into(),
                        message: format!("{at}: its box row is unusable: {m}"),
                    })
                }
            };
            let mut labels = labels;
            labels.push(boxes);
            let file = files.get(&image).cloned().unwrap_or_else(|| root.join("images").join(&image));
            Ok(Item {
                source: relative(&root, &file),
                place: at.clone(),
                file,
                format: Format::Image,
                key: sample_key(&["nih", stem]),
                fields: SampleFields {
                    patient_id: Some(patient.to_string()),
                    study_id: Some(stem.to_string()),
                    view_position: Some(view),
                    sex: Some(sex.to_string()),
                    age_years: age,
                    split: split_of.get(&image).map(|s| s.to_string()),
                    labels,
                    ..SampleFields::default()
                },
            })
        })();
        items.push(item);
    }
    let mut columns = super::float_columns(&FINDINGS);
    columns.push(super::text_column(super::BOXES));
    Ok(Plan {
        release: Release::Nih,
        name: "nih-chestxray14".into(),
        vocabulary: Vocabulary::Nih,
        columns,
        boxes: Some(FINDINGS.len()),
        items,
        inputs: [entries.name.as_str(), "BBox_List_2017.csv", "train_val_list.txt", "test_list.txt"]
            .map(String::from)
            .to_vec(),
        mapping: serde_json::json!({
            "labels": "Finding Labels split at | into the 14 findings and No Finding as Float32 columns: 1 listed, 0 not",
            "boxes": "BBox_List_2017.csv rows of the image as JSON [{label, x, y, w, h}] in the original pixel frame, null without",
            "split": "train_val_list.txt -> train, test_list.txt -> test, neither -> null",
            "patient_id": "Patient ID as written (NIH's public pseudonym)",
            "study_id": "the file stem, <patient>_<follow-up>",
            "age_years": "Patient Age (58 or 058Y); above 150 -> null",
            "sex": format!("{sex_column} M/F"),
            "view_position": "View Position PA/AP",
            "colour": "RGB/RGBA files -> BT.601 luma, alpha ignored (= the grey value, as R = G = B in NIH's files)",
            "key": "nih_<file stem>",
        }),
        deid: "none applied here: ChestX-ray14 is released de-identified; its Patient ID and file names (public pseudonyms) are kept".into(),
        dicom_ids: DicomIds::Release,
        options: serde_json::json!({}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_and_ages_parse_as_nih_writes_them() {
        let v = parse_findings("Cardiomegaly|Effusion").unwrap();
        assert_eq!(v[1], super::super::present(true));
        assert_eq!(v[2], super::super::present(true));
        assert_eq!(v[0], super::super::present(false));
        assert!(parse_findings("No Finding").unwrap()[14] == super::super::present(true));
        assert!(parse_findings("Cardiomegaly|Pneumonitis").unwrap_err().contains("`Pneumonitis`"));
        assert_eq!(parse_age("058Y"), Ok(Some(58.0)));
        assert_eq!(parse_age("58"), Ok(Some(58.0)));
        assert_eq!(parse_age("412"), Ok(None));
        assert!(parse_age("old").is_err());
    }

    fn release_folder(entry_name: &str, sex_column: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        // As NIH's 2020 file writes it: no trailing empty column, ages without `Y`.
        w(
            entry_name,
            &format!(
                "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,{sex_column},View Position,\
OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n\
00000001_000.png,Cardiomegaly,0,1,57,M,PA,2682,2749,0.143,0.143\n\
00000002_000.png,No Finding,0,2,80,X,PA,2500,2048,0.171,0.171\n"
            ),
        );
        w("BBox_List_2017.csv", "Image Index,Finding Label,Bbox [x,y,w,h],,,\n");
        w("train_val_list.txt", "00000001_000.png\n00000002_000.png\n");
        w("test_list.txt", "");
        dir
    }

    #[test]
    fn the_2020_release_is_read_with_its_patient_sex_column() {
        let dir = release_folder("Data_Entry_2017_v2020.csv", "Patient Sex");
        let plan = plan(dir.path()).unwrap();
        assert_eq!(plan.inputs[0], "Data_Entry_2017_v2020.csv");
        let first = plan.items[0].as_ref().unwrap();
        assert_eq!(first.fields.sex.as_deref(), Some("M"));
        assert_eq!(first.fields.age_years, Some(57.0));
        let bad = plan.items[1].as_ref().unwrap_err();
        assert!(bad.message.contains("Data_Entry_2017_v2020.csv line 3: Patient Sex `X`"), "{}", bad.message);
    }

    #[test]
    fn an_entry_file_with_the_other_releases_sex_column_is_refused_by_name() {
        // The 2017 file name with the 2020 column: the header check names the column.
        let dir = release_folder("Data_Entry_2017.csv", "Patient Sex");
        let err = plan(dir.path()).unwrap_err().to_string();
        assert!(err.contains("Patient Gender") && err.contains("Patient Sex"), "{err}");
    }

    #[test]
    fn both_entry_files_present_is_an_error_naming_both() {
        let dir = release_folder("Data_Entry_2017.csv", "Patient Gender");
        std::fs::copy(dir.path().join("Data_Entry_2017.csv"), dir.path().join("Data_Entry_2017_v2020.csv")).unwrap();
        let err = plan(dir.path()).unwrap_err().to_string();
        assert!(err.contains("Data_Entry_2017.csv") && err.contains("Data_Entry_2017_v2020.csv"), "{err}");
    }
}
