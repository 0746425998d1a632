//! The pretraining loop: loader → device → two augmented views → MoCo step,
//! with metrics, checkpoints and exact resume.
//!
//! Determinism: before step `s` the torch generator is seeded from
//! `(seed, s)`, so augmentations and the batch shuffle of a step do not
//! depend on what ran before; with the loader's resume state and the saved
//! tensors, "k steps, resume, k steps" equals "2k steps" on the CPU.
//!
//! Batches come through a [`Prefetcher`] thread, so the next batch is read,
//! wrapped and on its way to the device while the current step runs. The
//! optional kNN monitor ([`crate::tasks::pretrain::knn`]) runs between steps in eval mode.
//!
//! Data-parallel ([`pretrain_with`] with a [`Dist`]): one process per
//! device, each with its share of the data; [`Moco`] averages gradients and
//! shuffles the key batch across ranks; rank 0 alone writes.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chess_shards::loader::{Loader, LoaderOptions, LoaderState, Remainder};

use crate::data;
use crate::data::prefetch::Prefetcher;
use crate::io::png;
use crate::io::run_log::{RunLog, Start};
use crate::runtime::device::{device_name, parse_device, prepare};
use crate::runtime::dist::{self, Dist};
use crate::runtime::optim::cosine_lr;
use crate::runtime::seed::{rank_seed, step_seed};
use crate::runtime::throughput::{DataSource, StepClock};
use crate::tasks::pretrain::checkpoint::{self, CheckpointState};
use crate::tasks::pretrain::config::TrainConfig;
use crate::tasks::pretrain::knn::KnnMonitor;
use crate::tasks::pretrain::moco::Moco;
use crate::tasks::pretrain::record::{Metrics, Progress, Summary};
use crate::{write_err, Result, TrainError};

/// The loader options a run uses (shared by pretrain and the tools).
pub fn loader_options(cfg: &TrainConfig) -> LoaderOptions {
    let mut o = LoaderOptions {
        seed: cfg.run.seed,
        batch_size: cfg.data.batch_size,
        remainder: Remainder::Drop,
        shuffle: true,
        shuffle_buffer: cfg.data.shuffle_buffer,
        ..LoaderOptions::default()
    };
    if cfg.data.decode_threads > 0 {
        o.decode_threads = cfg.data.decode_threads;
    }
    o
}

/// Runs (or, with `resume`, continues) MoCo v2 pretraining of `input` into
/// the run directory `out`. `cfg` is the resolved configuration; on resume
/// the checkpoint's tensors and positions are restored and `cfg` (saved
/// again) decides how far to go.
pub fn pretrain(
    input: &str,
    out: &Path,
    cfg: &TrainConfig,
    resume: bool,
    progress: impl FnMut(&Progress),
) -> Result<Summary> {
    pretrain_with(input, out, cfg, resume, None, progress)
}

/// [`pretrain`] as one rank of a data-parallel job when `dist` is given:
/// `cfg.data.batch_size` is per rank, the loader reads this rank's share,
/// rank 0's weights are broadcast at the start, and only rank 0 writes
/// checkpoints, metrics and plots and reports progress.
pub fn pretrain_with(
    input: &str,
    out: &Path,
    cfg: &TrainConfig,
    resume: bool,
    dist: Option<Arc<Dist>>,
    mut progress: impl FnMut(&Progress),
) -> Result<Summary> {
    cfg.validate()?;
    let (rank, world) = dist.as_ref().map_or((0, 1), |d| (d.rank, d.world_size));
    let is_main = rank == 0;
    let device = match &dist {
        Some(d) => dist::device_for(&cfg.run.device, d.local_rank)?,
        None => parse_device(&cfg.run.device)?,
    };
    let global_batch = (cfg.data.batch_size * world) as i64;
    if cfg.moco.queue % global_batch != 0 {
        return Err(TrainError::Settings(format!(
            "the queue size {} is not a multiple of the global batch {} ({world} processes × {})",
            cfg.moco.queue, global_batch, cfg.data.batch_size
        )));
    }
    // The torch generator is seeded here; nothing below draws from it before the model's initialisation.
    prepare(device, cfg.run.threads, cfg.run.seed)?;
    std::fs::create_dir_all(out).map_err(write_err(out))?;
    let started = Instant::now();
    // The monitor runs (and logs) on rank 0 only.
    let knn = if cfg.knn.enabled() && is_main {
        let t = Instant::now();
        let m = KnnMonitor::load(&cfg.knn, cfg.data.size)?;
        tracing::info!(images = m.len(), seconds = t.elapsed().as_secs_f64(), "kNN monitor ready");
        Some(m)
    } else {
        None
    };

    let loader = Loader::open(input, LoaderOptions { rank: rank as u64, world: world as u64, ..loader_options(cfg) })?;
    // Full batches only (upstream's drop_last): the queue needs K % batch == 0.
    let per_epoch = loader.samples_per_epoch() / cfg.data.batch_size as u64;
    if per_epoch == 0 {
        return Err(TrainError::Dataset {
            location: input.to_string(),
            msg: format!(
                "{} samples make no full batch of {} (MoCo drops the remainder)",
                loader.len(),
                cfg.data.batch_size
            ),
        });
    }
    let total = cfg.run.steps.unwrap_or(u64::MAX).min(cfg.run.epochs.saturating_mul(per_epoch));
    tracing::info!(samples = loader.len(), per_epoch, total, device = %device_name(device), "pretraining");

    let mut moco = Moco::new(cfg.moco.clone(), device, cfg.optim.momentum, cfg.optim.weight_decay)?;
    moco.precision = cfg.run.precision;
    if cfg.run.channels_last {
        moco.set_channels_last();
    }
    moco.dist = dist.clone();
    let mut step = 0u64;
    let mut epoch = 0u64;
    let mut resume_at: Option<LoaderState> = None;
    let metrics_path = out.join("metrics.jsonl");
    if resume {
        let (state, file) = checkpoint::load_latest(out, &mut moco)?;
        if state.config.moco != cfg.moco
            || state.config.data.batch_size != cfg.data.batch_size
            || state.config.run.seed != cfg.run.seed
        {
            return Err(TrainError::Settings(format!(
                "{}: the checkpoint was made with other MoCo, batch or seed settings; resume with the run's config.toml",
                file.display()
            )));
        }
        step = state.step;
        epoch = state.next_epoch;
        resume_at = match (&dist, state.loader) {
            (Some(_), Some(_)) => Some(state.rank_loaders.get(rank).filter(|_| state.rank_loaders.len() == world).cloned().ok_or_else(|| {
                TrainError::Settings(format!(
                    "{}: written mid-epoch by a run of {} process(es): resume with as many, or from an epoch-end checkpoint",
                    file.display(),
                    state.rank_loaders.len().max(1)
                ))
            })?),
            (_, loader) => loader,
        };
        if is_main {
            checkpoint::truncate_metrics(&metrics_path, step)?;
        }
        tracing::info!(step, epoch, "resumed from {}", file.display());
    } else if is_main {
        checkpoint::clear(out)?;
    }
    if let Some(d) = &dist {
        // Every rank starts from rank 0's weights, BN buffers and queue.
        d.broadcast_vars(&moco.vs_q)?;
        d.broadcast_vars(&moco.vs_k)?;
        d.broadcast_all(std::slice::from_ref(&moco.queue), 0)?;
        tracing::info!(rank, world, "process group ready");
    }
    let mut log = if is_main {
        std::fs::write(out.join("config.toml"), cfg.to_toml()).map_err(write_err(out.join("config.toml")))?;
        // Resumed: metrics.jsonl was cut after `step` above, and TensorBoard's series are cut there too.
        let start = if resume { Start::Resume { step: step as i64 } } else { Start::Fresh };
        Some(RunLog::open(out, "step", start)?)
    } else {
        None
    };

    let mut last_loss = None;
    let mut last_ckpt = None;
    // A window per logged step: loader wait, optimizer time, images.
    let mut clock = StepClock::new();
    let mut preview_logged = false;
    let mut saved_at = step;
    'epochs: while step < total && epoch < cfg.run.epochs {
        let lr = if cfg.optim.cos { cosine_lr(cfg.optim.lr, epoch, cfg.run.epochs) } else { cfg.optim.lr };
        let it = match resume_at.take() {
            Some(s) => loader.resume(s)?,
            None => loader.epoch(epoch),
        };
        // Batches ahead: the next batch is read and sent to the device
        // while the current step's kernels run.
        let mut batches = Prefetcher::start(it, device, 1);
        let t = Instant::now();
        let mut next = clock.wait(|| batches.next_batch())?;
        tracing::debug!(epoch, seconds = t.elapsed().as_secs_f64(), "first batch of the epoch");
        while let Some(fetched) = next.take() {
            let (state, index) = (fetched.state, fetched.index);
            if index >= per_epoch {
                break; // the short last batch
            }
            // Each rank draws its own augmentations; rank 0 keeps the single-process seeds.
            tch::manual_seed(step_seed(rank_seed(cfg.run.seed, rank), step));
            let unit = fetched.raw.to_unit(cfg.data.size);
            batches.recycle(fetched.raw);
            let (im_q, im_k) = data::views(&unit, &cfg.augment, cfg.data.mean, cfg.data.std);
            if let (Some(l), false) = (log.as_mut(), preview_logged) {
                // The augmentation preview of the first step: input, query and key views.
                preview_logged = true;
                let (w, h, px) = crate::data::augment::preview_strip(&unit, &im_q, &im_k, cfg.data.mean, cfg.data.std);
                l.image("augment/preview", step as i64 + 1, w, h, 1, &png::encode(w, h, 1, &px)?)?;
            }
            let opt_before = moco.optimizer_seconds;
            let out_t = moco.step_lazy(&im_q, &im_k, lr)?;
            step += 1;
            if step < total {
                next = clock.wait(|| batches.next_batch())?;
            }
            let (loss, acc1) = out_t.read();
            clock.add_optimizer(moco.optimizer_seconds - opt_before);
            let knn_acc = match &knn {
                Some(m) if m.due(step, total) => {
                    let t = Instant::now();
                    let a = m.accuracy(&moco.enc_q, device, cfg.data.mean, cfg.data.std);
                    tracing::debug!(step, accuracy = a, seconds = t.elapsed().as_secs_f64(), "kNN monitor");
                    // The monitor's time is not training time (images/s).
                    clock.exclude(t.elapsed());
                    Some(a)
                }
                _ => None,
            };
            last_loss = Some(loss);
            clock.images(global_batch as u64);
            let logged = step.is_multiple_of(cfg.run.log_every.max(1)) || step == total || knn_acc.is_some();
            let tp = if logged { clock.close_window() } else { clock.window() };
            let m = Metrics {
                step,
                epoch,
                loss,
                acc1,
                lr,
                images_per_s: tp.images_per_s,
                data_wait: tp.data_wait,
                optimizer: tp.optimizer,
                seconds: started.elapsed().as_secs_f64(),
                knn_acc,
            };
            if let (true, Some(l)) = (logged, log.as_mut()) {
                l.record(&m)?;
            }
            if is_main {
                progress(&Progress { step, total, metrics: m });
            }
            let epoch_end = index + 1 == per_epoch;
            let due = cfg.run.checkpoint_every > 0 && step.is_multiple_of(cfg.run.checkpoint_every);
            if due || epoch_end || step == total {
                let (next_epoch, loader_state) = if epoch_end { (epoch + 1, None) } else { (epoch, Some(state)) };
                let mut st = CheckpointState::new(step, next_epoch, loader_state, &moco, cfg);
                if let (Some(d), Some(own)) = (&dist, &st.loader) {
                    // Rank 0 records where every rank's loader stands (a collective: all ranks are here).
                    let json = serde_json::to_vec(own).expect("loader state serialises");
                    st.rank_loaders = d
                        .all_gather_bytes(&json)?
                        .iter()
                        .map(|b| {
                            serde_json::from_slice(b)
                                .map_err(|e| TrainError::Dist(format!("a rank's loader state: {e}")))
                        })
                        .collect::<Result<_>>()?;
                }
                if is_main {
                    let t = Instant::now();
                    last_ckpt = Some(checkpoint::save(out, &moco, &st, cfg.run.keep_checkpoints)?);
                    tracing::debug!(step, seconds = t.elapsed().as_secs_f64(), "checkpoint saved");
                }
                saved_at = step;
            }
            if step >= total {
                break 'epochs;
            }
        }
        if let Some(r) = batches.finish() {
            if !r.skipped_samples.is_empty() {
                tracing::warn!(
                    epoch,
                    skipped = r.skipped,
                    "samples skipped: {:?}",
                    r.skipped_samples.iter().take(3).collect::<Vec<_>>()
                );
            }
        }
        epoch += 1;
    }
    if saved_at != step && is_main {
        let st = CheckpointState::new(step, epoch, None, &moco, cfg);
        last_ckpt = Some(checkpoint::save(out, &moco, &st, cfg.run.keep_checkpoints)?);
    }
    if log.take().is_some() {
        let curves = out.join("curves.png");
        if let Err(e) = crate::tasks::pretrain::plots::curves(&metrics_path, &curves) {
            tracing::warn!("no curves: {e}");
        }
    }
    if is_main {
        clock.run().warn_if_starved(&device_name(device), DataSource::Loader);
    }
    if let Some(d) = &dist {
        // Nobody leaves (and tears the group down) before rank 0's last checkpoint is written.
        d.barrier()?;
    }
    Ok(Summary {
        run: out.to_path_buf(),
        steps: step,
        epochs_started: epoch,
        last_loss,
        last_checkpoint: last_ckpt,
        device: device_name(device),
        seconds: started.elapsed().as_secs_f64(),
        throughput: clock.run(),
    })
}
