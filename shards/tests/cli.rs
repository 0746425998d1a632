//! End-to-end tests of the `chess-shards` binary: exit codes, messages and
//! outputs of each subcommand, on good and damaged datasets.

use std::fs;
use std::path::{Path, PathBuf};

use chess_schemas::PixelDtype;
use chess_shards::{demo, Dataset, DatasetWriter, FinishInfo, NpyZstDecoder};

use crate::common::{assert_shards_sorted_by_key, run, text};

fn demo_dataset(dir: &Path, count: &str) -> PathBuf {
    let out = dir.join("demo");
    let o = run(&[
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--count",
        count,
        "--size",
        "64",
        "--shard-samples",
        "4",
        "--paired",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    out
}

/// A dataset whose keys start with `prefix`, written with the library.
fn prefixed_dataset(root: &Path, prefix: &str, n: u64) {
    let opts = demo::demo_options(PixelDtype::Uint16, 3, false);
    let mut writer = DatasetWriter::create(root, opts).unwrap();
    for i in 0..n {
        let mut s = demo::demo_sample(i, 32, PixelDtype::Uint16, false);
        s.key = format!("{prefix}{i:04}");
        writer.write(&s).unwrap();
    }
    writer
        .finish(FinishInfo { tool_version: "test".into(), deid_method: "synthetic".into(), ..Default::default() })
        .unwrap();
}

#[test]
fn demo_then_verify_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let ds = demo_dataset(dir.path(), "10");
    let o = run(&["verify", ds.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("10 samples in 3 shards"), "{}", text(&o));
}

#[test]
fn verify_names_each_mismatch_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = demo_dataset(dir.path(), "10");
    let ds = Dataset::open(&ds_path).unwrap();
    let rows = ds.manifest.rows();
    // Corrupt the pixels of one sample: zstd checksums are off, so either the
    // decoder fails or the hash differs; both must be reported.
    let victim = &rows[5];
    let shard = ds_path.join(&victim.shard);
    let mut bytes = fs::read(&shard).unwrap();
    let at = (victim.offset + victim.size - 40) as usize;
    bytes[at] ^= 0x5a;
    fs::write(&shard, &bytes).unwrap();
    // Drop another sample's row from the manifest: its members become strays.
    let kept: Vec<String> = rows.iter().map(|r| r.key.clone()).filter(|k| k != &rows[1].key).collect();
    let batch = chess_shards::ops::subset(&ds, Some(&kept), None).unwrap();
    ds.manifest.with_batch(batch).write(&ds_path.join("manifest.parquet"), None).unwrap();
    let mut info = ds.info.clone().unwrap();
    info.sample_count -= 1;
    chess_shards::writer::write_dataset_json(&ds_path, &info).unwrap();

    let o = run(&["verify", ds_path.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains(&format!("MISMATCH {}: {}:", victim.shard, victim.key)), "{out}");
    assert!(out.contains(&format!("{}: is in the shard but not in the manifest", rows[1].key)), "{out}");
    assert!(out.contains("2 problems") || out.contains("3 problems"), "{out}");
}

#[test]
fn verify_reports_truncated_shards_and_missing_paths() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = demo_dataset(dir.path(), "6");
    let shard = ds_path.join("shards/demo-000001.tar");
    let bytes = fs::read(&shard).unwrap();
    fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    let o = run(&["verify", ds_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("shards/demo-000001.tar"), "{}", text(&o));
    assert!(text(&o).contains("truncated") || text(&o).contains("not found in its shard"), "{}", text(&o));

    let o = run(&["verify", dir.path().join("nope").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("nope"), "{}", text(&o));
    let o = run(&["verify"]);
    assert_eq!(o.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn subset_by_expression_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = demo_dataset(dir.path(), "12");
    let ds = Dataset::open(&ds_path).unwrap();
    let rows = ds.manifest.rows();
    let out = dir.path().join("elsewhere/pa.parquet");
    let o = run(&[
        "subset",
        ds_path.to_str().unwrap(),
        "--where",
        "view_position = 'PA' and age_years >= 40",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let expected: Vec<&str> = rows
        .iter()
        .filter(|r| r.view_position.as_deref() == Some("PA") && r.age_years.unwrap() >= 40.0)
        .map(|r| r.key.as_str())
        .collect();
    let sub = Dataset::open(&out).unwrap();
    assert_eq!(sub.manifest.rows().iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), expected);
    assert_eq!(sub.root, fs::canonicalize(&ds_path).unwrap(), "root recorded in the subset");
    // The subset manifest resolves its rows from another directory.
    let o = run(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    let keys = dir.path().join("keys.txt");
    fs::write(&keys, format!("# two keys\n{}\n{}\n", rows[3].key, rows[7].key)).unwrap();
    let out2 = dir.path().join("k.parquet");
    let o =
        run(&["subset", ds_path.to_str().unwrap(), "--keys", keys.to_str().unwrap(), "--out", out2.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(Dataset::open(&out2).unwrap().manifest.len(), 2);

    fs::write(&keys, "nosuchkey\n").unwrap();
    let o =
        run(&["subset", ds_path.to_str().unwrap(), "--keys", keys.to_str().unwrap(), "--out", out2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("nosuchkey"), "{}", text(&o));
    let o = run(&["subset", ds_path.to_str().unwrap(), "--where", "colour = 'red'", "--out", out2.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "a bad --where is a usage error");
    assert!(text(&o).contains("unknown column `colour`"), "{}", text(&o));
}

#[test]
fn merge_joins_partitions_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (dir.path().join("a"), dir.path().join("b"), dir.path().join("c"));
    prefixed_dataset(&a, "a", 5);
    prefixed_dataset(&b, "b", 4);
    prefixed_dataset(&c, "a", 2);
    let merged = dir.path().join("merged");
    let o = run(&["merge", a.to_str().unwrap(), b.to_str().unwrap(), "--out", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let ds = Dataset::open(&merged).unwrap();
    assert_eq!(ds.manifest.len(), 9);
    assert_eq!(ds.info.as_ref().unwrap().shard_count, 4);
    // The member frame counts of the inputs add up.
    let frames = &ds.info.as_ref().unwrap().provenance["npy_zst_frames"];
    let count = |f: &serde_json::Value| f["compressed"].as_u64().unwrap() + f["raw"].as_u64().unwrap();
    let input = |p: &std::path::Path| Dataset::open(p).unwrap().info.unwrap().provenance["npy_zst_frames"].clone();
    assert_eq!(count(frames), count(&input(&a)) + count(&input(&b)));
    assert!(count(frames) >= 9);
    // Shards are linked as they are: samples keep their (ascending key) order within each shard.
    assert_shards_sorted_by_key(&ds);
    let o = run(&["verify", merged.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    let o =
        run(&["merge", a.to_str().unwrap(), c.to_str().unwrap(), "--out", dir.path().join("bad").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3));
    assert!(text(&o).contains("duplicate keys") && text(&o).contains("a0000"), "{}", text(&o));
}

#[test]
fn export_stats_and_inspect_produce_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let ds_path = demo_dataset(dir.path(), "8");
    let png_path = dir.path().join("x.png");
    let o = run(&["export", ds_path.to_str().unwrap(), "demo000002", png_path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let decoder = png::Decoder::new(std::io::BufReader::new(fs::File::open(&png_path).unwrap()));
    let reader = decoder.read_info().unwrap();
    assert_eq!((reader.info().width, reader.info().height), (64, 64));
    assert_eq!(reader.info().bit_depth, png::BitDepth::Eight);

    let chart = dir.path().join("stats.png");
    let o = run(&["stats", ds_path.to_str().unwrap(), "--json", "--png", chart.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Recompute independently from the images.
    let ds = Dataset::open(&ds_path).unwrap();
    let mut dec = NpyZstDecoder::new();
    let mut all: Vec<u16> = Vec::new();
    for row in ds.manifest.rows() {
        all.extend(ds.read_image(&row, &mut dec).unwrap().to_u16());
    }
    let mean = all.iter().map(|&v| v as f64).sum::<f64>() / all.len() as f64;
    assert_eq!(s["samples"], 8);
    assert_eq!(s["pixels"]["min"], *all.iter().min().unwrap() as u64);
    assert_eq!(s["pixels"]["max"], *all.iter().max().unwrap() as u64);
    // Both means divide an exact integer sum (every partial sum of u16 pixels
    // stays below 2^53 in f64) by the same count, so they agree to the last
    // bit on any CPU; allow a few ulps of the mean's magnitude.
    let stats_mean = s["pixels"]["mean"].as_f64().unwrap();
    assert!((stats_mean - mean).abs() <= 4.0 * f64::EPSILON * mean.abs(), "{stats_mean} vs {mean}");
    all.sort_unstable();
    let median = all[(all.len() as f64 * 0.5).ceil() as usize - 1];
    assert_eq!(s["pixels"]["percentiles"][3], serde_json::json!([50.0, median]));
    // The chart: three 900×300 panels (pixel histogram, views, age bands).
    let chart = png::Decoder::new(std::io::BufReader::new(fs::File::open(&chart).unwrap())).read_info().unwrap();
    assert_eq!((chart.info().width, chart.info().height), (900, 900));

    let o = run(&["inspect", ds_path.join("shards/demo-000000.tar").to_str().unwrap(), "--limit", "3"]);
    assert!(o.status.success());
    let out = text(&o);
    assert!(out.contains("demo000000.npy.zst") && out.contains("demo000000.target.npy.zst"), "{out}");
    assert!(out.contains("12 members, 4 samples"), "{out}");
}

/// One case per exit class (1 is `verify_names_each_mismatch_and_exits_1`).
#[test]
fn exit_codes_follow_what_the_user_must_fix() {
    let dir = tempfile::tempdir().unwrap();
    let ds = demo_dataset(dir.path(), "4");
    let ds = ds.to_str().unwrap();
    let out = dir.path().join("out.parquet");
    let out = out.to_str().unwrap();
    let code = |args: &[&str]| {
        let o = run(args);
        assert!(!text(&o).contains("panicked"), "{}", text(&o));
        (o.status.code(), text(&o))
    };
    // 2: the command line.
    for args in [
        vec!["subset", ds, "--out", out],
        vec!["subset", ds, "--where", "age_years >", "--out", out],
        vec!["balance", ds, "--label-column", "Cardiomegaly", "--mode", "counts", "--out", out],
        vec!["balance", ds, "--label-column", "Cardiomegaly", "--mode", "counts", "--counts", "1=x", "--out", out],
        vec!["fractions", ds, "--fractions", "0,2", "--out", out],
        vec!["export", ds, "nosuchkey", out],
        vec!["stream", ds, "--world", "2", "--rank", "2"],
        vec!["demo", "--count", "0", "--out", out],
        vec!["verify", ds, "--no-such-flag"],
    ] {
        let (c, t) = code(&args);
        assert_eq!(c, Some(2), "{args:?}: {t}");
        assert!(t.contains("error"), "{args:?}: {t}");
    }
    // 3: an input that is missing or invalid.
    let not_a_dataset = dir.path().join("empty");
    fs::create_dir(&not_a_dataset).unwrap();
    let garbage = dir.path().join("garbage.tar");
    fs::write(&garbage, [7u8; 700]).unwrap();
    for args in [
        vec!["verify", dir.path().join("nope").to_str().unwrap()],
        vec!["stats", not_a_dataset.to_str().unwrap()],
        vec!["inspect", garbage.to_str().unwrap()],
        vec!["stream", not_a_dataset.to_str().unwrap()],
    ] {
        let (c, t) = code(&args);
        assert_eq!(c, Some(3), "{args:?}: {t}");
    }
    // 4: an output that cannot be written (under a regular file: root ignores permissions).
    let file = dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let under_file = file.join("x");
    let under_file = under_file.to_str().unwrap();
    for args in [
        vec!["stats", ds, "--png", under_file],
        vec!["subset", ds, "--where", "age_years > 0", "--out", under_file],
        vec!["export", ds, "demo000001", under_file],
        vec!["demo", "--count", "2", "--size", "16", "--out", under_file],
        vec!["demo", "--count", "2", "--size", "16", "--out", ds],
    ] {
        let (c, t) = code(&args);
        assert_eq!(c, Some(4), "{args:?}: {t}");
    }
    // The table is in --help.
    let (c, t) = code(&["--help"]);
    assert_eq!(c, Some(0));
    assert!(t.contains(chess_cli::EXIT_CODES_HELP), "{t}");
}
