//! `chess-train gradcam`: Grad-CAM overlays of a fine-tuned classifier on a
//! dataset sample, a DICOM or a PNG.

use std::path::PathBuf;

use chess_train::runtime::device::parse_device;
use chess_train::tasks::classify::gradcam::{gradcam, GradcamInput};
use clap::Args;

#[derive(Args, Debug)]
pub struct GradcamArgs {
    /// Fine-tune run directory (its model.json) or a model.json.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// A DICOM or PNG file; or, with --dataset, a sample key.
    #[arg(long)]
    pub input: String,
    /// Dataset directory or manifest holding the key given as --input.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// The class or label to explain (default: every label; the predicted class for multi-class).
    #[arg(long)]
    pub class: Option<String>,
    /// Folder for the overlays (<key>_<class>.png).
    #[arg(long)]
    pub out: PathBuf,
    /// The ResNet stage whose activations are explained: 1–4 (layer1 … layer4).
    #[arg(long, default_value_t = 4)]
    pub layer: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn run(a: GradcamArgs, quiet: bool) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    let input = match &a.dataset {
        Some(d) => GradcamInput::Key { dataset: d.clone(), key: a.input.clone() },
        None => GradcamInput::File(PathBuf::from(&a.input)),
    };
    let results = gradcam(&a.ckpt, &input, a.class.as_deref(), a.layer, &a.out, device)?;
    if !quiet {
        for r in &results {
            println!(
                "{}  {} {:.4}, heat peak at x={} y={} of {}x{}",
                r.png.display(),
                r.class,
                r.score,
                r.peak.0,
                r.peak.1,
                r.width,
                r.height
            );
        }
    }
    Ok(())
}
