//! `chess-train sweep`: a downstream plan (inits × settings × repeats,
//! resumable) and its summary tables and figure.

use std::path::PathBuf;

use chess_train::tasks::classify::sweep;
use clap::Args;

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The plan (TOML): out, valid, test, fractions_dir + fractions + repeats
    /// and/or [[settings]], [[inits]], optional config and [finetune] overrides.
    pub plan: PathBuf,
    /// Only summarise the runs already finished (run nothing).
    #[arg(long)]
    pub summarise: bool,
}

pub fn run(a: SweepArgs, quiet: bool) -> anyhow::Result<()> {
    let plan = sweep::load(&a.plan)?;
    let rows = if a.summarise {
        sweep::summarise(&plan)?
    } else {
        let bar = chess_cli::progress::bar(plan.runs.len() as u64, "runs", "", quiet);
        let rows = sweep::run(&plan, |p| {
            bar.set_position(p.run_index as u64 + u64::from(p.skipped));
            let what = format!("{} / {} / r{:02}", p.run.setting, p.run.init.name, p.run.repeat);
            match p.inner {
                Some(i) => bar.set_message(format!(
                    "{what}: epoch {}/{} batch {}/{} loss {:.4}",
                    i.epoch, i.epochs, i.batch, i.batches, i.train_loss
                )),
                None => bar.set_message(format!("{what}: done earlier, skipped")),
            }
        })?;
        bar.finish_and_clear();
        rows
    };
    if !quiet {
        print!("{}", std::fs::read_to_string(plan.out.join("summary.md")).unwrap_or_default());
        println!("{} rows: {}", rows.len(), plan.out.join("summary.csv").display());
        println!("figure:  {}", plan.out.join("summary.png").display());
    }
    Ok(())
}
