//! `chess-ingest padchest`: PadChest as released
//! (`PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`, also `.csv.gz`,
//! and the 16-bit PNGs in numbered folders `ROOT/<ImageDir>/<ImageID>`).
//!
//! One item per CSV row, with
//! - `Labels` (a Python list literal, `['pleural effusion', 'cardiomegaly']`)
//!   parsed into one Float32 column per label found in the file (trimmed,
//!   as written; 1 listed, 0 not; all null for a row whose cell is blank or
//!   `nan`); a cell that is not such a list rejects the row, naming it;
//! - `projection` (Utf8) = Projection as written, and `view_position`
//!   mapped from it: `PA` → PA, `AP` and `AP_horizontal` → AP, `L` →
//!   LATERAL, `COSTAL`, `EXCLUDE`, `UNK` and blank → null; another value
//!   rejects the row;
//! - `patient_id` = PatientID, `study_id` = StudyID (PadChest's public
//!   pseudonyms), key `pc_<ImageID stem>` (short: the stems are long); `sex` from
//!   PatientSex_DICOM (M/F/O, blank → null); `age_years` = the year of
//!   StudyDate_DICOM minus PatientBirth (a year), null when either is blank;
//!   no official split (null).
//!
//! Pixels: the 16-bit PNGs are read at 16 bits (no reduction to 8 bits
//! before the pipeline).

use std::collections::BTreeSet;
use std::path::Path;

use chess_shards::{LabelValue, SampleFields};

use super::table::{bad, relative, required, sample_key, Table};
use super::{DicomIds, Format, Item, Plan, Release, Result, Vocabulary};

/// The label CSV's name.
pub const CSV_NAME: &str = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv";

/// The CSV's header (its first column, the row index, has no name).
pub const HEADER: [&str; 36] = [
    "",
    "ImageID",
    "ImageDir",
    "StudyDate_DICOM",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "ViewPosition_DICOM",
    "Projection",
    "MethodProjection",
    "Pediatric",
    "Modality_DICOM",
    "Manufacturer_DICOM",
    "PhotometricInterpretation_DICOM",
    "PixelRepresentation_DICOM",
    "PixelAspectRatio_DICOM",
    "SpatialResolution_DICOM",
    "BitsStored_DICOM",
    "WindowCenter_DICOM",
    "WindowWidth_DICOM",
    "Rows_DICOM",
    "Columns_DICOM",
    "XRayTubeCurrent_DICOM",
    "Exposure_DICOM",
    "ExposureInuAs_DICOM",
    "ExposureTime",
    "RelativeXRayExposure_DICOM",
    "ReportID",
    "Report",
    "MethodLabel",
    "Labels",
    "Localizations",
    "LabelsLocalizationsBySentence",
    "labelCUIS",
    "LocalizationsCUIS",
];

/// Parses a `Labels` cell: `None` for blank or `nan`, else the labels
/// (trimmed, empty strings dropped, each once, in order).
pub fn parse_labels(cell: &str) -> Result<Option<Vec<String>>, String> {
    let t = cell.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    let inner = t
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or_else(|| format!("Labels `{t}` is not a list like ['pleural effusion', 'cardiomegaly']"))?;
    let mut out: Vec<String> = Vec::new();
    let mut rest = inner.trim_start();
    while !rest.is_empty() {
        let quote = rest
            .chars()
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or_else(|| format!("Labels `{t}`: an element is not quoted"))?;
        let end = rest[1..].find(quote).ok_or_else(|| format!("Labels `{t}`: an unterminated quote"))?;
        let label = rest[1..1 + end].trim();
        if !label.is_empty() && !out.iter().any(|l| l == label) {
            out.push(label.to_string());
        }
        rest = rest[end + 2..].trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("Labels `{t}`: elements must be separated by commas")),
        }
    }
    Ok(Some(out))
}

/// The view of a Projection cell.
pub fn view_of(projection: &str) -> Result<Option<&'static str>, String> {
    match projection.trim() {
        "PA" => Ok(Some("PA")),
        "AP" | "AP_horizontal" => Ok(Some("AP")),
        "L" => Ok(Some("LATERAL")),
        "COSTAL" | "EXCLUDE" | "UNK" | "" => Ok(None),
        other => Err(format!("Projection `{other}` is not PA, AP, AP_horizontal, L, COSTAL, EXCLUDE or UNK")),
    }
}

fn year(cell: &str, what: &str) -> Result<Option<i32>, String> {
    let t = cell.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("nan") {
        return Ok(None);
    }
    let digits = t.strip_suffix(".0").unwrap_or(t);
    let y = digits.get(..4).filter(|_| digits.len() == 4 || digits.len() == 8).and_then(|y| y.parse::<i32>().ok());
    match y {
        Some(y) if digits.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(y)),
        _ => Err(format!("{what} `{t}` is not a year or a YYYYMMDD date")),
    }
}

/// Reads a PadChest folder into a plan.
pub fn plan(root: &Path) -> Result<Plan> {
    let root = super::root_folder(root, "the PadChest folder holding its label CSV and the numbered image folders")?;
    let layout = format!("PadChest's layout is ROOT/{CSV_NAME}[.gz] and ROOT/<ImageDir>/<ImageID>.png");
    let csv_path = required(&root, CSV_NAME, &layout)?;
    let table = Table::read(&csv_path, &HEADER, "PadChest")?;
    let mut parsed = Vec::with_capacity(table.rows.len());
    let mut vocabulary = BTreeSet::new();
    for r in &table.rows {
        let r = match r {
            Ok(r) => r,
            Err(rej) => {
                parsed.push(Err(rej.clone()));
                continue;
            }
        };
        let c = |name: &str| r.cells[table.col(name)].trim();
        let image = c("ImageID").to_string();
        let fail = |m: String| bad(&table.name, r.line, image.clone(), m);
        let row = (|| {
            let stem = image
                .strip_suffix(".png")
                .filter(|s| !s.is_empty() && !s.contains(['/', '\\']))
                .ok_or_else(|| fail(format!("ImageID `{image}` is not a .png file name")))?;
            let dir = c("ImageDir");
            if dir.is_empty() || !dir.bytes().all(|b| b.is_ascii_digit()) {
                return Err(fail(format!("ImageDir `{dir}` is not a folder number")));
            }
            let labels = parse_labels(c("Labels")).map_err(fail)?;
            let projection = c("Projection").to_string();
            let view = view_of(&projection).map_err(fail)?;
            let sex = match c("PatientSex_DICOM") {
                s @ ("M" | "F" | "O") => Some(s.to_string()),
                "" | "None" => None,
                other => return Err(fail(format!("PatientSex_DICOM `{other}` is not M, F, O or blank"))),
            };
            let birth = year(c("PatientBirth"), "PatientBirth").map_err(fail)?;
            let study = year(c("StudyDate_DICOM"), "StudyDate_DICOM").map_err(fail)?;
            let age = match (birth, study) {
                (Some(b), Some(s)) if (0..=150).contains(&(s - b)) => Some((s - b) as f32),
                (Some(b), Some(s)) => {
                    return Err(fail(format!("PatientBirth {b} and StudyDate_DICOM {s} give an impossible age")))
                }
                _ => None,
            };
            let patient = c("PatientID").to_string();
            let file = root.join(dir).join(&image);
            let fields = SampleFields {
                patient_id: (!patient.is_empty()).then_some(patient),
                study_id: Some(c("StudyID").to_string()).filter(|s| !s.is_empty()),
                view_position: view.map(String::from),
                sex,
                age_years: age,
                ..SampleFields::default()
            };
            Ok((stem.to_string(), file, labels, projection, fields, table.at(r.line)))
        })();
        if let Ok((_, _, Some(labels), ..)) = &row {
            vocabulary.extend(labels.iter().cloned());
        }
        parsed.push(row);
    }
    let names: Vec<String> = vocabulary.into_iter().collect();
    let items = parsed
        .into_iter()
        .map(|row| {
            let (stem, file, labels, projection, mut fields, at) = row?;
            fields.labels = names
                .iter()
                .map(|n| labels.as_ref().map_or(LabelValue::Null, |l| super::present(l.contains(n))))
                .collect();
            fields.labels.push(if projection.is_empty() { LabelValue::Null } else { LabelValue::Str(projection) });
            Ok(Item {
                source: relative(&root, &file),
                place: at,
                file,
                format: Format::Image,
                key: sample_key(&["pc", &stem]),
                fields,
            })
        })
        .collect();
    let mut columns = super::float_columns(&names);
    columns.push(super::text_column("projection"));
    Ok(Plan {
        release: Release::Padchest,
        name: "padchest".into(),
        vocabulary: Vocabulary::Padchest,
        columns,
        boxes: None,
        items,
        inputs: vec![table.name.clone()],
        mapping: serde_json::json!({
            "labels": format!("Labels parsed as a list; one Float32 column per label found ({}): 1 listed, 0 not, null when the cell is blank or nan", names.len()),
            "projection": "Projection as written (Utf8)",
            "view_position": "Projection PA -> PA, AP/AP_horizontal -> AP, L -> LATERAL, COSTAL/EXCLUDE/UNK/blank -> null",
            "patient_id": "PatientID (PadChest's public pseudonym)",
            "study_id": "StudyID",
            "sex": "PatientSex_DICOM M/F/O, blank -> null",
            "age_years": "year of StudyDate_DICOM - PatientBirth",
            "split": "none (PadChest has no official split): null",
            "key": "pc_<ImageID stem> (pc_: the release's stems are up to 58 characters, keys 64)",
            "pixels": "16-bit PNGs read at 16 bits",
        }),
        deid: "none applied here: PadChest is released de-identified; its PatientID and StudyID (public pseudonyms) are kept".into(),
        dicom_ids: DicomIds::Release,
        options: serde_json::json!({}),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_lists_parse_as_padchest_writes_them() {
        assert_eq!(parse_labels("['normal']"), Ok(Some(vec!["normal".to_string()])));
        assert_eq!(
            parse_labels("['pleural effusion', ' cardiomegaly', '', \"pleural effusion\"]"),
            Ok(Some(vec!["pleural effusion".to_string(), "cardiomegaly".to_string()]))
        );
        assert_eq!(parse_labels("[]"), Ok(Some(vec![])));
        assert_eq!(parse_labels(""), Ok(None));
        assert_eq!(parse_labels("nan"), Ok(None));
        for bad in ["pleural effusion", "['a' 'b']", "['a", "[a]"] {
            assert!(parse_labels(bad).is_err(), "{bad}");
        }
        assert_eq!(view_of("AP_horizontal"), Ok(Some("AP")));
        assert_eq!(view_of("UNK"), Ok(None));
        assert!(view_of("Lateral").is_err());
        assert_eq!(year("1939.0", ""), Ok(Some(1939)));
        assert_eq!(year("20140915", ""), Ok(Some(2014)));
        assert_eq!(year("None", ""), Ok(None));
        assert!(year("19x9", "").is_err());
    }
}
