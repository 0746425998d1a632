//! Nodule generation (`chess-train nodule-gen`): SPADE ([`crate::models::spade`])
//! turns a nodule mask (a 2-class label map from `<key>.mask.npy.zst`) into
//! a radiograph. Hinge GAN loss on a 2-scale PatchGAN, perceptual loss
//! ([`crate::losses::perceptual`], weight 10) between generated and real images,
//! optional VAE encoder (KL weight 0.05); Adam lr 2e-4, betas (0, 0.9) for
//! both networks, as SPADE. Trains on the `train` split (every sample
//! without a `split` column); writes per-epoch PNG grids (mask | real |
//! generated) of up to 8 held-out samples (the `test` split, else the first
//! training samples), `metrics.jsonl` and the generator's weights.

use std::path::Path;
use std::time::Instant;

use chess_shards::loader::Remainder;
use chess_shards::rng::SplitMix64;
use chess_shards::LoaderOptions;
use serde::{Deserialize, Serialize};
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::data::paired::{open_with_field, unit};
use crate::io::run_log::{RunLog, Start};
use crate::io::{png, weights};
use crate::losses::perceptual::{PerceptualLoss, PerceptualSpec};
use crate::models::spade::{self, Encoder, Generator, MultiscaleDiscriminator};
use crate::runtime::device::{device_name, parse_device, prepare};
use crate::runtime::throughput::{DataSource, StepClock, Throughput};
use crate::tasks::nodule::config::NoduleConfig;
use crate::{write_err, Result, TrainError};

/// One epoch's mean losses (`metrics.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NoduleEpoch {
    pub epoch: u64,
    pub d_loss: f64,
    pub g_loss: f64,
    pub g_gan: f64,
    pub perceptual: f64,
    pub kld: f64,
    /// Training images per second and the shares (0–1) of the epoch's training
    /// time spent on the batches' way to the device and in the two Adam steps.
    #[serde(default)]
    pub images_per_s: f64,
    #[serde(default)]
    pub data_wait: f64,
    #[serde(default)]
    pub optimizer: f64,
    pub seconds: f64,
}

/// How a run ended: each epoch's losses and the run's throughput.
#[derive(Debug, Clone)]
pub struct NoduleRun {
    pub epochs: Vec<NoduleEpoch>,
    /// Over the training batches of every epoch (the sample grids excluded).
    pub throughput: Throughput,
}

/// Progress of a run, for a bar.
#[derive(Debug, Clone)]
pub struct NoduleProgress {
    pub epoch: u64,
    pub epochs: u64,
    pub step: u64,
    pub steps: u64,
    pub last: Option<NoduleEpoch>,
}

/// A masked dataset in memory.
struct Masked {
    /// `[N, 1, s, s]` in [−1, 1].
    images: Tensor,
    /// `[N, 1, s, s]` in {0, 1}.
    masks: Tensor,
    splits: Vec<Option<String>>,
}

fn load(location: &str, size: i64) -> Result<Masked> {
    let opts = LoaderOptions {
        batch_size: 16,
        shuffle: false,
        remainder: Remainder::Drop,
        fields: vec!["mask".into()],
        ..LoaderOptions::default()
    };
    let loader = open_with_field(location, opts, "mask", "nodule generation needs `<key>.mask.npy.zst` nodule masks")?;
    let view = loader.manifest()?.view();
    let (mut imgs, mut masks, mut splits) = (Vec::new(), Vec::new(), Vec::new());
    for batch in &mut loader.epoch(0) {
        let batch = batch?;
        let [b, h, w] = batch.shape().map(|v| v as i64);
        let mask =
            batch.extras.iter().find(|(n, _)| n == "mask").map(|(_, p)| p).ok_or_else(|| TrainError::Dataset {
                location: location.to_string(),
                msg: "no `mask` arrays: nodule generation needs `<key>.mask.npy.zst` nodule masks".into(),
            })?;
        let img = unit(&batch.pixels, b, h, w, size) * 2.0 - 1.0;
        // Nearest resize keeps the label map binary.
        let m = unit(mask, b, h, w, 0).gt(0.0).to_kind(Kind::Float).upsample_nearest2d([size, size], None, None);
        for i in 0..batch.len() {
            if batch.padded[i] {
                continue;
            }
            splits.push(view.row(batch.rows[i]).split);
            imgs.push(img.get(i as i64));
            masks.push(m.get(i as i64));
        }
    }
    if imgs.is_empty() {
        return Err(TrainError::Dataset { location: location.to_string(), msg: "no samples".into() });
    }
    Ok(Masked { images: Tensor::stack(&imgs, 0), masks: Tensor::stack(&masks, 0), splits })
}

/// A grid PNG: one row per sample, columns mask | real | generated, 8-bit.
/// Writes the grid to `path` and returns (width, height, pixels).
fn write_grid(path: &Path, masks: &Tensor, real: &Tensor, fake: &Tensor) -> Result<(u32, u32, Vec<u8>)> {
    let n = masks.size()[0];
    let s = masks.size()[2];
    let to01 = |x: &Tensor| (x.clamp(-1.0, 1.0) + 1.0) / 2.0;
    let rows: Vec<Tensor> =
        (0..n).map(|i| Tensor::cat(&[masks.get(i), to01(&real.get(i)), to01(&fake.get(i))], 2)).collect();
    let grid = Tensor::cat(&rows, 1).squeeze_dim(0).to_device(Device::Cpu);
    let px: Vec<u8> = Vec::<f32>::try_from((grid * 255.0).round().flatten(0, -1))
        .expect("float grid")
        .into_iter()
        .map(|v| v as u8)
        .collect();
    let (w, h) = ((3 * s) as u32, (n * s) as u32);
    png::write_gray(path, w, h, &px)?;
    Ok((w, h, px))
}

/// Trains SPADE on `location` and writes the run into `out`; returns the epochs' losses.
pub fn nodule_gen(
    location: &str,
    out: &Path,
    cfg: &NoduleConfig,
    mut progress: impl FnMut(&NoduleProgress),
) -> Result<NoduleRun> {
    cfg.validate()?;
    let started = Instant::now();
    let device = parse_device(&cfg.run.device)?;
    prepare(device, cfg.run.threads, cfg.run.seed)?;
    let spec: PerceptualSpec = cfg.loss.perceptual.parse().map_err(TrainError::Settings)?;
    let perceptual = PerceptualLoss::load(&spec, device)?;
    let size = cfg.run.size;
    let Masked { images, masks, splits } = load(location, size)?;
    let has_split = splits.iter().any(Option::is_some);
    let pick = |want: &str| -> Vec<i64> {
        (0..splits.len()).filter(|&i| splits[i].as_deref() == Some(want)).map(|i| i as i64).collect()
    };
    let train_idx: Vec<i64> = if has_split { pick("train") } else { (0..splits.len() as i64).collect() };
    if train_idx.len() < 2 {
        return Err(TrainError::Dataset {
            location: location.to_string(),
            msg: format!("{} training samples; need at least 2", train_idx.len()),
        });
    }
    let mut shown: Vec<i64> = if has_split { pick("test") } else { Vec::new() };
    if shown.is_empty() {
        shown = train_idx.clone();
    }
    shown.truncate(8);
    let shown = Tensor::from_slice(&shown);
    let (show_real, show_seg, show_mask) = (
        images.index_select(0, &shown).to_device(device),
        spade::one_hot(&masks.index_select(0, &shown)).to_device(device),
        masks.index_select(0, &shown),
    );

    std::fs::create_dir_all(out.join("samples")).map_err(write_err(out.join("samples")))?;
    std::fs::write(out.join("config.toml"), cfg.to_toml()).map_err(write_err(out.join("config.toml")))?;
    // Seeded again: building the perceptual network (initialised, then overwritten) drew from the generator.
    tch::manual_seed(cfg.run.seed as i64);
    let vs_g = nn::VarStore::new(device);
    let generator = Generator::new(&(vs_g.root() / "netG"), &cfg.model, size);
    let encoder = cfg.model.vae.then(|| Encoder::new(&(vs_g.root() / "netE"), &cfg.model));
    let vs_d = nn::VarStore::new(device);
    let disc = MultiscaleDiscriminator::new(&(vs_d.root() / "netD"), &cfg.model);
    let adam = nn::Adam { beta1: cfg.run.beta1, beta2: cfg.run.beta2, wd: 0.0, eps: 1e-8, amsgrad: false };
    let mut opt_g = adam.build(&vs_g, cfg.run.lr)?;
    let mut opt_d = adam.build(&vs_d, cfg.run.lr)?;

    let mut log = RunLog::open(out, "epoch", Start::Fresh)?;
    let bs = cfg.run.batch_size;
    let steps = (train_idx.len() / bs).max(1) as u64;
    let mut history = Vec::new();
    // A window per epoch's training batches.
    let mut clock = StepClock::new();
    for epoch in 1..=cfg.run.epochs {
        let mut order = train_idx.clone();
        let mut rng = SplitMix64::new(cfg.run.seed.wrapping_mul(0x9e37_79b9).wrapping_add(epoch));
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let mut sums = [0.0f64; 5];
        let mut n = 0u64;
        clock.restart();
        for chunk in order.chunks(bs) {
            if chunk.len() < 2 {
                continue; // batch norm cannot train on one sample
            }
            let (real, seg) = clock.wait(|| {
                let idx = Tensor::from_slice(chunk);
                (
                    images.index_select(0, &idx).to_device(device),
                    spade::one_hot(&masks.index_select(0, &idx)).to_device(device),
                )
            });
            // Generator (and encoder) step.
            let (z, kld) = match &encoder {
                Some(e) => {
                    let (mu, logvar) = e.forward_t(&real, true);
                    (Some(spade::sample_z(&mu, &logvar)), spade::kld(&mu, &logvar) * cfg.loss.kld_weight)
                }
                None => (None, Tensor::zeros([], (Kind::Float, device))),
            };
            let fake = generator.forward_t(&seg, z.as_ref(), true);
            let g_gan = spade::g_hinge(&disc.forward_t(&seg, &fake, true));
            let perc = match &perceptual {
                Some(p) => p.loss(&((&fake + 1.0) / 2.0), &((&real + 1.0) / 2.0)) * cfg.loss.perceptual_weight,
                None => Tensor::zeros([], (Kind::Float, device)),
            };
            let g_loss = &g_gan + &perc + &kld;
            opt_g.zero_grad();
            opt_d.zero_grad();
            g_loss.backward();
            clock.optimizer(|| opt_g.step());
            // Discriminator step on the detached fake.
            let fake = fake.detach();
            let d_loss = spade::d_hinge(&disc.forward_t(&seg, &real, true), &disc.forward_t(&seg, &fake, true));
            opt_d.zero_grad();
            d_loss.backward();
            clock.optimizer(|| opt_d.step());
            clock.images(chunk.len() as u64);
            for (s, t) in sums.iter_mut().zip([&d_loss, &g_loss, &g_gan, &perc, &kld]) {
                *s += t.double_value(&[]);
            }
            n += 1;
            progress(&NoduleProgress { epoch, epochs: cfg.run.epochs, step: n, steps, last: history.last().cloned() });
        }
        let tp = clock.close_window();
        let mean = |i: usize| if n > 0 { sums[i] / n as f64 } else { f64::NAN };
        let e = NoduleEpoch {
            epoch,
            d_loss: mean(0),
            g_loss: mean(1),
            g_gan: mean(2),
            perceptual: mean(3),
            kld: mean(4),
            images_per_s: tp.images_per_s,
            data_wait: tp.data_wait,
            optimizer: tp.optimizer,
            seconds: started.elapsed().as_secs_f64(),
        };
        if !(e.d_loss.is_finite() && e.g_loss.is_finite()) {
            return Err(TrainError::Diverged(format!(
                "epoch {epoch}: losses diverged (D {}, G {})",
                e.d_loss, e.g_loss
            )));
        }
        log.record(&e)?;
        tracing::info!(epoch, d_loss = e.d_loss, g_loss = e.g_loss, "epoch");
        let fake = tch::no_grad(|| {
            // The label-map path needs no z; the VAE path samples z ~ N(0, I) as at SPADE's test time.
            generator.forward_t(&show_seg, None, false)
        });
        let (w, h, px) =
            write_grid(&out.join("samples").join(format!("epoch_{epoch:03}.png")), &show_mask, &show_real, &fake)?;
        log.image("samples/mask_real_generated", epoch as i64, w, h, 1, &png::encode(w, h, 1, &px)?)?;
        history.push(e);
        progress(&NoduleProgress { epoch, epochs: cfg.run.epochs, step: n, steps, last: history.last().cloned() });
    }
    weights::write_atomic(&out.join("generator.safetensors"), &weights::named(&vs_g, ""))?;
    clock.run().warn_if_starved(&device_name(device), DataSource::Memory);
    Ok(NoduleRun { epochs: history, throughput: clock.run() })
}
