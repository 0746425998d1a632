//! `chess-train curves`: redraw a pretraining run's curves from its metrics.jsonl.

use std::path::PathBuf;

use clap::Args;

#[derive(Args, Debug)]
pub struct CurvesArgs {
    /// Run directory.
    run: PathBuf,
    /// PNG to write (default: RUN/curves.png).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(a: CurvesArgs) -> anyhow::Result<()> {
    let out = a.out.unwrap_or_else(|| a.run.join("curves.png"));
    chess_train::tasks::pretrain::plots::curves(&a.run.join("metrics.jsonl"), &out)?;
    println!("{}", out.display());
    Ok(())
}
