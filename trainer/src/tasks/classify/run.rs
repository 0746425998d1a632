//! Downstream classification (CheSS's fine-tuning protocol): a ResNet with a
//! linear `fc` head trained on a training manifest, selected on a validation
//! manifest, and scored on a test manifest.
//!
//! Defaults follow CheSS downstream: BCE with logits (multi-label) or
//! cross-entropy (multi-class), SGD lr 1e-3 momentum 0.9,
//! ReduceLROnPlateau(factor 0.5, patience 10) on the validation loss, early
//! stopping on the validation loss, the best epoch chosen by the validation
//! metric (mean ROC AUC, or accuracy). Labels come from manifest columns:
//! `target_<label>` (resolved by `chess-shards fractions`, null = masked),
//! a raw CheXpert column (1, 0, −1 uncertain, blank; `uncertain` decides
//! −1, blank is negative), or one class column for multi-class (what
//! `chess-shards balance` keeps).
//!
//! A run directory holds `config.toml` (resolved), `metrics.jsonl` (one line
//! per epoch), `curves.png`, `best.safetensors` + `model.json` (the
//! classifier [`ModelCard`] that `predict` and `gradcam` read),
//! `predictions.csv` and `summary.json` (test metrics).

use std::path::Path;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

use chess_shards::loader::Loader;

use crate::data::augment::augment;
use crate::io::run_log::{RunLog, Start};
use crate::io::{atomic, weights};
use crate::models::encoder::{load_encoder, read_encoder};
use crate::models::resnet::{HeadKind, ResNet};
use crate::runtime::device::{device_name, parse_device, prepare};
use crate::runtime::optim::{Plateau, Sgd};
use crate::runtime::seed::step_seed;
use crate::runtime::throughput::{DataSource, StepClock, Throughput};
use crate::tasks::classify::classifier::{Classifier, ModelCard, CARD_FORMAT};
use crate::tasks::classify::config::{parse_init, FinetuneConfig, Init, Task};
use crate::tasks::classify::eval::{eval_loader_options, evaluate, loss, score, Evaluation};
use crate::tasks::classify::gradcam::{heat_map, overlay};
use crate::tasks::classify::labels::{resolve_outputs, TargetReader};
use crate::tasks::classify::predict::unit_from_dataset;
use crate::tasks::classify::report::{curves, write_predictions};
use crate::{data, read_err, write_err, Result, TrainError};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u64,
    pub train_loss: f64,
    pub valid_loss: f64,
    /// Mean AUC or accuracy on the validation manifest.
    pub valid_metric: f64,
    pub lr: f64,
    pub best: bool,
    /// Training images per second over the epoch's training batches.
    #[serde(default)]
    pub images_per_s: f64,
    /// Shares (0–1) of the epoch's training time waiting for the loader and in the optimizer step.
    #[serde(default)]
    pub data_wait: f64,
    #[serde(default)]
    pub optimizer: f64,
    pub seconds: f64,
}

/// What the caller hears (for a progress bar).
#[derive(Debug, Clone)]
pub struct FtProgress {
    pub epoch: u64,
    pub epochs: u64,
    /// Training batches done this epoch, of `batches`.
    pub batch: u64,
    pub batches: u64,
    pub train_loss: f64,
    pub last: Option<EpochMetrics>,
}

/// The manifests of a run.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub train: String,
    pub valid: String,
    pub test: Option<String>,
}

/// How a run ended (also `summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinetuneSummary {
    pub task: Task,
    pub outputs: Vec<String>,
    pub init: String,
    pub epochs_run: u64,
    pub best_epoch: u64,
    pub best_valid_metric: f64,
    pub stopped_early: bool,
    pub valid: Evaluation,
    pub test: Option<Evaluation>,
    pub test_samples: usize,
    pub seconds: f64,
    /// Over the training batches of every epoch (validation excluded).
    #[serde(default)]
    pub throughput: Throughput,
}

/// Fine-tunes on `m.train`, selects on `m.valid`, scores `m.test`; writes the run into `out`.
pub fn finetune(
    m: &Manifests,
    out: &Path,
    cfg: &FinetuneConfig,
    mut progress: impl FnMut(&FtProgress),
) -> Result<FinetuneSummary> {
    cfg.validate()?;
    let started = Instant::now();
    let device = parse_device(&cfg.run.device)?;
    // The torch generator is seeded here; nothing below draws from it before the model's initialisation.
    prepare(device, cfg.run.threads, cfg.run.seed)?;

    let mut train_opts = eval_loader_options(cfg);
    train_opts.shuffle = true;
    train_opts.seed = cfg.run.seed;
    let train = Loader::open(&m.train, train_opts)?;
    let valid = Loader::open(&m.valid, eval_loader_options(cfg))?;
    let test = m.test.as_ref().map(|t| Loader::open(t, eval_loader_options(cfg))).transpose()?;
    let outputs = resolve_outputs(&train, &m.train, &cfg.labels)?;
    let train_reader = TargetReader::new(&train, &m.train, &cfg.labels, &outputs)?;
    let valid_reader = TargetReader::new(&valid, &m.valid, &cfg.labels, &outputs)?;
    let test_reader = match (&test, &m.test) {
        (Some(l), Some(loc)) => Some(TargetReader::new(l, loc, &cfg.labels, &outputs)?),
        _ => None,
    };

    let vs = nn::VarStore::new(device);
    let net = ResNet::new(&vs.root(), cfg.model.arch, HeadKind::Linear(outputs.len() as i64));
    if let Init::Weights { path, .. } = parse_init(&cfg.model.init)? {
        let enc = read_encoder(&path)?;
        if enc.arch != cfg.model.arch {
            return Err(TrainError::Weights {
                path,
                msg: format!("holds a {} encoder, the run is configured for {}", enc.arch, cfg.model.arch),
            });
        }
        load_encoder(&vs, &enc.tensors, &path)?;
    }
    // Named, sorted parameters: the optimizer's order does not depend on hash order.
    let mut vars: Vec<(String, Tensor)> = Vec::new();
    let mut all: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, t) in all {
        if cfg.model.linear_probe && !name.starts_with("fc.") {
            let _ = t.shallow_clone().set_requires_grad(false);
            continue;
        }
        vars.push((name, t));
    }
    let params: Vec<Tensor> = vars.iter().map(|(_, t)| t.shallow_clone()).collect();
    let mut sgd = Sgd::new(params.len(), cfg.optim.momentum, cfg.optim.weight_decay);
    let mut plateau = Plateau::new(
        cfg.optim.plateau_factor,
        cfg.optim.plateau_patience,
        cfg.optim.plateau_threshold,
        cfg.optim.min_lr,
    );

    // Created only now: a refused manifest or --init leaves no run directory behind.
    std::fs::create_dir_all(out).map_err(write_err(out))?;
    std::fs::write(out.join("config.toml"), cfg.to_toml()).map_err(write_err(out.join("config.toml")))?;
    let metrics_path = out.join("metrics.jsonl");
    let mut log = RunLog::open(out, "epoch", Start::Fresh)?;
    let best_path = out.join("best.safetensors");
    let card_path = out.join("model.json");

    let batches = train.batches_per_epoch();
    let mut lr = cfg.optim.lr;
    let mut step = 0u64;
    let mut best: Option<(u64, f64, Evaluation)> = None;
    let mut best_loss = f64::INFINITY;
    let mut since_better_loss = 0u64;
    let mut stopped_early = false;
    let mut epochs_run = 0;
    let mut last: Option<EpochMetrics> = None;
    // A window per epoch's training batches.
    let mut clock = StepClock::new();
    for epoch in 1..=cfg.run.epochs {
        let (mut loss_sum, mut loss_n) = (0.0, 0u64);
        let mut it = train.epoch(epoch - 1);
        clock.restart();
        loop {
            let Some(batch) = clock.wait(|| it.next()) else { break };
            let batch = batch?;
            if batch.len() < 2 {
                continue; // batch norm cannot train on one sample
            }
            let targets = train_reader.read(&batch)?;
            tch::manual_seed(step_seed(cfg.run.seed, step));
            let unit = data::upload(&batch, device).to_unit(cfg.data.size);
            let x = data::normalise(&augment(&unit, &cfg.augment), cfg.data.mean, cfg.data.std);
            let logits = if cfg.model.linear_probe {
                let f = tch::no_grad(|| net.features_t(&x, false));
                net.head(f)
            } else {
                net.forward_t(&x, true)
            };
            let Some(l) = loss(&logits, &targets, device) else { continue };
            Sgd::zero_grad(&params);
            l.backward();
            clock.optimizer(|| sgd.step(&params, lr));
            step += 1;
            clock.images(batch.len() as u64);
            loss_sum += l.double_value(&[]);
            loss_n += 1;
            it.recycle(batch);
            progress(&FtProgress {
                epoch,
                epochs: cfg.run.epochs,
                batch: loss_n,
                batches,
                train_loss: loss_sum / loss_n as f64,
                last: last.clone(),
            });
        }
        let train_loss = if loss_n > 0 { loss_sum / loss_n as f64 } else { f64::NAN };
        let tp = clock.close_window();
        let scored = score(&net, &valid, &valid_reader, cfg, device, outputs.len())?;
        let ev = evaluate(cfg.labels.task, &scored);
        // Selection: the validation metric; where it is undefined (one class only), the loss.
        let key = if ev.metric().is_finite() { ev.metric() } else { -ev.loss };
        let is_best = match &best {
            None => true,
            Some((_, k, _)) => key > *k,
        };
        if is_best {
            weights::write_atomic(&best_path, &weights::torchvision_state(&vs, 0, false))?;
            let card = ModelCard {
                format: CARD_FORMAT.into(),
                task: cfg.labels.task,
                arch: cfg.model.arch,
                outputs: outputs.clone(),
                size: cfg.data.size,
                mean: cfg.data.mean,
                std: cfg.data.std,
                init: cfg.model.init.clone(),
                linear_probe: cfg.model.linear_probe,
                epoch,
                valid_metric: ev.metric(),
                weights: "best.safetensors".into(),
            };
            atomic::write_bytes_atomic(
                &card_path,
                serde_json::to_string_pretty(&card).expect("card serialises").as_bytes(),
            )?;
            best = Some((epoch, key, ev.clone()));
        }
        let em = EpochMetrics {
            epoch,
            train_loss,
            valid_loss: ev.loss,
            valid_metric: ev.metric(),
            lr,
            best: is_best,
            images_per_s: tp.images_per_s,
            data_wait: tp.data_wait,
            optimizer: tp.optimizer,
            seconds: started.elapsed().as_secs_f64(),
        };
        log.record(&em)?;
        tracing::info!(epoch, train_loss, valid_loss = ev.loss, valid_metric = ev.metric(), lr, "epoch");
        last = Some(em);
        progress(&FtProgress { epoch, epochs: cfg.run.epochs, batch: loss_n, batches, train_loss, last: last.clone() });
        epochs_run = epoch;
        if ev.loss.is_finite() {
            lr = plateau.step(ev.loss, lr);
            if ev.loss < best_loss {
                best_loss = ev.loss;
                since_better_loss = 0;
            } else {
                since_better_loss += 1;
            }
        }
        if cfg.optim.early_stopping_patience > 0 && since_better_loss >= cfg.optim.early_stopping_patience {
            stopped_early = true;
            break;
        }
    }
    if let Err(e) = curves(&metrics_path, &out.join("curves.png")) {
        tracing::warn!("no curves: {e}");
    }
    clock.run().warn_if_starved(&device_name(device), DataSource::Loader);
    let (best_epoch, _, best_ev) = best.ok_or_else(|| TrainError::Internal("no epoch finished".into()))?;

    // The test manifest, scored by the best weights.
    let mut test_ev = None;
    let mut test_samples = 0;
    if let (Some(loader), Some(reader)) = (&test, &test_reader) {
        let t = weights::read(&best_path)?;
        weights::load_into(&vs, &t, "", &best_path, true)?;
        let scored = score(&net, loader, reader, cfg, device, outputs.len())?;
        write_predictions(&out.join("predictions.csv"), cfg.labels.task, &outputs, &scored)?;
        test_samples = scored.keys.len();
        test_ev = Some(evaluate(cfg.labels.task, &scored));
        if let (Some(key), Some(location)) = (scored.keys.first(), &m.test) {
            if let Err(e) = gradcam_image(&mut log, out, location, key, best_epoch, device) {
                tracing::warn!("no Grad-CAM image for TensorBoard: {e}");
            }
        }
    }
    let summary = FinetuneSummary {
        task: cfg.labels.task,
        outputs,
        init: cfg.model.init.clone(),
        epochs_run,
        best_epoch,
        best_valid_metric: best_ev.metric(),
        stopped_early,
        valid: best_ev,
        test: test_ev,
        test_samples,
        seconds: started.elapsed().as_secs_f64(),
        throughput: clock.run(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    atomic::write_bytes_atomic(&out.join("summary.json"), json.as_bytes())?;
    Ok(summary)
}

/// TensorBoard's `gradcam/first_test_image`: the Grad-CAM overlay (layer4) of
/// the test image `key` for the class the best weights score highest.
fn gradcam_image(log: &mut RunLog, run: &Path, location: &str, key: &str, epoch: u64, device: Device) -> Result<()> {
    let model = Classifier::load(run, device)?;
    let unit = unit_from_dataset(Path::new(location), key)?;
    let probs: Vec<f32> = Vec::try_from(model.scores(&unit.to_device(device)).to_device(Device::Cpu).flatten(0, -1))?;
    let c = probs.iter().enumerate().fold(0, |b, (i, p)| if *p > probs[b] { i } else { b });
    let side = unit.size()[2].min(256);
    let shown = unit.internal_upsample_bilinear2d_aa([side, side], false, None, None);
    let grey: Vec<f32> = Vec::try_from(shown.to_kind(tch::Kind::Float).flatten(0, -1))?;
    let heat = heat_map(&model, &unit, c, 4, (side, side))?;
    let rgb: Vec<u8> = grey.iter().zip(&heat).flat_map(|(g, h)| overlay(*g, *h)).collect();
    let s = side as u32;
    log.image("gradcam/first_test_image", epoch as i64, s, s, 3, &crate::io::png::encode(s, s, 3, &rgb)?)
}

/// Reads a finished run's `summary.json`.
pub fn read_summary(run: &Path) -> Result<FinetuneSummary> {
    let p = run.join("summary.json");
    let text = std::fs::read_to_string(&p).map_err(read_err(&p))?;
    serde_json::from_str(&text).map_err(|e| TrainError::Input { path: p, msg: e.to_string() })
}
