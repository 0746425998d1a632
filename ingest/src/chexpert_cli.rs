//! `chess-ingest chexpert`: the CheXpert import's command line (binary side).
//!
//! `main` dispatches here when the first argument is `chexpert`, so the DICOM
//! command line keeps its own parser untouched.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chess_ingest::chexpert::{self, Config, Summary};
use clap::Parser;

use crate::cli_options::{init_logging, PixelArgs, WorkArgs};

/// Import CheXpert as released (train.csv, valid.csv and test_labels.csv or
/// test.csv when present, with the JPEG/PNG images they name) into a CheSS
/// dataset: the same pixel pipeline as DICOM ingest, the 14 observations as
/// label columns (1, 0, -1 uncertain, null for blank), sex, age, view,
/// patient, study and split.
#[derive(Parser, Debug)]
#[command(
    name = "chess-ingest chexpert",
    bin_name = "chess-ingest chexpert",
    version,
    after_help = "CSV `Path` cells are relative to the parent of ROOT (as in the release: \
CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg), or to ROOT when they do not start \
with ROOT's folder name (then also tried without their first component, for a renamed folder). Every CSV row becomes a sample or a row of <out>/private/rejected.parquet \
(missing_image, bad_csv_row, duplicate_row, unsupported_format, read_error, decode_error, bad_dimensions). \
view_position: AP/PA for frontal images (FRONTAL when the AP/PA cell is neither), LATERAL for lateral \
ones (LL/RL when the AP/PA cell says so). CheXpert's patient/study folder names are public pseudonyms \
and are kept as patient_id and study_id.\n\n\
Next: chess-shards fractions <OUT> --fractions 0.01,0.1,0.5,1 --repeats 10 --seed 0 --out <DIR>\n\n\
Exit status: 0 when the import finished (rejected rows are normal), 1 on a fatal error \
(e.g. a CSV header that is not CheXpert's), 2 on a usage error."
)]
struct ChexpertArgs {
    /// The CheXpert folder holding train.csv and valid.csv, e.g. ~/data/CheXpert-v1.0-small.
    root: PathBuf,

    /// Output dataset directory.
    #[arg(long, default_value = "chexpert")]
    out: PathBuf,

    #[command(flatten)]
    pixels: PixelArgs,

    #[command(flatten)]
    work: WorkArgs,
}

/// Entry point; `args` starts with `chexpert` (it stands in for the program name).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = ChexpertArgs::parse_from(args);
    init_logging();
    match real_main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chess-ingest chexpert: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn real_main(args: ChexpertArgs) -> anyhow::Result<()> {
    let mut cfg = Config::new(args.root.clone(), args.out.clone());
    cfg.pipeline = args.pixels.options();
    if let Some(t) = args.work.threads()? {
        cfg.threads = t;
    }
    cfg.max_shard_samples = args.work.shard_samples;
    cfg.progress = !args.work.quiet;
    let summary = chexpert::run(&cfg).with_context(|| format!("importing CheXpert into {}", cfg.out.display()))?;
    if args.work.quiet {
        return Ok(());
    }
    if summary.already_complete {
        println!("{} already holds a finished dataset; nothing to do.", cfg.out.display());
        return Ok(());
    }
    print_summary(&summary);
    Ok(())
}

fn print_summary(s: &Summary) {
    println!("Dataset: {}", s.root.display());
    println!("Read {}", s.csvs.join(", "));
    for p in &s.ignored {
        println!("  (ignored {}: test_labels.csv was used)", p.display());
    }
    println!(
        "{} rows: {} samples, {} rejected{}",
        s.rows,
        s.samples,
        s.rejected.values().sum::<u64>(),
        if s.resumed { format!(" (resumed; {} processed now)", s.processed_now) } else { String::new() }
    );
    for (split, c) in &s.splits {
        println!(
            "  {split:<6} {} rows, {} samples from {} patients, {} rejected",
            c.rows, c.samples, c.patients, c.rejected
        );
    }
    for (code, n) in &s.rejected {
        println!("  {code:<20} {n}");
    }
    if s.colour_converted > 0 {
        println!("{} colour images were converted to grey (BT.601 luma)", s.colour_converted);
    }
    let wall = s.wall.as_secs_f64();
    println!("{:.1} s, {:.1} images/s", wall, s.processed_now as f64 / wall.max(1e-9));
    if !s.rejected.is_empty() {
        println!("Rejected rows are listed in {}", s.root.join("private/rejected.parquet").display());
    }
    if !s.splits.contains_key("test") {
        println!("No test label CSV: give chess-shards fractions --test-fraction to carve a test split by patient.");
    }
}
