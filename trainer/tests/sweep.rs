//! `chess-train sweep` end to end on tiny settings: fractions × repeats ×
//! two inits from `chess-shards fractions` manifests (Table 3: mean ± SD and
//! paired t-tests equal to NumPy/SciPy on the runs' own results), resume
//! (finished runs skipped, a missing one redone), and a multi-class plan
//! (Table 2, including a `chess-shards balance --mode counts` setting that
//! repeats images: accuracy, Stuart–Maxwell equal to statsmodels on the runs'
//! predictions).

use crate::common::disc;

use std::path::Path;
use std::process::Command;

use crate::common::{ok, python, s};
use chess_shards::fractions::{build, FractionOptions, GroupBy, Uncertain, Views};

const TINY: &str = r#"
[model]
arch = "resnet18"
[data]
size = 64
batch_size = 8
[run]
epochs = 1
device = "cpu"
threads = 1
[augment]
enabled = false
"#;

fn py(script: &str) -> String {
    let out = Command::new(python()).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(str::to_string).collect();
    lines.map(|l| header.iter().cloned().zip(l.split(',').map(str::to_string)).collect()).collect()
}

#[test]
fn fraction_sweep_runs_resumes_and_summarises_like_table_3() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // 60 patients of one image: train/valid/test by patient, raw `Disc` labels.
    disc::dataset(
        &d.join("ds"),
        60,
        21,
        &disc::Spec { label: "Disc", classes: 2, splits: &["train", "train", "train", "valid", "test"] },
    );
    let ds = chess_shards::Dataset::open(&d.join("ds")).unwrap();
    let opts = FractionOptions {
        fractions: vec![0.5, 1.0],
        repeats: 2,
        seed: 0,
        group_by: GroupBy::Patient,
        views: Views::All,
        labels: vec!["Disc".into()],
        uncertain: Uncertain::Ones,
        test_fraction: None,
        valid_fraction: None,
    };
    build(&ds, &opts, &d.join("fractions")).unwrap();
    // A second init: torchvision ResNet-18 weights, imported.
    let pth = d.join("tv18.pth");
    py(&format!("import torch, torchvision; torch.manual_seed(2); torch.save(torchvision.models.resnet18(weights=None).state_dict(), r'{}')", pth.display()));
    ok(&["import", s(&pth), "--out", s(&d.join("imagenet18.safetensors")), "--quiet"]);
    let plan = format!(
        "out = \"sweep\"\nvalid = \"fractions/valid.parquet\"\ntest = \"fractions/test.parquet\"\nfractions_dir = \"fractions\"\n\
         fractions = [0.5, 1.0]\nrepeats = 2\n\n[[inits]]\nname = \"scratch\"\ninit = \"scratch\"\n\n[[inits]]\nname = \"imagenet\"\n\
         init = \"imagenet=imagenet18.safetensors\"\n\n[finetune]\n{}",
        TINY.replace("[model]", "[finetune.model]").replace("[data]", "[finetune.data]").replace("[run]", "[finetune.run]").replace("[augment]", "[finetune.augment]")
    );
    std::fs::write(d.join("plan.toml"), plan).unwrap();
    let out = ok(&["sweep", s(&d.join("plan.toml"))]);
    assert!(out.contains("| f0.5 | ") && out.contains("(best)"), "{out}");
    let sweep = d.join("sweep");
    // 2 fractions × 2 inits × 2 repeats (fraction 1: the same manifest, two seeds).
    let runs: Vec<_> =
        ["f0.5", "f1"].iter().flat_map(|f| ["scratch", "imagenet"].map(|i| (f.to_string(), i))).collect();
    let mut results = std::collections::HashMap::new();
    for (f, i) in &runs {
        for r in 0..2 {
            let dir = sweep.join(format!("runs/{f}/{i}/r{r:02}"));
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
            results.insert((f.clone(), i.to_string(), r), v["test"]["mean_auc"].as_f64().unwrap());
            let cfg =
                chess_train::tasks::classify::config::FinetuneConfig::from_file(&dir.join("config.toml")).unwrap();
            assert_eq!((cfg.run.seed, cfg.data.size), (r as u64, 64));
            assert_eq!(crate::common::event_file_count(&dir), 1, "each run writes TensorBoard events");
        }
    }
    // The table: mean ± SD (ddof 1) and ttest_rel against the best, as NumPy and SciPy compute them.
    let rows = csv_rows(&sweep.join("summary.csv"));
    assert_eq!(rows.len(), 4);
    for f in ["f0.5", "f1"] {
        let of = |i: &str| [results[&(f.to_string(), i.to_string(), 0)], results[&(f.to_string(), i.to_string(), 1)]];
        let (a, b) = (of("scratch"), of("imagenet"));
        let best = if (a[0] + a[1]) >= (b[0] + b[1]) { "scratch" } else { "imagenet" };
        let other = if best == "scratch" { "imagenet" } else { "scratch" };
        let reference = py(&format!(
            "import numpy as np, scipy.stats as st\nb = np.array({:?}); o = np.array({:?})\nprint(repr(float(o.mean())), repr(float(o.std(ddof=1))), repr(float(st.ttest_rel(o, b).pvalue)))",
            of(best), of(other)
        ));
        let want: Vec<f64> = reference.split_whitespace().map(|v| v.parse().unwrap_or(f64::NAN)).collect();
        let row = rows.iter().find(|r| r["setting"] == f && r["init"] == other).unwrap();
        let best_row = rows.iter().find(|r| r["setting"] == f && r["init"] == best).unwrap();
        assert_eq!(best_row["best"], "true");
        assert_eq!(row["best"], "false");
        let got = |k: &str| row[k].parse::<f64>().unwrap_or(f64::NAN);
        assert!((got("mean") - want[0]).abs() < 1e-12, "{f}: mean {} vs {}", got("mean"), want[0]);
        assert!((got("sd") - want[1]).abs() < 1e-12, "{f}: sd {} vs {}", got("sd"), want[1]);
        assert!(
            want[2].is_nan() && got("t_test_p").is_nan() || (got("t_test_p") - want[2]).abs() < 1e-9,
            "{f}: p {} vs {}",
            got("t_test_p"),
            want[2]
        );
    }
    assert!(sweep.join("summary.png").exists() && sweep.join("summary.md").exists());
    // Table 3 as a PNG (a title, the header and one line per row) and Fig. 3:
    // image + one overlay per init (256² each, 12 px gaps), the one label's score below.
    let dims = |f: &str| {
        let r = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(sweep.join(f)).unwrap()))
            .read_info()
            .unwrap();
        (r.info().width, r.info().height)
    };
    assert_eq!(dims("table.png").1, 40 + 24 * 5 + 10);
    assert_eq!(dims("gradcam.png"), (3 * 256 + 4 * 12, 30 + 20 + 256 + 24 + 12));

    // Resume: nothing reruns; a run without summary.json is redone, alone.
    let stamp = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let kept = sweep.join("runs/f0.5/scratch/r00/summary.json");
    let redo = sweep.join("runs/f1/imagenet/r01/summary.json");
    let before = stamp(&kept);
    std::fs::remove_file(&redo).unwrap();
    ok(&["sweep", s(&d.join("plan.toml")), "--quiet"]);
    assert_eq!(stamp(&kept), before);
    assert!(redo.exists());
    // The redone run replaced its event file: TensorBoard shows its epochs once.
    let redone = redo.parent().unwrap();
    assert_eq!(crate::common::event_file_count(redone), 1);
    crate::common::assert_tensorboard_matches_jsonl(redone, &["gradcam/first_test_image"]);
}

#[test]
fn imbalance_sweep_reports_accuracy_and_stuart_maxwell_like_table_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    disc::disc_dataset(&d.join("train"), 36, 31, 3);
    disc::disc_dataset(&d.join("valid"), 12, 32, 3);
    disc::disc_dataset(&d.join("test"), 24, 33, 3);
    let pth = d.join("tv18.pth");
    py(&format!("import torch, torchvision; torch.manual_seed(3); torch.save(torchvision.models.resnet18(weights=None).state_dict(), r'{}')", pth.display()));
    ok(&["import", s(&pth), "--out", s(&d.join("other.safetensors")), "--quiet"]);
    std::fs::write(d.join("tiny.toml"), format!("[labels]\ntask = \"multiclass\"\nlabels = [\"shape\"]\n{TINY}"))
        .unwrap();
    // The modified setting (Table 1): `chess-shards balance --mode counts`, one class over-sampled (repeats).
    let counts = chess_shards::balance::parse_counts("none=6,disc=20,square=6").unwrap();
    let ds = chess_shards::Dataset::open(&d.join("train")).unwrap();
    chess_shards::balance::balance(
        &ds,
        "shape",
        &chess_shards::balance::BalanceMode::Counts(counts),
        0,
        &d.join("modified.parquet"),
    )
    .unwrap();
    let plan = "out = \"sweep\"\nvalid = \"valid\"\ntest = \"test\"\nconfig = \"tiny.toml\"\n\n[[settings]]\nname = \"full\"\ntrain = \"train\"\n\n\
                [[settings]]\nname = \"modified\"\ntrain = \"modified.parquet\"\n\n\
                [[inits]]\nname = \"a\"\ninit = \"scratch\"\n\n[[inits]]\nname = \"b\"\ninit = \"other.safetensors\"\n\n[finetune.run]\nseed = 5\n";
    std::fs::write(d.join("plan.toml"), plan).unwrap();
    ok(&["sweep", s(&d.join("plan.toml")), "--quiet"]);
    let rows = csv_rows(&d.join("sweep/summary.csv"));
    assert_eq!(rows.len(), 4);
    let modified: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("sweep/runs/modified/a/r00/summary.json")).unwrap())
            .unwrap();
    assert_eq!(modified["outputs"], serde_json::json!(["disc", "none", "square"]));
    let rows: Vec<_> = rows.into_iter().filter(|r| r["setting"] == "full").collect();
    let best = rows.iter().find(|r| r["best"] == "true").unwrap();
    let other = rows.iter().find(|r| r["best"] == "false").unwrap();
    // Accuracy from the run's own predictions.csv.
    let preds = |init: &str| d.join(format!("sweep/runs/full/{init}/r00/predictions.csv"));
    let acc_of = |init: &str| {
        let text = std::fs::read_to_string(preds(init)).unwrap();
        let rows: Vec<Vec<String>> = text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
        rows.iter().filter(|r| r[1] == r[2]).count() as f64 / rows.len() as f64
    };
    assert_eq!(other["mean"].parse::<f64>().unwrap(), acc_of(&other["init"]));
    // Stuart–Maxwell of the two inits' predictions, as statsmodels computes it.
    let script = format!(
        "import csv, numpy as np\nfrom statsmodels.stats.contingency_tables import SquareTable\n\
         a = {{r['key']: r['predicted'] for r in csv.DictReader(open(r'{}'))}}\nb = {{r['key']: r['predicted'] for r in csv.DictReader(open(r'{}'))}}\n\
         c = ['disc', 'none', 'square']; t = np.zeros((3, 3))\nfor k in a: t[c.index(a[k]), c.index(b[k])] += 1\n\
         used = [i for i in range(3) if t[i].sum() + t[:, i].sum() > 0]\nt = t[np.ix_(used, used)]\n\
         try:\n    print(repr(float(SquareTable(t, shift_zeros=False).homogeneity().pvalue)) if len(used) > 1 else 'nan')\n\
         except Exception:\n    print('nan')",
        preds(&other["init"]).display(),
        preds(&best["init"]).display()
    );
    let want: f64 = py(&script).trim().parse().unwrap_or(f64::NAN);
    let got: f64 = other["stuart_maxwell_p"].parse().unwrap_or(f64::NAN);
    eprintln!("Stuart–Maxwell p: ours {got}, statsmodels {want}");
    if want.is_finite() {
        assert!((got - want).abs() < 1e-9, "Stuart–Maxwell p {got} vs statsmodels {want}");
    } else {
        // Degenerate tables: the metrics library's generalised statistic; still a probability.
        assert!(got.is_nan() || (0.0..=1.0).contains(&got), "{got}");
    }
    let md = std::fs::read_to_string(d.join("sweep/summary.md")).unwrap();
    assert!(md.contains("accuracy (mean ± SD)") && md.contains("Stuart–Maxwell"), "{md}");
}
