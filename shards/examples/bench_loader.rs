//! The Rust side of the loader benchmark (`scripts/bench/loader.sh`):
//! epochs of a dataset through [`Loader`] (batches recycled, as the trainer
//! does), timed in steady state, and the floor the loader is measured
//! against.
//!
//! Steady state: the clock and the CPU counter start when the first batch
//! arrives and stop after the last batch of the last epoch; the first
//! batch's samples are not counted. The Python peers are timed the same way
//! (`scripts/bench/loader_python.py`, `loader_peers.py`).
//!
//! The floors: every sample's `.npy.zst` member copied once into a slot of
//! a 64-slot buffer, in shard order, one thread, nothing else (no parsing,
//! no batches): `--floor` with one `pread` out of the page cache per
//! sample (what the loader does with `CHESS_LOADER_MMAP=0`), `--floor-memcpy`
//! with a `memcpy` out of the shard files held in memory (read once before
//! the clock starts: what copying out of a kept mapping costs, the page
//! tables aside).
//!
//! Prints one JSON object: samples (counted), seconds, samples_per_s,
//! cpu_seconds (this process, all threads), peak_rss_bytes (VmHWM: includes
//! the pages of mapped shard files), rss_anon_bytes (the largest RssAnon
//! seen every 8th batch and at an epoch's end: the loader's own memory),
//! rss_file_bytes (the largest RssFile: mapped shard pages, which are the
//! page cache's).
//!
//! Usage: bench_loader DATASET [--threads N] [--epochs E] [--shuffle-buffer S] [--batch B] [--floor | --floor-memcpy]

use std::os::unix::fs::FileExt;
use std::time::Instant;

use chess_shards::loader::{Loader, LoaderOptions};
use chess_shards::Dataset;

/// CPU seconds of this process so far (user + system, all threads, from
/// /proc/self/stat; 10 ms ticks).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ")".
    (tick(11) + tick(12)) / 100.0
}

/// A `/proc/self/status` figure in bytes (`VmHWM:`, `RssAnon:`, `RssFile:`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Largest (RssAnon, RssFile) seen so far.
static RSS: std::sync::Mutex<(u64, u64)> = std::sync::Mutex::new((0, 0));

fn sample_rss() {
    let mut m = RSS.lock().unwrap();
    m.0 = m.0.max(status_bytes("RssAnon:"));
    m.1 = m.1.max(status_bytes("RssFile:"));
}

struct Args {
    dataset: String,
    threads: usize,
    epochs: u64,
    shuffle_buffer: usize,
    batch: usize,
    floor: Option<Floor>,
}

#[derive(Clone, Copy)]
enum Floor {
    Pread,
    Memcpy,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args { dataset: String::new(), threads: 1, epochs: 3, shuffle_buffer: 256, batch: 64, floor: None };
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--threads" => args.threads = value("--threads")?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--epochs" => args.epochs = value("--epochs")?.parse().map_err(|e| format!("--epochs: {e}"))?,
            "--shuffle-buffer" => {
                args.shuffle_buffer =
                    value("--shuffle-buffer")?.parse().map_err(|e| format!("--shuffle-buffer: {e}"))?
            }
            "--batch" => args.batch = value("--batch")?.parse().map_err(|e| format!("--batch: {e}"))?,
            "--floor" => args.floor = Some(Floor::Pread),
            "--floor-memcpy" => args.floor = Some(Floor::Memcpy),
            other if args.dataset.is_empty() && !other.starts_with('-') => args.dataset = other.to_string(),
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    if args.dataset.is_empty() || args.epochs == 0 {
        return Err(
            "usage: bench_loader DATASET [--threads N] [--epochs E] [--shuffle-buffer S] [--batch B] [--floor | --floor-memcpy]"
                .into(),
        );
    }
    Ok(args)
}

/// The loader in steady state: (samples counted, seconds, CPU seconds).
fn loader(args: &Args) -> Result<(u64, f64, f64), Box<dyn std::error::Error>> {
    let opts = LoaderOptions {
        batch_size: args.batch,
        shuffle_buffer: args.shuffle_buffer,
        decode_threads: args.threads,
        ..LoaderOptions::default()
    };
    let loader = Loader::open(&args.dataset, opts)?;
    let mut started: Option<(Instant, f64)> = None;
    let mut counted = 0u64;
    for epoch in 0..args.epochs {
        let mut it = loader.epoch(epoch);
        while let Some(batch) = it.next() {
            let batch = batch?;
            match started {
                None => started = Some((Instant::now(), cpu_seconds())),
                Some(_) => counted += batch.len() as u64,
            }
            if batch.index % 8 == 1 {
                sample_rss(); // mid-epoch, batches in flight
            }
            it.recycle(batch);
        }
        sample_rss();
        let report = it.report().ok_or("the epoch ended without a report")?;
        if !report.accounted() || report.skipped > 0 {
            return Err(format!("epoch {epoch}: {report:?}").into());
        }
    }
    let (t, c) = started.ok_or("no batch was delivered")?;
    Ok((counted, t.elapsed().as_secs_f64(), cpu_seconds() - c))
}

/// One `pread` (or `memcpy`) of every `.npy.zst` member into a batch slot: (samples, seconds, CPU seconds).
fn floor(args: &Args, how: Floor) -> Result<(u64, f64, f64), Box<dyn std::error::Error>> {
    let ds = Dataset::open(std::path::Path::new(&args.dataset))?;
    let rows = ds.manifest.rows();
    let mut files = std::collections::HashMap::new();
    let mut held = std::collections::HashMap::new();
    for row in &rows {
        if !files.contains_key(&row.shard) {
            let path = ds.shard_path(&row.shard)?;
            if let Floor::Memcpy = how {
                held.insert(row.shard.clone(), std::fs::read(&path)?);
            }
            files.insert(row.shard.clone(), std::fs::File::open(path)?);
        }
    }
    let slot = rows.iter().map(|r| r.size).max().unwrap_or(0) as usize;
    let mut buffer = vec![0u8; slot * args.batch];
    let (t, c) = (Instant::now(), cpu_seconds());
    let mut n = 0u64;
    for _ in 0..args.epochs {
        for (i, row) in rows.iter().enumerate() {
            let at = (i % args.batch) * slot;
            let dst = &mut buffer[at..at + row.size as usize];
            match how {
                Floor::Pread => files[&row.shard].read_exact_at(dst, row.offset)?,
                Floor::Memcpy => dst.copy_from_slice(&held[&row.shard][row.offset as usize..][..row.size as usize]),
            }
            n += 1;
        }
    }
    std::hint::black_box(&buffer);
    sample_rss();
    Ok((n, t.elapsed().as_secs_f64(), cpu_seconds() - c))
}

fn main() {
    let result = parse_args().map_err(Into::into).and_then(|args| match args.floor {
        Some(how) => floor(&args, how),
        None => loader(&args),
    });
    match result {
        Ok((samples, seconds, cpu)) => {
            let (anon, file) = *RSS.lock().unwrap();
            println!(
                "{{\"samples\": {samples}, \"seconds\": {seconds:.6}, \"samples_per_s\": {:.1}, \"cpu_seconds\": \
                 {cpu:.3}, \"peak_rss_bytes\": {}, \"rss_anon_bytes\": {anon}, \"rss_file_bytes\": {file}}}",
                samples as f64 / seconds.max(1e-9),
                status_bytes("VmHWM:")
            )
        }
        Err(e) => {
            eprintln!("bench_loader: {e}");
            std::process::exit(1);
        }
    }
}
