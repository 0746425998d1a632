//! `chess-ingest folders|mimic|nih|padchest|vindr`: the public chest X-ray
//! importers' command lines and summary (binary side). Each subcommand
//! reads its release into a plan ([`chess_ingest::datasets`]) and imports
//! it with the options every front end shares.

use std::path::PathBuf;

use anyhow::Context;
use chess_cli::EXIT_CODES_HELP;
use chess_ingest::datasets::{self, folders, mimic, nih, padchest, vindr, Config, Plan, Summary};
use clap::{Args, ValueEnum};

use crate::cli_options::{draw, print_key_created, print_rejects, PixelArgs, WorkArgs};

/// The options of every importer besides ROOT and --out.
#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Label columns: the release's own (default), or torchxrayvision's 18
    /// pathologies (the common space every importer shares, for merging).
    #[arg(long, value_enum)]
    labels_as: Option<LabelSpace>,

    #[command(flatten)]
    pixels: PixelArgs,

    #[command(flatten)]
    work: WorkArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LabelSpace {
    /// Atelectasis, Consolidation, Infiltration, … as torchxrayvision names them.
    Torchxrayvision,
}

// No doc comments on the Args: the subcommands' help is on `Command`.
#[derive(Args, Debug)]
pub struct FoldersArgs {
    /// The tree's top folder: ROOT/<class>/*.png|jpg|dcm, or any tree with --flat.
    root: PathBuf,
    /// Output dataset directory; re-running the same command on an interrupted import resumes it.
    #[arg(long, default_value = "chess-folders")]
    out: PathBuf,
    /// An unlabelled tree: images at any depth, no class column.
    #[arg(long)]
    flat: bool,
    /// The source_dataset value and key prefix (default: ROOT's folder name).
    #[arg(long)]
    name: Option<String>,
    /// The split of every sample (e.g. train for ROOT=…/train).
    #[arg(long)]
    split: Option<String>,
    /// Secret key file for DICOM pseudonyms (default <out>/private/key, created if missing).
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct MimicArgs {
    /// The MIMIC-CXR-JPG folder (holding mimic-cxr-2.0.0-metadata.csv and files/).
    root: PathBuf,
    /// Output dataset directory; re-running the same command on an interrupted import resumes it.
    #[arg(long, default_value = "mimic-cxr-jpg")]
    out: PathBuf,
    /// Whose labels: mimic-cxr-2.0.0-chexpert.csv or -negbio.csv.
    #[arg(long, value_enum, default_value_t = LabelerArg::Chexpert)]
    labeler: LabelerArg,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LabelerArg {
    Chexpert,
    Negbio,
}

#[derive(Args, Debug)]
pub struct NihArgs {
    /// The ChestX-ray14 folder (Data_Entry_2017.csv, BBox_List_2017.csv, the split lists, images*/).
    root: PathBuf,
    /// Output dataset directory; re-running the same command on an interrupted import resumes it.
    #[arg(long, default_value = "nih-chestxray14")]
    out: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct PadchestArgs {
    /// The PadChest folder (its label CSV and the numbered image folders).
    root: PathBuf,
    /// Output dataset directory; re-running the same command on an interrupted import resumes it.
    #[arg(long, default_value = "padchest")]
    out: PathBuf,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct VindrArgs {
    /// The VinDr-CXR folder (annotations/, train/, test/).
    root: PathBuf,
    /// Output dataset directory; re-running the same command on an interrupted import resumes it.
    #[arg(long, default_value = "vindr-cxr")]
    out: PathBuf,
    /// How the training images' readers' labels combine: any reader, or more than half of them.
    #[arg(long, value_enum, default_value_t = ReadersArg::Any)]
    readers: ReadersArg,
    /// Secret key file for the DICOM header's pseudonyms (default <out>/private/key, created if missing).
    #[arg(long)]
    key_file: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ReadersArg {
    Any,
    Majority,
}

/// The help text after every importer's options.
pub fn after_help(release: &str) -> String {
    format!(
        "Every input row (or file) becomes a sample or a row of <out>/private/rejected.parquet (bad_csv_row, \
missing_image, duplicate_row, unsupported_format, decode_error, ...). A CSV whose header is not the release's \
exact header, naming the file and column, or a folder without the release's files, is an input error (3). \
The labels, ids and split kept are listed in dataset.json's provenance and in the README ({release}). \
--labels-as torchxrayvision writes the common label space (the 18 pathologies, boxes, source_dataset) so that \
imports of different releases merge: chess-shards merge A B --out UNION.\n\n{EXIT_CODES_HELP}"
    )
}

fn config(out: PathBuf, common: &CommonArgs, key_file: Option<PathBuf>) -> anyhow::Result<Config> {
    let mut cfg = Config::new(out);
    cfg.pipeline = common.pixels.options();
    if let Some(t) = common.work.threads()? {
        cfg.threads = t;
    }
    cfg.max_shard_samples = common.work.shard_samples;
    cfg.common_labels = common.labels_as.is_some();
    cfg.key_file = key_file;
    Ok(cfg)
}

fn import(plan: anyhow::Result<Plan>, cfg: Config, common: &CommonArgs) -> anyhow::Result<()> {
    common.work.init_logging();
    let plan = plan?;
    let import = plan.release.import();
    let bar = common.work.bar("images");
    let summary =
        datasets::run(plan, &cfg, &draw(&bar)).with_context(|| format!("{import} into {}", cfg.out.display()))?;
    if common.work.quiet {
        return Ok(());
    }
    if summary.already_complete {
        println!("{} already holds a finished dataset; nothing to do.", cfg.out.display());
        return Ok(());
    }
    print_summary(&summary);
    Ok(())
}

pub fn run_folders(a: FoldersArgs) -> anyhow::Result<()> {
    let opts = folders::Options { flat: a.flat, name: a.name, split: a.split };
    let cfg = config(a.out, &a.common, a.key_file)?;
    import(folders::plan(&a.root, &opts).with_context(|| format!("reading {}", a.root.display())), cfg, &a.common)
}

pub fn run_mimic(a: MimicArgs) -> anyhow::Result<()> {
    let labeler = match a.labeler {
        LabelerArg::Chexpert => mimic::Labeler::Chexpert,
        LabelerArg::Negbio => mimic::Labeler::Negbio,
    };
    let cfg = config(a.out, &a.common, None)?;
    import(mimic::plan(&a.root, labeler).with_context(|| format!("reading {}", a.root.display())), cfg, &a.common)
}

pub fn run_nih(a: NihArgs) -> anyhow::Result<()> {
    let cfg = config(a.out, &a.common, None)?;
    import(nih::plan(&a.root).with_context(|| format!("reading {}", a.root.display())), cfg, &a.common)
}

pub fn run_padchest(a: PadchestArgs) -> anyhow::Result<()> {
    let cfg = config(a.out, &a.common, None)?;
    import(padchest::plan(&a.root).with_context(|| format!("reading {}", a.root.display())), cfg, &a.common)
}

pub fn run_vindr(a: VindrArgs) -> anyhow::Result<()> {
    let readers = match a.readers {
        ReadersArg::Any => vindr::Readers::Any,
        ReadersArg::Majority => vindr::Readers::Majority,
    };
    let cfg = config(a.out, &a.common, a.key_file)?;
    import(vindr::plan(&a.root, readers).with_context(|| format!("reading {}", a.root.display())), cfg, &a.common)
}

fn print_summary(s: &Summary) {
    println!("Dataset: {}", s.root.display());
    if !s.inputs.is_empty() {
        println!("Read {}", s.inputs.join(", "));
    }
    print_counts(&Counts {
        unit: "inputs",
        rows: s.rows,
        samples: s.samples,
        rejected: &s.rejected,
        splits: &s.splits,
        resumed: s.resumed.then_some(s.processed_now),
        root: &s.root,
    });
    if s.colour_converted > 0 {
        println!("{} colour images were converted to grey (BT.601 luma, alpha ignored)", s.colour_converted);
    }
    if s.monochrome1 > 0 {
        println!("{} MONOCHROME1 images were inverted", s.monochrome1);
    }
    print_key_created(s.key_created.as_deref());
    let wall = s.wall.as_secs_f64();
    println!("{:.1} s, {:.1} images/s", wall, s.processed_now as f64 / wall.max(1e-9));
}

/// The counts a CSV-driven import's summary prints (CheXpert's too).
pub struct Counts<'a> {
    /// What one input is: `rows`, `inputs`.
    pub unit: &'a str,
    pub rows: u64,
    pub samples: u64,
    pub rejected: &'a std::collections::BTreeMap<String, u64>,
    pub splits: &'a std::collections::BTreeMap<String, datasets::SplitCounts>,
    /// `Some(processed now)` when the run resumed an interrupted one.
    pub resumed: Option<u64>,
    pub root: &'a std::path::Path,
}

/// Prints the totals, one line per split, and the reject table.
pub fn print_counts(c: &Counts<'_>) {
    println!(
        "{} {}: {} samples, {} rejected{}",
        c.rows,
        c.unit,
        c.samples,
        c.rejected.values().sum::<u64>(),
        c.resumed.map(|n| format!(" (resumed; {n} processed now)")).unwrap_or_default()
    );
    for (split, s) in c.splits {
        println!(
            "  {split:<6} {} {}, {} samples from {} patients, {} rejected",
            s.rows, c.unit, s.samples, s.patients, s.rejected
        );
    }
    print_rejects(c.rejected, c.root, c.unit);
}
