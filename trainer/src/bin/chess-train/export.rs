//! `chess-train export`: a pretraining run's query encoder with
//! torchvision's names, as safetensors.

use std::path::PathBuf;

use anyhow::Context;
use chess_train::io::weights;
use chess_train::models::resnet::{HeadKind, ResNet};
use chess_train::tasks::pretrain::checkpoint;
use clap::Args;

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Run directory (its latest checkpoint) or a checkpoint's step-N.json.
    run: PathBuf,
    /// safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Keep the MoCo projection head (`fc.0`, `fc.2`).
    #[arg(long)]
    keep_fc: bool,
}

pub fn run(a: ExportArgs, quiet: bool) -> anyhow::Result<()> {
    let (state, json) = checkpoint::read_state(&a.run)?;
    let (t, file) = checkpoint::read_tensors(&state, &json)?;
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let m = &state.config.moco;
    let head = if m.mlp { HeadKind::Mlp(m.dim) } else { HeadKind::Linear(m.dim) };
    let _model = ResNet::new(&vs.root(), m.arch, head);
    weights::load_into(&vs, &t, "encoder_q.", &file, true)?;
    // BN counters as PyTorch keeps them: one per training forward pass.
    let out = weights::torchvision_state(&vs, state.step as i64, !a.keep_fc);
    weights::write_atomic(&a.out, &out).with_context(|| format!("writing {}", a.out.display()))?;
    if !quiet {
        println!("{} ({} tensors, {} after {} steps)", a.out.display(), out.len(), m.arch, state.step);
    }
    Ok(())
}
