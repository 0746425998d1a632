//! `chess-train predict`: a fine-tuned classifier's scores of a dataset, or
//! of DICOM and PNG files, as CSV.

use std::path::PathBuf;

use chess_train::runtime::device::parse_device;
use chess_train::tasks::classify::predict::{predict, PredictInput};
use clap::Args;

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Fine-tune run directory (its model.json) or a model.json.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// One dataset directory, URL or manifest; or DICOM and PNG files.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// CSV to write: key, [predicted,] <output>_score ...
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

pub fn run(a: PredictArgs, quiet: bool) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    let input = PredictInput::from_args(&a.inputs);
    let bar = chess_cli::progress::bar(0, "images", "", quiet);
    let rows = predict(&a.ckpt, &input, &a.out, device, a.batch_size, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!("{} ({rows} images)", a.out.display());
    }
    Ok(())
}
