//! The downstream-classification subcommands of `chess-train` (import,
//! finetune, predict, sweep, gradcam): their arguments, how flags override the TOML config, and what
//! they print. The work itself is in the library (`import`, `finetune`).

use std::path::PathBuf;

use chess_train::resnet::Arch;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

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
    pub task: Option<chess_train::finetune::Task>,
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
    pub uncertain: Option<chess_train::finetune::Uncertain>,
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

pub fn import(a: ImportArgs, quiet: bool) -> anyhow::Result<()> {
    let imp = chess_train::import::import(&a.file, &a.out, a.python.as_deref(), a.allow_pickle)?;
    if !quiet {
        let kind = match imp.kind {
            chess_train::import::SourceKind::MocoQuery => "MoCo query encoder",
            chess_train::import::SourceKind::Torchvision => "torchvision ResNet",
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

/// Defaults, then --config, then flags.
fn resolve_finetune(a: &FinetuneArgs) -> anyhow::Result<chess_train::finetune::FinetuneConfig> {
    use chess_train::finetune::FinetuneConfig;
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

pub fn finetune(a: FinetuneArgs, quiet: bool) -> anyhow::Result<()> {
    let cfg = resolve_finetune(&a)?;
    let m = chess_train::finetune::Manifests { train: a.train.clone(), valid: a.valid.clone(), test: a.test.clone() };
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] epoch {prefix} {bar:30} {pos}/{len} batches  {msg}",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let s = chess_train::finetune::finetune(&m, &a.out, &cfg, |p| {
        bar.set_prefix(format!("{}/{}", p.epoch, p.epochs));
        bar.set_length(p.batches);
        bar.set_position(p.batch);
        let last = p.last.as_ref().map_or(String::new(), |l| {
            format!("  | last epoch: valid loss {:.4} metric {:.4} lr {:.2e}", l.valid_loss, l.valid_metric, l.lr)
        });
        bar.set_message(format!("loss {:.4}{last}", p.train_loss));
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!(
            "{} epochs{}, best epoch {} (validation {} {:.4})",
            s.epochs_run,
            if s.stopped_early { " (stopped early)" } else { "" },
            s.best_epoch,
            if s.task == chess_train::finetune::Task::Multilabel { "mean AUC" } else { "accuracy" },
            s.best_valid_metric
        );
        if let Some(t) = &s.test {
            match s.task {
                chess_train::finetune::Task::Multilabel => {
                    let per: Vec<String> = s.outputs.iter().zip(&t.auc).map(|(l, v)| format!("{l} {v:.4}")).collect();
                    println!(
                        "test: mean AUC {:.4} ({}) on {} images",
                        t.mean_auc.unwrap_or(f64::NAN),
                        per.join(", "),
                        s.test_samples
                    );
                }
                chess_train::finetune::Task::Multiclass => {
                    println!("test: accuracy {:.4} on {} images", t.accuracy.unwrap_or(f64::NAN), s.test_samples)
                }
            }
            println!("predictions: {}", a.out.join("predictions.csv").display());
        }
        println!("run:         {}", a.out.display());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Fine-tune run directory (its model.json) or a model.json.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// One dataset directory, URL or manifest; or DICOM and PNG files.
    #[arg(required = true)]
    pub inputs: Vec<String>,
    /// CSV to write: key, [predicted,] <output>_score ...
    #[arg(long)]
    pub out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
}

pub fn predict(a: PredictArgs, quiet: bool) -> anyhow::Result<()> {
    let device = chess_train::config::parse_device(&a.device)?;
    let input = chess_train::predict::PredictInput::from_args(&a.inputs);
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} images")
            .expect("template")
            .progress_chars("=> "),
    );
    let rows = chess_train::predict::predict(&a.ckpt, &input, &a.out, device, a.batch_size, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!("{} ({rows} images)", a.out.display());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct SweepArgs {
    /// The plan (TOML): out, valid, test, fractions_dir + fractions + repeats
    /// and/or [[settings]], [[inits]], optional config and [finetune] overrides.
    pub plan: PathBuf,
    /// Only summarise the runs already finished (run nothing).
    #[arg(long)]
    pub summarise: bool,
}

pub fn sweep(a: SweepArgs, quiet: bool) -> anyhow::Result<()> {
    let sweep = chess_train::sweep::load(&a.plan)?;
    let rows = if a.summarise {
        chess_train::sweep::summarise(&sweep)?
    } else {
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(sweep.runs.len() as u64) };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} runs  {msg}")
                .expect("template")
                .progress_chars("=> "),
        );
        let rows = chess_train::sweep::run(&sweep, |p| {
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
        print!("{}", std::fs::read_to_string(sweep.out.join("summary.md")).unwrap_or_default());
        println!("{} rows: {}", rows.len(), sweep.out.join("summary.csv").display());
        println!("figure:  {}", sweep.out.join("summary.png").display());
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct GradcamArgs {
    /// Fine-tune run directory (its model.json) or a model.json.
    #[arg(long)]
    pub ckpt: PathBuf,
    /// A DICOM or PNG file; or, with --dataset, a sample key.
    #[arg(long)]
    pub input: String,
    /// Dataset directory or manifest holding the key given as --input.
    #[arg(long)]
    pub dataset: Option<PathBuf>,
    /// The class or label to explain (default: every label; the predicted class for multi-class).
    #[arg(long)]
    pub class: Option<String>,
    /// Folder for the overlays (<key>_<class>.png).
    #[arg(long)]
    pub out: PathBuf,
    /// The ResNet stage whose activations are explained: 1–4 (layer1 … layer4).
    #[arg(long, default_value_t = 4)]
    pub layer: usize,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

pub fn gradcam(a: GradcamArgs, quiet: bool) -> anyhow::Result<()> {
    use chess_train::gradcam::GradcamInput;
    let device = chess_train::config::parse_device(&a.device)?;
    let input = match &a.dataset {
        Some(d) => GradcamInput::Key { dataset: d.clone(), key: a.input.clone() },
        None => GradcamInput::File(PathBuf::from(&a.input)),
    };
    let results = chess_train::gradcam::gradcam(&a.ckpt, &input, a.class.as_deref(), a.layer, &a.out, device)?;
    if !quiet {
        for r in &results {
            println!(
                "{}  {} {:.4}, heat peak at x={} y={} of {}x{}",
                r.png.display(),
                r.class,
                r.score,
                r.peak.0,
                r.peak.1,
                r.width,
                r.height
            );
        }
    }
    Ok(())
}
