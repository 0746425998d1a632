//! Pretraining on a union (issue 19 item 4): an imported release with its
//! own labels (NIH ChestX-ray14, MIMIC-CXR-JPG) and a `chess-ingest dicom`
//! PACS export, which have different columns, merged by `chess-shards merge`
//! into one dataset: the union of the label columns (null where an input
//! lacks one), each sample's `source_dataset` kept or filled, `verify` clean
//! and every sample delivered by `chess-shards stream`.

use std::process::Output;

use crate::common::{chess_ingest, chess_shards_bin, ok, Synth};
use crate::cxr_fixtures as fx;
use chess_shards::{Dataset, LabelValue};

fn import(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    chess_ingest()
        .args(args.iter().map(|a| a.as_ref()))
        .args(["--size", "16", "--threads", "2", "-q"])
        .output()
        .unwrap()
}

fn label(ds: &Dataset, key: &str, name: &str) -> LabelValue {
    let i = ds.manifest.columns.labels.iter().position(|c| c.name == name).unwrap_or_else(|| panic!("no {name}"));
    ds.manifest.view().row(ds.find_key(key).unwrap_or_else(|| panic!("no sample {key}"))).labels[i].clone()
}

#[test]
fn an_imported_release_and_a_dicom_export_merge_into_one_streamed_union() {
    let dir = tempfile::tempdir().unwrap();
    let (nih, mimic) = (fx::nih(dir.path()), fx::mimic(dir.path()));
    let (nih_out, mimic_out, pacs_out) = (dir.path().join("nih"), dir.path().join("mimic"), dir.path().join("pacs"));
    ok(&import(&[&"nih", &nih.root, &"--out", &nih_out]), "chess-ingest nih");
    ok(&import(&[&"mimic", &mimic.root, &"--out", &mimic_out]), "chess-ingest mimic");
    let inp = dir.path().join("pacs-export");
    std::fs::create_dir_all(&inp).unwrap();
    for i in 0..4u32 {
        Synth::new(&format!("1.2.826.0.1.3680043.2.1125.{}", 100 + i), i + 1).write(&inp.join(format!("im{i}.dcm")));
    }
    let key = dir.path().join("key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    ok(&import(&[&"dicom", &inp, &"--out", &pacs_out, &"--key-file", &key]), "chess-ingest dicom");

    let union = dir.path().join("union");
    let o = std::process::Command::new(chess_shards_bin())
        .arg("merge")
        .args([&pacs_out, &nih_out, &mimic_out])
        .arg("--out")
        .arg(&union)
        .arg("--source-name")
        .arg(format!("{}=pacs", pacs_out.display()))
        .output()
        .unwrap();
    ok(&o, "chess-shards merge");
    let ds = Dataset::open(&union).unwrap();
    let parts: Vec<Dataset> = [&pacs_out, &nih_out, &mimic_out].iter().map(|p| Dataset::open(p).unwrap()).collect();
    assert_eq!(ds.manifest.len(), parts.iter().map(|p| p.manifest.len()).sum::<usize>());
    // The union of the label columns, each once, in order of first appearance.
    let mut expected: Vec<String> = Vec::new();
    for p in &parts {
        for c in &p.manifest.columns.labels {
            if !expected.contains(&c.name) {
                expected.push(c.name.clone());
            }
        }
    }
    let names: Vec<String> = ds.manifest.columns.labels.iter().map(|c| c.name.clone()).collect();
    assert_eq!(names, expected);
    assert!(names.contains(&"source_dataset".to_string()));
    // Every row: its input's values where the input has the column, null (or
    // the filled source name) where it does not.
    for (p, source) in parts.iter().zip(["pacs", "nih-chestxray14", "mimic-cxr-jpg"]) {
        for row in p.manifest.rows() {
            for name in &names {
                let got = label(&ds, &row.key, name);
                let want = match p.manifest.columns.labels.iter().position(|c| &c.name == name) {
                    Some(i) => row.labels[i].clone(),
                    None if name == "source_dataset" => LabelValue::Str(source.into()),
                    None => LabelValue::Null,
                };
                assert_eq!(got, want, "{} {name}", row.key);
            }
            assert_eq!(label(&ds, &row.key, "source_dataset"), LabelValue::Str(source.into()));
        }
    }
    let from = &ds.info.as_ref().unwrap().provenance["merged_from"];
    assert_eq!(from.as_array().unwrap().len(), 3);
    assert_eq!(from[0]["source_datasets"], serde_json::json!(["pacs"]));
    assert_eq!(from[2]["source_datasets"], serde_json::json!(["mimic-cxr-jpg"]));

    ok(&std::process::Command::new(chess_shards_bin()).arg("verify").arg(&union).output().unwrap(), "verify");
    let o = std::process::Command::new(chess_shards_bin())
        .args(["stream", "--keys", "--verify-hashes", "--batch", "2"])
        .arg(&union)
        .output()
        .unwrap();
    ok(&o, "chess-shards stream");
    let mut streamed: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
    streamed.sort();
    let mut keys: Vec<String> = ds.manifest.rows().into_iter().map(|r| r.key).collect();
    keys.sort();
    assert_eq!(streamed, keys, "the loader delivers every sample of the union once");
}
