//! `chess-shards stream`: run the streaming loader and print the keys in
//! delivery order, or the throughput and peak memory.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use chess_cli::CliError;
use chess_shards::loader::{Access, Loader, LoaderOptions, LoaderState, Remainder, Retry};

/// Arguments of `chess-shards stream`.
#[derive(clap::Args, Debug)]
pub struct StreamArgs {
    /// A dataset directory, a dataset URL (s3://bucket/prefix, gs://, az://,
    /// http(s)://) or a manifest (.parquet, local or URL).
    pub source: String,
    /// Epoch to stream (with the seed, it picks the permutation).
    #[arg(long, default_value_t = 0)]
    pub epoch: u64,
    /// Seed of the permutations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// This consumer's rank.
    #[arg(long, default_value_t = 0)]
    pub rank: u64,
    /// Number of ranks.
    #[arg(long, default_value_t = 1)]
    pub world: u64,
    /// Independent loaders per rank (e.g. processes feeding one GPU): each
    /// sample goes to exactly one (rank, worker).
    #[arg(long, default_value_t = 1)]
    pub workers: u64,
    /// This loader's index among the rank's workers.
    #[arg(long, default_value_t = 0)]
    pub worker: u64,
    /// Samples per batch.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Print each delivered key, one per line, in delivery order.
    #[arg(long)]
    pub keys: bool,
    /// When the samples do not divide among the ranks: drop the last few of
    /// the epoch's sequence, or pad by repeating its first few.
    #[arg(long, default_value = "drop")]
    pub remainder: Remainder,
    /// auto (shards for a dataset, ranges for a manifest), shards (stream
    /// whole shards), ranges (one byte-range read per sample).
    #[arg(long, default_value = "auto")]
    pub access: Access,
    /// Slots of the shuffle buffer over the shard stream.
    #[arg(long, default_value_t = 512)]
    pub shuffle_buffer: usize,
    /// Deliver in manifest order (no permutation).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Shards read concurrently (range requests: 4× this).
    #[arg(long, default_value_t = 4)]
    pub prefetch: usize,
    /// Batches prepared ahead of the consumer.
    #[arg(long, default_value_t = 2)]
    pub prefetch_batches: usize,
    /// Check every image's pixel hash against the manifest.
    #[arg(long)]
    pub verify_hashes: bool,
    /// Also deliver this extra array (repeatable): target, mask.
    #[arg(long = "field")]
    pub fields: Vec<String>,
    /// Dataset root for a manifest (overrides the one recorded in it).
    #[arg(long)]
    pub root: Option<String>,
    /// Retries of an object-store read before giving up.
    #[arg(long, default_value_t = 5)]
    pub retries: usize,
    /// First retry backoff in milliseconds (doubles, up to 8 s).
    #[arg(long, default_value_t = 250)]
    pub retry_backoff_ms: u64,
    /// Object-store setting overriding the environment (repeatable), with
    /// object_store's key names: endpoint=http://127.0.0.1:9000, allow_http=true.
    #[arg(long = "storage", value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub storage: Vec<(String, String)>,
    /// Continue an epoch from a state file written by --state-out.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many batches.
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// Write the resume state (JSON) here when stopping or finishing.
    #[arg(long)]
    pub state_out: Option<PathBuf>,
    /// Write the epoch report (JSON) here.
    #[arg(long)]
    pub report_json: Option<PathBuf>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("`{s}` is not KEY=VALUE"))
}

/// Peak resident set size in bytes (VmHWM), where /proc has it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

pub fn run(args: StreamArgs, threads: Option<usize>, quiet: bool) -> Result<()> {
    // Every field is set (a new option must be added here too).
    let opts = LoaderOptions {
        seed: args.seed,
        rank: args.rank,
        world: args.world,
        workers: args.workers,
        worker: args.worker,
        batch_size: args.batch,
        remainder: args.remainder,
        shuffle: !args.no_shuffle,
        shuffle_buffer: args.shuffle_buffer,
        access: args.access,
        decode_threads: threads.unwrap_or_else(|| LoaderOptions::default().decode_threads),
        prefetch: args.prefetch,
        prefetch_batches: args.prefetch_batches,
        verify_hashes: args.verify_hashes,
        fields: args.fields.clone(),
        root: args.root.clone(),
        retry: Retry { retries: args.retries, backoff: std::time::Duration::from_millis(args.retry_backoff_ms) },
        storage: args.storage.clone(),
    };
    let loader = Loader::open(&args.source, opts).with_context(|| format!("opening {}", args.source))?;
    let mut iter = match &args.resume {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::input(format!("reading {}: {e}", path.display())))?;
            let state: LoaderState = serde_json::from_str(&text)
                .map_err(|e| CliError::input(format!("{}: not a loader state: {e}", path.display())))?;
            loader.resume(state)?
        }
        None => loader.epoch(args.epoch),
    };
    let started = Instant::now();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut samples, mut bytes, mut batches) = (0u64, 0u64, 0u64);
    let mut stopped = false;
    while let Some(batch) = iter.next() {
        let batch = batch?;
        samples += batch.len() as u64;
        bytes += (batch.pixels.byte_len() + batch.extras.iter().map(|(_, p)| p.byte_len()).sum::<usize>()) as u64;
        batches += 1;
        if args.keys {
            for key in &batch.keys {
                writeln!(out, "{key}")?;
            }
        }
        iter.recycle(batch);
        if args.stop_after.is_some_and(|n| batches >= n) {
            stopped = true;
            break;
        }
    }
    out.flush()?;
    let elapsed = started.elapsed().as_secs_f64();
    let state = iter.state();
    let bytes_read = iter.bytes_read();
    let report = iter.report().cloned();
    drop(iter);
    if let (Some(path), Some(state)) = (&args.state_out, state) {
        std::fs::write(path, serde_json::to_string_pretty(&state)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let (Some(path), Some(report)) = (&args.report_json, &report) {
        std::fs::write(path, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let rss = peak_rss_bytes().map_or("unknown".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    let rate = |x: f64| if elapsed > 0.0 { x / elapsed } else { 0.0 };
    if !args.keys {
        writeln!(
            std::io::stdout(),
            "{samples} samples in {batches} batches, {elapsed:.2} s: {:.1} samples/s, {:.1} MB/s decoded, {:.1} MB/s read; peak RSS {rss}",
            rate(samples as f64),
            rate(bytes as f64 / 1e6),
            rate(bytes_read as f64 / 1e6),
        )?;
    }
    if stopped {
        if !quiet {
            eprintln!("stopped after {batches} batches ({samples} samples); resume state: {:?}", state);
        }
        return Ok(());
    }
    let Some(report) = report else {
        anyhow::bail!("the epoch ended without a report");
    };
    if !quiet {
        eprintln!(
            "epoch {} rank {}/{}: delivered {} of {} expected ({} padded, {} left out by the remainder policy), skipped {}",
            report.epoch,
            report.rank,
            report.world,
            report.delivered,
            report.expected,
            report.padded,
            report.dropped_remainder,
            report.skipped
        );
    }
    for s in &report.skipped_samples {
        eprintln!("SKIPPED {} ({}): {}", s.key, s.shard, s.reason);
    }
    if report.skipped > 0 || !report.accounted() {
        return Err(CliError::check_failed(format!(
            "{} of {} samples skipped, {} delivered",
            report.skipped, report.expected, report.delivered
        ))
        .into());
    }
    Ok(())
}
