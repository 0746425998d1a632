//! `chess-ingest pairs`: the paired-data import's command line and summary
//! (binary side).

use std::path::PathBuf;

use anyhow::Context;
use chess_cli::EXIT_CODES_HELP;
use chess_ingest::pairs::{self, Config, Summary};
use clap::Args;

use crate::cli_options::{draw, print_key_created, print_rejects, PixelArgs, WorkArgs};

// No doc comment: the subcommand's help is on `Command::Pairs`.
#[derive(Args, Debug)]
pub struct PairsArgs {
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

pub fn after_help() -> String {
    format!(
        "Paths are relative to the CSV's folder, or absolute; DICOM is recognised by content, \
PNG is 8- or 16-bit grey (colour is converted to BT.601 luma; masks must be grey). Source and target get the same geometry and each its own percentile \
clip and min-max; masks are label maps (class ids 0..=255) resized with nearest neighbour, not \
normalised, stored in the dataset's dtype. Target and mask must have the source's original dimensions. \
A DICOM source is de-identified as by `chess-ingest` (key and pseudonyms from --key-file); a PNG \
source's key is a keyed hash of the row's pixels, never its paths. Every CSV row becomes a sample or \
a row of <out>/private/rejected.parquet (csv_line, reason_code, message): missing_file, bad_csv_row, \
dimension_mismatch, unsupported_format, bad_mask, duplicate_row, or a DICOM reason code.\n\n\
Next: chess-train bone-suppression <OUT> --out DIR, or chess-train nodule-gen <OUT> --out DIR\n\n\
A CSV header that is not source,target[,mask] is an input error (3).\n\n\
{EXIT_CODES_HELP}"
    )
}

pub fn run(args: PairsArgs) -> anyhow::Result<()> {
    args.work.init_logging();
    let mut cfg = Config::new(args.csv.clone(), args.out.clone());
    cfg.key_file = args.key_file.clone();
    cfg.pipeline = args.pixels.options();
    if let Some(t) = args.work.threads()? {
        cfg.threads = t;
    }
    cfg.max_shard_samples = args.work.shard_samples;
    let bar = args.work.bar("pairs");
    let summary = pairs::run(&cfg, &draw(&bar))
        .with_context(|| format!("importing {} into {}", cfg.csv.display(), cfg.out.display()))?;
    if summary.already_complete {
        println!("{} already holds a finished dataset; nothing to do.", cfg.out.display());
    } else if !args.work.quiet {
        print_key_created(summary.key_created.as_deref());
        print_summary(&summary);
    }
    Ok(())
}

fn print_summary(s: &Summary) {
    println!("Dataset: {}", s.root.display());
    println!(
        "{} rows: {} samples (source, target{}), {} rejected{}",
        s.rows,
        s.samples,
        if s.with_mask { ", mask" } else { "" },
        s.rejected.values().sum::<u64>(),
        if s.resumed { format!(" (resumed; {} written now)", s.processed_now) } else { String::new() }
    );
    print_rejects(&s.rejected, &s.root, "rows");
    println!("{:.1} s", s.wall.as_secs_f64());
}
