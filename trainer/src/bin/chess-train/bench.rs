//! `chess-train bench`: MoCo v2 training steps on random input (no data
//! loading), timed; one JSON line (the benchmark against
//! scripts/bench/pretrain_reference.py).

use chess_train::data;
use chess_train::data::augment::AugmentConfig;
use chess_train::models::resnet::Arch;
use chess_train::runtime::amp::Precision;
use chess_train::runtime::device::{parse_device, prepare};
use chess_train::tasks::pretrain::moco::{Moco, MocoConfig};
use clap::Args;

#[derive(Args, Debug)]
pub struct BenchArgs {
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
    precision: Precision,
    #[arg(long)]
    channels_last: bool,
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    prepare(device, a.threads, 0)?;
    let cfg = MocoConfig { arch: a.arch, queue: a.queue, ..MocoConfig::default() };
    let mut moco = Moco::new(cfg, device, 0.9, 1e-4)?;
    moco.precision = a.precision;
    if a.channels_last {
        moco.set_channels_last();
    }
    let opts = (tch::Kind::Float, device);
    let unit = tch::Tensor::rand([a.batch_size, 1, a.size, a.size], opts);
    let aug = AugmentConfig::default();
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
