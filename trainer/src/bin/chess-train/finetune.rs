//! `chess-train finetune`: CheSS's downstream fine-tuning; defaults, then
//! --config, then flags; prints the best epoch and the test metrics.

use std::path::PathBuf;

use chess_train::models::resnet::Arch;
use chess_train::tasks::classify::config::{FinetuneConfig, Task, Uncertain};
use chess_train::tasks::classify::run::{finetune, Manifests};
use clap::Args;

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Training manifest (or dataset directory).
    #[arg(long)]
    pub train: String,
    /// Validation manifest: learning-rate plateau, early stopping, best epoch.
    #[arg(long)]
    pub valid: String,
    /// Test manifest: scored by the best epoch into OUT/predictions.csv.
    #[arg(long)]
    pub test: Option<String>,
    /// Run directory (created): config.toml, metrics.jsonl, curves.png,
    /// best.safetensors, model.json, predictions.csv, summary.json.
    #[arg(long)]
    pub out: PathBuf,
    /// TOML configuration (sections model, labels, optim, data, run, augment); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// multilabel (sigmoid + BCE) or multiclass (softmax + cross-entropy).
    #[arg(long)]
    pub task: Option<Task>,
    /// scratch, imagenet=W.safetensors, or PATH (an imported/exported encoder,
    /// a PyTorch checkpoint, or a pretrain run directory).
    #[arg(long)]
    pub init: Option<String>,
    /// Train only the linear head on frozen features.
    #[arg(long)]
    pub linear_probe: bool,
    /// Multi-label: labels (`target_<L>` or `<L>` columns; default every
    /// `target_*`). Multi-class: the class column (default `label` or `class`).
    #[arg(long, value_delimiter = ',')]
    pub labels: Option<Vec<String>>,
    /// Multi-class: the classes in output order (default: the training manifest's values, sorted).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Uncertain (−1) values of raw label columns: ones, zeros or ignore.
    #[arg(long)]
    pub uncertain: Option<Uncertain>,
    /// resnet50 (CheSS) or resnet18.
    #[arg(long)]
    pub arch: Option<Arch>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long)]
    pub device: Option<String>,
    /// Most epochs (early stopping may end sooner).
    #[arg(long)]
    pub epochs: Option<u64>,
    /// Images per step (default 32).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Network input side; images are resized on the device.
    #[arg(long)]
    pub size: Option<i64>,
    /// Initial learning rate (CheSS downstream: 1e-3).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Epochs without a better validation loss before stopping (0: never).
    #[arg(long)]
    pub early_stopping: Option<u64>,
    /// Seed of the data order, initialisation and augmentations.
    #[arg(long)]
    pub seed: Option<u64>,
    /// libtorch CPU threads.
    #[arg(long)]
    pub threads: Option<i32>,
    /// Train on the images as they are.
    #[arg(long)]
    pub no_augment: bool,
}

/// Defaults, then --config, then flags.
fn resolve(a: &FinetuneArgs) -> anyhow::Result<FinetuneConfig> {
    let mut cfg = match &a.config {
        Some(f) => FinetuneConfig::from_file(f)?,
        None => FinetuneConfig::default(),
    };
    if let Some(v) = a.task {
        cfg.labels.task = v;
    }
    if let Some(v) = &a.init {
        cfg.model.init = v.clone();
    }
    if a.linear_probe {
        cfg.model.linear_probe = true;
    }
    if let Some(v) = &a.labels {
        cfg.labels.labels = v.clone();
    }
    if let Some(v) = &a.classes {
        cfg.labels.classes = v.clone();
    }
    if let Some(v) = a.uncertain {
        cfg.labels.uncertain = v;
    }
    if let Some(v) = a.arch {
        cfg.model.arch = v;
    }
    if let Some(v) = &a.device {
        cfg.run.device = v.clone();
    }
    if let Some(v) = a.epochs {
        cfg.run.epochs = v;
    }
    if let Some(v) = a.batch_size {
        cfg.data.batch_size = v;
    }
    if let Some(v) = a.size {
        cfg.data.size = v;
    }
    if let Some(v) = a.lr {
        cfg.optim.lr = v;
    }
    if let Some(v) = a.early_stopping {
        cfg.optim.early_stopping_patience = v;
    }
    if let Some(v) = a.seed {
        cfg.run.seed = v;
    }
    if let Some(v) = a.threads {
        cfg.run.threads = v;
    }
    if a.no_augment {
        cfg.augment.enabled = false;
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn run(a: FinetuneArgs, quiet: bool) -> anyhow::Result<()> {
    let cfg = resolve(&a)?;
    let m = Manifests { train: a.train.clone(), valid: a.valid.clone(), test: a.test.clone() };
    // One bar over every epoch's batches: its ETA is the run's (early stopping may end sooner).
    let bar = chess_cli::progress::bar(0, "batches", "", quiet);
    let s = finetune(&m, &a.out, &cfg, |p| {
        bar.set_length(p.epochs * p.batches);
        bar.set_position((p.epoch - 1) * p.batches + p.batch);
        let last = p.last.as_ref().map_or(String::new(), |l| {
            format!(
                "  | last epoch: valid loss {:.4} metric {:.4} lr {:.2e}, {:.1} img/s, data wait {:.0}%",
                l.valid_loss,
                l.valid_metric,
                l.lr,
                l.images_per_s,
                100.0 * l.data_wait
            )
        });
        bar.set_message(format!("epoch {}/{} loss {:.4}{last}", p.epoch, p.epochs, p.train_loss));
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!("{}", s.throughput.summary_line());
        println!(
            "{} epochs{}, best epoch {} (validation {} {:.4})",
            s.epochs_run,
            if s.stopped_early { " (stopped early)" } else { "" },
            s.best_epoch,
            if s.task == Task::Multilabel { "mean AUC" } else { "accuracy" },
            s.best_valid_metric
        );
        if let Some(t) = &s.test {
            match s.task {
                Task::Multilabel => {
                    let per: Vec<String> = s.outputs.iter().zip(&t.auc).map(|(l, v)| format!("{l} {v:.4}")).collect();
                    println!(
                        "test: mean AUC {:.4} ({}) on {} images",
                        t.mean_auc.unwrap_or(f64::NAN),
                        per.join(", "),
                        s.test_samples
                    );
                }
                Task::Multiclass => {
                    println!("test: accuracy {:.4} on {} images", t.accuracy.unwrap_or(f64::NAN), s.test_samples)
                }
            }
            println!("predictions: {}", a.out.join("predictions.csv").display());
        }
        println!("run:         {}", a.out.display());
    }
    Ok(())
}
