//! `chess-ingest chexpert` end to end on a CheXpert-layout fixture written by
//! the test (exact header, small JPEGs and PNGs, several studies and views per
//! patient, blanks and −1s, a missing image, a corrupt JPEG, bad rows), then
//! `chess-shards fractions` on the result: exact label round-trip, accounting,
//! same pixel pipeline as DICOM, no patient leakage, fraction sizes, nesting,
//! determinism and the uncertainty policies.
//!
//! The `chess-shards` binary is taken from `CHESS_SHARDS_BIN` when set,
//! otherwise built with `cargo build -p chess-shards` (same target dir).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::common::{chess_ingest, chess_shards_bin};
use chess_ingest::chexpert::{self, OBSERVATIONS};
use chess_ingest::pipeline::{self, BitDepth, PipelineOptions, PixelSemantics};
use chess_shards::{Dataset, LabelValue, Manifest, ManifestRow, NpyZstDecoder};

const SIZE: u32 = 16;
const ROOT_NAME: &str = "CheXpert-v1.0-small";
const LABEL_CELLS: [&str; 5] = ["1.0", "0.0", "-1.0", "", "1.0"];

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A non-square grey image with structure and a bright corner.
fn gray8(seed: u32, w: u32, h: u32) -> Vec<u8> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            let v = 30 + (x * 5 + y * 3 + seed * 17) % 160 + if x < 3 && y < 3 { 60 } else { 0 };
            v.min(255) as u8
        })
        .collect()
}

fn write_jpeg(path: &Path, seed: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let (w, h) = (20u16, 24u16);
    let enc = jpeg_encoder::Encoder::new_file(path, 90).unwrap();
    enc.encode(&gray8(seed, w as u32, h as u32), w, h, jpeg_encoder::ColorType::Luma).unwrap();
}

fn png_bytes(w: u32, h: u32, depth: png::BitDepth, color: png::ColorType, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(color);
    enc.set_depth(depth);
    enc.write_header().unwrap().write_image_data(data).unwrap();
    out
}

fn png16_values(w: u32, h: u32) -> Vec<u16> {
    (0..w * h).map(|i| ((i % w) * 2000 + (i / w) * 700 + 100) as u16).collect()
}

fn write_png16(path: &Path, w: u32, h: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let data: Vec<u8> = png16_values(w, h).iter().flat_map(|v| v.to_be_bytes()).collect();
    std::fs::write(path, png_bytes(w, h, png::BitDepth::Sixteen, png::ColorType::Grayscale, &data)).unwrap();
}

/// One CSV row the fixture writes, and what should become of it.
#[derive(Debug, Clone)]
struct Expect {
    split: &'static str,
    path: String,
    cells: Vec<String>,
    /// `Some(key)` for a sample, `None` for a rejection.
    key: Option<String>,
    reject: Option<&'static str>,
}

struct Fixture {
    root: PathBuf,
    rows: Vec<Expect>,
}

const HEADER: &str = "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Enlarged Cardiomediastinum,Cardiomegaly,Lung Opacity,Lung Lesion,Edema,Consolidation,Pneumonia,Atelectasis,Pneumothorax,Pleural Effusion,Pleural Other,Fracture,Support Devices";

fn csv_line(cells: &[String]) -> String {
    cells.iter().map(|c| if c.contains(',') { format!("\"{c}\"") } else { c.clone() }).collect::<Vec<_>>().join(",")
}

/// Writes the CheXpert-layout fixture under `dir/CheXpert-v1.0-small`.
/// Patients 1-30 train, 31-36 valid, 37-42 test; 1-3 studies each, every
/// study a frontal view and every other one a lateral too.
fn fixture(dir: &Path) -> Fixture {
    let root = dir.join(ROOT_NAME);
    std::fs::create_dir_all(&root).unwrap();
    let mut rows = Vec::new();
    let mut n = 0u32;
    let mut csvs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for p in 1..=42u32 {
        let split = match p {
            1..=30 => "train",
            31..=36 => "valid",
            _ => "test",
        };
        let patient = format!("patient{p:05}");
        let sex = ["Male", "Female", "Unknown", "Female"][(p % 4) as usize];
        let age = if p % 9 == 0 { String::new() } else { format!("{}", 20 + p) };
        for s in 1..=(1 + p % 3) {
            let views: &[&str] = if (p + s) % 2 == 0 { &["frontal", "lateral"] } else { &["frontal"] };
            for (v, kind) in views.iter().enumerate() {
                let rel = format!("{ROOT_NAME}/{split}/{patient}/study{s}/view{}_{kind}.jpg", v + 1);
                write_jpeg(&dir.join(&rel), n);
                let mut cells = vec![
                    rel.clone(),
                    sex.to_string(),
                    age.clone(),
                    if *kind == "frontal" { "Frontal" } else { "Lateral" }.to_string(),
                    if *kind == "frontal" { ["AP", "PA"][(n % 2) as usize] } else { "" }.to_string(),
                ];
                for l in 0..14u32 {
                    cells.push(LABEL_CELLS[((n + l * 3 + p) % 5) as usize].to_string());
                }
                let key = format!("{split}_{patient}_study{s}_view{}_{kind}", v + 1);
                csvs.entry(split).or_default().push(csv_line(&cells));
                rows.push(Expect { split, path: rel, cells, key: Some(key), reject: None });
                n += 1;
            }
        }
    }
    // A 16-bit PNG (valid, patient 31) and an 8-bit RGB PNG (train, patient 2): same pipeline.
    let extra = |split: &'static str,
                 rel: &str,
                 rows: &mut Vec<Expect>,
                 csvs: &mut BTreeMap<&str, Vec<String>>,
                 key: Option<&str>,
                 reject: Option<&'static str>| {
        let mut cells: Vec<String> = vec![rel.to_string(), "Female".into(), "61".into(), "Frontal".into(), "PA".into()];
        cells.extend((0..14).map(|l| LABEL_CELLS[l % 5].to_string()));
        csvs.entry(split).or_default().push(csv_line(&cells));
        rows.push(Expect { split, path: rel.to_string(), cells, key: key.map(str::to_string), reject });
    };
    let png16 = format!("{ROOT_NAME}/valid/patient00031/study9/view1_frontal.png");
    write_png16(&dir.join(&png16), 24, 20);
    extra("valid", &png16, &mut rows, &mut csvs, Some("valid_patient00031_study9_view1_frontal"), None);
    let rgb = format!("{ROOT_NAME}/train/patient00002/study9/view1_frontal.png");
    let rgb_data: Vec<u8> = gray8(5, 12, 10).iter().flat_map(|&g| [g, g, g]).collect();
    std::fs::create_dir_all(dir.join(&rgb).parent().unwrap()).unwrap();
    std::fs::write(dir.join(&rgb), png_bytes(12, 10, png::BitDepth::Eight, png::ColorType::Rgb, &rgb_data)).unwrap();
    extra("train", &rgb, &mut rows, &mut csvs, Some("train_patient00002_study9_view1_frontal"), None);
    // Rejections: a missing image, a corrupt JPEG, a text file, a duplicate row.
    extra(
        "train",
        &format!("{ROOT_NAME}/train/patient00003/study7/view1_frontal.jpg"),
        &mut rows,
        &mut csvs,
        None,
        Some("missing_image"),
    );
    let corrupt = format!("{ROOT_NAME}/train/patient00004/study7/view1_frontal.jpg");
    std::fs::create_dir_all(dir.join(&corrupt).parent().unwrap()).unwrap();
    let mut bytes = std::fs::read(dir.join(&rows[0].path)).unwrap();
    bytes.truncate(bytes.len() / 3);
    bytes.extend_from_slice(&[0xFF, 0xD9]);
    std::fs::write(dir.join(&corrupt), &bytes).unwrap();
    extra("train", &corrupt, &mut rows, &mut csvs, None, Some("decode_error"));
    let text = format!("{ROOT_NAME}/test/patient00037/study8/view1_frontal.jpg");
    std::fs::create_dir_all(dir.join(&text).parent().unwrap()).unwrap();
    std::fs::write(dir.join(&text), "not an image").unwrap();
    extra("test", &text, &mut rows, &mut csvs, None, Some("unsupported_format"));
    let dup = rows[1].path.clone();
    extra("train", &dup, &mut rows, &mut csvs, None, Some("duplicate_row"));
    // Bad rows: a label that is not 1/0/-1/blank, a short row, a path escaping ROOT.
    let mut cells: Vec<String> = rows[0].cells.clone();
    cells[0] = format!("{ROOT_NAME}/train/patient00005/study1/view9_frontal.jpg");
    cells[7] = "2.0".into();
    csvs.entry("train").or_default().push(csv_line(&cells));
    rows.push(Expect { split: "train", path: cells[0].clone(), cells, key: None, reject: Some("bad_csv_row") });
    let short = format!("{ROOT_NAME}/valid/patient00032/study1/view9_frontal.jpg,Male,40");
    csvs.entry("valid").or_default().push(short);
    rows.push(Expect {
        split: "valid",
        path: format!("{ROOT_NAME}/valid/patient00032/study1/view9_frontal.jpg"),
        cells: vec![],
        key: None,
        reject: Some("bad_csv_row"),
    });
    let mut cells: Vec<String> = rows[0].cells.clone();
    cells[0] = format!("{ROOT_NAME}/../secret/patient00001/study1/view1_frontal.jpg");
    csvs.entry("train").or_default().push(csv_line(&cells));
    rows.push(Expect { split: "train", path: cells[0].clone(), cells, key: None, reject: Some("bad_csv_row") });

    for (split, lines) in &csvs {
        let name = format!("{split}.csv");
        let mut text = format!("{HEADER}\n");
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        std::fs::write(root.join(name), text).unwrap();
    }
    Fixture { root, rows }
}

fn label_names(m: &Manifest) -> Vec<String> {
    m.columns.labels.iter().map(|c| c.name.clone()).collect()
}

fn float_of(v: &LabelValue) -> Option<f64> {
    match v {
        LabelValue::Null => None,
        LabelValue::Float(f) => Some(*f),
        other => panic!("label value {other:?} is not a float"),
    }
}

fn rejected(out: &Path) -> Vec<(String, String, String)> {
    use arrow_array::{Array, StringArray};
    let f = std::fs::File::open(out.join("private/rejected.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap();
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let col = |name: &str| b.column_by_name(name).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let (s, r, m) = (col("source_path"), col("reason_code"), col("message"));
        for i in 0..s.len() {
            rows.push((s.value(i).to_string(), r.value(i).to_string(), m.value(i).to_string()));
        }
    }
    rows
}

/// The fixture imported once, shared by the tests.
struct Imported {
    _dir: tempfile::TempDir,
    fx: Fixture,
    out: PathBuf,
}

fn imported() -> &'static Imported {
    static CELL: OnceLock<Imported> = OnceLock::new();
    CELL.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let fx = fixture(dir.path());
        let out = dir.path().join("chexpert");
        let o = chess_ingest()
            .arg("chexpert")
            .arg(&fx.root)
            .arg("--out")
            .arg(&out)
            .args(["--size", &SIZE.to_string(), "--shard-samples", "40", "--threads", "2"])
            .output()
            .unwrap();
        check(&o, "chess-ingest chexpert");
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("rejected"), "{stdout}");
        Imported { _dir: dir, fx, out }
    })
}

#[test]
fn labels_and_fields_round_trip_exactly() {
    let im = imported();
    let m = Manifest::open(&im.out.join("manifest.parquet")).unwrap();
    assert_eq!(label_names(&m), OBSERVATIONS.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert!(m.columns.labels.iter().all(|c| c.label_type == chess_schemas::LabelType::Float32));
    let rows: HashMap<String, ManifestRow> = m.rows().into_iter().map(|r| (r.key.clone(), r)).collect();
    let expected: Vec<&Expect> = im.fx.rows.iter().filter(|e| e.key.is_some()).collect();
    assert_eq!(rows.len(), expected.len(), "one sample per good CSV row");
    let (mut blanks, mut uncertain) = (0, 0);
    for e in expected {
        let key = e.key.as_ref().unwrap();
        let r = rows.get(key).unwrap_or_else(|| panic!("no sample {key}"));
        for (k, name) in OBSERVATIONS.iter().enumerate() {
            let cell = &e.cells[5 + k];
            let want: Option<f64> = if cell.is_empty() { None } else { Some(cell.parse().unwrap()) };
            assert_eq!(float_of(&r.labels[k]), want, "{key} {name}: CSV cell `{cell}`");
            blanks += want.is_none() as u32;
            uncertain += (want == Some(-1.0)) as u32;
        }
        let sex = match e.cells[1].as_str() {
            "Male" => Some("M"),
            "Female" => Some("F"),
            _ => None,
        };
        assert_eq!(r.sex.as_deref(), sex, "{key}");
        assert_eq!(
            r.age_years,
            if e.cells[2].is_empty() { None } else { Some(e.cells[2].parse::<f32>().unwrap()) },
            "{key}"
        );
        let view = if e.cells[3] == "Frontal" { e.cells[4].clone() } else { "LATERAL".to_string() };
        assert_eq!(r.view_position.as_deref(), Some(view.as_str()), "{key}");
        assert_eq!(r.split.as_deref(), Some(e.split), "{key}");
        let parts: Vec<&str> = e.path.split('/').collect();
        assert_eq!(r.patient_id.as_deref(), Some(parts[2]), "{key}");
        assert_eq!(r.study_id.as_deref(), Some(format!("{}/{}", parts[2], parts[3]).as_str()), "{key}");
        let format = if e.path.ends_with(".png") { "PNG" } else { "JPEG" };
        assert_eq!(r.modality.as_deref(), Some(format), "{key}");
        assert_eq!((r.height, r.width, r.dtype.as_str()), (SIZE, SIZE, "uint16"));
        assert!(r.clip_value.is_some());
    }
    assert!(blanks > 50 && uncertain > 50, "the fixture exercises blanks ({blanks}) and -1 ({uncertain})");
    let info: serde_json::Value = serde_json::from_slice(&std::fs::read(im.out.join("dataset.json")).unwrap()).unwrap();
    assert!(info.to_string().contains("chexpert"), "{info}");
}

#[test]
fn every_row_is_a_sample_or_a_listed_rejection() {
    let im = imported();
    let rej = rejected(&im.out);
    let want: BTreeSet<(String, String)> =
        im.fx.rows.iter().filter_map(|e| e.reject.map(|r| (e.path.clone(), r.to_string()))).collect();
    let got: BTreeSet<(String, String)> = rej.iter().map(|(s, r, _)| (s.clone(), r.clone())).collect();
    assert_eq!(got, want, "{rej:#?}");
    for (s, r, m) in &rej {
        assert!(m.contains("line "), "message says where: {s} {r} {m}");
    }
    let bad_label = rej.iter().find(|(s, _, _)| s.contains("view9_frontal") && s.contains("patient00005")).unwrap();
    assert!(bad_label.2.contains("Cardiomegaly") && bad_label.2.contains("2.0"), "{bad_label:?}");
    let m = Manifest::open(&im.out.join("manifest.parquet")).unwrap();
    assert_eq!(m.len() + rej.len(), im.fx.rows.len());
}

#[test]
fn pixels_go_through_the_dicom_pipeline() {
    let im = imported();
    let ds = Dataset::open(&im.out).unwrap();
    let mut dec = NpyZstDecoder::new();
    let opts = PipelineOptions { size: SIZE, ..PipelineOptions::default() };
    let mut stored = |key: &str| {
        let i = ds.find_key(key).unwrap_or_else(|| panic!("no {key}"));
        ds.read_image(&ds.manifest.view().row(i), &mut dec).unwrap().to_u16()
    };
    // A JPEG: decoded independently here, then the shared pipeline.
    let e = &im.fx.rows[0];
    let img = im.fx.root.parent().unwrap().join(&e.path);
    let mut d = jpeg_decoder::Decoder::new(std::fs::File::open(&img).unwrap());
    let gray: Vec<i32> = d.decode().unwrap().into_iter().map(i32::from).collect();
    let info = d.info().unwrap();
    let want = pipeline::run(&gray, info.height as u32, info.width as u32, &PixelSemantics::default(), &opts);
    assert_eq!(stored(e.key.as_ref().unwrap()), want.pixels);
    assert_eq!(chexpert::decode_image(&std::fs::read(&img).unwrap()).unwrap().values, gray);
    // A 16-bit PNG: lossless, so the known values themselves.
    let values: Vec<i32> = png16_values(24, 20).into_iter().map(i32::from).collect();
    let want = pipeline::run(&values, 20, 24, &PixelSemantics::default(), &opts);
    assert_eq!(stored("valid_patient00031_study9_view1_frontal"), want.pixels);
    let row = ds.manifest.view().row(ds.find_key("valid_patient00031_study9_view1_frontal").unwrap());
    assert_eq!(row.clip_value, Some(want.clip_value));
    // An RGB PNG with R = G = B: the grey values exactly.
    let values: Vec<i32> = gray8(5, 12, 10).into_iter().map(i32::from).collect();
    let want = pipeline::run(&values, 10, 12, &PixelSemantics::default(), &opts);
    assert_eq!(stored("train_patient00002_study9_view1_frontal"), want.pixels);
}

#[test]
fn decoders_cover_gray_depths_and_reject_junk() {
    let values: Vec<u8> = (0..48).map(|i| (i * 5) as u8).collect();
    let g = chexpert::decode_image(&png_bytes(8, 6, png::BitDepth::Eight, png::ColorType::Grayscale, &values)).unwrap();
    assert_eq!((g.rows, g.cols, g.bits, g.format), (6, 8, 8, "PNG"));
    assert_eq!(g.values, values.iter().map(|&v| v as i32).collect::<Vec<_>>());
    // Grey + alpha: alpha ignored.
    let ga: Vec<u8> = values.iter().flat_map(|&v| [v, 7]).collect();
    let g =
        chexpert::decode_image(&png_bytes(8, 6, png::BitDepth::Eight, png::ColorType::GrayscaleAlpha, &ga)).unwrap();
    assert_eq!(g.values, values.iter().map(|&v| v as i32).collect::<Vec<_>>());
    // 1-bit grey expands to 0/255.
    let g = chexpert::decode_image(&png_bytes(8, 1, png::BitDepth::One, png::ColorType::Grayscale, &[0b1010_0000]))
        .unwrap();
    assert_eq!(g.values, vec![255, 0, 255, 0, 0, 0, 0, 0]);
    // Colour → BT.601 luma.
    let g = chexpert::decode_image(&png_bytes(1, 1, png::BitDepth::Eight, png::ColorType::Rgb, &[255, 0, 0])).unwrap();
    assert_eq!((g.values[0], g.from_colour), (76, true));
    assert_eq!(chexpert::decode_image(b"GIF89a").unwrap_err().0, "unsupported_format");
    assert_eq!(chexpert::decode_image(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]).unwrap_err().0, "decode_error");
    assert_eq!(chexpert::decode_image(b"\x89PNG\r\n\x1a\n\0\0").unwrap_err().0, "decode_error");
    let g = chexpert::decode_image(&png_bytes(1, 1, png::BitDepth::Eight, png::ColorType::Grayscale, &[9])).unwrap();
    // A 1×1 image still goes through the pipeline (constant → zeros).
    let out = pipeline::run(
        &g.values,
        1,
        1,
        &PixelSemantics::default(),
        &PipelineOptions { size: 4, bit_depth: BitDepth::U8, ..Default::default() },
    );
    assert_eq!(out.pixels, vec![0; 16]);
}

#[test]
fn header_problems_are_fatal_and_explained() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join(ROOT_NAME);
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("valid.csv"), format!("{HEADER}\n")).unwrap();
    let run = |train_header: &str| {
        std::fs::write(root.join("train.csv"), format!("{train_header}\n")).unwrap();
        let o = chess_ingest()
            .arg("chexpert")
            .arg(&root)
            .arg("--out")
            .arg(dir.path().join("out"))
            .arg("-q")
            .output()
            .unwrap();
        (o.status.code(), String::from_utf8_lossy(&o.stderr).into_owned())
    };
    // A wrong header is an invalid input: exit 3.
    let (code, err) = run(&HEADER.replace("Frontal/Lateral", "Frontal-Lateral"));
    assert_eq!(code, Some(3));
    assert!(
        err.contains("train.csv") && err.contains("column 4 is `Frontal-Lateral`; expected `Frontal/Lateral`"),
        "{err}"
    );
    let (_, err) = run(&HEADER.replace(",Support Devices", ""));
    assert!(err.contains("column 19 `Support Devices` is missing"), "{err}");
    let (_, err) = run(&format!("{HEADER},Extra"));
    assert!(err.contains("unexpected extra column(s) after `Support Devices`: `Extra`"), "{err}");
    let (_, err) = run(&HEADER.replace("Edema", "edema"));
    assert!(err.contains("case-sensitive"), "{err}");
    assert!(!dir.path().join("out/manifest.parquet").exists());
    // No valid.csv: says what the layout should be.
    std::fs::remove_file(root.join("valid.csv")).unwrap();
    let (code, err) = run(HEADER);
    assert_eq!(code, Some(3));
    assert!(err.contains("no valid.csv"), "{err}");
    // Usage errors exit 2.
    let o = chess_ingest().args(["chexpert", "--size"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = chess_ingest().args(["chexpert", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("rejected.parquet")
            && help.contains("Usage: chess-ingest chexpert")
            && help.starts_with("Import CheXpert"),
        "{help}"
    );
    let o = chess_ingest().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&o.stdout).contains("chess-ingest chexpert --help"));
}

#[test]
fn test_labels_with_path_and_observations_only() {
    // A test label file with just Path + the 14 observations, paths relative
    // to ROOT; both test CSV names present: test_labels.csv wins.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("CheXpert-v1.0");
    std::fs::create_dir_all(&root).unwrap();
    let mut train = format!("{HEADER}\n");
    for p in 1..=2 {
        let rel = format!("CheXpert-v1.0/train/patient0000{p}/study1/view1_frontal.jpg");
        write_jpeg(&dir.path().join(&rel), p);
        train.push_str(&format!("{rel},Male,50,Frontal,AP{}\n", ",1.0".repeat(14)));
    }
    std::fs::write(root.join("train.csv"), &train).unwrap();
    std::fs::write(root.join("valid.csv"), format!("{HEADER}\n")).unwrap();
    std::fs::write(root.join("test.csv"), "not,read\n").unwrap();
    let mut test = format!("Path,{}\n", OBSERVATIONS.join(","));
    for (s, view) in [(1, "view1_frontal"), (1, "view2_lateral"), (2, "view1_frontal")] {
        let rel = format!("test/patient00009/study{s}/{view}.jpg");
        write_jpeg(&root.join(&rel), s);
        test.push_str(&format!("{rel}{}\n", ",0.0".repeat(13) + ",1.0"));
    }
    std::fs::write(root.join("test_labels.csv"), test).unwrap();
    let out = dir.path().join("out");
    let o = chess_ingest()
        .arg("chexpert")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .args(["--size", "8", "--bit-depth", "8"])
        .output()
        .unwrap();
    check(&o, "chess-ingest chexpert");
    assert!(String::from_utf8_lossy(&o.stdout).contains("ignored"));
    let rows = Manifest::open(&out.join("manifest.parquet")).unwrap().rows();
    assert_eq!(rows.len(), 5);
    let t: Vec<&ManifestRow> = rows.iter().filter(|r| r.split.as_deref() == Some("test")).collect();
    assert_eq!(t.len(), 3);
    assert_eq!(
        t.iter().map(|r| r.view_position.clone().unwrap()).collect::<Vec<_>>(),
        ["FRONTAL", "LATERAL", "FRONTAL"]
    );
    assert!(t.iter().all(|r| r.sex.is_none() && r.age_years.is_none() && r.dtype == "uint8"));
    assert_eq!(float_of(&t[0].labels[13]), Some(1.0));
    assert_eq!(float_of(&t[0].labels[0]), Some(0.0));
    // Re-running the same command on the finished dataset does nothing.
    let rerun = |extra: &[&str]| chess_ingest().arg("chexpert").arg(&root).arg("--out").arg(&out).args(extra).output();
    let o = rerun(&["--size", "8", "--bit-depth", "8"]).unwrap();
    check(&o, "second run");
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
    // Other options (here the defaults, 512² uint16) are a usage error, not a silent success.
    let o = rerun(&[]).unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("finished CheXpert import made with different options"));
}

#[test]
fn renamed_release_folder_still_finds_its_images() {
    // `mv CheXpert-v1.0-small chexpert`: the CSV paths still start with the old name.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("chexpert");
    let mut train = format!("{HEADER}\n");
    for p in 1..=3 {
        let rel = format!("{ROOT_NAME}/train/patient0000{p}/study1/view1_frontal.jpg");
        write_jpeg(&root.join(rel.strip_prefix(&format!("{ROOT_NAME}/")).unwrap()), p);
        train.push_str(&format!("{rel},Female,30,Frontal,PA{}\n", ",".repeat(14)));
    }
    std::fs::write(root.join("train.csv"), &train).unwrap();
    std::fs::write(root.join("valid.csv"), format!("{HEADER}\n")).unwrap();
    let out = dir.path().join("out");
    let o =
        chess_ingest().arg("chexpert").arg(&root).arg("--out").arg(&out).args(["--size", "8", "-q"]).output().unwrap();
    check(&o, "chess-ingest chexpert");
    let rows = Manifest::open(&out.join("manifest.parquet")).unwrap().rows();
    assert_eq!(rows.len(), 3);
    assert!(rows.iter().all(|r| r.labels.iter().all(|l| *l == LabelValue::Null)), "blank cells are null");
    assert!(rejected(&out).is_empty());
}

fn fractions(dataset: &Path, out: &Path, extra: &[&str]) {
    let o = Command::new(chess_shards_bin())
        .arg("fractions")
        .arg(dataset)
        .args(["--fractions", "0.2,0.5,1", "--repeats", "3", "--seed", "7", "--quiet", "--out"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap();
    check(&o, "chess-shards fractions");
}

fn manifest_rows(path: &Path) -> (Vec<String>, Vec<ManifestRow>) {
    let m = Manifest::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (label_names(&m), m.rows())
}

#[test]
fn fractions_on_imported_chexpert() {
    let im = imported();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fractions(&im.out, &a, &[]);
    fractions(&im.out, &b, &["--threads", "1"]);

    // The imported frontal images, by split and patient.
    let all = Manifest::open(&im.out.join("manifest.parquet")).unwrap().rows();
    let frontal = |r: &ManifestRow| matches!(r.view_position.as_deref(), Some("AP" | "PA" | "FRONTAL"));
    let mut per_patient: HashMap<String, usize> = HashMap::new();
    let mut split_patients: HashMap<&str, HashSet<String>> = HashMap::new();
    for r in all.iter().filter(|r| frontal(r)) {
        let split = r.split.as_deref().unwrap();
        if split == "train" {
            *per_patient.entry(r.patient_id.clone().unwrap()).or_default() += 1;
        }
        split_patients
            .entry(if split == "train" {
                "train"
            } else if split == "valid" {
                "valid"
            } else {
                "test"
            })
            .or_default()
            .insert(r.patient_id.clone().unwrap());
    }
    let n_train: usize = per_patient.values().sum();
    let biggest = *per_patient.values().max().unwrap();

    let names = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    };
    let mut want: BTreeSet<String> =
        ["valid.parquet", "test.parquet", "summary.csv", "fractions.json", "train-f1-r00.parquet"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    for f in ["0.2", "0.5"] {
        for r in 0..3 {
            want.insert(format!("train-f{f}-r{r:02}.parquet"));
        }
    }
    assert_eq!(names(&a), want);

    let keys = |dir: &Path, name: &str| -> BTreeSet<String> {
        manifest_rows(&dir.join(name)).1.into_iter().map(|r| r.key).collect()
    };
    let patients = |dir: &Path, name: &str| -> HashSet<String> {
        manifest_rows(&dir.join(name)).1.into_iter().map(|r| r.patient_id.unwrap()).collect()
    };
    let valid = patients(&a, "valid.parquet");
    let test = patients(&a, "test.parquet");
    assert_eq!(valid, split_patients["valid"]);
    assert_eq!(test, split_patients["test"]);
    assert!(valid.is_disjoint(&test));
    let full = keys(&a, "train-f1-r00.parquet");
    assert_eq!(full.len(), n_train);
    for r in 0..3 {
        let mut prev: Option<BTreeSet<String>> = None;
        for f in ["0.2", "0.5"] {
            let name = format!("train-f{f}-r{r:02}.parquet");
            // Determinism: same seed, other thread count, same manifests.
            assert_eq!(keys(&a, &name), keys(&b, &name), "{name}");
            let ks = keys(&a, &name);
            let target = (f.parse::<f64>().unwrap() * n_train as f64).round() as usize;
            assert!(
                ks.len() >= target && ks.len() < target + biggest,
                "{name}: {} images for target {target}",
                ks.len()
            );
            // No leakage, and all of a sampled patient's frontal training images.
            let ps = patients(&a, &name);
            assert!(ps.is_disjoint(&valid) && ps.is_disjoint(&test), "{name}");
            assert_eq!(ks.len(), ps.iter().map(|p| per_patient[p]).sum::<usize>(), "{name}: whole patients");
            // Nesting.
            if let Some(p) = &prev {
                assert!(p.is_subset(&ks), "{name} does not contain the smaller fraction");
            }
            assert!(ks.is_subset(&full));
            prev = Some(ks);
        }
    }
    assert_ne!(keys(&a, "train-f0.2-r00.parquet"), keys(&a, "train-f0.2-r01.parquet"), "repeats differ");

    // Uncertainty policies on the competition labels: -1 → 1 / 0 / null, blank → 0.
    let labels_by_key: HashMap<String, Vec<LabelValue>> = all.into_iter().map(|r| (r.key, r.labels)).collect();
    for (policy, minus_one) in [("ones", Some(1.0)), ("zeros", Some(0.0)), ("ignore", None)] {
        let dir = tmp.path().join(policy);
        fractions(&im.out, &dir, &["--uncertain", policy]);
        let (names, rows) = manifest_rows(&dir.join("train-f1-r00.parquet"));
        let mut seen_minus_one = 0;
        for label in ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"] {
            let src = OBSERVATIONS.iter().position(|o| *o == label).unwrap();
            let tgt = names
                .iter()
                .position(|n| *n == format!("target_{label}"))
                .unwrap_or_else(|| panic!("no target_{label} in {names:?}"));
            for r in &rows {
                let raw = float_of(&labels_by_key[&r.key][src]);
                let want = match raw {
                    None => Some(0.0),
                    Some(-1.0) => {
                        seen_minus_one += 1;
                        minus_one
                    }
                    Some(v) => Some(v),
                };
                assert_eq!(float_of(&r.labels[tgt]), want, "{policy} {label} {}: raw {raw:?}", r.key);
                // The raw label column is carried through unchanged.
                assert_eq!(float_of(&r.labels[names.iter().position(|n| n == label).unwrap()]), raw);
            }
        }
        assert!(seen_minus_one > 10, "{policy}: the fixture has uncertain labels");
    }
}

#[test]
fn interrupted_import_resumes() {
    // Simulate a crash after the first shard: remove the finished outputs and
    // a later shard, then re-run; the result equals a clean import.
    let dir = tempfile::tempdir().unwrap();
    let fx = fixture(dir.path());
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        chess_ingest()
            .arg("chexpert")
            .arg(&fx.root)
            .arg("--out")
            .arg(&out)
            .args(["--size", "8", "--shard-samples", "30", "-q"])
            .args(extra)
            .output()
            .unwrap()
    };
    check(&run(&[]), "first import");
    let clean = Manifest::open(&out.join("manifest.parquet")).unwrap().rows();
    // Un-finish: drop dataset.json and the manifest, stage rows for shard 0 only.
    let staged = out.join(".staging");
    std::fs::create_dir_all(&staged).unwrap();
    let m = Manifest::open(&out.join("manifest.parquet")).unwrap();
    let first_shard: Vec<usize> =
        (0..m.len()).filter(|&i| m.view().shard(i).ends_with("chexpert-000000.tar")).collect();
    assert!(!first_shard.is_empty() && first_shard.len() < m.len());
    assert_eq!(first_shard, (0..first_shard.len()).collect::<Vec<_>>(), "rows in write order");
    let batch = m.batch.slice(0, first_shard.len());
    chess_shards::manifest::write_parquet(&staged.join("chexpert-000000.parquet"), &m.schema, &[batch], None).unwrap();
    std::fs::remove_file(out.join("dataset.json")).unwrap();
    std::fs::remove_file(out.join("manifest.parquet")).unwrap();
    for e in std::fs::read_dir(out.join("shards")).unwrap() {
        let p = e.unwrap().path();
        if !p.ends_with("chexpert-000000.tar") {
            std::fs::remove_file(p).unwrap();
        }
    }
    // Other options: refused, a usage error (exit 2).
    let o = run(&["--clip-percentile", "98"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("different options"));
    let o = chess_ingest()
        .arg("chexpert")
        .arg(&fx.root)
        .arg("--out")
        .arg(&out)
        .args(["--size", "8", "--shard-samples", "30"])
        .output()
        .unwrap();
    check(&o, "resumed import");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains(&format!("(resumed; {} processed now)", fx.rows.len() - 4 - first_shard.len())),
        "{stdout}"
    );
    let resumed = Manifest::open(&out.join("manifest.parquet")).unwrap().rows();
    let strip = |rows: Vec<ManifestRow>| -> BTreeMap<String, (String, Vec<LabelValue>, Option<String>)> {
        rows.into_iter().map(|r| (r.key.clone(), (r.pixel_hash, r.labels, r.split))).collect()
    };
    assert_eq!(strip(resumed), strip(clean));
    assert_eq!(rejected(&out).len(), fx.rows.iter().filter(|e| e.reject.is_some()).count());
}
