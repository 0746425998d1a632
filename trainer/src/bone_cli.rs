//! The image-to-image subcommands of `chess-train` (bone-suppression,
//! bone-compare, nodule-gen): their arguments, how flags override the TOML config, and
//! what they print. The work itself is in the library (`bone`, `nodule`).

use std::path::PathBuf;

use chess_train::bone::{self, BoneConfig};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Args, Debug)]
pub struct BoneArgs {
    /// Paired dataset directory or manifest (`<key>.target.npy.zst` bone-free
    /// targets); its `split` column (train, valid, test) is used when present.
    pub data: String,
    /// Run directory (created): config.toml, metrics.jsonl, best.safetensors,
    /// suppressed/*.png, residuals/*.png, test_metrics.csv, summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML configuration (sections model, loss, data, run); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Perceptual loss: none, chess=W.safetensors or imagenet=W.safetensors
    /// (encoders as `chess-train import` writes them).
    #[arg(long)]
    pub perceptual: Option<String>,
    /// Weight of the perceptual term (the L1 term has weight 1).
    #[arg(long)]
    pub perceptual_weight: Option<f64>,
    /// Training side, a multiple of 2^depth (images are resized to it).
    #[arg(long)]
    pub size: Option<i64>,
    #[arg(long)]
    pub epochs: Option<u64>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Adam's learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Channels of the U-Net's first level.
    #[arg(long)]
    pub width: Option<i64>,
    /// U-Net downsamplings.
    #[arg(long)]
    pub depth: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    #[arg(long)]
    pub seed: Option<u64>,
    /// libtorch CPU threads.
    #[arg(long)]
    pub threads: Option<i32>,
}

fn resolve(a: &BoneArgs) -> anyhow::Result<BoneConfig> {
    let mut cfg = match &a.config {
        Some(f) => BoneConfig::from_file(f)?,
        None => BoneConfig::default(),
    };
    if let Some(v) = &a.perceptual {
        cfg.loss.perceptual = v.clone();
    }
    if let Some(v) = a.perceptual_weight {
        cfg.loss.perceptual_weight = v;
    }
    if let Some(v) = a.size {
        cfg.data.size = v;
    }
    if let Some(v) = a.epochs {
        cfg.run.epochs = v;
    }
    if let Some(v) = a.batch_size {
        cfg.data.batch_size = v;
    }
    if let Some(v) = a.lr {
        cfg.run.lr = v;
    }
    if let Some(v) = a.width {
        cfg.model.width = v;
    }
    if let Some(v) = a.depth {
        cfg.model.depth = v;
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
    Ok(cfg)
}

pub fn bone_suppression(a: BoneArgs, quiet: bool) -> anyhow::Result<()> {
    let cfg = resolve(&a)?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] epoch {prefix} {bar:30} {pos}/{len} batches  {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let s = bone::bone_suppression(&a.data, &a.out, &cfg, |p| {
        bar.set_prefix(format!("{}/{}", p.epoch, p.epochs));
        bar.set_length(p.batches);
        bar.set_position(p.batch);
        let last =
            p.last.as_ref().map_or(String::new(), |l| format!("  | last epoch: valid PSNR {:.2} dB", l.valid_psnr));
        bar.set_message(format!("loss {:.4}{last}", p.train_loss));
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!(
            "{} train / {} valid / {} test images ({} split), perceptual loss {}, best epoch {}",
            s.train_samples, s.valid_samples, s.test_samples, s.split, s.perceptual, s.best_epoch
        );
        println!(
            "test:  PSNR {:.3} dB  SSIM {:.4}  RMSE {:.3} (8-bit grey levels)",
            s.test.psnr, s.test.ssim, s.test.rmse
        );
        println!(
            "input: PSNR {:.3} dB  SSIM {:.4}  RMSE {:.3} (sources against targets)",
            s.test_input.psnr, s.test_input.ssim, s.test_input.rmse
        );
        println!("per image: {}", a.out.join("test_metrics.csv").display());
        println!("run:       {}", a.out.display());
    }
    Ok(())
}

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

pub fn bone_compare(a: BoneCompareArgs) -> anyhow::Result<()> {
    let rows = bone::compare(&a.run_a, &a.run_b)?;
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
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}

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

pub fn nodule_gen(a: NoduleArgs, quiet: bool) -> anyhow::Result<()> {
    use chess_train::nodule::{self, NoduleConfig};
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
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] epoch {prefix} {bar:30} {pos}/{len} steps  {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let history = nodule::nodule_gen(&a.data, &a.out, &cfg, |p| {
        bar.set_prefix(format!("{}/{}", p.epoch, p.epochs));
        bar.set_length(p.steps);
        bar.set_position(p.step);
        if let Some(l) = &p.last {
            bar.set_message(format!("last epoch: D {:.3} G {:.3}", l.d_loss, l.g_loss));
        }
    })?;
    bar.finish_and_clear();
    if !quiet {
        if let Some(l) = history.last() {
            println!(
                "{} epochs; last: D {:.4}, G {:.4} (GAN {:.4}, perceptual {:.4}, KL {:.4})",
                history.len(),
                l.d_loss,
                l.g_loss,
                l.g_gan,
                l.perceptual,
                l.kld
            );
        }
        println!("samples: {}", a.out.join("samples").display());
        println!("run:     {}", a.out.display());
    }
    Ok(())
}
