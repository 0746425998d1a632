//! `chess-train import`: a published PyTorch checkpoint (CheSS/MoCo or
//! torchvision) as a 1-channel encoder with torchvision names.

use std::path::PathBuf;

use chess_train::models::encoder::{self, SourceKind};
use clap::Args;

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// PyTorch file (`torch.save`, zip or legacy format) or safetensors.
    pub file: PathBuf,
    /// safetensors file to write (loads with `finetune --init PATH`).
    #[arg(long)]
    pub out: PathBuf,
    /// Python with torch that unpickles the file (default: the venv of scripts/setup.sh).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Unpickle arbitrary objects (`weights_only=False`): only for files you trust.
    #[arg(long)]
    pub allow_pickle: bool,
}

pub fn run(a: ImportArgs, quiet: bool) -> anyhow::Result<()> {
    let imp = encoder::import(&a.file, &a.out, a.python.as_deref(), a.allow_pickle)?;
    if !quiet {
        let kind = match imp.kind {
            SourceKind::MocoQuery => "MoCo query encoder",
            SourceKind::Torchvision => "torchvision ResNet",
        };
        println!(
            "{} ({}, {kind} under `{}`, {} tensors written, {} dropped{})",
            a.out.display(),
            imp.arch,
            imp.prefix,
            imp.tensors.len(),
            imp.dropped,
            if imp.conv1_summed { ", conv1 summed over RGB" } else { "" }
        );
    }
    Ok(())
}
