//! Command-line options every `chess-ingest` front end shares (DICOM,
//! `chexpert`, `pairs`; binary side): the pixel pipeline's settings, the
//! run's resources, and the logging set-up.

use chess_ingest::pipeline::{Aspect, BitDepth, PipelineOptions};
use clap::{Args, ValueEnum};

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
    pub fn threads(&self) -> anyhow::Result<Option<usize>> {
        if let Some(t) = self.threads {
            anyhow::ensure!(t > 0, "--threads must be at least 1");
        }
        Ok(self.threads)
    }
}

/// Library logs to stderr, filtered by `CHESS_LOG` (default: warnings).
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHESS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}
