//! TensorBoard event files next to `metrics.jsonl`, read back by Python's
//! `tensorboard` (`EventAccumulator`): every scalar equals the jsonl value
//! (as f32, the format's type) at its step, and the images decode. The
//! bone-suppression and nodule-generation tests check their runs the same
//! way ([`crate::common::assert_tensorboard_matches_jsonl`]); the framing
//! and CRC32C are unit-tested in `io::tensorboard`.

use std::path::Path;

use crate::common;
use crate::common::disc::disc_dataset;
use crate::common::ok;
use chess_schemas::PixelDtype;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn pretrain_events_equal_metrics_jsonl_with_throughput_and_preview() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("ds"), tmp.path().join("run"));
    common::demo_dataset(&data, 16, 64, PixelDtype::Uint16);
    let out = ok(&[
        "pretrain",
        s(&data),
        "--out",
        s(&run),
        "--arch",
        "resnet18",
        "--size",
        "32",
        "--batch-size",
        "8",
        "--queue",
        "32",
        "--steps",
        "4",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--knn-manifest",
        s(&data),
        "--knn-label",
        "view_position",
        "--knn-every",
        "2",
        "--knn-k",
        "5",
    ]);
    let n = common::assert_tensorboard_matches_jsonl(&run, &["augment/preview"]);
    // 4 lines × (epoch, loss, acc1, lr, images_per_s, data_wait, optimizer, seconds) + 2 kNN values.
    assert_eq!(n, 4 * 8 + 2, "{n} scalars");
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for l in &lines {
        for k in ["data_wait", "optimizer"] {
            let v = l[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{k} = {v}");
        }
        assert!(l["optimizer"].as_f64().unwrap() > 0.0, "the SGD step takes time: {l}");
        assert!(l["images_per_s"].as_f64().unwrap() > 0.0);
    }
    // The summary names the throughput fields.
    assert!(out.contains("img/s") && out.contains("data wait") && out.contains("optimizer"), "{out}");
}

#[test]
fn finetune_events_equal_metrics_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let (train, valid, run) = (tmp.path().join("train"), tmp.path().join("valid"), tmp.path().join("run"));
    disc_dataset(&train, 16, 1, 2);
    disc_dataset(&valid, 16, 2, 2);
    let out = ok(&[
        "finetune",
        "--task",
        "multilabel",
        "--train",
        s(&train),
        "--valid",
        s(&valid),
        "--test",
        s(&valid),
        "--out",
        s(&run),
        "--arch",
        "resnet18",
        "--size",
        "32",
        "--batch-size",
        "8",
        "--epochs",
        "2",
        "--device",
        "cpu",
        "--threads",
        "1",
    ]);
    assert!(out.contains("throughput (last epoch)") && out.contains("img/s"), "{out}");
    let n = common::assert_tensorboard_matches_jsonl(&run, &["gradcam/first_test_image"]);
    // epoch → train_loss, valid_loss, valid_metric (AUC: both classes are in the validation set), lr,
    // images_per_s, data_wait, optimizer, seconds.
    assert_eq!(n, 2 * 8, "{n} scalars");
}
