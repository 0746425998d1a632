//! The public chest X-ray importers end to end (`chess-ingest folders`,
//! `mimic`, `nih`, `padchest`, `vindr`) on the fixtures of
//! [`crate::cxr_fixtures`]: every sample's labels, boxes, split, patient
//! and study ids, view, sex and age exact; the pixels the shared pipeline's
//! output for the known grey values (RGBA NIH = its grey value, 16-bit
//! PadChest at 16 bits, MONOCHROME1 VinDr inverted); broken rows rejected
//! with the reason naming the file and line; headers checked naming the
//! file and column; and the imports in the common label space merged by
//! `chess-shards merge` into one dataset that `verify` and the loader
//! (`stream`) accept, with each sample's `source_dataset`.
//!
//! All comparisons are exact: label values are small integers stored as
//! Float32, pixels come from the same pipeline on the same values.

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::{chess_ingest, chess_shards_bin, ok};
use crate::cxr_fixtures::{self as fx, Fixture, H, W};
use chess_ingest::pipeline::{self, PipelineOptions, PixelSemantics};
use chess_shards::{Dataset, LabelValue, ManifestRow, NpyZstDecoder};

const SIZE: u32 = 16;

fn ingest(sub: &str, root: &Path, out: &Path, extra: &[&str]) -> Output {
    chess_ingest()
        .arg(sub)
        .arg(root)
        .arg("--out")
        .arg(out)
        .args(["--size", &SIZE.to_string(), "--threads", "2", "-q"])
        .args(extra)
        .output()
        .unwrap()
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

/// The manifest's rows and a label lookup by column name.
struct Imported {
    ds: Dataset,
    names: Vec<String>,
}

impl Imported {
    fn open(out: &Path) -> Imported {
        let ds = Dataset::open(out).unwrap();
        let names = ds.manifest.columns.labels.iter().map(|c| c.name.clone()).collect();
        Imported { ds, names }
    }

    fn row(&self, key: &str) -> ManifestRow {
        let i = self.ds.find_key(key).unwrap_or_else(|| panic!("no sample {key}"));
        self.ds.manifest.view().row(i)
    }

    fn label(&self, row: &ManifestRow, name: &str) -> LabelValue {
        let i = self
            .names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no label column {name}: {:?}", self.names));
        row.labels[i].clone()
    }

    fn float(&self, row: &ManifestRow, name: &str) -> Option<f64> {
        match self.label(row, name) {
            LabelValue::Null => None,
            LabelValue::Float(f) => Some(f),
            other => panic!("{name}: {other:?} is not a float"),
        }
    }

    fn text(&self, row: &ManifestRow, name: &str) -> Option<String> {
        match self.label(row, name) {
            LabelValue::Null => None,
            LabelValue::Str(s) => Some(s),
            other => panic!("{name}: {other:?} is not text"),
        }
    }
}

/// Checks every expected sample and rejection of `f` in the import at `out`.
fn check(f: &Fixture, out: &Path) -> Imported {
    let im = Imported::open(out);
    let mut dec = NpyZstDecoder::new();
    let opts = PipelineOptions { size: SIZE, ..PipelineOptions::default() };
    for e in &f.samples {
        let row = im.row(&e.key);
        let got = (
            row.patient_id.clone(),
            row.study_id.clone(),
            row.split.clone(),
            row.view_position.clone(),
            row.sex.clone(),
            row.age_years,
        );
        let want = (
            e.patient_id.clone(),
            e.study_id.clone(),
            e.split.clone(),
            e.view_position.clone(),
            e.sex.clone(),
            e.age_years,
        );
        assert_eq!(got, want, "{}: patient, study, split, view, sex, age", e.key);
        for (name, v) in &e.labels {
            assert_eq!(im.float(&row, name), *v, "{}: label {name}", e.key);
        }
        for (name, v) in &e.text {
            assert_eq!(im.text(&row, name), *v, "{}: {name}", e.key);
        }
        if let Some(boxes) = &e.boxes {
            let got = im.text(&row, "boxes").map_or(serde_json::Value::Null, |s| serde_json::from_str(&s).unwrap());
            assert_eq!(&got, boxes, "{}: boxes", e.key);
        }
        if let Some((values, monochrome1)) = &e.pixels {
            let values: Vec<i32> = values.iter().map(|&v| v as i32).collect();
            let sem = PixelSemantics { monochrome1: *monochrome1, ..PixelSemantics::default() };
            let want = pipeline::run(&values, H, W, &sem, &opts);
            assert_eq!(im.ds.read_image(&row, &mut dec).unwrap().to_u16(), want.pixels, "{}: pixels", e.key);
            assert_eq!(row.clip_value, Some(want.clip_value), "{}: clip value", e.key);
        }
    }
    let rej = rejected(out);
    for (source, code, message) in &f.rejected {
        let r = rej
            .iter()
            .find(|(s, _, _)| s.contains(source.as_str()))
            .unwrap_or_else(|| panic!("{source} is not rejected: {rej:?}"));
        assert_eq!(r.1, *code, "{r:?}");
        assert!(r.2.contains(message.as_str()), "{source}: `{}` should contain `{message}`", r.2);
    }
    assert_eq!(rej.len(), f.rejected.len(), "{rej:?}");
    im
}

fn provenance(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap()
}

#[test]
fn nih_imports_exactly_with_rgba_as_grey() {
    let dir = tempfile::tempdir().unwrap();
    let f = fx::nih(dir.path());
    let out = dir.path().join("nih");
    ok(&ingest("nih", &f.root, &out, &[]), "chess-ingest nih");
    let im = check(&f, &out);
    assert_eq!(im.ds.manifest.len(), f.samples.len());
    let info = provenance(&out);
    assert_eq!(info["provenance"]["summary"]["colour_converted"], 2, "the RGBA and the RGB file");
    assert_eq!(info["provenance"]["source_dataset"], "nih-chestxray14");
    let row = im.row("nih_00000001_000");
    assert_eq!(im.text(&row, "source_dataset").as_deref(), Some("nih-chestxray14"));
    // Re-running the same command does nothing; it is a finished dataset.
    ok(&ingest("nih", &f.root, &out, &[]), "the same import again");
}

#[test]
fn mimic_imports_exactly_from_gzipped_csvs() {
    let dir = tempfile::tempdir().unwrap();
    let f = fx::mimic(dir.path());
    let out = dir.path().join("mimic");
    ok(&ingest("mimic", &f.root, &out, &[]), "chess-ingest mimic");
    let im = check(&f, &out);
    assert_eq!(im.ds.manifest.len(), f.samples.len());
    // The other labeler: the one study it labels, the others null.
    let out2 = dir.path().join("negbio");
    ok(&ingest("mimic", &f.root, &out2, &["--labeler", "negbio"]), "chess-ingest mimic --labeler negbio");
    let im = Imported::open(&out2);
    let valid = im.row(&f.samples[2].key);
    assert_eq!(im.float(&valid, "Atelectasis"), None, "negbio does not label study 53189527");
    assert_eq!(im.float(&im.row(&f.samples[0].key), "No Finding"), Some(1.0));
    assert_eq!(im.ds.manifest.len(), 4, "the bad chexpert row is not read with --labeler negbio");
}

#[test]
fn padchest_imports_exactly_at_16_bits() {
    let dir = tempfile::tempdir().unwrap();
    let f = fx::padchest(dir.path());
    let out = dir.path().join("padchest");
    ok(&ingest("padchest", &f.root, &out, &[]), "chess-ingest padchest");
    let im = check(&f, &out);
    assert_eq!(im.ds.manifest.len(), f.samples.len());
    // The label columns are the labels of the usable rows, then the projection.
    assert_eq!(im.names, ["cardiomegaly", "normal", "pleural effusion", "projection", "source_dataset"]);
    // 16 bits kept: the same image reduced to 8 bits first would differ.
    let e = &f.samples[1];
    let (values, _) = e.pixels.as_ref().unwrap();
    let reduced: Vec<i32> = values.iter().map(|&v| (v >> 8) as i32).collect();
    let opts = PipelineOptions { size: SIZE, ..PipelineOptions::default() };
    let eight = pipeline::run(&reduced, H, W, &PixelSemantics::default(), &opts);
    let got = im.ds.read_image(&im.row(&e.key), &mut NpyZstDecoder::new()).unwrap().to_u16();
    assert_ne!(got, eight.pixels, "read at 8 bits");
}

#[test]
fn vindr_imports_through_the_dicom_path_keeping_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let f = fx::vindr(dir.path());
    let out = dir.path().join("vindr");
    ok(&ingest("vindr", &f.root, &out, &[]), "chess-ingest vindr");
    let im = check(&f, &out);
    assert_eq!(im.ds.manifest.len(), f.samples.len());
    let info = provenance(&out);
    let deid = info["deid_method"].as_str().unwrap();
    assert!(deid.contains("image_id pseudonyms are kept") && deid.contains("allow-list"), "{deid}");
    assert_eq!(info["provenance"]["summary"]["monochrome1"], 1);
    let row = im.row(&f.samples[0].key);
    assert_eq!(row.modality.as_deref(), Some("DX"));
    // --readers majority: Cardiomegaly 2 of 3 readers, Pleural effusion and No finding 1 of 3.
    let out2 = dir.path().join("vindr-majority");
    ok(&ingest("vindr", &f.root, &out2, &["--readers", "majority"]), "chess-ingest vindr --readers majority");
    let im = Imported::open(&out2);
    let row = im.row(&f.samples[0].key);
    assert_eq!(
        ["Cardiomegaly", "Pleural effusion", "No finding"].map(|n| im.float(&row, n)),
        [Some(1.0), Some(0.0), Some(0.0)]
    );
    // Another rule into the same --out is a usage error naming both option sets.
    let o = ingest("vindr", &f.root, &out2, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn folders_import_classes_flat_trees_and_dicom() {
    let dir = tempfile::tempdir().unwrap();
    let f = fx::folders(dir.path());
    let out = dir.path().join("folders");
    ok(&ingest("folders", &f.root, &out, &["--split", "train"]), "chess-ingest folders");
    let im = check(&f, &out);
    assert_eq!(im.ds.manifest.len(), 4, "three images and the DICOM");
    let rows = im.ds.manifest.rows();
    assert!(rows.iter().all(|r| r.split.as_deref() == Some("train")));
    // The DICOM: keyed pseudonyms, nothing of its PatientID or path.
    let d = rows.iter().find(|r| r.modality.as_deref() == Some("DX")).expect("the DICOM sample");
    assert!(!d.key.contains("scan") && d.key.len() == 32, "{}", d.key);
    assert!(d.patient_id.as_deref().is_some_and(|p| !p.contains("Doe")), "{:?}", d.patient_id);
    assert_eq!(im.text(d, "class").as_deref(), Some("PNEUMONIA"));
    // Flat: every image at any depth, no class column.
    let flat = dir.path().join("flat");
    ok(&ingest("folders", &f.root, &flat, &["--flat", "--name", "pretrain"]), "chess-ingest folders --flat");
    let im = Imported::open(&flat);
    assert_eq!(im.names, ["source_dataset"]);
    assert_eq!(im.ds.manifest.len(), 5);
    assert!(im.ds.find_key("pretrain_loose").is_some() && im.ds.find_key("pretrain_NORMAL-IM-0001").is_some());
    assert_eq!(rejected(&flat).len(), 1, "notes.txt");
    // A tree without class folders needs --flat.
    let bare = dir.path().join("bare");
    fx::png_gray8(&bare.join("a.png"), &fx::pattern(1, 255));
    let o = ingest("folders", &bare, &dir.path().join("o"), &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--flat"));
}

#[test]
fn headers_are_checked_naming_the_file_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Fixture, &str, &str, &str, &str); 4] = [
        (
            "nih",
            fx::nih(&dir.path().join("a")),
            "Data_Entry_2017.csv",
            "Patient Gender",
            "Patient Sex",
            "column 6 is `Patient Sex`; expected `Patient Gender`",
        ),
        (
            "mimic",
            fx::mimic(&dir.path().join("b")),
            "mimic-cxr-2.0.0-metadata.csv",
            ",ViewPosition,",
            ",View Position,",
            "column 5 is `View Position`; expected `ViewPosition`",
        ),
        (
            "padchest",
            fx::padchest(&dir.path().join("c")),
            "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv",
            ",Labels,",
            ",labels,",
            "column 32 is `labels`; expected `Labels` (names are case-sensitive)",
        ),
        (
            "vindr",
            fx::vindr(&dir.path().join("d")),
            "annotations/annotations_train.csv",
            "class_name",
            "class",
            "column 3 is `class`; expected `class_name`",
        ),
    ];
    for (sub, f, file, from, to, says) in cases {
        let path = f.root.join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let (head, rest) = text.split_once('\n').unwrap();
        std::fs::write(&path, format!("{}\n{rest}", head.replacen(from, to, 1))).unwrap();
        let o = ingest(sub, &f.root, &dir.path().join(format!("out-{sub}")), &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{sub}: {err}");
        let name = Path::new(file).file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name) && err.contains(says), "{sub}: {err}");
        assert!(!dir.path().join(format!("out-{sub}/dataset.json")).exists());
    }
    // A missing release file is named too.
    let f = fx::nih(&dir.path().join("e"));
    std::fs::remove_file(f.root.join("test_list.txt")).unwrap();
    let o = ingest("nih", &f.root, &dir.path().join("out-e"), &[]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no test_list.txt"));
}

/// Each release imported into the common label space, merged into one
/// pretraining dataset, verified and streamed.
#[test]
fn imports_in_the_common_label_space_merge_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let xrv = ["--labels-as", "torchxrayvision"];
    let mut outs: Vec<PathBuf> = Vec::new();
    let mut total = 0;
    for (sub, f) in [
        ("nih", fx::nih(dir.path())),
        ("mimic", fx::mimic(dir.path())),
        ("padchest", fx::padchest(dir.path())),
        ("vindr", fx::vindr(dir.path())),
        ("folders", fx::folders(dir.path())),
    ] {
        let out = dir.path().join(format!("xrv-{sub}"));
        ok(&ingest(sub, &f.root, &out, &xrv), sub);
        total += Imported::open(&out).ds.manifest.len();
        outs.push(out);
    }
    let union = dir.path().join("union");
    let o = std::process::Command::new(chess_shards_bin())
        .arg("merge")
        .args(&outs)
        .arg("--out")
        .arg(&union)
        .output()
        .unwrap();
    ok(&o, "chess-shards merge");
    ok(&std::process::Command::new(chess_shards_bin()).arg("verify").arg(&union).output().unwrap(), "verify");
    let o = std::process::Command::new(chess_shards_bin())
        .args(["stream", "--keys", "--verify-hashes", "--batch", "1"])
        .arg(&union)
        .output()
        .unwrap();
    ok(&o, "chess-shards stream");
    let mut streamed: Vec<String> =
        String::from_utf8_lossy(&o.stdout).lines().filter(|l| !l.is_empty()).map(String::from).collect();
    streamed.sort();
    streamed.dedup();
    let im = Imported::open(&union);
    assert_eq!(im.ds.manifest.len(), total);
    let mut keys: Vec<String> = im.ds.manifest.rows().into_iter().map(|r| r.key).collect();
    keys.sort();
    assert_eq!(streamed, keys, "the loader delivers every sample of the union");
    let mut names = im.names.clone();
    names.truncate(18);
    assert_eq!(names, chess_ingest::label_space::PATHOLOGIES);
    let mut sources: Vec<String> =
        im.ds.manifest.rows().iter().map(|r| im.text(r, "source_dataset").unwrap()).collect();
    sources.dedup();
    assert_eq!(sources, ["nih-chestxray14", "mimic-cxr-jpg", "padchest", "vindr-cxr", "chest_xray"]);
    // Mapped values: NIH Effusion, MIMIC Pleural Effusion, VinDr Pleural effusion, PadChest `pleural effusion`.
    let v = |key: &str, name: &str| im.float(&im.row(key), name);
    assert_eq!(v("nih_00000001_001", "Effusion"), Some(1.0));
    assert_eq!(v("nih_00000001_001", "Lung Opacity"), None, "NIH does not label it");
    let mimic_valid = "mimic_2a2277a9-b0ded155-c0de8eb9-c124d10e-82c5caab";
    assert_eq!(
        [v(mimic_valid, "Effusion"), v(mimic_valid, "Cardiomegaly"), v(mimic_valid, "Edema")],
        [Some(1.0), Some(-1.0), Some(0.0)]
    );
    assert_eq!(v("vindr_000434271f63a053c4128a0ba6352c7f", "Effusion"), Some(1.0));
    let pad = "pc_216840111366964012283393834152009033102258826_00-051-028";
    assert_eq!([v(pad, "Effusion"), v(pad, "Cardiomegaly"), v(pad, "Atelectasis")], [Some(1.0), Some(1.0), Some(0.0)]);
    assert_eq!(
        [v("chest_xray_PNEUMONIA_person1_virus_6", "Pneumonia"), v("chest_xray_NORMAL_IM-0001", "Pneumonia")],
        [Some(1.0), Some(0.0)]
    );
    assert_eq!(v("chest_xray_NORMAL_IM-0001", "Atelectasis"), None);
    // Boxes survive the common space.
    let boxes = im.text(&im.row("nih_00000001_001"), "boxes").unwrap();
    assert!(boxes.contains("\"Effusion\""), "{boxes}");
}

/// An import interrupted after its first shard resumes to the clean result;
/// the folders tree has a DICOM file, whose key is known only after reading.
#[test]
fn an_interrupted_import_resumes_to_the_clean_result() {
    let dir = tempfile::tempdir().unwrap();
    let f = fx::folders(dir.path());
    let out = dir.path().join("out");
    let key = dir.path().join("key");
    std::fs::write(&key, [7u8; 32]).unwrap();
    let args = ["--shard-samples", "2", "--key-file", key.to_str().unwrap()];
    ok(&ingest("folders", &f.root, &out, &args), "first import");
    let clean = Dataset::open(&out).unwrap().manifest;
    // Un-finish: the manifest staged for shard 0 only, the later shards gone.
    let staged = out.join(".staging");
    std::fs::create_dir_all(&staged).unwrap();
    let first: Vec<usize> =
        (0..clean.len()).filter(|&i| clean.view().shard(i).ends_with("folders-000000.tar")).collect();
    assert_eq!(first, [0, 1], "two samples per shard, in write order");
    let batch = clean.batch.slice(0, first.len());
    chess_shards::manifest::write_parquet(&staged.join("folders-000000.parquet"), &clean.schema, &[batch], None)
        .unwrap();
    std::fs::remove_file(out.join("dataset.json")).unwrap();
    std::fs::remove_file(out.join("manifest.parquet")).unwrap();
    for e in std::fs::read_dir(out.join("shards")).unwrap() {
        let p = e.unwrap().path();
        if !p.ends_with("folders-000000.tar") {
            std::fs::remove_file(p).unwrap();
        }
    }
    // Other options are refused (exit 2); the same ones resume.
    let o = ingest("folders", &f.root, &out, &[&args[..], &["--split", "test"]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let o = chess_ingest()
        .arg("folders")
        .arg(&f.root)
        .arg("--out")
        .arg(&out)
        .args(["--size", &SIZE.to_string(), "--threads", "2"])
        .args(args)
        .output()
        .unwrap();
    ok(&o, "resumed import");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("(resumed; 2 processed now)"), "{stdout}");
    let strip = |m: &chess_shards::Manifest| -> std::collections::BTreeMap<String, (String, Vec<LabelValue>)> {
        m.rows().into_iter().map(|r| (r.key.clone(), (r.pixel_hash, r.labels))).collect()
    };
    assert_eq!(strip(&Dataset::open(&out).unwrap().manifest), strip(&clean));
    assert_eq!(rejected(&out).len(), f.rejected.len());
}
