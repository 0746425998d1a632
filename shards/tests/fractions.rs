//! Per-fraction manifests and class balancing on a CheXpert-like dataset:
//! no patient leakage, sizes, nesting, determinism, exact labels, policies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use chess_schemas::{LabelColumn, LabelType, PixelDtype};
use chess_shards::balance::{balance, BalanceMode};
use chess_shards::fractions::{build, FractionOptions, GroupBy, Uncertain, Views, COMPETITION_LABELS};
use chess_shards::{demo, Dataset, DatasetWriter, FinishInfo, LabelValue, Manifest, SampleFields, WriterOptions};

const PATIENTS: u64 = 80;

/// Patients 0-7 are valid, 8-15 test, the rest train; 1-4 images each, every
/// third one lateral; labels cycle through 1, 0, -1 and blank.
fn chexpert_like(root: &Path, with_split: bool) {
    let mut labels: Vec<LabelColumn> = COMPETITION_LABELS
        .iter()
        .map(|l| LabelColumn { name: l.to_string(), label_type: LabelType::Float32 })
        .collect();
    labels.push(LabelColumn { name: "class".into(), label_type: LabelType::Utf8 });
    let opts = WriterOptions {
        shard_name: "cx".into(),
        max_shard_samples: 50,
        with_split,
        labels,
        ..WriterOptions::default()
    };
    let mut writer = DatasetWriter::create(root, opts).unwrap();
    let mut n = 0u64;
    for p in 0..PATIENTS {
        for j in 0..(1 + (p * 7 + 3) % 4) {
            let values = [LabelValue::Float(1.0), LabelValue::Float(0.0), LabelValue::Float(-1.0), LabelValue::Null];
            let mut label_values: Vec<LabelValue> =
                (0..5).map(|l| values[((n + l * 3 + p) % 4) as usize].clone()).collect();
            label_values.push(LabelValue::Str(["normal", "nodule", "effusion"][(n % 7).min(2) as usize].into()));
            let split = match p {
                0..=7 => "valid",
                8..=15 => "test",
                _ => "train",
            };
            writer
                .write(&chess_shards::Sample {
                    key: format!("p{p:05}s{j}"),
                    image: demo::phantom(n, 16, PixelDtype::Uint16),
                    extras: vec![],
                    fields: SampleFields {
                        patient_id: Some(format!("patient{p:05}")),
                        study_id: Some(format!("patient{p:05}-study{j}")),
                        view_position: Some(
                            if n % 3 == 2 {
                                "LL"
                            } else if n.is_multiple_of(2) {
                                "PA"
                            } else {
                                "AP"
                            }
                            .into(),
                        ),
                        split: with_split.then(|| split.to_string()),
                        labels: label_values,
                        ..SampleFields::default()
                    },
                })
                .unwrap();
            n += 1;
        }
    }
    writer.finish(FinishInfo::default()).unwrap();
}

fn options(seed: u64) -> FractionOptions {
    FractionOptions {
        fractions: vec![0.1, 0.25, 0.5, 1.0],
        repeats: 3,
        seed,
        group_by: GroupBy::Patient,
        views: Views::Frontal,
        labels: COMPETITION_LABELS.iter().map(|s| s.to_string()).collect(),
        uncertain: Uncertain::Ones,
        test_fraction: None,
        valid_fraction: None,
    }
}

fn rows(path: &Path) -> Vec<chess_shards::ManifestRow> {
    Manifest::open(path).unwrap().rows()
}

fn patients(path: &Path) -> HashSet<String> {
    rows(path).into_iter().map(|r| r.patient_id.unwrap()).collect()
}

fn keys(path: &Path) -> Vec<String> {
    rows(path).into_iter().map(|r| r.key).collect()
}

#[test]
fn fractions_are_patient_disjoint_sized_nested_and_exact() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    chexpert_like(&root, true);
    let ds = Dataset::open(&root).unwrap();
    let out = dir.path().join("fr");
    let summaries = build(&ds, &options(7), &out).unwrap();
    assert_eq!(summaries.len(), 3 * 3 + 1 + 2, "three small fractions x 3 repeats, f1 once, valid, test");

    let all = ds.manifest.rows();
    let frontal_train =
        all.iter().filter(|r| r.split.as_deref() == Some("train") && r.view_position.as_deref() != Some("LL")).count();
    let mut per_patient: HashMap<String, usize> = HashMap::new();
    for r in all.iter().filter(|r| r.view_position.as_deref() != Some("LL")) {
        *per_patient.entry(r.patient_id.clone().unwrap()).or_default() += 1;
    }
    let max_patient_images = *per_patient.values().max().unwrap();

    let valid = patients(&out.join("valid.parquet"));
    let test = patients(&out.join("test.parquet"));
    assert!(valid.is_disjoint(&test));
    for repeat in 0..3 {
        let mut previous: HashSet<String> = HashSet::new();
        for f in ["0.1", "0.25", "0.5", "1"] {
            let r = if f == "1" { 0 } else { repeat };
            let path = out.join(format!("train-f{f}-r{r:02}.parquet"));
            let manifest_rows = rows(&path);
            let ks: HashSet<String> = manifest_rows.iter().map(|r| r.key.clone()).collect();
            let ps: HashSet<String> = manifest_rows.iter().map(|r| r.patient_id.clone().unwrap()).collect();
            assert!(ps.is_disjoint(&valid) && ps.is_disjoint(&test), "no leakage in {}", path.display());
            assert!(manifest_rows.iter().all(|r| r.view_position.as_deref() != Some("LL")), "frontal only");
            let target = f.parse::<f64>().unwrap() * frontal_train as f64;
            assert!(
                (manifest_rows.len() as f64 - target).abs() <= max_patient_images as f64,
                "{f}: {} images for a target of {target}",
                manifest_rows.len()
            );
            // All of a sampled patient's frontal training images come along.
            for p in &ps {
                let expected = all
                    .iter()
                    .filter(|r| r.patient_id.as_ref() == Some(p) && r.view_position.as_deref() != Some("LL"))
                    .count();
                assert_eq!(manifest_rows.iter().filter(|r| r.patient_id.as_ref() == Some(p)).count(), expected);
            }
            assert!(previous.is_subset(&ks), "nested: f{f} contains the smaller fractions (repeat {repeat})");
            previous = ks;
        }
    }
    assert_ne!(keys(&out.join("train-f0.1-r00.parquet")), keys(&out.join("train-f0.1-r01.parquet")), "repeats differ");

    // Labels round-trip exactly; targets follow U-Ones with blank = 0.
    let by_key: HashMap<String, &chess_shards::ManifestRow> = all.iter().map(|r| (r.key.clone(), r)).collect();
    let m = Manifest::open(&out.join("train-f0.5-r01.parquet")).unwrap();
    let batch = &m.batch;
    for (i, row) in m.rows().iter().enumerate() {
        let original = by_key[&row.key];
        assert_eq!(&row.labels[..6], &original.labels[..6], "labels unchanged");
        for (l, label) in COMPETITION_LABELS.iter().enumerate() {
            let target = chess_shards::filter::cell(batch.column_by_name(&format!("target_{label}")).unwrap(), i);
            let expected = match original.labels[l] {
                LabelValue::Float(v) if v == 1.0 || v == -1.0 => 1.0,
                _ => 0.0,
            };
            assert_eq!(target, chess_shards::filter::Value::Num(expected), "{label}");
        }
    }
    let summary = std::fs::read_to_string(out.join("summary.csv")).unwrap();
    assert!(summary.starts_with("manifest,images,groups,Atelectasis positive rate"), "{summary}");
    assert_eq!(summary.lines().count(), 1 + summaries.len());
}

#[test]
fn uncertainty_policies_and_carved_splits() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    chexpert_like(&root, false);
    let ds = Dataset::open(&root).unwrap();
    let err = build(&ds, &options(1), &dir.path().join("x")).unwrap_err();
    assert!(err.to_string().contains("--test-fraction"), "{err}");

    let mut opts = options(1);
    opts.test_fraction = Some(0.2);
    opts.valid_fraction = Some(0.1);
    opts.uncertain = Uncertain::Ignore;
    opts.views = Views::All;
    opts.fractions = vec![1.0];
    let out = dir.path().join("carved");
    build(&ds, &opts, &out).unwrap();
    let (train, valid, test) = (
        patients(&out.join("train-f1-r00.parquet")),
        patients(&out.join("valid.parquet")),
        patients(&out.join("test.parquet")),
    );
    assert_eq!(train.len() + valid.len() + test.len(), PATIENTS as usize);
    assert!(train.is_disjoint(&valid) && train.is_disjoint(&test) && valid.is_disjoint(&test));
    assert_eq!(test.len(), 16);
    assert_eq!(valid.len(), 8);

    // U-Ignore: -1 becomes a null (masked) target; U-Zeros: 0.
    let m = Manifest::open(&out.join("train-f1-r00.parquet")).unwrap();
    let col = m.batch.column_by_name("target_Edema").unwrap();
    for (i, row) in m.rows().iter().enumerate() {
        let expect = match row.labels[3] {
            LabelValue::Float(-1.0) => chess_shards::filter::Value::Null,
            LabelValue::Float(v) => chess_shards::filter::Value::Num(v),
            _ => chess_shards::filter::Value::Num(0.0),
        };
        assert_eq!(chess_shards::filter::cell(col, i), expect);
    }
}

#[test]
fn cli_output_is_deterministic_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    chexpert_like(&root, true);
    let run = |threads: &str, seed: &str, out: &str| {
        let o = crate::common::bin()
            .args([
                "--threads",
                threads,
                "fractions",
                root.to_str().unwrap(),
                "--fractions",
                "0.1,0.5,1",
                "--repeats",
                "2",
            ])
            .args(["--seed", seed, "--out", dir.path().join(out).to_str().unwrap()])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let a = run("1", "5", "a");
    let b = run("2", "5", "b");
    assert_eq!(a, b);
    assert!(a.contains("train-f0.1-r01") && a.contains("valid") && a.contains("test"), "{a}");
    for name in ["train-f0.1-r00", "train-f0.1-r01", "train-f0.5-r01", "train-f1-r00", "valid", "test"] {
        let read = |d: &str| keys(&dir.path().join(d).join(format!("{name}.parquet")));
        assert_eq!(read("a"), read("b"), "{name}");
    }
    run("2", "6", "c");
    assert_ne!(keys(&dir.path().join("a/train-f0.1-r00.parquet")), keys(&dir.path().join("c/train-f0.1-r00.parquet")));
}

#[test]
fn balance_modes_select_what_they_promise() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds");
    chexpert_like(&root, true);
    let ds = Dataset::open(&root).unwrap();
    let class_counts = |path: &Path| -> BTreeMap<String, usize> {
        let m = Manifest::open(path).unwrap();
        let mut out = BTreeMap::new();
        for r in m.rows() {
            if let LabelValue::Str(c) = &r.labels[5] {
                *out.entry(c.clone()).or_default() += 1;
            }
        }
        out
    };
    let full = dir.path().join("full.parquet");
    let (reports, unlabelled) = balance(&ds, "class", &BalanceMode::Full, 1, &full).unwrap();
    assert_eq!(unlabelled, 0);
    assert_eq!(class_counts(&full).values().sum::<usize>(), ds.manifest.len());

    let under = dir.path().join("under.parquet");
    balance(&ds, "class", &BalanceMode::Undersample(None), 1, &under).unwrap();
    let smallest = reports.iter().map(|r| r.available).min().unwrap();
    assert!(class_counts(&under).values().all(|&c| c == smallest));
    let keys_under: HashSet<String> = keys(&under).into_iter().collect();
    assert_eq!(keys_under.len(), 3 * smallest, "without replacement");

    let counts: BTreeMap<String, usize> =
        [("normal".to_string(), 5), ("nodule".to_string(), 7), ("effusion".to_string(), 200)].into();
    let modified = dir.path().join("modified.parquet");
    let (reports, _) = balance(&ds, "class", &BalanceMode::Counts(counts.clone()), 1, &modified).unwrap();
    assert_eq!(class_counts(&modified), counts);
    let effusion = reports.iter().find(|r| r.class == "effusion").unwrap();
    assert_eq!(effusion.repeated, 200 - effusion.available);
    assert!(reports.iter().filter(|r| r.class != "effusion").all(|r| r.repeated == 0));
    // Same seed, same selection; another seed, another.
    let again = dir.path().join("again.parquet");
    balance(&ds, "class", &BalanceMode::Counts(counts.clone()), 1, &again).unwrap();
    assert_eq!(keys(&modified), keys(&again));
    balance(&ds, "class", &BalanceMode::Counts(counts), 2, &again).unwrap();
    assert_ne!(keys(&modified), keys(&again));
    // A repeated-sample manifest still verifies against its shards.
    let report = chess_shards::verify::verify(&Dataset::open(&modified).unwrap(), &|_| {}).unwrap();
    assert!(report.ok(), "{:?}", report.problems);

    let bad: BTreeMap<String, usize> = [("normal".to_string(), 5)].into();
    let err = balance(&ds, "class", &BalanceMode::Counts(bad), 1, &again).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}
