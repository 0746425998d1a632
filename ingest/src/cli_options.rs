//! Command-line options every `chess-ingest` front end shares (DICOM,
//! `chexpert`, `pairs`; binary side): the pixel pipeline's settings, the
//! run's resources, the progress bar the library's events drive, and the
//! lines every summary prints (a new key, the reject table).

use chess_cli::CliError;
use chess_ingest::pipeline::{Aspect, BitDepth, PipelineOptions};
use chess_ingest::progress::ProgressEvent;
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;

/// The pixel pipeline's settings.
#[derive(Args, Debug)]
pub struct PixelArgs {
    /// Output images are SIZE×SIZE.
    #[arg(long, default_value_t = 512)]
    pub size: u32,

    /// Clip at this percentile of the resized image before normalising.
    #[arg(long, default_value_t = 99.0)]
    pub clip_percentile: f64,

    /// Stored pixel depth.
    #[arg(long, default_value = "16", value_parser = ["8", "16"])]
    pub bit_depth: String,

    /// How non-square images become square.
    #[arg(long, value_enum, default_value_t = AspectArg::Stretch)]
    pub aspect: AspectArg,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AspectArg {
    /// Stretch to square (as the CheSS paper).
    Stretch,
    /// Pad to square, then resize.
    Pad,
}

impl PixelArgs {
    pub fn options(&self) -> PipelineOptions {
        PipelineOptions {
            size: self.size,
            clip_percentile: self.clip_percentile,
            aspect: match self.aspect {
                AspectArg::Stretch => Aspect::Stretch,
                AspectArg::Pad => Aspect::Pad,
            },
            bit_depth: if self.bit_depth == "8" { BitDepth::U8 } else { BitDepth::U16 },
        }
    }
}

/// Threads, shard size and output verbosity.
#[derive(Args, Debug)]
pub struct WorkArgs {
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Samples per shard.
    #[arg(long, default_value_t = 10_000)]
    pub shard_samples: u64,

    /// No progress bar or summary (errors still go to stderr).
    #[arg(long, short)]
    pub quiet: bool,
}

impl WorkArgs {
    /// `--threads`, checked: `None` keeps the front end's default.
    pub fn threads(&self) -> Result<Option<usize>, CliError> {
        if self.threads == Some(0) {
            return Err(CliError::usage("--threads must be at least 1"));
        }
        Ok(self.threads)
    }

    /// Logging set-up (`CHESS_LOG`; errors only with `--quiet`).
    pub fn init_logging(&self) {
        chess_cli::logging::init(self.quiet);
    }

    /// The bar of an import over `unit`s (files, images, pairs), hidden with `--quiet`.
    pub fn bar(&self, unit: &str) -> ProgressBar {
        chess_cli::progress::bar(0, unit, "", self.quiet)
    }
}

/// The library's progress events, drawn on `bar`.
pub fn draw(bar: &ProgressBar) -> impl Fn(ProgressEvent) + Sync + '_ {
    move |event| match event {
        ProgressEvent::Total(n) => bar.set_length(n),
        ProgressEvent::Grew(n) => bar.inc_length(n),
        ProgressEvent::Advanced(n) => bar.inc(n),
        ProgressEvent::Counts { samples, rejected } => {
            bar.set_message(format!("{samples} samples, {rejected} rejected"))
        }
        ProgressEvent::Finished => bar.finish_and_clear(),
    }
}

/// The lines every summary ends with: the count per reject reason and where the list is.
pub fn print_rejects(rejected: &std::collections::BTreeMap<String, u64>, root: &std::path::Path, what: &str) {
    print_rejects_in(rejected, &root.join("private"), what)
}

/// [`print_rejects`] with the reject list in the private directory `private` (`--private-dir`).
pub fn print_rejects_in(rejected: &std::collections::BTreeMap<String, u64>, private: &std::path::Path, what: &str) {
    for (code, n) in rejected {
        println!("  {code:<28} {n}");
    }
    if !rejected.is_empty() {
        println!("Rejected {what} are listed in {}", private.join("rejected.parquet").display());
    }
}

/// Said once when the import created the secret key.
pub fn print_key_created(key: Option<&std::path::Path>) {
    if let Some(k) = key {
        println!(
            "Created a new secret key at {} (mode 0600). Keep it private; reuse it with --key-file for stable pseudonyms.",
            k.display()
        );
    }
}
