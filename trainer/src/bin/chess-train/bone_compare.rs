//! `chess-train bone-compare`: paired t-tests between two bone-suppression
//! runs' per-image metrics.

use std::path::PathBuf;

use chess_cli::CliError;
use chess_train::tasks::bone::compare::compare;
use clap::Args;

#[derive(Args, Debug)]
pub struct BoneCompareArgs {
    /// First bone-suppression run directory (A).
    pub run_a: PathBuf,
    /// Second run directory (B), scored on the same test images.
    pub run_b: PathBuf,
    /// Also write the comparison as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(a: BoneCompareArgs) -> anyhow::Result<()> {
    let rows = compare(&a.run_a, &a.run_b)?;
    println!(
        "paired t-tests over {} test images (A = {}, B = {})",
        rows.first().map_or(0, |r| r.n),
        a.run_a.display(),
        a.run_b.display()
    );
    println!("{:<6} {:>12} {:>12} {:>10} {:>10}", "metric", "mean A", "mean B", "t", "p");
    for r in &rows {
        println!("{:<6} {:>12.4} {:>12.4} {:>10.3} {:>10.3e}", r.metric, r.mean_a, r.mean_b, r.t, r.p);
    }
    if let Some(path) = &a.json {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)
            .map_err(|e| CliError::output(format!("{}: {e}", path.display())))?;
    }
    Ok(())
}
