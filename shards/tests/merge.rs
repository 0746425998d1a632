//! `chess-shards merge` of datasets with different columns (issue 19): the
//! union of the label columns, nulls where an input lacks one, each row's
//! `source_dataset` kept or filled, one type per column name, keys unique
//! across the inputs, shards still sorted by key, and the loader streams it.

use std::path::Path;

use chess_schemas::{LabelColumn, LabelType, PixelDtype};
use chess_shards::{demo, Dataset, DatasetWriter, FinishInfo, LabelValue, WriterOptions};

use crate::common::{assert_shards_sorted_by_key, run, text};

/// `n` demo samples keyed `<prefix>NNNN` with these label columns (values
/// from `label`), with or without a split column.
fn dataset(
    root: &Path,
    prefix: &str,
    n: u64,
    labels: Vec<LabelColumn>,
    with_split: bool,
    label: impl Fn(u64, &LabelColumn) -> LabelValue,
) {
    let opts =
        WriterOptions { shard_name: prefix.into(), max_shard_samples: 3, with_split, labels, ..Default::default() };
    let columns = opts.labels.clone();
    let mut writer = DatasetWriter::create(root, opts).unwrap();
    for i in 0..n {
        let mut s = demo::demo_sample(i, 16, PixelDtype::Uint16, false);
        s.key = format!("{prefix}{i:04}");
        s.fields.split = with_split.then(|| ["train", "valid"][i as usize % 2].to_string());
        s.fields.labels = columns.iter().map(|c| label(i, c)).collect();
        writer.write(&s).unwrap();
    }
    writer
        .finish(FinishInfo { tool_version: "test".into(), deid_method: format!("{prefix} ids"), ..Default::default() })
        .unwrap();
}

fn column(name: &str, label_type: LabelType) -> LabelColumn {
    LabelColumn { name: name.into(), label_type }
}

#[test]
fn merge_of_datasets_with_different_label_columns_is_their_union() {
    let dir = tempfile::tempdir().unwrap();
    // A PACS-like export (split, one label, no source_dataset) and an
    // imported release (other labels, a shared one, its source_dataset).
    let (pacs, nih) = (dir.path().join("pacs"), dir.path().join("nih"));
    dataset(&pacs, "pacs", 5, vec![column("Cardiomegaly", LabelType::Float32)], true, |i, _| {
        LabelValue::Float((i % 2) as f64)
    });
    dataset(
        &nih,
        "nih",
        4,
        vec![
            column("Effusion", LabelType::Float32),
            column("Cardiomegaly", LabelType::Float32),
            column("source_dataset", LabelType::Utf8),
        ],
        false,
        |i, c| match c.name.as_str() {
            "source_dataset" => LabelValue::Str("nih-chestxray14".into()),
            "Effusion" => LabelValue::Float(1.0),
            _ => LabelValue::Float(if i == 0 { -1.0 } else { 0.0 }),
        },
    );
    let merged = dir.path().join("union");
    let o = run(&[
        "merge",
        pacs.to_str().unwrap(),
        nih.to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
        "--source-name",
        &format!("{}=pacs-export", pacs.display()),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let ds = Dataset::open(&merged).unwrap();
    assert_eq!(ds.manifest.len(), 9);
    let names: Vec<&str> = ds.manifest.columns.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["Cardiomegaly", "Effusion", "source_dataset"], "first appearance order");
    assert!(ds.manifest.columns.has_split);
    let info = ds.info.clone().unwrap();
    assert_eq!(info.labels, ds.manifest.columns.labels, "dataset.json lists the union");
    assert_eq!(info.deid_method, "pacs ids; nih ids");
    let rows = ds.manifest.rows();
    let by_key = |k: &str| rows.iter().find(|r| r.key == k).unwrap().clone();
    let (p1, n0) = (by_key("pacs0001"), by_key("nih0000"));
    assert_eq!(
        p1.labels,
        [LabelValue::Float(1.0), LabelValue::Null, LabelValue::Str("pacs-export".into())],
        "absent labels are null, source_dataset filled"
    );
    assert_eq!(p1.split.as_deref(), Some("valid"));
    assert_eq!(n0.labels, [LabelValue::Float(-1.0), LabelValue::Float(1.0), LabelValue::Str("nih-chestxray14".into())]);
    assert_eq!(n0.split, None, "an input without splits has null splits");
    // dataset.json lists its sources.
    let from = info.provenance["merged_from"].as_array().unwrap().clone();
    assert_eq!(from.len(), 2);
    assert_eq!(from[0]["source_datasets"], serde_json::json!(["pacs-export"]));
    assert_eq!(from[0]["samples"], 5);
    assert_eq!(from[1]["source_datasets"], serde_json::json!(["nih-chestxray14"]));
    assert_eq!(from[1]["labels"], serde_json::json!(["Effusion", "Cardiomegaly", "source_dataset"]));
    // Shards as they were: each sorted by key; verify and the loader agree.
    assert_shards_sorted_by_key(&ds);
    let o = run(&["verify", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["stream", merged.to_str().unwrap(), "--keys", "--batch", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut streamed: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
    streamed.sort();
    let mut keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    keys.sort();
    assert_eq!(streamed, keys);

    // Without --source-name the directory names the input.
    let merged2 = dir.path().join("union2");
    let o = run(&["merge", nih.to_str().unwrap(), pacs.to_str().unwrap(), "--out", merged2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let ds2 = Dataset::open(&merged2).unwrap();
    let names: Vec<&str> = ds2.manifest.columns.labels.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["Effusion", "Cardiomegaly", "source_dataset"]);
    let p0 = ds2.manifest.rows().into_iter().find(|r| r.key == "pacs0000").unwrap();
    assert_eq!(p0.labels[2], LabelValue::Str("pacs".into()));
}

#[test]
fn merge_refuses_a_column_with_two_types_and_shared_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    dataset(&a, "a", 3, vec![column("Cardiomegaly", LabelType::Float32)], true, |_, _| LabelValue::Float(1.0));
    dataset(&b, "b", 3, vec![column("Cardiomegaly", LabelType::Utf8)], false, |_, _| LabelValue::Str("yes".into()));
    dataset(&c, "a", 2, vec![column("Other", LabelType::Int8)], false, |_, _| LabelValue::Int(1));
    let out = dir.path().join("out");
    let o = run(&["merge", a.to_str().unwrap(), b.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("`Cardiomegaly`") && t.contains(b.to_str().unwrap()) && t.contains(a.to_str().unwrap()), "{t}");
    assert!(!out.join("manifest.parquet").exists(), "nothing written");
    let o = run(&["merge", a.to_str().unwrap(), c.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("duplicate keys") && text(&o).contains("a0000"), "{}", text(&o));
    let o = run(&[
        "merge",
        a.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--source-name",
        &format!("{}=x", b.display()),
    ]);
    assert_eq!(o.status.code(), Some(2), "a --source-name for no input is a usage error: {}", text(&o));
}
