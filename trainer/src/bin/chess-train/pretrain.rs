//! `chess-train pretrain`: MoCo v2 pretraining; defaults (or the resumed
//! run's config.toml), then --config, then flags; one process of a
//! torchrun/srun job when launched by one.

use std::path::PathBuf;

use chess_train::models::resnet::Arch;
use chess_train::runtime::amp::Precision;
use chess_train::runtime::dist::{self, BackendChoice};
use chess_train::tasks::pretrain::config::TrainConfig;
use chess_train::tasks::pretrain::train_loop;
use clap::Args;

#[derive(Args, Debug)]
pub struct PretrainArgs {
    /// Dataset directory, object-store URL (s3://…), or manifest (.parquet).
    input: String,
    /// Run directory (created): config.toml, metrics.jsonl, curves.png, checkpoints/.
    #[arg(long)]
    out: PathBuf,
    /// TOML configuration (sections moco, optim, data, run, augment); flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue the run in --out from its latest checkpoint (its config.toml is the base).
    #[arg(long)]
    resume: bool,
    /// resnet50 (CheSS) or resnet18.
    #[arg(long)]
    arch: Option<Arch>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Epochs of the cosine schedule (CheSS: 200).
    #[arg(long)]
    epochs: Option<u64>,
    /// Stop after this many steps in all.
    #[arg(long)]
    steps: Option<u64>,
    /// Images per step (CheSS: 256).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Queue size K, a multiple of the batch size (CheSS: 65536).
    #[arg(long)]
    queue: Option<i64>,
    /// Network input side; images are resized on the device (CheSS: 512).
    #[arg(long)]
    size: Option<i64>,
    /// Base learning rate (CheSS: 0.03).
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of the data order, initialisation and augmentations.
    #[arg(long)]
    seed: Option<u64>,
    /// Save a checkpoint every N steps (and at each epoch end).
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// libtorch CPU threads.
    #[arg(long)]
    threads: Option<i32>,
    /// Train on the images as they are (query = key input, no augmentation).
    #[arg(long)]
    no_augment: bool,
    /// fp32, bf16 (autocast on the forward passes) or fp16 (autocast with dynamic loss scaling).
    #[arg(long)]
    precision: Option<Precision>,
    /// Channels-last memory order for the convolutions (use on CUDA).
    #[arg(long)]
    channels_last: bool,
    /// kNN monitor: a small labelled dataset or manifest, embedded every --knn-every steps
    /// (leave-one-out weighted kNN accuracy in metrics.jsonl and curves.png).
    #[arg(long)]
    knn_manifest: Option<String>,
    /// Run the kNN monitor every N steps (and after the last).
    #[arg(long)]
    knn_every: Option<u64>,
    /// Neighbours voting in the kNN monitor (default 20).
    #[arg(long)]
    knn_k: Option<usize>,
    /// Manifest column with the class for the kNN monitor (default: its first label column),
    /// e.g. view_position or sex.
    #[arg(long)]
    knn_label: Option<String>,
    /// Process-group backend when launched by torchrun or srun: auto (NCCL on
    /// CUDA, Gloo on CPU), gloo or nccl. --batch-size is per process.
    #[arg(long, default_value = "auto")]
    dist_backend: BackendChoice,
    /// Seconds to wait for the peers and for each collective before failing
    /// (a dead rank becomes an error); default CHESS_DIST_TIMEOUT or 1800.
    #[arg(long)]
    dist_timeout: Option<f64>,
}

/// Defaults (or the resumed run's config.toml), then --config, then flags.
fn resolve(a: &PretrainArgs) -> anyhow::Result<TrainConfig> {
    let saved = a.out.join("config.toml");
    let mut cfg = match (&a.config, a.resume && saved.exists()) {
        (Some(f), _) => TrainConfig::from_file(f)?,
        (None, true) => TrainConfig::from_file(&saved)?,
        (None, false) => TrainConfig::default(),
    };
    if let Some(v) = a.arch {
        cfg.moco.arch = v;
    }
    if let Some(v) = &a.device {
        cfg.run.device = v.clone();
    }
    if let Some(v) = a.epochs {
        cfg.run.epochs = v;
    }
    if let Some(v) = a.steps {
        cfg.run.steps = Some(v);
    }
    if let Some(v) = a.batch_size {
        cfg.data.batch_size = v;
    }
    if let Some(v) = a.queue {
        cfg.moco.queue = v;
    }
    if let Some(v) = a.size {
        cfg.data.size = v;
    }
    if let Some(v) = a.lr {
        cfg.optim.lr = v;
    }
    if let Some(v) = a.seed {
        cfg.run.seed = v;
    }
    if let Some(v) = a.checkpoint_every {
        cfg.run.checkpoint_every = v;
    }
    if let Some(v) = a.threads {
        cfg.run.threads = v;
    }
    if a.no_augment {
        cfg.augment.enabled = false;
    }
    if let Some(p) = a.precision {
        cfg.run.precision = p;
    }
    if a.channels_last {
        cfg.run.channels_last = true;
    }
    if let Some(v) = &a.knn_manifest {
        cfg.knn.manifest = v.clone();
    }
    if let Some(v) = a.knn_every {
        cfg.knn.every = v;
    }
    if let Some(v) = a.knn_k {
        cfg.knn.k = v;
    }
    if let Some(v) = &a.knn_label {
        cfg.knn.label = v.clone();
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(a: PretrainArgs, quiet: bool) -> anyhow::Result<()> {
    let cfg = resolve(&a)?;
    let dist = dist::init_from_env(&cfg.run.device, a.dist_backend, a.dist_timeout)?.map(std::sync::Arc::new);
    // One progress bar and summary per job: rank 0's.
    let quiet = quiet || dist.as_ref().is_some_and(|d| !d.is_main());
    let bar = chess_cli::progress::bar(0, "steps", "", quiet);
    let summary = train_loop::pretrain_with(&a.input, &a.out, &cfg, a.resume, dist, |p| {
        if bar.length() != Some(p.total) {
            bar.set_length(p.total);
        }
        bar.set_position(p.step);
        let m = &p.metrics;
        bar.set_message(format!(
            "epoch {} loss {:.4} top1 {:.1}% lr {:.4} {:.1} img/s, data wait {:.0}%",
            m.epoch,
            m.loss,
            m.acc1,
            m.lr,
            m.images_per_s,
            100.0 * m.data_wait
        ));
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!(
            "{} steps on {} in {:.1}s, last loss {}",
            summary.steps,
            summary.device,
            summary.seconds,
            summary.last_loss.map_or("-".into(), |l| format!("{l:.4}"))
        );
        println!("{}", summary.throughput.summary_line());
        println!("run:        {}", summary.run.display());
        println!("metrics:    {}", summary.run.join("metrics.jsonl").display());
        println!("curves:     {}", summary.run.join("curves.png").display());
        println!("tensorboard: tensorboard --logdir {}", summary.run.display());
        if let Some(c) = &summary.last_checkpoint {
            println!("checkpoint: {}", c.display());
        }
    }
    Ok(())
}
