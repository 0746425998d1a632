//! The streaming loader on local datasets: exactly-once delivery across
//! world sizes, determinism, resume, corrupt samples, subset manifests by
//! byte ranges, and the `chess-shards stream` command.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use chess_schemas::PixelDtype;
use chess_shards::loader::{Access, Batch, EpochReport, Loader, LoaderOptions, LoaderState, Remainder};
use chess_shards::{demo, Dataset, DatasetWriter, FinishInfo, NpyZstDecoder};

use crate::common;

/// A dataset of `n` 32×32 demo phantoms, `per_shard` samples per shard.
fn dataset(dir: &Path, n: u64, per_shard: u64, paired: bool) -> PathBuf {
    common::demo_dataset(&dir.join("ds"), n, 32, per_shard, paired)
}

fn opts(world: u64, rank: u64, batch: usize) -> LoaderOptions {
    LoaderOptions { seed: 11, world, rank, batch_size: batch, shuffle_buffer: 16, ..LoaderOptions::default() }
}

fn open(path: &Path, o: LoaderOptions) -> Loader {
    Loader::open(path.to_str().unwrap(), o).unwrap()
}

fn run_epoch(loader: &Loader, epoch: u64) -> (Vec<Batch>, EpochReport) {
    let mut it = loader.epoch(epoch);
    let batches: Vec<Batch> = (&mut it).map(|b| b.unwrap()).collect();
    let report = it.report().cloned().expect("report after the last batch");
    (batches, report)
}

fn keys(batches: &[Batch]) -> Vec<String> {
    batches.iter().flat_map(|b| b.keys.clone()).collect()
}

fn counts(keys: impl IntoIterator<Item = String>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for k in keys {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

fn all_keys(root: &Path) -> BTreeSet<String> {
    Dataset::open(root).unwrap().manifest.rows().into_iter().map(|r| r.key).collect()
}

#[test]
fn every_sample_exactly_once_per_epoch_across_world_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 60, 7, false);
    let everything = all_keys(&root);
    for access in [Access::Shards, Access::Ranges] {
        for world in 1..=4u64 {
            for epoch in [0, 1] {
                let mut union = Vec::new();
                let mut batch_counts = BTreeSet::new();
                for rank in 0..world {
                    let loader = open(&root, LoaderOptions { access, ..opts(world, rank, 4) });
                    let (batches, report) = run_epoch(&loader, epoch);
                    assert!(report.accounted() && report.skipped == 0, "{report:?}");
                    assert_eq!(report.expected, 60 / world);
                    assert_eq!(batches.len() as u64, loader.batches_per_epoch());
                    batch_counts.insert(batches.len());
                    for b in &batches {
                        assert_eq!(b.pixels.len(), b.len() * 32 * 32);
                        assert_eq!(b.labels.len(), b.len());
                    }
                    union.extend(keys(&batches));
                }
                assert_eq!(batch_counts.len(), 1, "every rank gets as many batches");
                let c = counts(union);
                assert_eq!(c.keys().cloned().collect::<BTreeSet<_>>(), everything, "{access:?} world {world}");
                assert!(c.values().all(|&n| n == 1), "{access:?} world {world}: {c:?}");
            }
        }
    }
}

#[test]
fn ranks_split_further_among_workers() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 36, 5, false);
    let mut union = Vec::new();
    for rank in 0..2 {
        for worker in 0..3 {
            let loader = open(&root, LoaderOptions { workers: 3, worker, ..opts(2, rank, 4) });
            let (batches, report) = run_epoch(&loader, 1);
            assert_eq!(report.expected, 6);
            union.extend(keys(&batches));
        }
    }
    let c = counts(union);
    assert_eq!(c.keys().cloned().collect::<BTreeSet<_>>(), all_keys(&root));
    assert!(c.values().all(|&n| n == 1));
}

#[test]
fn remainder_policies_drop_or_pad() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 61, 8, false);
    let everything = all_keys(&root);
    let world = 4;
    // drop: 60 samples delivered once each, 1 left out
    let mut union = Vec::new();
    for rank in 0..world {
        let (batches, report) =
            run_epoch(&open(&root, LoaderOptions { remainder: Remainder::Drop, ..opts(world, rank, 5) }), 0);
        assert_eq!((report.expected, report.dropped_remainder, report.padded), (15, 1, 0));
        union.extend(keys(&batches));
    }
    let c = counts(union);
    assert_eq!(c.len(), 60);
    assert!(c.values().all(|&n| n == 1));
    // pad: every sample at least once, 3 repeated, 64 deliveries
    let mut union = Vec::new();
    let mut padded = 0;
    for rank in 0..world {
        let (batches, report) =
            run_epoch(&open(&root, LoaderOptions { remainder: Remainder::Pad, ..opts(world, rank, 5) }), 0);
        assert_eq!(report.expected, 16);
        padded += report.padded;
        for b in &batches {
            for (k, p) in b.keys.iter().zip(&b.padded) {
                if *p {
                    union.push(format!("{k}+pad"));
                }
            }
        }
        union.extend(keys(&batches));
    }
    assert_eq!(padded, 3);
    let c = counts(union.iter().filter(|k| !k.ends_with("+pad")).cloned());
    assert_eq!(c.keys().cloned().collect::<BTreeSet<_>>(), everything);
    assert_eq!(c.values().sum::<usize>(), 64);
    assert_eq!(c.values().filter(|&&n| n == 2).count(), 3);
    assert_eq!(union.iter().filter(|k| k.ends_with("+pad")).count(), 3);
}

#[test]
fn pixels_labels_and_extras_match_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 20, 6, true);
    let ds = Dataset::open(&root).unwrap();
    let rows = ds.manifest.rows();
    let mut decoder = NpyZstDecoder::new();
    for access in [Access::Shards, Access::Ranges] {
        let loader = open(&root, LoaderOptions { access, fields: vec!["target".into()], ..opts(1, 0, 6) });
        assert_eq!(loader.label_names(), ["Cardiomegaly"]);
        let (batches, report) = run_epoch(&loader, 3);
        assert_eq!(report.delivered, 20);
        for b in &batches {
            assert_eq!(b.shape(), [b.len(), 32, 32]);
            let px = b.pixels.as_u16().unwrap();
            let target = b.extras[0].1.as_u16().unwrap();
            for (i, &row) in b.rows.iter().enumerate() {
                assert_eq!(b.keys[i], rows[row].key);
                assert_eq!(b.labels[i], rows[row].labels);
                let sample = ds.read_sample(&rows[row], &mut decoder).unwrap();
                assert_eq!(&px[i * 1024..(i + 1) * 1024], &sample.image.to_u16()[..]);
                assert_eq!(&target[i * 1024..(i + 1) * 1024], &sample.extras[0].1.to_u16()[..]);
            }
            assert_eq!(b.labels_f32().len(), b.len());
        }
    }
}

#[test]
fn eight_bit_datasets_give_u8_batches() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ds8");
    let mut writer = DatasetWriter::create(&root, demo::demo_options(PixelDtype::Uint8, 4, false)).unwrap();
    for i in 0..10 {
        writer.write(&demo::demo_sample(i, 32, PixelDtype::Uint8, false)).unwrap();
    }
    writer
        .finish(FinishInfo { tool_version: "test".into(), deid_method: "synthetic".into(), ..Default::default() })
        .unwrap();
    let ds = Dataset::open(&root).unwrap();
    let rows = ds.manifest.rows();
    let loader = open(&root, opts(1, 0, 4));
    assert_eq!(loader.dtype(), PixelDtype::Uint8);
    let (batches, report) = run_epoch(&loader, 0);
    assert!(report.accounted() && report.delivered == 10);
    let mut decoder = NpyZstDecoder::new();
    for b in &batches {
        let px = b.pixels.as_u8().expect("uint8 pixels");
        for (i, &row) in b.rows.iter().enumerate() {
            assert_eq!(&px[i * 1024..(i + 1) * 1024], &ds.read_image(&rows[row], &mut decoder).unwrap().data[..]);
        }
    }
}

#[test]
fn order_depends_on_seed_epoch_world_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 50, 6, false);
    for access in [Access::Shards, Access::Ranges] {
        for (world, rank) in [(1, 0), (3, 1)] {
            let slow =
                LoaderOptions { access, decode_threads: 1, prefetch: 1, prefetch_batches: 1, ..opts(world, rank, 4) };
            let fast =
                LoaderOptions { access, decode_threads: 5, prefetch: 8, prefetch_batches: 4, ..opts(world, rank, 4) };
            let a = keys(&run_epoch(&open(&root, slow.clone()), 2).0);
            let b = keys(&run_epoch(&open(&root, fast.clone()), 2).0);
            assert_eq!(a, b, "{access:?} world {world}: thread counts must not change the order");
            let c = keys(&run_epoch(&open(&root, slow.clone()), 3).0);
            assert_ne!(a, c, "another epoch, another order");
            let d = keys(&run_epoch(&open(&root, LoaderOptions { seed: 12, ..slow.clone() }), 2).0);
            assert_ne!(a, d, "another seed, another order");
        }
    }
    // Unshuffled: manifest order.
    let rows: Vec<String> = Dataset::open(&root).unwrap().manifest.rows().into_iter().map(|r| r.key).collect();
    let plain = keys(&run_epoch(&open(&root, LoaderOptions { shuffle: false, ..opts(1, 0, 7) }), 5).0);
    assert_eq!(plain, rows);
}

#[test]
fn resume_gives_exactly_the_next_batch() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 45, 7, false);
    for access in [Access::Shards, Access::Ranges] {
        let o = LoaderOptions { access, ..opts(2, 1, 4) };
        let loader = open(&root, o.clone());
        let (full, _) = run_epoch(&loader, 4);
        assert_eq!(full.len(), 6); // 22 samples in batches of 4
        for k in [0, 1, 3, 4] {
            // A fresh loader (as after a restart), resumed from the state
            // saved with batch k, serialised as a checkpoint would be.
            let json = serde_json::to_string(&full[k].state).unwrap();
            let state: LoaderState = serde_json::from_str(&json).unwrap();
            let again = open(&root, LoaderOptions { decode_threads: 1, prefetch: 2, ..o.clone() });
            let mut it = again.resume(state).unwrap();
            let rest: Vec<Batch> = (&mut it).map(|b| b.unwrap()).collect();
            assert_eq!(rest.len(), full.len() - k - 1, "{access:?} after batch {k}");
            for (x, y) in rest.iter().zip(&full[k + 1..]) {
                assert_eq!(x.keys, y.keys);
                assert_eq!(x.pixels, y.pixels);
                assert_eq!(x.index, y.index);
                assert_eq!(x.state, y.state);
            }
            let report = it.report().unwrap();
            assert!(report.accounted(), "{report:?}");
            assert_eq!(report.delivered, 22);
        }
        // Loader::state follows the consumer.
        let mut it = loader.epoch(4);
        it.next().unwrap().unwrap();
        it.next().unwrap().unwrap();
        assert_eq!(loader.state(), Some(full[1].state));
        drop(it);
        // A state from other settings is refused.
        let other = open(&root, LoaderOptions { seed: 99, ..o.clone() });
        assert!(other.resume(full[1].state).is_err());
        let other = open(&root, LoaderOptions { batch_size: 5, ..o.clone() });
        assert!(other.resume(full[1].state).is_err());
    }
}

#[test]
fn corrupt_and_missing_samples_are_skipped_counted_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 40, 8, false);
    let ds = Dataset::open(&root).unwrap();
    let rows = ds.manifest.rows();
    let damage = |row: usize, at: u64, f: &dyn Fn(&mut [u8])| {
        let path = root.join(&rows[row].shard);
        let mut bytes = std::fs::read(&path).unwrap();
        f(&mut bytes[at as usize..]);
        std::fs::write(&path, bytes).unwrap();
    };
    // 3: the zstd frame is garbage → decode fails.
    damage(3, rows[3].offset, &|b| b[..4].copy_from_slice(b"junk"));
    // 12: its first tar header's checksum is broken → the tar stream fails
    // there; parsing restarts at sample 13.
    damage(12, rows[12].sample_offset + 148, &|b| b[0] = b'9');
    // 20: pixel hash in the manifest no longer matches (caught with verify_hashes).
    let mut edited = rows.clone();
    edited[20].pixel_hash = "0".repeat(64);
    let manifest =
        chess_shards::Manifest::from_rows(root.join("manifest.parquet"), ds.manifest.columns.clone(), &edited).unwrap();
    manifest.write(&root.join("manifest.parquet"), None).unwrap();
    // 39 (last of the last shard): the shard is cut short inside it.
    let last = root.join(&rows[39].shard);
    let len = std::fs::metadata(&last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    f.set_len(rows[39].offset + 10).unwrap();
    assert!(len > rows[39].offset + 10);

    let bad: BTreeSet<String> = [3usize, 12, 20, 39].iter().map(|&i| rows[i].key.clone()).collect();
    for access in [Access::Shards, Access::Ranges] {
        for verify in [false, true] {
            let (batches, report) =
                run_epoch(&open(&root, LoaderOptions { access, verify_hashes: verify, ..opts(1, 0, 6) }), 0);
            let skipped: BTreeSet<String> = report.skipped_samples.iter().map(|s| s.key.clone()).collect();
            let mut expect_skipped = bad.clone();
            if !verify {
                expect_skipped.remove(&rows[20].key);
            }
            assert_eq!(skipped, expect_skipped, "{access:?} verify={verify}: {report:?}");
            assert_eq!(report.skipped, expect_skipped.len() as u64);
            assert!(report.accounted(), "{report:?}");
            assert!(report
                .skipped_samples
                .iter()
                .all(|s| s.reason.starts_with("corrupt") || s.reason.starts_with("missing")));
            let delivered = counts(keys(&batches));
            assert_eq!(delivered.len() as u64, 40 - report.skipped);
            assert!(delivered.values().all(|&n| n == 1));
            assert!(delivered.keys().all(|k| !expect_skipped.contains(k)));
        }
    }
    // The command names each skipped sample and exits 1.
    let o = common::bin().args(["stream", root.to_str().unwrap(), "--keys"]).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    for i in [3usize, 12, 39] {
        assert!(err.contains(&format!("SKIPPED {}", rows[i].key)), "{err}");
    }
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 37);
}

#[test]
fn subset_manifest_is_served_by_byte_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 48, 8, false);
    let ds = Dataset::open(&root).unwrap();
    let picked: Vec<String> = ds.manifest.rows().iter().step_by(5).map(|r| r.key.clone()).collect();
    let batch = chess_shards::ops::subset(&ds, Some(&picked), None).unwrap();
    let elsewhere = dir.path().join("elsewhere").join("fraction.parquet");
    chess_shards::ops::write_subset(&ds, batch, &elsewhere).unwrap();
    let subset_bytes: u64 = ds.manifest.rows().iter().step_by(5).map(|r| r.sample_size).sum();

    let mut union = Vec::new();
    for rank in 0..2 {
        let loader = open(&elsewhere, opts(2, rank, 3));
        assert_eq!(loader.access(), Access::Ranges);
        let mut it = loader.epoch(0);
        let batches: Vec<Batch> = (&mut it).map(|b| b.unwrap()).collect();
        let report = it.report().unwrap().clone();
        assert!(report.accounted());
        // Only the subset's bytes were read (10 samples of 48, by range).
        union.extend(keys(&batches));
        assert!(report.bytes_read > 0 && report.bytes_read < subset_bytes, "{report:?}");
        let _ = report;
    }
    assert_eq!(counts(union.clone()).len(), picked.len());
    assert_eq!(union.len(), picked.len());
    assert_eq!(counts(union).keys().cloned().collect::<BTreeSet<_>>(), picked.iter().cloned().collect());
    // With one consumer, exactly the subset's sample spans are read.
    let loader = open(&elsewhere, opts(1, 0, 3));
    let (_, report) = run_epoch(&loader, 1);
    assert_eq!(report.bytes_read, subset_bytes);
}

#[test]
fn stream_command_prints_keys_resumes_and_reports_throughput() {
    let dir = tempfile::tempdir().unwrap();
    let root = dataset(dir.path(), 30, 7, false);
    let bin = common::BIN;
    let run = |extra: &[&str]| {
        let mut args = vec!["stream", root.to_str().unwrap(), "--seed", "5", "--epoch", "2", "--batch", "4"];
        args.extend_from_slice(extra);
        let o = Command::new(bin).args(&args).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let full: Vec<String> = run(&["--keys"]).lines().map(str::to_string).collect();
    assert_eq!(full.len(), 30);
    let state = dir.path().join("state.json");
    let head: Vec<String> = run(&["--keys", "--stop-after", "3", "--state-out", state.to_str().unwrap()])
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(head, full[..12]);
    let tail: Vec<String> = run(&["--keys", "--resume", state.to_str().unwrap()]).lines().map(str::to_string).collect();
    assert_eq!(tail, full[12..]);
    let mut ranks: Vec<String> = Vec::new();
    for r in ["0", "1", "2"] {
        ranks.extend(run(&["--keys", "--world", "3", "--rank", r]).lines().map(str::to_string));
    }
    ranks.sort();
    let mut sorted = full.clone();
    sorted.sort();
    assert_eq!(ranks, sorted);
    let line = run(&[]);
    assert!(
        line.contains("30 samples in 8 batches")
            && line.contains("samples/s")
            && line.contains("MB/s")
            && line.contains("peak RSS"),
        "{line}"
    );
}
