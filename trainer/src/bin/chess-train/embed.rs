//! `chess-train embed`: a pretrained encoder's pooled features of every
//! image, to Parquet.

use std::path::PathBuf;

use chess_train::runtime::device::parse_device;
use chess_train::tasks::pretrain::embed;
use clap::Args;

#[derive(Args, Debug)]
pub struct EmbedArgs {
    /// Run directory (its latest checkpoint), a checkpoint's step-N.json, or
    /// an encoder `.safetensors` (from `chess-train import` or `export`).
    ckpt: PathBuf,
    /// Dataset directory, URL or manifest.
    input: String,
    /// Parquet file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Network input side (default: the run's; 512 for an encoder file).
    #[arg(long)]
    size: Option<i64>,
}

pub fn run(a: EmbedArgs, quiet: bool) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    let bar = chess_cli::progress::bar(0, "images", "", quiet);
    let s = embed::embed(&a.ckpt, &a.input, &a.out, device, a.batch_size, a.size, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!("{} ({} images × {} features)", a.out.display(), s.rows, s.dim);
    }
    Ok(())
}
