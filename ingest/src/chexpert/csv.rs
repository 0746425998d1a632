//! Reading CheXpert's CSVs: the header check, `Path` resolution against
//! ROOT, the cells (labels, sex, age, view) and finding the CSVs of a
//! release folder. Header problems are errors; row problems are
//! [`Rejected`] rows.

use std::path::{Component, Path, PathBuf};

use super::{Split, BAD_ROW, HEADER, LEADING, OBSERVATIONS, TEST_CSV_NAMES};
use crate::datasets::table::Table;
use crate::error::{IngestError, Result};

/// Which header a CSV has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvLayout {
    /// [`HEADER`]: the official train/valid layout.
    Full,
    /// `Path` + the 14 observations (test labels only).
    PathAndLabels,
}

/// Checks a header row; says exactly what is wrong when it is not CheXpert's.
pub fn check_header(fields: &[&str], split: Split) -> Result<CsvLayout, String> {
    let fields: Vec<&str> =
        fields.iter().enumerate().map(|(i, f)| if i == 0 { f.trim_start_matches('\u{feff}') } else { f }).collect();
    if fields == HEADER {
        return Ok(CsvLayout::Full);
    }
    let short: Vec<&str> = std::iter::once("Path").chain(OBSERVATIONS).collect();
    if split == Split::Test && fields == short {
        return Ok(CsvLayout::PathAndLabels);
    }
    // Compare against the layout it looks like.
    let expected: &[&str] = if split == Split::Test && fields.get(1) == Some(&"No Finding") { &short } else { &HEADER };
    let problems = crate::datasets::table::header_problems(&fields, expected);
    let mut msg = format!("{}; CheXpert's header is `{}`", problems.join("; "), HEADER.join(","));
    if split == Split::Test {
        msg.push_str(" (a test label file may also have just `Path` and the 14 observations)");
    }
    Err(msg)
}

/// A label cell: `1.0`/`0.0`/`-1.0` (or `1`/`0`/`-1`), blank = null.
pub fn parse_label(cell: &str) -> Result<Option<f32>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f32>() {
        Ok(v) if v == 1.0 || v == 0.0 || v == -1.0 => Ok(Some(if v == 0.0 { 0.0 } else { v })),
        _ => Err(format!("`{t}` is not 1, 0, -1 or blank")),
    }
}

/// `Male`/`Female` (or `M`/`F`) → M/F; `Unknown` or blank → null.
pub fn parse_sex(cell: &str) -> Result<Option<String>, String> {
    match cell.trim().to_ascii_lowercase().as_str() {
        "male" | "m" => Ok(Some("M".into())),
        "female" | "f" => Ok(Some("F".into())),
        "unknown" | "" => Ok(None),
        other => Err(format!("Sex `{other}` is not Male, Female, Unknown or blank")),
    }
}

/// Age in years, blank = null.
pub fn parse_age(cell: &str) -> Result<Option<f32>, String> {
    let t = cell.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<f32>() {
        Ok(a) if (0.0..=150.0).contains(&a) => Ok(Some(a)),
        _ => Err(format!("Age `{t}` is not a number of years (0 to 150)")),
    }
}

/// (is frontal, view_position) from the `Frontal/Lateral` and `AP/PA` cells.
pub fn view_position(frontal_lateral: &str, ap_pa: &str) -> Result<(bool, String), String> {
    let ap_pa = ap_pa.trim().to_ascii_uppercase();
    match frontal_lateral.trim().to_ascii_lowercase().as_str() {
        "frontal" => Ok((true, if ap_pa == "AP" || ap_pa == "PA" { ap_pa } else { "FRONTAL".into() })),
        "lateral" => Ok((false, if ap_pa == "LL" || ap_pa == "RL" { ap_pa } else { "LATERAL".into() })),
        other => Err(format!("Frontal/Lateral `{other}` is neither Frontal nor Lateral")),
    }
}

fn key_part(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '-' }).collect()
}

/// What a `Path` cell says: the file, patient, study and sample key.
#[derive(Debug, Clone, PartialEq)]
pub struct ImagePath {
    pub file: PathBuf,
    /// Where else to look when `file` does not exist: ROOT plus the path
    /// without its first component (a renamed CheXpert folder).
    pub alt: Option<PathBuf>,
    pub patient_id: String,
    pub study_id: String,
    pub key: String,
    /// File stem, e.g. `view1_frontal`.
    pub stem: String,
}

/// Resolves a `Path` cell against ROOT (see the module docs).
pub fn parse_path(root: &Path, split: Split, cell: &str) -> Result<ImagePath, String> {
    let cell = cell.trim();
    if cell.is_empty() {
        return Err("Path is blank".into());
    }
    let rel = Path::new(cell);
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().ok_or_else(|| format!("Path `{cell}` is not UTF-8"))?),
            Component::CurDir => {}
            _ => return Err(format!("Path `{cell}` must be relative and must not contain `..`")),
        }
    }
    if parts.len() < 3 {
        return Err(format!("Path `{cell}` is not <patient>/<study>/<view file> (e.g. CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg)"));
    }
    let root_name = root.file_name().and_then(|n| n.to_str());
    let (file, alt) = if root_name.is_some_and(|n| n == parts[0]) {
        (root.parent().unwrap_or(Path::new("")).join(rel), None)
    } else {
        (root.join(rel), Some(parts[1..].iter().fold(root.to_path_buf(), |p, c| p.join(c))))
    };
    let n = parts.len();
    let (patient, study, name) = (parts[n - 3], parts[n - 2], parts[n - 1]);
    let stem = Path::new(name).file_stem().and_then(|s| s.to_str()).unwrap_or(name).to_string();
    let mut key = format!("{}_{}_{}_{}", split.name(), key_part(patient), key_part(study), key_part(&stem));
    if key.len() > chess_schemas::MAX_KEY_LEN {
        let h = blake3::hash(cell.as_bytes());
        key = format!("{}_{}", split.name(), &h.to_hex()[..32]);
    }
    Ok(ImagePath { file, alt, patient_id: patient.to_string(), study_id: format!("{patient}/{study}"), key, stem })
}

/// One usable CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub split: Split,
    /// The CSV's file name.
    pub csv: String,
    /// 1-based line of the record in its CSV (header = line 1).
    pub line: u64,
    /// The `Path` cell as written.
    pub path: String,
    pub image: ImagePath,
    pub sex: Option<String>,
    pub age_years: Option<f32>,
    pub frontal: bool,
    pub view_position: String,
    pub labels: [Option<f32>; 14],
}

/// A CSV row that cannot become a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The `Path` cell, or `<csv>:<line>` when there is none.
    pub source: String,
    pub code: String,
    pub message: String,
}

/// One CSV's rows, good and bad, in order.
#[derive(Debug)]
pub struct CsvRows {
    pub path: PathBuf,
    pub split: Split,
    pub layout: CsvLayout,
    pub rows: Vec<Result<Row, Rejected>>,
}

/// Reads one CheXpert CSV. Header problems are errors; row problems are
/// [`Rejected`] rows.
pub fn read_csv(root: &Path, csv_path: &Path, split: Split) -> Result<CsvRows> {
    let mut layout = CsvLayout::Full;
    let table = Table::read_checked(csv_path, "CheXpert", |got| {
        layout = check_header(got, split)?;
        Ok(match layout {
            CsvLayout::Full => HEADER.to_vec(),
            CsvLayout::PathAndLabels => std::iter::once("Path").chain(OBSERVATIONS).collect(),
        })
    })?;
    let rows = table
        .rows
        .into_iter()
        .map(|r| r.and_then(|rec| parse_record(root, split, layout, &table.name, rec.line, &rec.cells)))
        .collect();
    Ok(CsvRows { path: csv_path.to_path_buf(), split, layout, rows })
}

fn parse_record(
    root: &Path,
    split: Split,
    layout: CsvLayout,
    csv_name: &str,
    line: u64,
    cells: &[String],
) -> Result<Row, Rejected> {
    let path_cell = cells[0].trim().to_string();
    let source = if path_cell.is_empty() { format!("{csv_name}:{line}") } else { path_cell.clone() };
    let bad = |message: String| Rejected {
        source: source.clone(),
        code: BAD_ROW.into(),
        message: format!("{csv_name} line {line}: {message}"),
    };
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    let image = parse_path(root, split, cells[0]).map_err(&bad)?;
    let (sex, age_years, frontal, view_position, first_label) = match layout {
        CsvLayout::Full => {
            let sex = parse_sex(cells[1]).map_err(&bad)?;
            let age = parse_age(cells[2]).map_err(&bad)?;
            let (frontal, view) = view_position(cells[3], cells[4]).map_err(&bad)?;
            (sex, age, frontal, view, LEADING.len())
        }
        CsvLayout::PathAndLabels => {
            let stem = image.stem.to_ascii_lowercase();
            let (frontal, view) = if stem.contains("frontal") {
                (true, "FRONTAL".to_string())
            } else if stem.contains("lateral") {
                (false, "LATERAL".to_string())
            } else {
                return Err(bad(format!("cannot tell frontal from lateral: `{}` has neither word and the file has no Frontal/Lateral column", image.stem)));
            };
            (None, None, frontal, view, 1)
        }
    };
    let mut labels = [None; 14];
    for (k, name) in OBSERVATIONS.iter().enumerate() {
        labels[k] = parse_label(cells[first_label + k]).map_err(|m| bad(format!("{name}: {m}")))?;
    }
    Ok(Row {
        split,
        csv: csv_name.to_string(),
        line,
        path: path_cell,
        image,
        sex,
        age_years,
        frontal,
        view_position,
        labels,
    })
}

/// The CSVs of a CheXpert folder: train, valid and the test labels if any.
pub fn find_csvs(root: &Path) -> Result<Vec<(Split, PathBuf)>> {
    if !root.is_dir() {
        return Err(IngestError::Layout {
            path: root.to_path_buf(),
            message:
                "not a folder; give the CheXpert folder that holds train.csv and valid.csv (e.g. CheXpert-v1.0-small)"
                    .into(),
        });
    }
    let mut out = Vec::new();
    for (split, name) in [(Split::Train, "train.csv"), (Split::Valid, "valid.csv")] {
        let p = root.join(name);
        if !p.is_file() {
            return Err(IngestError::Layout {
                path: root.to_path_buf(),
                message: format!("no {name}: CheXpert's layout is ROOT/train.csv, ROOT/valid.csv (and optionally ROOT/test_labels.csv or ROOT/test.csv) with the images under ROOT/train, ROOT/valid, ..."),
            });
        }
        out.push((split, p));
    }
    if let Some(p) = TEST_CSV_NAMES.iter().map(|n| root.join(n)).find(|p| p.is_file()) {
        out.push((Split::Test, p));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_checked_exactly() {
        assert_eq!(check_header(&HEADER, Split::Train), Ok(CsvLayout::Full));
        let mut bom = HEADER;
        bom[0] = "\u{feff}Path";
        assert_eq!(check_header(&bom, Split::Valid), Ok(CsvLayout::Full));
        let short: Vec<&str> = std::iter::once("Path").chain(OBSERVATIONS).collect();
        assert_eq!(check_header(&short, Split::Test), Ok(CsvLayout::PathAndLabels));
        let e = check_header(&short, Split::Train).unwrap_err();
        assert!(e.starts_with("column 2 is `No Finding`; expected `Sex`"), "{e}");
        let mut swapped = HEADER;
        swapped.swap(5, 6);
        let e = check_header(&swapped, Split::Train).unwrap_err();
        assert!(e.contains("column 6 is `Enlarged Cardiomediastinum`; expected `No Finding`"), "{e}");
        let mut spaced = HEADER;
        spaced[2] = " Age";
        assert!(check_header(&spaced, Split::Train).unwrap_err().contains("extra spaces"));
    }

    #[test]
    fn cells_parse_as_chexpert_writes_them() {
        assert_eq!(parse_label("1.0"), Ok(Some(1.0)));
        assert_eq!(parse_label("0.0"), Ok(Some(0.0)));
        assert_eq!(parse_label("-0.0"), Ok(Some(0.0)));
        assert_eq!(parse_label("-1.0"), Ok(Some(-1.0)));
        assert_eq!(parse_label("-1"), Ok(Some(-1.0)));
        assert_eq!(parse_label(" "), Ok(None));
        assert!(parse_label("0.5").is_err() && parse_label("yes").is_err() && parse_label("NaN").is_err());
        assert_eq!(parse_sex("Male"), Ok(Some("M".into())));
        assert_eq!(parse_sex("Female"), Ok(Some("F".into())));
        assert_eq!(parse_sex("Unknown"), Ok(None));
        assert!(parse_sex("X").is_err());
        assert_eq!(parse_age("68"), Ok(Some(68.0)));
        assert_eq!(parse_age(""), Ok(None));
        assert!(parse_age("-3").is_err() && parse_age("old").is_err());
        assert_eq!(view_position("Frontal", "AP"), Ok((true, "AP".into())));
        assert_eq!(view_position("Frontal", "PA"), Ok((true, "PA".into())));
        assert_eq!(view_position("Frontal", ""), Ok((true, "FRONTAL".into())));
        assert_eq!(view_position("Frontal", "LL"), Ok((true, "FRONTAL".into())));
        assert_eq!(view_position("Lateral", ""), Ok((false, "LATERAL".into())));
        assert_eq!(view_position("Lateral", "LL"), Ok((false, "LL".into())));
        assert!(view_position("Oblique", "").is_err());
    }

    #[test]
    fn paths_resolve_like_the_release() {
        let root = Path::new("/data/CheXpert-v1.0-small");
        let p =
            parse_path(root, Split::Train, "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg").unwrap();
        assert_eq!(p.file, Path::new("/data/CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg"));
        assert_eq!(p.alt, None);
        assert_eq!(
            (p.patient_id.as_str(), p.study_id.as_str(), p.key.as_str()),
            ("patient00001", "patient00001/study1", "train_patient00001_study1_view1_frontal")
        );
        // Relative to ROOT, or a renamed folder.
        let p = parse_path(root, Split::Test, "test/patient64741/study1/view1_frontal.jpg").unwrap();
        assert_eq!(p.file, Path::new("/data/CheXpert-v1.0-small/test/patient64741/study1/view1_frontal.jpg"));
        assert_eq!(p.key, "test_patient64741_study1_view1_frontal");
        let p = parse_path(
            Path::new("/data/cx"),
            Split::Valid,
            "CheXpert-v1.0/valid/patient64541/study1/view1_frontal.jpg",
        )
        .unwrap();
        assert_eq!(p.alt.as_deref(), Some(Path::new("/data/cx/valid/patient64541/study1/view1_frontal.jpg")));
        for bad in ["", "/etc/passwd/x/y", "CheXpert-v1.0-small/../../x/y/z.jpg", "a/b.jpg"] {
            assert!(parse_path(root, Split::Train, bad).is_err(), "{bad}");
        }
        // Odd characters are replaced; over-long keys fall back to a hash.
        let p = parse_path(root, Split::Train, "x/patient 1/study.1/view1 frontal.jpg").unwrap();
        assert_eq!(p.key, "train_patient-1_study-1_view1-frontal");
        let long = format!("x/p/s/{}.jpg", "v".repeat(80));
        let p = parse_path(root, Split::Train, &long).unwrap();
        assert!(chess_schemas::validate_key(&p.key).is_ok() && p.key.starts_with("train_"), "{}", p.key);
    }
}
