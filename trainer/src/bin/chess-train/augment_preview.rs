//! `chess-train augment-preview`: query/key views of a few images under the
//! configured augmentations, as one grey PNG grid.

use std::path::PathBuf;

use chess_cli::CliError;
use chess_train::data;
use chess_train::data::augment::{augment, AugmentConfig};
use chess_train::io::png;
use chess_train::runtime::device::prepare;
use chess_train::tasks::pretrain::config::TrainConfig;
use chess_train::TrainError;
use clap::Args;

#[derive(Args, Debug)]
pub struct PreviewArgs {
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

pub fn run(a: PreviewArgs, quiet: bool) -> anyhow::Result<()> {
    let aug = match &a.config {
        Some(f) => TrainConfig::from_file(f)?.augment,
        None => AugmentConfig::default(),
    };
    let opts = chess_shards::loader::LoaderOptions {
        batch_size: a.pairs.max(1),
        shuffle: false,
        remainder: chess_shards::loader::Remainder::Drop,
        seed: a.seed,
        ..Default::default()
    };
    let loader = chess_shards::loader::Loader::open(&a.input, opts).map_err(TrainError::from)?;
    let batch = loader
        .epoch(0)
        .next()
        .ok_or_else(|| CliError::input(format!("{}: the dataset is empty", a.input)))?
        .map_err(TrainError::from)?;
    prepare(tch::Device::Cpu, 0, a.seed)?;
    let unit = data::upload(&batch, tch::Device::Cpu).to_unit(a.size);
    let q = augment(&unit, &aug);
    let k = augment(&unit, &aug);
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
    png::write_gray(&a.out, w as u32, h as u32, &bytes)?;
    if !quiet {
        println!("{} ({n} rows: input, query view, key view)", a.out.display());
    }
    Ok(())
}
