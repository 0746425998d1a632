//! The kNN monitor: its weighted leave-one-out vote agrees with
//! scikit-learn's KNeighborsClassifier given the same weights; it finds
//! separable classes; it reads its labels from a manifest column; and a
//! pretraining run logs and draws its accuracy.

use crate::common;

use std::process::Command;

use chess_schemas::PixelDtype;
use chess_train::models::resnet::{Arch, HeadKind, ResNet};
use chess_train::tasks::pretrain::knn::{knn_predict_loo, KnnConfig, KnnMonitor};
use tch::{Device, Kind, Tensor};

fn unit_rows(n: i64, d: i64, seed: i64) -> Tensor {
    tch::manual_seed(seed);
    chess_train::tasks::pretrain::moco::normalize(&Tensor::randn([n, d], (Kind::Float, Device::Cpu)), 1)
}

/// scikit-learn peer: for each row, fit on all the others and predict it
/// with cosine distance and weights exp((1 − d) / t) = exp(cos / t).
#[test]
fn leave_one_out_vote_matches_scikit_learn() {
    let (n, d, classes, k, t) = (60i64, 12i64, 4i64, 7i64, 0.1);
    let feats = unit_rows(n, d, 3);
    let labels = Tensor::randint(classes, [n], (Kind::Int64, Device::Cpu));
    let ours: Vec<i64> = Vec::try_from(knn_predict_loo(&feats, &labels, classes, k, t)).unwrap();

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("knn.json");
    let f: Vec<Vec<f32>> = (0..n).map(|i| Vec::try_from(feats.get(i)).unwrap()).collect();
    let l: Vec<i64> = Vec::try_from(&labels).unwrap();
    std::fs::write(&input, serde_json::json!({"features": f, "labels": l, "k": k, "t": t}).to_string()).unwrap();
    let script = r#"
import json, sys
import numpy as np
from sklearn.neighbors import KNeighborsClassifier
a = json.load(open(sys.argv[1]))
X, y, k, t = np.array(a["features"], dtype=np.float64), np.array(a["labels"]), a["k"], a["t"]
pred = []
for i in range(len(X)):
    rest = np.arange(len(X)) != i
    clf = KNeighborsClassifier(n_neighbors=k, metric="cosine", algorithm="brute",
                               weights=lambda dist: np.exp((1.0 - dist) / t))
    clf.fit(X[rest], y[rest])
    pred.append(int(clf.predict(X[i:i + 1])[0]))
print(json.dumps(pred))
"#;
    let out = Command::new(common::python()).arg("-c").arg(script).arg(&input).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours, theirs);
    // Not a trivial agreement: the predictions are mixed.
    assert!(ours.iter().collect::<std::collections::BTreeSet<_>>().len() > 1);
}

#[test]
fn separable_classes_are_found_and_self_votes_do_not_count() {
    // Two tight clusters: every leave-one-out prediction is the own cluster.
    let centres = Tensor::from_slice2(&[[1.0f32, 0.0, 0.0], [0.0, 1.0, 0.0]]);
    let labels = Tensor::from_slice(&[0i64, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    tch::manual_seed(1);
    let noisy = centres.index_select(0, &labels) + Tensor::randn([10, 3], (Kind::Float, Device::Cpu)) * 0.05;
    let feats = chess_train::tasks::pretrain::moco::normalize(&noisy, 1);
    let pred = knn_predict_loo(&feats, &labels, 2, 3, 0.1);
    assert_eq!(Vec::<i64>::try_from(&pred).unwrap(), Vec::<i64>::try_from(&labels).unwrap());
    // With k = 1 and one image per class, each image's only neighbour is the
    // other class: leave-one-out must get both wrong (a self vote would get both right).
    let two = chess_train::tasks::pretrain::moco::normalize(&Tensor::from_slice2(&[[1.0f32, 0.1], [0.1, 1.0]]), 1);
    let pred = knn_predict_loo(&two, &Tensor::from_slice(&[0i64, 1]), 2, 1, 0.1);
    assert_eq!(Vec::<i64>::try_from(&pred).unwrap(), vec![1, 0]);
}

#[test]
fn monitor_reads_a_manifest_column_and_names_bad_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("ds");
    common::demo_dataset(&data, 12, 64, PixelDtype::Uint16);
    let cfg = KnnConfig {
        manifest: data.to_string_lossy().into(),
        label: "view_position".into(),
        k: 3,
        batch_size: 5,
        ..KnnConfig::default()
    };
    let m = KnnMonitor::load(&cfg, 32).unwrap();
    assert_eq!(m.len(), 12);
    assert!(m.classes.len() >= 2, "{:?}", m.classes);
    let vs = tch::nn::VarStore::new(Device::Cpu);
    tch::manual_seed(0);
    let enc = ResNet::new(&vs.root(), Arch::Resnet18, HeadKind::None);
    let acc = m.accuracy(&enc, Device::Cpu, 0.658, 0.221);
    assert!((0.0..=100.0).contains(&acc));
    // Accuracy is a multiple of 1/12.
    assert!(((acc / 100.0 * 12.0) - (acc / 100.0 * 12.0).round()).abs() < 1e-9, "{acc}");
    // Without --knn-label: the manifest's first label column (the demo's Cardiomegaly, 0/1 floats).
    let m = KnnMonitor::load(&KnnConfig { label: String::new(), ..cfg.clone() }, 32).unwrap();
    assert_eq!(m.label_column, "Cardiomegaly");
    assert!(m.classes.iter().all(|c| ["-1", "0", "1"].contains(&c.as_str())), "{:?}", m.classes);
    // A manifest without label columns: the column must be named.
    // (Next to the shards: a manifest without a recorded root resolves them from its folder.)
    let plain = data.join("plain.parquet");
    let status = std::process::Command::new(common::python())
        .arg("-c")
        .arg("import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); pq.write_table(t.drop_columns(['Cardiomegaly']).replace_schema_metadata(t.schema.metadata), sys.argv[2])")
        .arg(data.join("manifest.parquet"))
        .arg(&plain)
        .status()
        .unwrap();
    assert!(status.success());
    let err = KnnMonitor::load(
        &KnnConfig { manifest: plain.to_string_lossy().into(), label: String::new(), ..cfg.clone() },
        32,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("--knn-label"), "{err}");
    let err = KnnMonitor::load(&KnnConfig { label: "no_such".into(), ..cfg.clone() }, 32).err().unwrap().to_string();
    assert!(err.contains("no column `no_such`") && err.contains(&data.to_string_lossy().to_string()), "{err}");
    let err = KnnMonitor::load(&KnnConfig { k: 0, ..cfg }, 32).err().unwrap().to_string();
    assert!(err.contains("k must be"), "{err}");
}

/// `--knn-manifest … --knn-every 2` on a 3-step run: accuracy at steps 2 and 3 only.
#[test]
fn pretrain_logs_knn_accuracy_and_draws_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("ds"), tmp.path().join("run"));
    common::demo_dataset(&data, 16, 64, PixelDtype::Uint8);
    let d = data.to_str().unwrap();
    common::ok(&[
        "pretrain",
        d,
        "--out",
        run.to_str().unwrap(),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "8",
        "--queue",
        "64",
        "--device",
        "cpu",
        "--quiet",
        "--steps",
        "3",
        "--knn-manifest",
        d,
        "--knn-label",
        "view_position",
        "--knn-every",
        "2",
        "--knn-k",
        "5",
    ]);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let knn: Vec<(u64, f64)> =
        lines.iter().filter_map(|l| l["knn_acc"].as_f64().map(|a| (l["step"].as_u64().unwrap(), a))).collect();
    assert_eq!(knn.iter().map(|(s, _)| *s).collect::<Vec<_>>(), vec![2, 3]);
    assert!(knn.iter().all(|(_, a)| (0.0..=100.0).contains(a)));
    let cfg = chess_train::tasks::pretrain::config::TrainConfig::from_file(&run.join("config.toml")).unwrap();
    assert_eq!((cfg.knn.every, cfg.knn.k, cfg.knn.label.as_str()), (2, 5, "view_position"));
    // The curves gain a fourth panel (300 px each).
    let png = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(run.join("curves.png")).unwrap()))
        .read_info()
        .unwrap();
    assert_eq!(png.info().height, 4 * 300);
    // A bad label column is a settings error (exit 2) naming it.
    let (code, _, err) = common::chess_train(&[
        "pretrain",
        d,
        "--out",
        tmp.path().join("bad").to_str().unwrap(),
        "--arch",
        "resnet18",
        "--size",
        "64",
        "--batch-size",
        "8",
        "--queue",
        "64",
        "--device",
        "cpu",
        "--quiet",
        "--steps",
        "1",
        "--knn-manifest",
        d,
        "--knn-label",
        "nope",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no column `nope`"), "{err}");
}
