//! `chess-train bone-suppression`: train the dilated U-Net on a paired
//! dataset and score its test set; defaults, then --config, then flags.

use std::path::PathBuf;

use chess_train::tasks::bone::config::BoneConfig;
use chess_train::tasks::bone::run::bone_suppression;
use clap::Args;

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

pub fn run(a: BoneArgs, quiet: bool) -> anyhow::Result<()> {
    let cfg = resolve(&a)?;
    // One bar over every epoch's batches: its ETA is the run's.
    let bar = chess_cli::progress::bar(0, "batches", "", quiet);
    let s = bone_suppression(&a.data, &a.out, &cfg, |p| {
        bar.set_length(p.epochs * p.batches);
        bar.set_position((p.epoch - 1) * p.batches + p.batch);
        let last = p.last.as_ref().map_or(String::new(), |l| {
            format!(
                "  | last epoch: valid PSNR {:.2} dB, {:.1} img/s, data wait {:.0}%",
                l.valid_psnr,
                l.images_per_s,
                100.0 * l.data_wait
            )
        });
        bar.set_message(format!("epoch {}/{} loss {:.4}{last}", p.epoch, p.epochs, p.train_loss));
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
        println!("{}", s.throughput.summary_line());
        println!("per image: {}", a.out.join("test_metrics.csv").display());
        println!("run:       {}", a.out.display());
    }
    Ok(())
}
