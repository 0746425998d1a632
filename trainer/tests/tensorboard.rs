//! TensorBoard event files next to `metrics.jsonl`, read back by Python's
//! `tensorboard` (`EventAccumulator`): every scalar equals the jsonl value
//! (as f32, the format's type) at its step, each step once, and the images
//! decode; a pretraining run resumed after a crash (its first event file
//! holding steps past the checkpoint) reads as one series. The
//! bone-suppression and nodule-generation tests check their runs the same
//! way ([`crate::common::assert_tensorboard_matches_jsonl`]); the framing,
//! CRC32C and restart marker are unit-tested in `io::tensorboard`.

use std::path::Path;
use std::process::Command;

use crate::common;
use crate::common::disc::disc_dataset;
use crate::common::{ok, s};
use chess_schemas::PixelDtype;

/// Steps of `tag` as TensorBoard's reader sees them with and without its
/// purge of orphaned data (the restart marker's effect), as two JSON lists.
fn steps_with_and_without_purge(run: &Path, tag: &str) -> (Vec<i64>, Vec<i64>) {
    const SCRIPT: &str = r#"
import sys, json
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
def steps(purge):
    ea = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0}, purge_orphaned_data=purge)
    ea.Reload()
    return [e.step for e in ea.Scalars(sys.argv[2])]
print(json.dumps([steps(True), steps(False)]))
"#;
    let out = Command::new(common::python()).args(["-c", SCRIPT, s(run), tag]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
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
    common::assert_throughput_fields(&run);
    // The summary names the throughput fields.
    assert!(out.contains("throughput: ") && out.contains("img/s, data wait"), "{out}");
    assert!(out.contains("optimizer"), "{out}");

    // A crash after step 4 was logged but before its checkpoint landed: the
    // latest checkpoint is step 2's (16 images, batch 8: one at each epoch end).
    let ckpt = run.join("checkpoints");
    std::fs::copy(ckpt.join("step-00000002.json"), ckpt.join("latest.json")).unwrap();
    let before = common::jsonl(&run.join("metrics.jsonl"));
    ok(&["pretrain", s(&data), "--out", s(&run), "--resume", "--quiet"]);
    assert_eq!(common::event_file_count(&run), 2);
    // Steps 3 and 4 are in both event files; the second one's restart marker
    // (step 3) makes the reader drop the first one's, as TensorBoard does.
    let (purged, raw) = steps_with_and_without_purge(&run, "loss");
    assert_eq!(raw, [1, 2, 3, 4, 3, 4], "the first file holds the steps the resume repeats");
    assert_eq!(purged, [1, 2, 3, 4]);
    // metrics.jsonl was cut after step 2 and continued: what TensorBoard shows.
    let after = common::jsonl(&run.join("metrics.jsonl"));
    assert_eq!(after.iter().map(|l| l["step"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(after[..2], before[..2]);
    assert_ne!(after[3]["seconds"], before[3]["seconds"], "step 4 is the resumed run's");
    assert_eq!(common::assert_tensorboard_matches_jsonl(&run, &["augment/preview"]), 4 * 8 + 2);
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
    assert!(out.contains("throughput: ") && out.contains("img/s"), "{out}");
    common::assert_throughput_fields(&run);
    let n = common::assert_tensorboard_matches_jsonl(&run, &["gradcam/first_test_image"]);
    // epoch → train_loss, valid_loss, valid_metric (AUC: both classes are in the validation set), lr,
    // images_per_s, data_wait, optimizer, seconds.
    assert_eq!(n, 2 * 8, "{n} scalars");
}
