//! Bone suppression (`chess-train bone-suppression`): a dilated U-Net
//! ([`crate::models::unet`]) learns source → bone-free target on a paired dataset
//! (`<key>.target.npy.zst` next to each image) with an L1 loss plus,
//! optionally, the CheSS/ImageNet perceptual loss ([`crate::losses::perceptual`]).
//!
//! The split is the manifest's `split` column (`train`, `valid`/`val`,
//! `test`) when it has one, else a seeded shuffle. Paired datasets are small
//! (JSRT has 247 images), so every sample is held in memory at the training
//! side. The best epoch (validation PSNR) scores the test set: suppressed
//! images and residual maps (source − output) as PNG, per-image PSNR, SSIM
//! and RMSE ([`crate::metrics::image`], in 8-bit grey levels, data range
//! 255) in `test_metrics.csv`, their means in `summary.json`.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use chess_shards::loader::Remainder;
use chess_shards::rng::SplitMix64;
use chess_shards::LoaderOptions;
use serde::{Deserialize, Serialize};
use tch::nn::{self, ModuleT, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use crate::data::paired::{open_with_field, unit};
use crate::io::csv::csv_cell;
use crate::io::run_log::{RunLog, Start};
use crate::io::{atomic, png, weights};
use crate::losses::perceptual::PerceptualLoss;
use crate::metrics::image as im;
use crate::models::unet::UNet;
use crate::runtime::device::{device_name, parse_device, prepare};
use crate::runtime::throughput::{DataSource, StepClock, Throughput};
use crate::tasks::bone::config::BoneConfig;
use crate::{write_err, Result, TrainError};

/// One paired sample at the training side, `[1, size, size]` in [0, 1].
struct Pair {
    key: String,
    source: Tensor,
    target: Tensor,
}

/// The samples of each split.
struct Splits {
    train: Vec<Pair>,
    valid: Vec<Pair>,
    test: Vec<Pair>,
    /// Where the split came from: `manifest` or `seeded`.
    origin: &'static str,
}

fn load(location: &str, cfg: &BoneConfig) -> Result<Splits> {
    let mut opts = LoaderOptions {
        batch_size: 16,
        shuffle: false,
        remainder: Remainder::Drop,
        fields: vec!["target".into()],
        ..LoaderOptions::default()
    };
    if cfg.data.decode_threads > 0 {
        opts.decode_threads = cfg.data.decode_threads;
    }
    let loader =
        open_with_field(location, opts, "target", "bone suppression needs a paired dataset (`<key>.target.npy.zst`)")?;
    let bad = |msg: String| TrainError::Dataset { location: location.to_string(), msg };
    let view = loader.manifest()?.view();
    let mut pairs: Vec<(Option<String>, Pair)> = Vec::new();
    for batch in &mut loader.epoch(0) {
        let batch = batch?;
        let [b, h, w] = batch.shape().map(|v| v as i64);
        let target = batch.extras.iter().find(|(n, _)| n == "target").map(|(_, p)| p).ok_or_else(|| {
            bad("no `target` arrays: bone suppression needs a paired dataset (`<key>.target.npy.zst`)".into())
        })?;
        let s = unit(&batch.pixels, b, h, w, cfg.data.size);
        let t = unit(target, b, h, w, cfg.data.size);
        for i in 0..batch.len() {
            if batch.padded[i] {
                continue;
            }
            let split = view.row(batch.rows[i]).split;
            pairs.push((split, Pair { key: batch.keys[i].clone(), source: s.get(i as i64), target: t.get(i as i64) }));
        }
    }
    if pairs.is_empty() {
        return Err(bad("no samples".into()));
    }
    let has_split = pairs.iter().any(|(s, _)| s.is_some());
    let mut out = Splits {
        train: Vec::new(),
        valid: Vec::new(),
        test: Vec::new(),
        origin: if has_split { "manifest" } else { "seeded" },
    };
    if has_split {
        let mut unused = 0usize;
        for (split, p) in pairs {
            match split.as_deref() {
                Some("train") => out.train.push(p),
                Some("valid" | "val" | "validation") => out.valid.push(p),
                Some("test") => out.test.push(p),
                _ => unused += 1,
            }
        }
        if unused > 0 {
            tracing::warn!(unused, "samples whose split is not train, valid or test are left out");
        }
    } else {
        let n = pairs.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = SplitMix64::new(cfg.run.seed ^ 0xb0e5);
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let n_test = ((n as f64 * cfg.data.test_fraction).round() as usize).max(1);
        let n_valid = (n as f64 * cfg.data.valid_fraction).round() as usize;
        let mut slots: Vec<Option<Pair>> = pairs.into_iter().map(|(_, p)| Some(p)).collect();
        for (rank, &i) in order.iter().enumerate() {
            let p = slots[i].take().expect("each sample once");
            if rank < n_test {
                out.test.push(p);
            } else if rank < n_test + n_valid {
                out.valid.push(p);
            } else {
                out.train.push(p);
            }
        }
    }
    if out.train.len() < 2 || out.test.is_empty() {
        return Err(bad(format!(
            "{} split: {} training and {} test samples; need at least 2 and 1",
            out.origin,
            out.train.len(),
            out.test.len()
        )));
    }
    Ok(out)
}

fn stack(pairs: &[&Pair], device: Device) -> (Tensor, Tensor) {
    let s: Vec<&Tensor> = pairs.iter().map(|p| &p.source).collect();
    let t: Vec<&Tensor> = pairs.iter().map(|p| &p.target).collect();
    (Tensor::stack(&s, 0).to_device(device), Tensor::stack(&t, 0).to_device(device))
}

/// Outputs `[N, 1, size, size]` in [0, 1] for `pairs` (eval mode), on the CPU.
fn predict(net: &UNet, pairs: &[Pair], batch: usize, device: Device) -> Vec<Tensor> {
    let mut out = Vec::with_capacity(pairs.len());
    tch::no_grad(|| {
        for chunk in pairs.chunks(batch) {
            let refs: Vec<&Pair> = chunk.iter().collect();
            let (s, _) = stack(&refs, device);
            let y = net.forward_t(&s, false).clamp(0.0, 1.0).to_device(Device::Cpu);
            for i in 0..chunk.len() {
                out.push(y.get(i as i64));
            }
        }
    });
    out
}

/// 8-bit grey levels of a `[1, H, W]` image in [0, 1], as `f64` (what the metrics see).
fn grey_levels(x: &Tensor) -> Vec<f64> {
    let v = Vec::<f32>::try_from((x.clamp(0.0, 1.0) * 255.0).round().flatten(0, -1).to_kind(Kind::Float))
        .expect("float image");
    v.into_iter().map(f64::from).collect()
}

/// One test image's scores.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageScores {
    pub key: String,
    pub psnr: f64,
    pub ssim: f64,
    pub rmse: f64,
}

fn score(output: &Tensor, target: &Tensor, key: &str) -> Result<ImageScores> {
    let side = output.size()[2] as usize;
    let (o, t) = (grey_levels(output), grey_levels(target));
    Ok(ImageScores {
        key: key.to_string(),
        psnr: im::psnr(&t, &o, 255.0)?,
        ssim: im::ssim(&t, &o, side, o.len() / side, 255.0)?,
        rmse: im::rmse(&t, &o)?,
    })
}

/// Means of a list of scores (PSNR over finite values: identical images give +∞).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct MeanScores {
    pub psnr: f64,
    pub ssim: f64,
    pub rmse: f64,
}

fn means(s: &[ImageScores]) -> MeanScores {
    let mean = |f: &dyn Fn(&ImageScores) -> f64| {
        let v: Vec<f64> = s.iter().map(f).filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    MeanScores { psnr: mean(&|x| x.psnr), ssim: mean(&|x| x.ssim), rmse: mean(&|x| x.rmse) }
}

/// One epoch's line in `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoneEpoch {
    pub epoch: u64,
    pub train_loss: f64,
    /// Mean validation PSNR (NaN without a validation split).
    pub valid_psnr: f64,
    /// Mean validation SSIM (NaN without a validation split).
    #[serde(default)]
    pub valid_ssim: f64,
    pub valid_l1: f64,
    pub best: bool,
    /// Training images per second and the shares (0–1) of the epoch's training
    /// time spent on the batches' way to the device and in Adam's step.
    #[serde(default)]
    pub images_per_s: f64,
    #[serde(default)]
    pub data_wait: f64,
    #[serde(default)]
    pub optimizer: f64,
    pub seconds: f64,
}

/// Progress of a run, for a bar.
#[derive(Debug, Clone)]
pub struct BoneProgress {
    pub epoch: u64,
    pub epochs: u64,
    pub batch: u64,
    pub batches: u64,
    pub train_loss: f64,
    pub last: Option<BoneEpoch>,
}

/// How a run ended (also `summary.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoneSummary {
    pub perceptual: String,
    pub split: String,
    pub train_samples: usize,
    pub valid_samples: usize,
    pub test_samples: usize,
    pub best_epoch: u64,
    /// Test set, best epoch's outputs against the targets.
    pub test: MeanScores,
    /// Test set, the sources themselves against the targets (no suppression).
    pub test_input: MeanScores,
    pub seconds: f64,
    /// Over the training batches of every epoch (validation excluded).
    #[serde(default)]
    pub throughput: Throughput,
}

/// A key as a file name (path separators and odd characters become `_`).
fn file_stem(key: &str) -> String {
    key.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

fn write_png(path: &Path, x: &Tensor) -> Result<()> {
    let s = x.size();
    let px: Vec<u8> = grey_levels(x).into_iter().map(|v| v as u8).collect();
    png::write_gray(path, s[2] as u32, s[1] as u32, &px)
}

/// Trains on `location` (a dataset directory or manifest) and writes the run into `out`.
pub fn bone_suppression(
    location: &str,
    out: &Path,
    cfg: &BoneConfig,
    mut progress: impl FnMut(&BoneProgress),
) -> Result<BoneSummary> {
    cfg.validate()?;
    let started = Instant::now();
    let device = parse_device(&cfg.run.device)?;
    prepare(device, cfg.run.threads, cfg.run.seed)?;
    let spec = cfg.perceptual_spec()?;
    let perceptual = PerceptualLoss::load(&spec, device)?;
    let data = load(location, cfg)?;
    tracing::info!(
        train = data.train.len(),
        valid = data.valid.len(),
        test = data.test.len(),
        split = data.origin,
        "bone suppression data"
    );
    std::fs::create_dir_all(out).map_err(write_err(out))?;
    std::fs::write(out.join("config.toml"), cfg.to_toml()).map_err(write_err(out.join("config.toml")))?;

    // Seeded again: building the perceptual network (initialised, then overwritten) drew from the generator.
    tch::manual_seed(cfg.run.seed as i64);
    let vs = nn::VarStore::new(device);
    let net = UNet::new(&vs.root(), &cfg.model);
    let mut adam = nn::Adam::default().build(&vs, cfg.run.lr)?;

    let mut log = RunLog::open(out, "epoch", Start::Fresh)?;
    let best_path = out.join("best.safetensors");
    let bs = cfg.data.batch_size;
    let batches = data.train.len().div_ceil(bs) as u64;
    let mut best: Option<(u64, f64)> = None;
    let mut last: Option<BoneEpoch> = None;
    // A window per epoch's training batches.
    let mut clock = StepClock::new();
    for epoch in 1..=cfg.run.epochs {
        let mut order: Vec<usize> = (0..data.train.len()).collect();
        let mut rng = SplitMix64::new(cfg.run.seed.wrapping_mul(0x9e37_79b9).wrapping_add(epoch));
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let (mut loss_sum, mut loss_n) = (0.0, 0u64);
        clock.restart();
        for chunk in order.chunks(bs) {
            if chunk.len() < 2 {
                continue; // batch norm cannot train on one sample
            }
            let refs: Vec<&Pair> = chunk.iter().map(|&i| &data.train[i]).collect();
            let (s, t) = clock.wait(|| stack(&refs, device));
            let y = net.forward_t(&s, true);
            let mut loss = y.l1_loss(&t, Reduction::Mean);
            if let Some(p) = &perceptual {
                loss += p.loss(&y, &t) * cfg.loss.perceptual_weight;
            }
            adam.zero_grad();
            loss.backward();
            clock.optimizer(|| adam.step());
            clock.images(chunk.len() as u64);
            loss_sum += loss.double_value(&[]);
            loss_n += 1;
            progress(&BoneProgress {
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
        let (valid_psnr, valid_ssim, valid_l1) = if data.valid.is_empty() {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            let outs = predict(&net, &data.valid, bs, device);
            let mut scores = Vec::with_capacity(outs.len());
            let mut l1 = 0.0;
            for (o, p) in outs.iter().zip(&data.valid) {
                scores.push(score(o, &p.target, &p.key)?);
                l1 += o.l1_loss(&p.target, Reduction::Mean).double_value(&[]);
            }
            let m = means(&scores);
            (m.psnr, m.ssim, l1 / outs.len() as f64)
        };
        // Without a validation split the last epoch is kept.
        let key = if valid_psnr.is_finite() { valid_psnr } else { epoch as f64 };
        let is_best = best.is_none_or(|(_, k)| key > k);
        if is_best {
            weights::write_atomic(&best_path, &weights::named(&vs, ""))?;
            best = Some((epoch, key));
        }
        let em = BoneEpoch {
            epoch,
            train_loss,
            valid_psnr,
            valid_ssim,
            valid_l1,
            best: is_best,
            images_per_s: tp.images_per_s,
            data_wait: tp.data_wait,
            optimizer: tp.optimizer,
            seconds: started.elapsed().as_secs_f64(),
        };
        log.record(&em)?;
        tracing::info!(epoch, train_loss, valid_psnr, valid_ssim, valid_l1, "epoch");
        last = Some(em);
        progress(&BoneProgress {
            epoch,
            epochs: cfg.run.epochs,
            batch: loss_n,
            batches,
            train_loss,
            last: last.clone(),
        });
    }

    clock.run().warn_if_starved(&device_name(device), DataSource::Memory);
    let (best_epoch, _) = best.ok_or_else(|| TrainError::Internal("no epoch finished".into()))?;

    // The test set through the best weights.
    let t = weights::read(&best_path)?;
    weights::load_into(&vs, &t, "", &best_path, true)?;
    let outs = predict(&net, &data.test, bs, device);
    let (img_dir, res_dir) = (out.join("suppressed"), out.join("residuals"));
    for d in [&img_dir, &res_dir] {
        std::fs::create_dir_all(d).map_err(write_err(d))?;
    }
    let csv_path = out.join("test_metrics.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path).map_err(write_err(&csv_path))?);
    writeln!(csv, "key,psnr,ssim,rmse,input_psnr,input_ssim,input_rmse").map_err(write_err(&csv_path))?;
    let (mut scores, mut inputs) = (Vec::new(), Vec::new());
    for (i, (o, p)) in outs.iter().zip(&data.test).enumerate() {
        if i < 2 {
            // TensorBoard: source | suppressed | target of the first test images.
            let strip = Tensor::cat(&[&p.source, o, &p.target], 2).to_device(Device::Cpu);
            let px: Vec<u8> = grey_levels(&strip).into_iter().map(|v| v as u8).collect();
            let (w, h) = (strip.size()[2] as u32, strip.size()[1] as u32);
            log.image(
                &format!("test/source_suppressed_target/{i}"),
                best_epoch as i64,
                w,
                h,
                1,
                &png::encode(w, h, 1, &px)?,
            )?;
        }
        let stem = file_stem(&p.key);
        write_png(&img_dir.join(format!("{stem}.png")), o)?;
        // source − output in [−1, 1], shown with 0 at mid-grey.
        write_png(&res_dir.join(format!("{stem}.png")), &((&p.source - o + 1.0) / 2.0))?;
        let s = score(o, &p.target, &p.key)?;
        let i = score(&p.source, &p.target, &p.key)?;
        writeln!(csv, "{},{},{},{},{},{},{}", csv_cell(&p.key), s.psnr, s.ssim, s.rmse, i.psnr, i.ssim, i.rmse)
            .map_err(write_err(&csv_path))?;
        scores.push(s);
        inputs.push(i);
    }
    csv.flush().map_err(write_err(&csv_path))?;
    let summary = BoneSummary {
        perceptual: spec.to_string(),
        split: data.origin.into(),
        train_samples: data.train.len(),
        valid_samples: data.valid.len(),
        test_samples: data.test.len(),
        best_epoch,
        test: means(&scores),
        test_input: means(&inputs),
        seconds: started.elapsed().as_secs_f64(),
        throughput: clock.run(),
    };
    let json = serde_json::to_string_pretty(&summary).expect("summary serialises");
    atomic::write_bytes_atomic(&out.join("summary.json"), json.as_bytes())?;
    Ok(summary)
}
