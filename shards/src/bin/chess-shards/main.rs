//! `chess-shards`: look at, check, summarise and recombine CheSS datasets.
//!
//! Thin binary: argument parsing, progress bars and printing; the work is
//! done by the `chess_shards` library.

use std::error::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use chess_cli::{progress, Classify, CliError, ExitClass};
use chess_schemas::{layout, PixelDtype};
use chess_shards::dataset::DatasetFiles;
use chess_shards::{balance, demo, fractions, ops, stats, verify, Dataset, DatasetWriter, FinishInfo};
use chess_shards::{LoaderError, ShardError};
use clap::{Parser, Subcommand};

mod stream;

/// Inspect, verify, summarise and recombine CheSS datasets (tar shards of
/// .npy.zst images plus a Parquet manifest).
///
/// A DATASET is a directory holding dataset.json, manifest.parquet and
/// shards/. Where a MANIFEST is accepted, it may be a subset or per-fraction
/// manifest stored anywhere; its shard paths resolve against the dataset root
/// recorded in it.
#[derive(Parser, Debug)]
#[command(name = "chess-shards", version, about, long_about, after_help = chess_cli::EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars or summaries; errors and requested output only.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Worker threads (default: all cores).
    #[arg(long, global = true)]
    threads: Option<usize>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what a shard, dataset or manifest holds.
    ///
    /// For a shard (.tar): its members with offsets and sizes. For a dataset
    /// or manifest: dataset.json, the columns, counts and the first rows.
    Inspect {
        /// A shard file, a dataset directory or a manifest (.parquet).
        path: PathBuf,
        /// How many members or rows to list.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Check that every manifest row resolves to its bytes and pixel hash,
    /// and that every shard member is in the manifest.
    ///
    /// Prints each mismatch (shard, key, what is wrong) and exits with 1 if
    /// there is any.
    Verify {
        /// A dataset directory, or a manifest (then only its rows are checked).
        dataset: PathBuf,
    },
    /// Write one image as an 8-bit PNG to look at (linear from its min to its max).
    Export {
        dataset: PathBuf,
        /// The sample key.
        key: String,
        /// Output PNG file.
        out: PathBuf,
        /// Export this extra array (e.g. target, mask) instead of the image.
        #[arg(long)]
        field: Option<String>,
    },
    /// Counts by view, sex, age band, modality and split; pixel statistics;
    /// a PNG chart of the pixel histogram and the counts.
    Stats {
        /// A dataset directory or a manifest.
        dataset: PathBuf,
        /// Where to write the PNG chart.
        #[arg(long, default_value = "chess-stats.png")]
        png: PathBuf,
        /// Read pixels of every N-th sample only (1 = all).
        #[arg(long, default_value_t = 1)]
        every: usize,
        /// Print the statistics as JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Join datasets into one: the partitions of one ingest run, or
    /// different datasets (imported releases, a PACS export) into one
    /// pretraining set.
    ///
    /// Shards are hard-linked when the output is on the same filesystem,
    /// otherwise copied. The columns are the union of the inputs' (null where
    /// an input lacks a label column); when any input has `source_dataset`,
    /// the rows of inputs without it get their --source-name, else their
    /// dataset.json's source_dataset, else their directory's name. Refuses
    /// duplicate keys, different pixel types, and a column with two types.
    Merge {
        /// Input dataset directories.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output dataset directory (must not exist or be empty).
        #[arg(long)]
        out: PathBuf,
        /// Stem of the output shard names.
        #[arg(long, default_value = "shard")]
        shard_name: String,
        /// `source_dataset` of an input without that column, as DIR=NAME
        /// (DIR exactly as given among the inputs); repeatable.
        #[arg(long = "source-name", value_name = "DIR=NAME")]
        source_names: Vec<String>,
    },
    /// Write a manifest of the rows selected by keys and/or an expression.
    ///
    /// Expressions compare columns with literals: `view_position in ('PA',
    /// 'AP') and age_years >= 18 and sex is not null`; quote column names
    /// with spaces: `"Pleural Effusion" = 1`.
    Subset {
        /// A dataset directory or a manifest.
        dataset: PathBuf,
        /// File with one key per line (every key must exist).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Row filter expression.
        #[arg(long = "where")]
        filter: Option<String>,
        /// Output manifest (.parquet); it records the dataset root.
        #[arg(long)]
        out: PathBuf,
    },
    /// Per-fraction training manifests (CheXpert protocol: 1/10/50/100 %,
    /// repeated), plus the shared valid.parquet and test.parquet.
    ///
    /// Sampling is by patient (no patient in two of train/valid/test; all of
    /// a sampled patient's images come along), nested across fractions within
    /// a repeat, and deterministic in --seed. Writes
    /// train-f<F>-r<RR>.parquet (fraction 1 once), valid.parquet,
    /// test.parquet, summary.csv and fractions.json into --out. Each manifest
    /// carries target_<label> columns resolved by --uncertain (blank = 0).
    Fractions {
        /// A dataset directory or a manifest with a `split` column (or use
        /// --test-fraction/--valid-fraction to carve the splits).
        dataset: PathBuf,
        /// Fractions of the training images, in (0, 1].
        #[arg(long, value_delimiter = ',', default_value = "0.01,0.1,0.5,1")]
        fractions: Vec<f64>,
        /// Repeats per fraction (different random samples); fraction 1 gets one.
        #[arg(long, default_value_t = 10)]
        repeats: u32,
        /// Random seed: the same seed and input give the same manifests.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Sampling unit.
        #[arg(long, value_enum, default_value_t = GroupByArg::Patient)]
        group_by: GroupByArg,
        /// Keep frontal views (PA/AP) only, or all views.
        #[arg(long, value_enum, default_value_t = ViewsArg::Frontal)]
        views: ViewsArg,
        /// Label columns to resolve into targets.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "Atelectasis,Cardiomegaly,Consolidation,Edema,Pleural Effusion"
        )]
        labels: Vec<String>,
        /// Uncertain (-1) labels: U-Ones, U-Zeros, or masked (null target).
        #[arg(long, value_enum, default_value_t = UncertainArg::Ones)]
        uncertain: UncertainArg,
        /// Carve a test split of this share of patients when the data has none.
        #[arg(long)]
        test_fraction: Option<f64>,
        /// Carve a validation split of this share of patients when the data has none.
        #[arg(long)]
        valid_fraction: Option<f64>,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Class-balanced training manifest for a multi-class label (the paper's
    /// Table 1 settings): all images, the same number per class, or given
    /// per-class counts.
    ///
    /// Sampling is without replacement; a class asked for more images than it
    /// has is repeated (said in the report; the `copy` column numbers repeats).
    Balance {
        /// A dataset directory or a manifest.
        dataset: PathBuf,
        /// The class column.
        #[arg(long)]
        label_column: String,
        /// full: all images; undersample: the same number per class (the
        /// smallest class unless --per-class); counts: --counts per class.
        #[arg(long, value_enum, default_value_t = BalanceArg::Full)]
        mode: BalanceArg,
        /// Per-class counts for --mode counts, e.g. normal=336,nodule=560.
        #[arg(long)]
        counts: Option<String>,
        /// Images per class for --mode undersample.
        #[arg(long)]
        per_class: Option<usize>,
        /// Random seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Output manifest (.parquet).
        #[arg(long)]
        out: PathBuf,
    },
    /// Stream a dataset, URL or manifest through the loader: print the keys
    /// in delivery order (--keys), or throughput (samples/s, MB/s) and peak RSS.
    ///
    /// Each epoch is a permutation seeded by (seed, epoch); rank/world split
    /// it so that every sample goes to exactly one rank (remainder: drop or
    /// pad). Object storage is configured from the environment
    /// (AWS_ENDPOINT_URL, AWS_ALLOW_HTTP, AWS_DEFAULT_REGION, keys). Exits 1
    /// when samples were skipped as corrupt or missing (each printed as
    /// SKIPPED), 3 when a shard could not be read.
    Stream(stream::StreamArgs),
    /// Build a small dataset of synthetic chest phantoms and verify it.
    Demo {
        /// Output dataset directory (must not already hold a dataset).
        #[arg(long, default_value = "chess-demo")]
        out: PathBuf,
        /// Number of images.
        #[arg(long, default_value_t = 64)]
        count: u64,
        /// Image side in pixels.
        #[arg(long, default_value_t = 512)]
        size: u32,
        /// Bits per stored pixel.
        #[arg(long, default_value = "16", value_parser = ["8", "16"])]
        bit_depth: String,
        /// Samples per shard.
        #[arg(long, default_value_t = 16)]
        shard_samples: u64,
        /// Also store a paired `target` array per sample (the phantom without bones).
        #[arg(long)]
        paired: bool,
        /// Index of the first image (keys `demo<index>`): partitions made
        /// with different starts merge into one dataset.
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// Skip the verify that follows writing (e.g. to measure writing alone).
        #[arg(long)]
        no_verify: bool,
    },
}

/// `println!` that returns an error instead of panicking when stdout is
/// closed (e.g. piped into `head`).
macro_rules! outln {
    ($($t:tt)*) => {
        writeln!(std::io::stdout(), $($t)*)?
    };
}

/// The exit class of the library errors in a chain; a bare I/O error is
/// this binary writing stdout or a state/report file.
fn classify(e: &(dyn Error + 'static)) -> Option<ExitClass> {
    if let Some(e) = e.downcast_ref::<ShardError>() {
        return Some(e.exit_class());
    }
    if let Some(e) = e.downcast_ref::<LoaderError>() {
        return Some(e.exit_class());
    }
    e.downcast_ref::<std::io::Error>().map(|e| chess_cli::exit::io_class(e, true))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    chess_cli::logging::init(cli.quiet);
    chess_cli::main_with("chess-shards", classify, || {
        if let Some(n) = cli.threads {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build_global()
                .map_err(|e| CliError::usage(format!("--threads {n}: {e}")))?;
        }
        run(cli)
    })
}

fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Inspect { path, limit } => inspect(&path, limit),
        Command::Verify { dataset } => {
            let ds = Dataset::open(&dataset)?;
            let bar = progress::bar(ds.manifest.len() as u64, "samples", "verify", quiet);
            let start = Instant::now();
            let report = verify::verify(&ds, &|n| bar.set_position(n))?;
            bar.finish_and_clear();
            for p in &report.problems {
                outln!("MISMATCH {p}");
            }
            if !quiet {
                eprintln!(
                    "{}: {} samples in {} shards ({:.1} MB) checked in {:.1}s: {}",
                    dataset.display(),
                    report.samples,
                    report.shards,
                    report.bytes as f64 / 1e6,
                    start.elapsed().as_secs_f64(),
                    if report.ok() { "OK".to_string() } else { format!("{} problems", report.problems.len()) }
                );
            }
            check(report.ok(), || format!("{}: {} problems", dataset.display(), report.problems.len()))
        }
        Command::Export { dataset, key, out, field } => {
            let ds = Dataset::open(&dataset)?;
            ops::export(&ds, &key, field.as_deref(), &out)?;
            if !quiet {
                eprintln!("wrote {}", out.display());
            }
            Ok(())
        }
        Command::Stats { dataset, png, every, json } => {
            let ds = Dataset::open(&dataset)?;
            let bar =
                progress::bar((ds.manifest.len() as u64).div_ceil(every.max(1) as u64), "samples", "stats", quiet);
            let s = stats::compute(&ds, every, &|n| bar.set_position(n))?;
            bar.finish_and_clear();
            s.save_png(&png)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_stats(&s)?;
            }
            if !quiet {
                eprintln!("wrote {}", png.display());
            }
            Ok(())
        }
        Command::Merge { inputs, out, shard_name, source_names } => {
            let mut names = Vec::with_capacity(source_names.len());
            for entry in &source_names {
                let (dir, name) = entry
                    .rsplit_once('=')
                    .filter(|(d, n)| !d.is_empty() && !n.is_empty())
                    .ok_or_else(|| CliError::usage(format!("--source-name `{entry}` is not DIR=NAME")))?;
                names.push((PathBuf::from(dir), name.to_string()));
            }
            let opts = ops::MergeOptions { shard_name, source_names: names };
            let report = ops::merge_with(&inputs, &out, &opts)?;
            if !quiet {
                eprintln!(
                    "merged {} datasets into {}: {} samples, {} shards ({} linked, {} copied)",
                    report.inputs,
                    out.display(),
                    report.info.sample_count,
                    report.info.shard_count,
                    report.linked,
                    report.copied
                );
            }
            Ok(())
        }
        Command::Subset { dataset, keys, filter, out } => {
            if keys.is_none() && filter.is_none() {
                return Err(CliError::usage("subset needs --keys FILE, --where EXPR, or both").into());
            }
            let files = DatasetFiles::open(&dataset)?;
            let key_list = match &keys {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .map_err(|e| CliError::input(format!("reading keys from {}: {e}", path.display())))?
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_string)
                        .collect::<Vec<_>>(),
                ),
                None => None,
            };
            let report = ops::subset_to(&files, key_list.as_deref(), filter.as_deref(), &out)?;
            if !quiet {
                eprintln!("wrote {} ({} of {} rows)", out.display(), report.selected, report.total);
            }
            Ok(())
        }
        Command::Fractions {
            dataset,
            fractions,
            repeats,
            seed,
            group_by,
            views,
            labels,
            uncertain,
            test_fraction,
            valid_fraction,
            out,
        } => {
            let files = DatasetFiles::open(&dataset)?;
            let opts = fractions::FractionOptions {
                fractions,
                repeats,
                seed,
                group_by: group_by.into(),
                views: views.into(),
                labels,
                uncertain: uncertain.into(),
                test_fraction,
                valid_fraction,
            };
            let summaries = fractions::build_files(&files, &opts, &out)?;
            if !quiet {
                let mut header = format!("{:<22} {:>8} {:>8}", "manifest", "images", "patients");
                for l in &opts.labels {
                    header.push_str(&format!(" {:>12}", truncate(l, 12)));
                }
                outln!("{header}");
                for s in &summaries {
                    let mut line = format!("{:<22} {:>8} {:>8}", s.name, s.images, s.groups);
                    for &(pos, n) in &s.positives {
                        let rate = if n == 0 { "-".to_string() } else { format!("{:.3}", pos as f64 / n as f64) };
                        line.push_str(&format!(" {rate:>12}"));
                    }
                    outln!("{line}");
                }
                eprintln!("wrote {} manifests, summary.csv and fractions.json to {}", summaries.len(), out.display());
            }
            Ok(())
        }
        Command::Balance { dataset, label_column, mode, counts, per_class, seed, out } => {
            let ds = Dataset::open(&dataset)?;
            let mode = match mode {
                BalanceArg::Full => balance::BalanceMode::Full,
                BalanceArg::Undersample => balance::BalanceMode::Undersample(per_class),
                BalanceArg::Counts => balance::BalanceMode::Counts(balance::parse_counts(
                    counts.as_deref().ok_or_else(|| CliError::usage("--mode counts needs --counts CLASS=N,..."))?,
                )?),
            };
            let (reports, unlabelled) = balance::balance(&ds, &label_column, &mode, seed, &out)?;
            outln!("{:<24} {:>10} {:>10} {:>10}", "class", "available", "selected", "repeated");
            for r in &reports {
                outln!("{:<24} {:>10} {:>10} {:>10}", r.class, r.available, r.selected, r.repeated);
            }
            for r in reports.iter().filter(|r| r.repeated > 0) {
                eprintln!(
                    "note: class `{}` has {} images for {} requested: {} selections repeat images",
                    r.class, r.available, r.selected, r.repeated
                );
            }
            if unlabelled > 0 {
                eprintln!("note: {unlabelled} rows have no `{label_column}` value and were left out");
            }
            if !quiet {
                eprintln!("wrote {}", out.display());
            }
            Ok(())
        }
        Command::Stream(args) => stream::run(args, cli.threads, quiet),
        Command::Demo { out, count, size, bit_depth, shard_samples, paired, start, no_verify } => {
            let dtype: PixelDtype = bit_depth.parse().map_err(CliError::usage)?;
            let indices = start..start.saturating_add(count);
            demo_dataset(&out, indices, size, dtype, shard_samples, paired, !no_verify, quiet)
        }
    }
}

#[allow(clippy::too_many_arguments)] // the demo command's options, passed through
fn demo_dataset(
    out: &Path,
    indices: std::ops::Range<u64>,
    size: u32,
    dtype: PixelDtype,
    shard_samples: u64,
    paired: bool,
    verify_after: bool,
    quiet: bool,
) -> Result<()> {
    let count = indices.end - indices.start;
    if count == 0 || !(8..=4096).contains(&size) {
        return Err(CliError::usage("--count must be at least 1 and --size between 8 and 4096").into());
    }
    let opts = demo::demo_options(dtype, shard_samples, paired);
    let mut writer = DatasetWriter::create(out, opts.clone())?;
    let bar = progress::bar(count, "images", "demo", quiet);
    use rayon::prelude::*;
    // Encode in parallel, in bounded chunks; append in order.
    for chunk_start in indices.clone().step_by(64) {
        let end = (chunk_start + 64).min(indices.end);
        let encoded: Vec<_> = (chunk_start..end)
            .into_par_iter()
            .map(|i| chess_shards::encode_sample(&demo::demo_sample(i, size, dtype, paired), &opts))
            .collect::<Result<_, _>>()?;
        for e in encoded {
            writer.write_encoded(e)?;
            bar.inc(1);
        }
    }
    let info = writer.finish(FinishInfo {
        tool_version: format!("chess-shards {}", chess_shards::VERSION),
        deid_method: "synthetic phantoms: no patient data".into(),
        provenance: [("source".to_string(), serde_json::json!("chess-shards demo"))].into(),
    })?;
    bar.finish_and_clear();
    if !verify_after {
        if !quiet {
            eprintln!("wrote {}: {} samples in {} shards", out.display(), info.sample_count, info.shard_count);
        }
        return Ok(());
    }
    let ds = Dataset::open(out)?;
    let report = verify::verify(&ds, &|_| {})?;
    for p in &report.problems {
        outln!("MISMATCH {p}");
    }
    if !quiet {
        eprintln!(
            "wrote {}: {} samples in {} shards; verify: {}",
            out.display(),
            info.sample_count,
            info.shard_count,
            if report.ok() { "OK" } else { "FAILED" }
        );
    }
    check(report.ok(), || format!("{}: the new dataset failed verify", out.display()))
}

/// `Ok` when a check passed, otherwise a failed check (exit 1) saying `what`.
fn check(passed: bool, what: impl FnOnce() -> String) -> Result<()> {
    if passed {
        Ok(())
    } else {
        Err(CliError::check_failed(what()).into())
    }
}

fn inspect(path: &Path, limit: usize) -> Result<()> {
    if path.is_file() && path.extension().is_some_and(|e| e == "tar") {
        let file = std::fs::File::open(path)
            .map_err(|cause| ShardError::Read { path: path.to_path_buf(), cause })
            .with_context(|| format!("opening {}", path.display()))?;
        let mut stream = chess_shards::tar::TarStream::new(std::io::BufReader::new(file));
        let (mut members, mut bytes) = (0u64, 0u64);
        let mut keys = std::collections::HashSet::new();
        outln!("{:<48} {:>12} {:>12}", "member", "offset", "size");
        while let Some(m) =
            stream.next_member().map_err(|cause| ShardError::Tar { shard: path.display().to_string(), cause })?
        {
            if (members as usize) < limit {
                outln!("{:<48} {:>12} {:>12}", m.name, m.data_offset, m.data.len());
            }
            members += 1;
            bytes += m.data.len() as u64;
            keys.insert(chess_shards::reader::split_member_name(&m.name).0.to_string());
        }
        if members as usize > limit {
            outln!("... ({} more)", members as usize - limit);
        }
        outln!(
            "{}: {members} members, {} samples, {:.1} MB of member data",
            path.display(),
            keys.len(),
            bytes as f64 / 1e6
        );
        return Ok(());
    }
    // From the Parquet footer, the shard column and the first row groups only.
    let files = DatasetFiles::open(path)?;
    if let Some(info) = &files.info {
        outln!("{}", serde_json::to_string_pretty(info)?);
    }
    let mut shards = std::collections::HashSet::new();
    for batch in files.manifest.batches(Some(&[chess_schemas::col::SHARD]), 64 * 1024)? {
        let batch = batch?;
        if let Some(column) = batch.column(0).as_any().downcast_ref::<arrow_array::StringArray>() {
            for i in 0..arrow_array::Array::len(column) {
                if !shards.contains(column.value(i)) {
                    shards.insert(column.value(i).to_string());
                }
            }
        }
    }
    let n = files.manifest.num_rows();
    outln!("manifest: {} ({} rows, {} shards)", files.manifest.path.display(), n, shards.len());
    outln!("dataset root: {}", files.root.display());
    let fields: Vec<String> =
        files.manifest.schema.fields().iter().map(|f| format!("{}: {}", f.name(), f.data_type())).collect();
    outln!("columns: {}", fields.join(", "));
    let head = files.manifest.head(limit.min(n))?;
    let view = head.view();
    for i in 0..head.len() {
        let r = view.row(i);
        outln!(
            "{}  {} @{}+{}  {}x{} {}  view={} sex={} age={}",
            r.key,
            r.shard,
            r.offset,
            r.size,
            r.height,
            r.width,
            r.dtype,
            r.view_position.as_deref().unwrap_or("-"),
            r.sex.as_deref().unwrap_or("-"),
            r.age_years.map_or("-".to_string(), |a| a.to_string())
        );
    }
    let _ = layout::MANIFEST;
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(std::iter::once('~')).collect()
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum GroupByArg {
    Patient,
    Study,
    Image,
}

impl From<GroupByArg> for fractions::GroupBy {
    fn from(g: GroupByArg) -> Self {
        match g {
            GroupByArg::Patient => fractions::GroupBy::Patient,
            GroupByArg::Study => fractions::GroupBy::Study,
            GroupByArg::Image => fractions::GroupBy::Image,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ViewsArg {
    Frontal,
    All,
}

impl From<ViewsArg> for fractions::Views {
    fn from(v: ViewsArg) -> Self {
        match v {
            ViewsArg::Frontal => fractions::Views::Frontal,
            ViewsArg::All => fractions::Views::All,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum UncertainArg {
    Ones,
    Zeros,
    Ignore,
}

impl From<UncertainArg> for fractions::Uncertain {
    fn from(u: UncertainArg) -> Self {
        match u {
            UncertainArg::Ones => fractions::Uncertain::Ones,
            UncertainArg::Zeros => fractions::Uncertain::Zeros,
            UncertainArg::Ignore => fractions::Uncertain::Ignore,
        }
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum BalanceArg {
    Full,
    Undersample,
    Counts,
}

fn print_stats(s: &stats::DatasetStats) -> Result<()> {
    outln!("samples: {}  patients: {}", s.samples, s.patients);
    for (title, map) in [
        ("view", &s.by_view),
        ("sex", &s.by_sex),
        ("age band", &s.by_age_band),
        ("modality", &s.by_modality),
        ("split", &s.by_split),
        ("size", &s.by_size),
    ] {
        if map.is_empty() {
            continue;
        }
        let parts: Vec<String> = map.iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!("{title:<9} {}", parts.join("  "));
    }
    let p = &s.pixels;
    outln!("pixels    images={} min={} max={} mean={:.1} std={:.1}", p.images, p.min, p.max, p.mean, p.std);
    let pct: Vec<String> = p.percentiles.iter().map(|(q, v)| format!("p{q}={v}")).collect();
    outln!("          {}", pct.join("  "));
    Ok(())
}
