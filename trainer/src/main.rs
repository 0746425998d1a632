//! `chess-train`: MoCo v2 pretraining of 1-channel ResNets on CheSS datasets.
//!
//! Exit codes: 0 success; 1 training failed; 2 usage or settings error;
//! 3 unreadable input or unwritable output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bone_cli;
mod downstream_cli;

use anyhow::Context;
use chess_train::config::TrainConfig;
use chess_train::resnet::{Arch, HeadKind, ResNet};
use chess_train::{augment, checkpoint, data, train, weights, TrainError};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// CheSS with libtorch: MoCo v2 pretraining of 1-channel ResNets, then downstream
/// classification (import, finetune, predict, sweep, gradcam), image-to-image
/// tasks (bone suppression, nodule generation) and their metrics (fid).
#[derive(Parser, Debug)]
#[command(name = "chess-train", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bar or summary.
    #[arg(long, global = true)]
    quiet: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pretrain an encoder with MoCo v2 on a dataset (directory, URL or manifest).
    Pretrain(PretrainArgs),
    /// Write a run's query encoder with torchvision names (loads into
    /// `torchvision.models.resnet50` with a 1-channel conv1, strict, minus `fc`).
    Export(ExportArgs),
    /// Write the pooled encoder features of every image (key, features) to Parquet.
    Embed(EmbedArgs),
    /// Draw query/key pairs of augmented views as a PNG grid.
    AugmentPreview(PreviewArgs),
    /// Time MoCo v2 training steps on random input (no data loading): the
    /// benchmark against scripts/bench/pretrain_reference.py.
    Bench(BenchArgs),
    /// Fréchet distance between the images of two sets: FID with the FID
    /// Inception-v3 (pytorch-fid's network and weights), or the same formula
    /// on ResNet-50 features (CheSS or ImageNet weights; not comparable to
    /// published FIDs).
    Fid(FidArgs),
    /// Convert a published PyTorch checkpoint (CheSS/MoCo `state_dict` with
    /// `module.encoder_q.*`, or a torchvision ResNet state dict, conv1 summed
    /// over RGB) into a 1-channel encoder with torchvision names (safetensors).
    Import(downstream_cli::ImportArgs),
    /// Fine-tune a classifier (CheSS downstream): train on a manifest, pick
    /// the best epoch on another, write test predictions and metrics.
    Finetune(downstream_cli::FinetuneArgs),
    /// Score images with a fine-tuned classifier: a dataset (or manifest), or
    /// DICOM files (through the ingest pixel pipeline) and PNGs → CSV.
    Predict(downstream_cli::PredictArgs),
    /// Run a downstream plan (inits × fractions or imbalance settings ×
    /// repeats; resumable) and summarise it like the paper's tables and Fig. 2.
    Sweep(downstream_cli::SweepArgs),
    /// Bone suppression: train a dilated U-Net (L1 + optional CheSS/ImageNet
    /// perceptual loss) on a paired dataset, write the test set's suppressed
    /// images, residual maps and per-image PSNR/SSIM/RMSE.
    BoneSuppression(bone_cli::BoneArgs),
    /// Paired t-tests of per-image PSNR, SSIM and RMSE between two
    /// bone-suppression runs on the same test set.
    BoneCompare(bone_cli::BoneCompareArgs),
    /// Nodule generation: train SPADE (hinge GAN, 2-scale PatchGAN, optional
    /// VAE, perceptual loss) to turn nodule masks into radiographs.
    NoduleGen(bone_cli::NoduleArgs),
    /// Grad-CAM heat maps (layer4) of a fine-tuned classifier over a dataset
    /// sample, a DICOM or a PNG, as overlay PNGs with the class scores.
    Gradcam(downstream_cli::GradcamArgs),
    /// Draw a run's loss, top-1 and learning-rate curves from its metrics.jsonl.
    Curves {
        /// Run directory.
        run: PathBuf,
        /// PNG to write (default: RUN/curves.png).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct PretrainArgs {
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
    precision: Option<chess_train::amp::Precision>,
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
    dist_backend: chess_train::dist::BackendChoice,
    /// Seconds to wait for the peers and for each collective before failing
    /// (a dead rank becomes an error); default CHESS_DIST_TIMEOUT or 1800.
    #[arg(long)]
    dist_timeout: Option<f64>,
}

#[derive(Args, Debug)]
struct BenchArgs {
    #[arg(long, default_value = "resnet50")]
    arch: Arch,
    #[arg(long, default_value_t = 32)]
    batch_size: i64,
    #[arg(long, default_value_t = 224)]
    size: i64,
    #[arg(long, default_value_t = 4096)]
    queue: i64,
    /// Timed steps (after the warm-up).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Include the device augmentations (CheSS defaults) in each step.
    #[arg(long)]
    augment: bool,
    #[arg(long, default_value_t = 0)]
    threads: i32,
    #[arg(long, default_value = "fp32")]
    precision: chess_train::amp::Precision,
    #[arg(long)]
    channels_last: bool,
}

#[derive(Args, Debug)]
struct EmbedArgs {
    /// Run directory (its latest checkpoint) or a checkpoint's step-N.json.
    ckpt: PathBuf,
    /// Dataset directory, URL or manifest.
    input: String,
    /// Parquet file to write.
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// Run directory (its latest checkpoint) or a checkpoint's step-N.json.
    run: PathBuf,
    /// safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Keep the MoCo projection head (`fc.0`, `fc.2`).
    #[arg(long)]
    keep_fc: bool,
}

#[derive(Args, Debug)]
struct PreviewArgs {
    /// Dataset directory, URL or manifest.
    input: String,
    /// PNG to write.
    #[arg(long)]
    out: PathBuf,
    /// Images shown (one row each: input, query view, key view).
    #[arg(long, default_value_t = 6)]
    pairs: usize,
    /// Side of each tile.
    #[arg(long, default_value_t = 256)]
    size: i64,
    /// TOML configuration whose [augment] section is used.
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

#[derive(Args, Debug)]
struct FidArgs {
    /// Reference images: dataset directory, URL or manifest, or a directory of PNGs.
    #[arg(long)]
    real: String,
    /// Generated images: dataset directory, URL or manifest, or a directory of PNGs.
    #[arg(long)]
    fake: String,
    /// Feature network: inception=W.safetensors (pytorch-fid's
    /// pt_inception-2015-12-05 state dict as safetensors), chess=W.safetensors
    /// (`chess-train export`) or imagenet=W.safetensors (`chess-train import`,
    /// or torchvision's with an RGB conv1).
    #[arg(long)]
    features: chess_train::metrics::fid::FeatureSpec,
    /// ResNet input side (images resized to S×S); Inception always takes 299.
    #[arg(long, default_value_t = 512)]
    size: i64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Images per forward pass.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
}

fn exit_code(e: &anyhow::Error) -> u8 {
    match e.downcast_ref::<TrainError>() {
        Some(TrainError::Io { .. } | TrainError::File { .. } | TrainError::Loader(_)) => 3,
        Some(TrainError::Invalid(_)) => 2,
        _ => 1,
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("CHESS_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Pretrain(a) => pretrain(a, cli.quiet),
        Command::Export(a) => export(a, cli.quiet),
        Command::AugmentPreview(a) => preview(a, cli.quiet),
        Command::Bench(a) => bench(a),
        Command::Embed(a) => embed(a, cli.quiet),
        Command::Fid(a) => fid(a, cli.quiet),
        Command::Import(a) => downstream_cli::import(a, cli.quiet),
        Command::Predict(a) => downstream_cli::predict(a, cli.quiet),
        Command::Sweep(a) => downstream_cli::sweep(a, cli.quiet),
        Command::Gradcam(a) => downstream_cli::gradcam(a, cli.quiet),
        Command::Finetune(a) => downstream_cli::finetune(a, cli.quiet),
        Command::BoneSuppression(a) => bone_cli::bone_suppression(a, cli.quiet),
        Command::BoneCompare(a) => bone_cli::bone_compare(a),
        Command::NoduleGen(a) => bone_cli::nodule_gen(a, cli.quiet),
        Command::Curves { run, out } => {
            let out = out.unwrap_or_else(|| run.join("curves.png"));
            chess_train::plots::curves(&run.join("metrics.jsonl"), &out)
                .map_err(anyhow::Error::from)
                .map(|_| println!("{}", out.display()))
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chess-train: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
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

fn pretrain(a: PretrainArgs, quiet: bool) -> anyhow::Result<()> {
    let cfg = resolve(&a)?;
    let dist =
        chess_train::dist::init_from_env(&cfg.run.device, a.dist_backend, a.dist_timeout)?.map(std::sync::Arc::new);
    // One progress bar and summary per job: rank 0's.
    let quiet = quiet || dist.as_ref().is_some_and(|d| !d.is_main());
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps  {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    let summary = train::pretrain_with(&a.input, &a.out, &cfg, a.resume, dist, |p| {
        if bar.length() != Some(p.total) {
            bar.set_length(p.total);
        }
        bar.set_position(p.step);
        let m = &p.metrics;
        bar.set_message(format!(
            "epoch {} loss {:.4} top1 {:.1}% lr {:.4} {:.1} img/s",
            m.epoch, m.loss, m.acc1, m.lr, m.images_per_s
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
        println!("run:        {}", summary.run.display());
        println!("metrics:    {}", summary.run.join("metrics.jsonl").display());
        println!("curves:     {}", summary.run.join("curves.png").display());
        if let Some(c) = &summary.last_checkpoint {
            println!("checkpoint: {}", c.display());
        }
    }
    Ok(())
}

fn export(a: ExportArgs, quiet: bool) -> anyhow::Result<()> {
    let (state, json) = checkpoint::read_state(&a.run)?;
    let (t, file) = checkpoint::read_tensors(&state, &json)?;
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let m = &state.config.moco;
    let head = if m.mlp { HeadKind::Mlp(m.dim) } else { HeadKind::Linear(m.dim) };
    let _model = ResNet::new(&vs.root(), m.arch, head);
    weights::load_into(&vs, &t, "encoder_q.", &file, true)?;
    // BN counters as PyTorch keeps them: one per training forward pass.
    let out = weights::torchvision_state(&vs, state.step as i64, !a.keep_fc);
    weights::write_atomic(&a.out, &out).with_context(|| format!("writing {}", a.out.display()))?;
    if !quiet {
        println!("{} ({} tensors, {} after {} steps)", a.out.display(), out.len(), m.arch, state.step);
    }
    Ok(())
}

fn preview(a: PreviewArgs, quiet: bool) -> anyhow::Result<()> {
    let aug = match &a.config {
        Some(f) => TrainConfig::from_file(f)?.augment,
        None => augment::AugmentConfig::default(),
    };
    let opts = chess_shards::loader::LoaderOptions {
        batch_size: a.pairs.max(1),
        shuffle: false,
        remainder: chess_shards::loader::Remainder::Drop,
        seed: a.seed,
        ..Default::default()
    };
    let loader = chess_shards::loader::Loader::open(&a.input, opts).map_err(TrainError::from)?;
    let batch = loader.epoch(0).next().context("the dataset is empty")?.map_err(TrainError::from)?;
    tch::manual_seed(a.seed as i64);
    let unit = data::upload(&batch, tch::Device::Cpu).to_unit(a.size);
    let q = augment::augment(&unit, &aug);
    let k = augment::augment(&unit, &aug);
    // Rows: input | query | key, 4 px gaps.
    let n = unit.size()[0];
    let s = a.size;
    let gap = 4i64;
    let (w, h) = (3 * s + 4 * gap, n * s + (n + 1) * gap);
    let canvas = tch::Tensor::full([h, w], 1.0, (tch::Kind::Float, tch::Device::Cpu));
    for i in 0..n {
        for (c, t) in [&unit, &q, &k].iter().enumerate() {
            let y0 = gap + i * (s + gap);
            let x0 = gap + c as i64 * (s + gap);
            canvas.narrow(0, y0, s).narrow(1, x0, s).copy_(&t.get(i).get(0));
        }
    }
    let bytes: Vec<u8> =
        Vec::<u8>::try_from((canvas.clamp(0.0, 1.0) * 255.0).round().to_kind(tch::Kind::Uint8).flatten(0, -1))?;
    write_gray_png(&a.out, w as u32, h as u32, &bytes)?;
    if !quiet {
        println!("{} ({n} rows: input, query view, key view)", a.out.display());
    }
    Ok(())
}

fn write_gray_png(path: &Path, w: u32, h: u32, pixels: &[u8]) -> anyhow::Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display())).map_err(|e| {
        anyhow::Error::from(TrainError::Io { path: path.to_path_buf(), source: std::io::Error::other(e.to_string()) })
    })?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()?.write_image_data(pixels)?;
    Ok(())
}

fn bench(a: BenchArgs) -> anyhow::Result<()> {
    use chess_train::moco::{Moco, MocoConfig};
    let device = chess_train::config::parse_device(&a.device)?;
    if a.threads > 0 {
        tch::set_num_threads(a.threads);
    }
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    tch::manual_seed(0);
    let cfg = MocoConfig { arch: a.arch, queue: a.queue, ..MocoConfig::default() };
    let mut moco = Moco::new(cfg, device, 0.9, 1e-4)?;
    moco.precision = a.precision;
    if a.channels_last {
        moco.set_channels_last();
    }
    let opts = (tch::Kind::Float, device);
    let unit = tch::Tensor::rand([a.batch_size, 1, a.size, a.size], opts);
    let aug = augment::AugmentConfig::default();
    // Without augmentation the views are made once, as the reference does.
    let fixed = (data::normalise(&unit, 0.658, 0.221), data::normalise(&unit.flip([3]), 0.658, 0.221));
    let step = |moco: &mut Moco| -> anyhow::Result<f64> {
        let (q, k) = if a.augment {
            data::views(&unit, &aug, 0.658, 0.221)
        } else {
            (fixed.0.shallow_clone(), fixed.1.shallow_clone())
        };
        Ok(moco.step(&q, &k, 0.03)?.loss)
    };
    for _ in 0..a.warmup {
        step(&mut moco)?;
    }
    let mut times = Vec::new();
    for _ in 0..a.steps {
        let t = std::time::Instant::now();
        step(&mut moco)?;
        if device.is_cuda() {
            tch::Cuda::synchronize(match device {
                tch::Device::Cuda(n) => n as i64,
                _ => 0,
            });
        }
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|x, y| x.partial_cmp(y).expect("finite"));
    let median = times[times.len() / 2];
    let out = serde_json::json!({
        "impl": "chess-train (tch)",
        "arch": a.arch.name(), "batch": a.batch_size, "size": a.size, "queue": a.queue,
        "device": a.device, "augment": a.augment, "precision": format!("{:?}", a.precision).to_lowercase(), "channels_last": a.channels_last, "threads": tch::get_num_threads(),
        "median_step_s": median, "images_per_s": a.batch_size as f64 / median, "steps": a.steps,
    });
    println!("{out}");
    Ok(())
}

fn embed(a: EmbedArgs, quiet: bool) -> anyhow::Result<()> {
    let device = chess_train::config::parse_device(&a.device)?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    let s = chess_train::embed::embed(&a.ckpt, &a.input, &a.out, device, a.batch_size, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })?;
    bar.finish_and_clear();
    if !quiet {
        println!("{} ({} images × {} features)", a.out.display(), s.rows, s.dim);
    }
    Ok(())
}

fn fid(a: FidArgs, quiet: bool) -> anyhow::Result<()> {
    let device = chess_train::config::parse_device(&a.device)?;
    let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(0) };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bar:30} {pos}/{len} images").expect("template").progress_chars("=> "),
    );
    let r = chess_train::metrics::fid::fid(
        &a.real,
        &a.fake,
        &a.features,
        a.size,
        device,
        a.batch_size,
        |set, done, total| {
            bar.set_message(set.to_string());
            bar.set_length(total);
            bar.set_position(done);
        },
    )?;
    bar.finish_and_clear();
    // Round-off can leave a few 1e-12 below zero for identical sets.
    println!("FID {:.4}", r.fid.max(0.0));
    if !quiet {
        println!("real: {} images ({}), fake: {} images ({})", r.real, a.real, r.fake, a.fake);
        if r.inception {
            println!("features: {}, images resized to 299x299", r.features);
            println!("note: comparable to published FIDs only with pytorch-fid's weights (pt_inception-2015-12-05)");
        } else {
            println!("features: {}, images resized to {}x{}", r.features, a.size, a.size);
            println!("note: ResNet-50 features; only Inception-v3 features give FIDs comparable to published values");
        }
    }
    Ok(())
}
