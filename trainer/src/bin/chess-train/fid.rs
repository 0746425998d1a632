//! `chess-train fid`: the Fréchet distance between two image sets, on FID
//! Inception-v3 or ResNet-50 features.

use chess_train::metrics::fid::{self, FeatureSpec};
use chess_train::runtime::device::parse_device;
use clap::Args;

#[derive(Args, Debug)]
pub struct FidArgs {
    /// Reference images: dataset directory, URL or manifest, or a directory of PNGs.
    #[arg(long)]
    real: String,
    /// Generated images: dataset directory, URL or manifest, or a directory of PNGs.
    #[arg(long)]
    fake: String,
    /// Feature network: inception=W.safetensors (pytorch-fid's
    /// pt_inception-2015-12-05 state dict as safetensors), chess=W.safetensors
    /// (`chess-train export`) or imagenet=W.safetensors (`chess-train import`,
    /// or torchvision's with an RGB conv1).
    #[arg(long)]
    features: FeatureSpec,
    /// ResNet input side (images resized to S×S); Inception always takes 299.
    #[arg(long, default_value_t = 512)]
    size: i64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

pub fn run(a: FidArgs, quiet: bool) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    let bar = chess_cli::progress::bar(0, "images", "", quiet);
    let r = fid::fid(&a.real, &a.fake, &a.features, a.size, device, a.batch_size, |set, done, total| {
        bar.set_message(set.to_string());
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    // Round-off can leave a few 1e-12 below zero for identical sets.
    println!("FID {:.4}", r.fid.max(0.0));
    if !quiet {
        println!("real: {} images ({}), fake: {} images ({})", r.real, a.real, r.fake, a.fake);
        if r.inception {
            println!("features: {}, images resized to 299x299", r.features);
            println!("note: comparable to published FIDs only with pytorch-fid's weights (pt_inception-2015-12-05)");
        } else {
            println!("features: {}, images resized to {}x{}", r.features, a.size, a.size);
            println!("note: ResNet-50 features; only Inception-v3 features give FIDs comparable to published values");
        }
    }
    Ok(())
}
