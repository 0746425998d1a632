//! `chess-ingest dicom` (and `chess-ingest INPUTS…`, its default form): the
//! DICOM import's command line, upload and summary (binary side).

use std::path::PathBuf;

use anyhow::Context;
use chess_cli::{CliError, EXIT_CODES_HELP};
use chess_ingest::burned_in::{Policy, Rules};
use chess_ingest::deid::Dates;
use chess_ingest::labels::LabelKey;
use chess_ingest::run::{self, Config};
use chess_ingest::select::Selection;
use clap::Args;

use crate::cli_options::{draw, print_key_created, print_rejects_in, PixelArgs, WorkArgs};

// No doc comment: a flattened struct's doc would replace the command's about.
#[derive(Args, Debug)]
pub struct DicomArgs {
    /// Files, folders or archives to ingest (DICOM is recognised by content).
    #[arg(required = true)]
    inputs: Vec<PathBuf>,

    /// Output dataset: a directory, or object storage (s3://bucket/prefix,
    /// gs://…, az://…; credentials and endpoint from the environment, e.g.
    /// AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID). For object storage the dataset
    /// is built in --work-dir and uploaded when complete.
    #[arg(long, default_value = "chess-dataset")]
    out: String,

    /// Local working directory when --out is object storage (default:
    /// $CHESS_CACHE/ingest-work/<hash of the URL>); re-running resumes there.
    #[arg(long)]
    work_dir: Option<PathBuf>,

    /// Directory for the private files (the journal and run file for
    /// resumption, the reject list, the key, the burned-in contact sheet),
    /// kept local whatever --out is (never uploaded) and made 0700 with 0600
    /// files. Default: <out>/private (for object storage, in --work-dir).
    /// A resumed run needs the same --private-dir.
    #[arg(long)]
    private_dir: Option<PathBuf>,

    /// Secret key file (at least 32 bytes, e.g. `head -c 32 /dev/urandom`);
    /// created if missing. Default: <private dir>/key. Keep it to get the
    /// same pseudonyms next time; never share it.
    #[arg(long)]
    key_file: Option<PathBuf>,

    #[command(flatten)]
    pixels: PixelArgs,

    /// Modalities to keep (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "CR,DX")]
    modalities: Vec<String>,

    /// ViewPositions to keep (comma-separated, e.g. PA,AP); default: all.
    #[arg(long, value_delimiter = ',')]
    views: Option<Vec<String>>,

    /// CSV of labels to join to the images (see --label-key).
    #[arg(long, requires = "label_key")]
    labels: Option<PathBuf>,

    /// Original identifier the labels CSV is joined on; the CSV needs a
    /// column of this name: AccessionNumber, StudyInstanceUID,
    /// SOPInstanceUID or PatientID.
    #[arg(long, requires = "labels")]
    label_key: Option<LabelKey>,

    /// Study dates: `none` (removed, PS3.15 Basic Profile), `shifted` (shifted
    /// back by a per-patient number of days derived from the key, intervals
    /// preserved: PS3.15 Retain Longitudinal Temporal Information with
    /// Modified Dates, label column `study_date_shifted`) or `year` (only the
    /// shifted year, HIPAA Safe Harbor: label column `study_year_shifted`).
    #[arg(long, value_enum, default_value_t = DatesArg::None)]
    dates: DatesArg,

    /// Text burned into the pixels (found by a text-region detector, read by
    /// Tesseract): `reject` the image (reason burned_in_text), `mask` (blank
    /// the text lines, then process it) or `keep`. Either way what was found
    /// is drawn on <private dir>/burned-in.png for review.
    #[arg(long, value_enum, default_value_t = BurnedInArg::Reject)]
    burned_in: BurnedInArg,

    /// TOML file of regions known to hold burned-in text, by Manufacturer,
    /// ManufacturerModelName and Rows×Columns (`[[region]]` tables with
    /// `manufacturer`, optional `model`, `rows`, `columns`, and `boxes` of
    /// [x, y, width, height]); they are always blanked.
    #[arg(long)]
    burned_in_rules: Option<PathBuf>,

    /// Words that are not PHI when they are all a text line says
    /// (laterality and positioning markers; comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "L,R,PA,AP,LAT,ERECT,SUPINE,PORTABLE,UPRIGHT,SEMI,PORT,DECUBITUS"
    )]
    markers: Vec<String>,

    /// Decode JPEG 2000 and HTJ2K at a reduced resolution (OpenJPEG's
    /// `reduce`) when both sides of the image are at least twice --size:
    /// faster on full-size radiographs, but NOT bit-identical to
    /// full decode + resize (the wavelet's low-pass replaces the resize
    /// filter; correlation with the full path >= 0.99). Recorded in
    /// dataset.json. Not with --burned-in-rules (their boxes are in
    /// full-resolution pixels).
    #[arg(long, conflicts_with = "burned_in_rules")]
    j2k_reduce: bool,

    /// The same as `--dates shifted` (kept for existing scripts).
    #[arg(long, conflicts_with = "dates", hide = true)]
    keep_shifted_dates: bool,

    /// Take partition I of N (0-based) of the inputs, by a hash of each path;
    /// writes <out>/part-IIIII-of-NNNNN. Default: from SLURM_ARRAY_TASK_ID /
    /// SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX / JOB_COMPLETIONS.
    #[arg(long, value_parser = run::parse_partition)]
    partition: Option<(u32, u32)>,

    #[command(flatten)]
    work: WorkArgs,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum BurnedInArg {
    /// Reject images with burned-in text (the default).
    Reject,
    /// Blank the text lines and keep the image.
    Mask,
    /// Keep images as they are.
    Keep,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum DatesArg {
    /// No dates (the default).
    None,
    /// The study date shifted by the patient's offset.
    Shifted,
    /// Only the year of the shifted study date.
    Year,
}

impl From<DatesArg> for Dates {
    fn from(d: DatesArg) -> Dates {
        match d {
            DatesArg::None => Dates::None,
            DatesArg::Shifted => Dates::Shifted,
            DatesArg::Year => Dates::Year,
        }
    }
}

pub fn after_help() -> String {
    format!(
        "Every input file becomes a sample or a row of <out>/private/rejected.parquet (source_path, \
reason_code, message); rejected files are not failures. Re-running the same command on an interrupted \
import resumes it.\n\n{EXIT_CODES_HELP}"
    )
}

pub fn run(args: DicomArgs) -> anyhow::Result<()> {
    args.work.init_logging();
    let remote = chess_ingest::upload::is_url(&args.out).then(|| args.out.trim_end_matches('/').to_string());
    if remote.is_none() && args.out.contains("://") {
        return Err(CliError::usage(format!(
            "--out {}: unsupported URL scheme (s3://, gs://, az:// or a local directory)",
            args.out
        ))
        .into());
    }
    let local_out = match &remote {
        Some(url) => args.work_dir.clone().unwrap_or_else(|| chess_ingest::upload::work_dir(url)),
        None => PathBuf::from(&args.out),
    };
    let mut cfg = Config::new(args.inputs.clone(), local_out);
    cfg.key_file = args.key_file.clone();
    cfg.private_dir = args.private_dir.clone();
    cfg.pipeline = args.pixels.options();
    cfg.decode.j2k_reduce_to = args.j2k_reduce.then_some(cfg.pipeline.size);
    let upper =
        |v: &[String]| v.iter().map(|s| s.trim().to_ascii_uppercase()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    cfg.selection = Selection { modalities: upper(&args.modalities), views: args.views.as_deref().map(upper) };
    cfg.labels = args.labels.clone().zip(args.label_key);
    cfg.partition = match args.partition {
        Some(p) => Some(p),
        None => run::partition_from_env(|k| std::env::var(k).ok())?,
    };
    if let Some(t) = args.work.threads()? {
        cfg.threads = t;
    }
    cfg.dates = if args.keep_shifted_dates { Dates::Shifted } else { args.dates.into() };
    cfg.max_shard_samples = args.work.shard_samples;
    cfg.burned_in.policy = match args.burned_in {
        BurnedInArg::Reject => Policy::Reject,
        BurnedInArg::Mask => Policy::Mask,
        BurnedInArg::Keep => Policy::Keep,
    };
    cfg.burned_in.markers =
        args.markers.iter().map(|m| m.trim().to_ascii_uppercase()).filter(|m| !m.is_empty()).collect();
    if let Some(p) = &args.burned_in_rules {
        cfg.burned_in.rules = Rules::load(p).map_err(chess_ingest::error::IngestError::from)?;
    }

    let bar = args.work.bar("files");
    let summary =
        run::run(&cfg, &draw(&bar)).with_context(|| format!("ingesting into {}", cfg.dataset_root().display()))?;
    if !args.work.quiet {
        if summary.already_complete {
            println!("{} already holds a finished dataset; nothing to do.", summary.root.display());
        } else {
            print_key_created(summary.key_created.as_deref());
            print_summary(&summary);
        }
    }
    if let Some(url) = remote {
        // Partitions go to <url>/part-…, as they do locally.
        let sub =
            cfg.dataset_root().strip_prefix(&cfg.out).map(|p| p.to_string_lossy().to_string()).unwrap_or_default();
        let target = if sub.is_empty() { url } else { format!("{url}/{sub}") };
        let report = chess_ingest::upload::upload(&cfg.dataset_root(), &target)
            .with_context(|| format!("uploading to {target}"))?;
        if !args.work.quiet {
            println!(
                "Uploaded to {target}: {} objects ({:.1} MB), {} already there. The local copy stays in {}.",
                report.uploaded,
                report.bytes as f64 / 1e6,
                report.skipped,
                cfg.dataset_root().display()
            );
        }
    }
    if !args.work.quiet {
        // Last, so that it is what the user sees: where the files that must not be shared are.
        println!(
            "Private files (journal, reject list, key, burned-in review; local only, never share them): {}",
            cfg.private_root().display()
        );
    }
    Ok(())
}

fn print_summary(s: &run::Summary) {
    let t = &s.timing;
    println!("Dataset: {}", s.root.display());
    println!(
        "{} files: {} samples, {} rejected{}",
        s.files,
        s.samples,
        s.rejected.values().sum::<u64>(),
        if s.resumed { format!(" (resumed; {} processed now)", s.processed_now) } else { String::new() }
    );
    print_rejects_in(&s.rejected, &s.private, "files");
    let burned = s.rejected.get("burned_in_text").copied().unwrap_or(0) + s.masked;
    if burned > 0 {
        println!(
            "Burned-in text: {} images masked, {} rejected; review {}",
            s.masked,
            s.rejected.get("burned_in_text").copied().unwrap_or(0),
            s.private.join(run::BURNED_IN_SHEET).display()
        );
    }
    if let (Some(rows), Some(unmatched), Some(without)) =
        (s.label_rows, s.label_rows_unmatched, s.images_without_labels)
    {
        println!("Labels: {rows} rows, {unmatched} matched no image; {without} images without a label row");
    }
    let wall = t.wall.as_secs_f64();
    let busy = (t.read + t.decode + t.burned_in + t.pipeline + t.encode).as_secs_f64().max(1e-9);
    println!(
        "{:.1} s, {:.1} files/s; worker time: read {:.0}%, parse+decode {:.0}%, burned-in {:.0}%, pipeline {:.0}%, encode {:.0}%",
        wall,
        s.processed_now as f64 / wall.max(1e-9),
        100.0 * t.read.as_secs_f64() / busy,
        100.0 * t.decode.as_secs_f64() / busy,
        100.0 * t.burned_in.as_secs_f64() / busy,
        100.0 * t.pipeline.as_secs_f64() / busy,
        100.0 * t.encode.as_secs_f64() / busy,
    );
}
