//! `chess-ingest pairs`: the paired-data import's command line (binary side).
//!
//! `main` dispatches here when the first argument is `pairs`, so the DICOM
//! command line keeps its own parser untouched.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chess_ingest::pairs::{self, Config, Summary};
use clap::Parser;

use crate::cli_options::{init_logging, PixelArgs, WorkArgs};

/// Import paired images for image-to-image tasks (bone suppression, nodule
/// generation): each row of a `source,target[,mask]` CSV of DICOM or PNG
/// paths becomes one sample with `<key>.npy.zst` (source),
/// `<key>.target.npy.zst` and, with a mask column, `<key>.mask.npy.zst`.
#[derive(Parser, Debug)]
#[command(
    name = "chess-ingest pairs",
    bin_name = "chess-ingest pairs",
    version,
    after_help = "Paths are relative to the CSV's folder, or absolute; DICOM is recognised by content, \
PNG is 8- or 16-bit grey (colour is converted to BT.601 luma; masks must be grey). Source and target get the same geometry and each its own percentile \
clip and min-max; masks are label maps (class ids 0..=255) resized with nearest neighbour, not \
normalised, stored in the dataset's dtype. Target and mask must have the source's original dimensions. \
A DICOM source is de-identified as by `chess-ingest` (key and pseudonyms from --key-file); a PNG \
source's key is a keyed hash of the row's pixels, never its paths. Every CSV row becomes a sample or \
a row of <out>/private/rejected.parquet (csv_line, reason_code, message): missing_file, bad_csv_row, \
dimension_mismatch, unsupported_format, bad_mask, duplicate_row, or a DICOM reason code.\n\n\
Next: chess-train bone-suppression <OUT> --out DIR, or chess-train nodule-gen <OUT> --out DIR\n\n\
Exit status: 0 when the import finished (rejected rows are normal), 1 on a fatal error \
(e.g. a CSV header that is not source,target[,mask]), 2 on a usage error."
)]
struct PairsArgs {
    /// The CSV with header `source,target` or `source,target,mask`.
    csv: PathBuf,

    /// Output dataset directory; re-running the same command on an
    /// interrupted import resumes it.
    #[arg(long, default_value = "chess-pairs")]
    out: PathBuf,

    /// Secret key file (at least 32 bytes); created if missing. Default:
    /// <out>/private/key. Use the one of your DICOM ingest for the same pseudonyms.
    #[arg(long)]
    key_file: Option<PathBuf>,

    #[command(flatten)]
    pixels: PixelArgs,

    #[command(flatten)]
    work: WorkArgs,
}

/// Entry point; `args` starts with `pairs` (it stands in for the program name).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = PairsArgs::parse_from(args);
    init_logging();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chess-ingest pairs: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main(args: PairsArgs) -> anyhow::Result<()> {
    let mut cfg = Config::new(args.csv.clone(), args.out.clone());
    cfg.key_file = args.key_file.clone();
    cfg.pipeline = args.pixels.options();
    if let Some(t) = args.work.threads()? {
        cfg.threads = t;
    }
    cfg.max_shard_samples = args.work.shard_samples;
    cfg.progress = !args.work.quiet;
    let summary =
        pairs::run(&cfg).with_context(|| format!("importing {} into {}", cfg.csv.display(), cfg.out.display()))?;
    if !args.work.quiet {
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    if let Some(k) = &s.key_created {
        println!("Created a new secret key at {} (mode 0600). Keep it private; reuse it with --key-file for stable pseudonyms.", k.display());
    }
    println!("Dataset: {}", s.root.display());
    println!(
        "{} rows: {} samples (source, target{}), {} rejected{}",
        s.rows,
        s.samples,
        if s.with_mask { ", mask" } else { "" },
        s.rejected.values().sum::<u64>(),
        if s.resumed { format!(" (resumed; {} written now)", s.processed_now) } else { String::new() }
    );
    for (code, n) in &s.rejected {
        println!("  {code:<20} {n}");
    }
    println!("{:.1} s", s.wall.as_secs_f64());
    if !s.rejected.is_empty() {
        println!("Rejected rows are listed in {}", s.root.join("private/rejected.parquet").display());
    }
}
