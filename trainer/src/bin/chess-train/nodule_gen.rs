//! `chess-train nodule-gen`: train SPADE to turn nodule masks into
//! radiographs; defaults, then --config, then flags.

use std::path::PathBuf;

use chess_train::tasks::nodule::config::NoduleConfig;
use chess_train::tasks::nodule::run::nodule_gen;
use clap::Args;

#[derive(Args, Debug)]
pub struct NoduleArgs {
    /// Dataset directory or manifest with nodule masks (`<key>.mask.npy.zst`,
    /// nonzero = nodule); trains on its `train` split (all samples without one).
    pub data: String,
    /// Run directory (created): config.toml, metrics.jsonl,
    /// samples/epoch_NNN.png (mask | real | generated), generator.safetensors.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML configuration (sections model, loss, run); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Perceptual loss (weight 10): none, chess=W.safetensors or imagenet=W.safetensors.
    #[arg(long)]
    pub perceptual: Option<String>,
    /// Weight of the perceptual term (SPADE: 10).
    #[arg(long)]
    pub perceptual_weight: Option<f64>,
    /// Adam's learning rate for both networks (SPADE: 2e-4).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Image side, a multiple of 32.
    #[arg(long)]
    pub size: Option<i64>,
    #[arg(long)]
    pub epochs: Option<u64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Generator and discriminator base widths (SPADE's ngf, ndf: 64).
    #[arg(long)]
    pub ngf: Option<i64>,
    #[arg(long)]
    pub ndf: Option<i64>,
    /// Train with the VAE encoder (KL weight 0.05).
    #[arg(long)]
    pub vae: bool,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// libtorch CPU threads.
    #[arg(long)]
    pub threads: Option<i32>,
}

pub fn run(a: NoduleArgs, quiet: bool) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(f) => NoduleConfig::from_file(f)?,
        None => NoduleConfig::default(),
    };
    if let Some(v) = &a.perceptual {
        cfg.loss.perceptual = v.clone();
    }
    if let Some(v) = a.perceptual_weight {
        cfg.loss.perceptual_weight = v;
    }
    if let Some(v) = a.lr {
        cfg.run.lr = v;
    }
    if let Some(v) = a.size {
        cfg.run.size = v;
    }
    if let Some(v) = a.epochs {
        cfg.run.epochs = v;
    }
    if let Some(v) = a.batch_size {
        cfg.run.batch_size = v;
    }
    if let Some(v) = a.ngf {
        cfg.model.ngf = v;
    }
    if let Some(v) = a.ndf {
        cfg.model.ndf = v;
    }
    if a.vae {
        cfg.model.vae = true;
    }
    if let Some(v) = &a.device {
        cfg.run.device = v.clone();
    }
    if let Some(v) = a.seed {
        cfg.run.seed = v;
    }
    if let Some(v) = a.threads {
        cfg.run.threads = v;
    }
    cfg.validate()?;
    // One bar over every epoch's steps: its ETA is the run's.
    let bar = chess_cli::progress::bar(0, "steps", "", quiet);
    let run = nodule_gen(&a.data, &a.out, &cfg, |p| {
        bar.set_length(p.epochs * p.steps);
        bar.set_position((p.epoch - 1) * p.steps + p.step);
        let last = p.last.as_ref().map_or(String::new(), |l| {
            format!(
                "  | last epoch: D {:.3} G {:.3}, {:.1} img/s, data wait {:.0}%",
                l.d_loss,
                l.g_loss,
                l.images_per_s,
                100.0 * l.data_wait
            )
        });
        bar.set_message(format!("epoch {}/{}{last}", p.epoch, p.epochs));
    })?;
    bar.finish_and_clear();
    if !quiet {
        if let Some(l) = run.epochs.last() {
            println!(
                "{} epochs; last: D {:.4}, G {:.4} (GAN {:.4}, perceptual {:.4}, KL {:.4})",
                run.epochs.len(),
                l.d_loss,
                l.g_loss,
                l.g_gan,
                l.perceptual,
                l.kld
            );
        }
        println!("{}", run.throughput.summary_line());
        println!("samples: {}", a.out.join("samples").display());
        println!("run:     {}", a.out.display());
    }
    Ok(())
}
