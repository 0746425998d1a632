//! The training curves: line-plot PNGs that decode, one 900 × 300 panel per
//! curve (pretraining: loss, top-1, lr, and kNN when monitored;
//! fine-tuning: loss, validation metric, lr), also for runs longer than the
//! points drawn.

use std::path::Path;

use chess_train::tasks::classify::report;
use chess_train::tasks::pretrain::plots;

/// Width, height and whether any pixel is neither white nor grey-ish axis
/// (a coloured line was drawn).
fn decode(png: &Path) -> (u32, u32, bool) {
    let mut reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap())).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = &buf[..info.buffer_size()];
    let coloured = match info.color_type {
        png::ColorType::Rgb => px.chunks(3).any(|p| p.iter().max().unwrap() - p.iter().min().unwrap() > 60),
        png::ColorType::Rgba => px.chunks(4).any(|p| p[..3].iter().max().unwrap() - p[..3].iter().min().unwrap() > 60),
        other => panic!("unexpected colour type {other:?}"),
    };
    (info.width, info.height, coloured)
}

fn pretrain_line(step: u64, knn: Option<f64>) -> String {
    let mut v = serde_json::json!({
        "step": step, "epoch": step / 100, "loss": 9.0 - (step as f64).ln_1p(), "acc1": (step % 100) as f64,
        "lr": 0.03 * (1.0 - step as f64 / 5000.0), "images_per_s": 100.0, "seconds": step as f64,
    });
    if let Some(a) = knn {
        v["knn_acc"] = a.into();
    }
    v.to_string()
}

#[test]
fn pretraining_curves_are_line_panels_of_the_expected_size() {
    let d = tempfile::tempdir().unwrap();
    let metrics = d.path().join("metrics.jsonl");
    // More steps than points drawn: the curves are binned means.
    let lines: Vec<String> = (0..5000).map(|s| pretrain_line(s, None)).collect();
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    let png = d.path().join("curves.png");
    plots::curves(&metrics, &png).unwrap();
    assert_eq!(decode(&png), (900, 3 * 300, true));

    // A monitored run gains the kNN panel.
    let lines: Vec<String> = (0..50).map(|s| pretrain_line(s, (s % 10 == 0).then_some(50.0 + s as f64))).collect();
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    plots::curves(&metrics, &png).unwrap();
    assert_eq!(decode(&png), (900, 4 * 300, true));

    // No metrics: an input error naming the file, no PNG.
    std::fs::write(&metrics, "").unwrap();
    let e = plots::curves(&metrics, &d.path().join("none.png")).unwrap_err().to_string();
    assert!(e.contains("metrics.jsonl") && e.contains("no metrics"), "{e}");
    assert!(!d.path().join("none.png").exists());
}

#[test]
fn finetuning_curves_are_line_panels_of_the_expected_size() {
    let d = tempfile::tempdir().unwrap();
    let metrics = d.path().join("metrics.jsonl");
    let lines: Vec<String> = (1..=12u64)
        .map(|e| {
            serde_json::json!({
                "epoch": e, "train_loss": 0.9 / e as f64, "valid_loss": 0.7 / e as f64, "valid_metric": 0.5 + 0.03 * e as f64,
                "lr": 1e-3 * 0.5f64.powi((e / 5) as i32), "best": e == 12, "seconds": e as f64,
            })
            .to_string()
        })
        .collect();
    std::fs::write(&metrics, lines.join("\n") + "\n").unwrap();
    let png = d.path().join("curves.png");
    report::curves(&metrics, &png).unwrap();
    assert_eq!(decode(&png), (900, 3 * 300, true));
}
