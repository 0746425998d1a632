//! `chess-ingest chexpert`: the CheXpert import's command line and summary
//! (binary side).

use std::path::PathBuf;

use anyhow::Context;
use chess_cli::EXIT_CODES_HELP;
use chess_ingest::chexpert::{self, Config, Summary};
use clap::Args;

use crate::cli_options::{draw, PixelArgs, WorkArgs};

// No doc comment: the subcommand's help is on `Command::Chexpert`.
#[derive(Args, Debug)]
pub struct ChexpertArgs {
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

pub fn after_help() -> String {
    format!(
        "CSV `Path` cells are relative to the parent of ROOT (as in the release: \
CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg), or to ROOT when they do not start \
with ROOT's folder name (then also tried without their first component, for a renamed folder). Every CSV row becomes a sample or a row of <out>/private/rejected.parquet \
(missing_image, bad_csv_row, duplicate_row, unsupported_format, read_error, decode_error, bad_dimensions). \
view_position: AP/PA for frontal images (FRONTAL when the AP/PA cell is neither), LATERAL for lateral \
ones (LL/RL when the AP/PA cell says so). CheXpert's patient/study folder names are public pseudonyms \
and are kept as patient_id and study_id.\n\n\
Next: chess-shards fractions <OUT> --fractions 0.01,0.1,0.5,1 --repeats 10 --seed 0 --out <DIR>\n\n\
A CSV header that is not CheXpert's, or a folder without train.csv and valid.csv, is an input error (3).\n\n\
{EXIT_CODES_HELP}"
    )
}

pub fn run(args: ChexpertArgs) -> anyhow::Result<()> {
    args.work.init_logging();
    let mut cfg = Config::new(args.root.clone(), args.out.clone());
    cfg.pipeline = args.pixels.options();
    if let Some(t) = args.work.threads()? {
        cfg.threads = t;
    }
    cfg.max_shard_samples = args.work.shard_samples;
    let bar = args.work.bar("images");
    let summary =
        chexpert::run(&cfg, &draw(&bar)).with_context(|| format!("importing CheXpert into {}", cfg.out.display()))?;
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
    crate::datasets_cli::print_counts(&crate::datasets_cli::Counts {
        unit: "rows",
        rows: s.rows,
        samples: s.samples,
        rejected: &s.rejected,
        splits: &s.splits,
        resumed: s.resumed.then_some(s.processed_now),
        root: &s.root,
    });
    if s.colour_converted > 0 {
        println!("{} colour images were converted to grey (BT.601 luma)", s.colour_converted);
    }
    let wall = s.wall.as_secs_f64();
    println!("{:.1} s, {:.1} images/s", wall, s.processed_now as f64 / wall.max(1e-9));
    if !s.splits.contains_key("test") {
        println!("No test label CSV: give chess-shards fractions --test-fraction to carve a test split by patient.");
    }
}
