//! Inference with a fine-tuned classifier ([`crate::tasks::classify::classifier::Classifier`])
//! on a dataset (streamed by the loader), raw DICOM files (decoded and
//! prepared by `chess-ingest`'s pixel pipeline exactly as ingest would: 99th
//! percentile clip, 512², 16 bits) or PNG files (8- or 16-bit grey, or RGB
//! averaged to grey). Writes one CSV row per image: `key`, then
//! `<output>_score` per label or class (and `predicted` for multi-class).
//!
//! The image readers here ([`unit_from_file`], [`unit_from_dataset`]) are
//! shared with Grad-CAM.

use std::path::{Path, PathBuf};

use chess_shards::image::NpyZstDecoder;
use chess_shards::loader::{Loader, LoaderOptions, Remainder};
use chess_shards::Dataset;
use tch::{Device, Kind, Tensor};

use crate::io::atomic::write_bytes_atomic;
use crate::io::csv::csv_cell;
use crate::tasks::classify::classifier::Classifier;
use crate::tasks::classify::config::Task;
use crate::tasks::classify::eval::argmax;
use crate::{data, read_err, write_err, Result, TrainError};

/// Whether `path` names a PNG (by extension or signature).
fn is_png(path: &Path, bytes: &[u8]) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")) || bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

/// A DICOM or PNG file as `[1, 1, H, W]` float in [0, 1] on the CPU.
pub fn unit_from_file(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(read_err(path))?;
    if is_png(path, &bytes) {
        return unit_from_png(path, &bytes);
    }
    let opts = chess_ingest::pipeline::PipelineOptions::default();
    let p = chess_ingest::decode_and_process(&bytes, &opts)
        .map_err(|r| TrainError::Input { path: path.to_path_buf(), msg: format!("not a usable DICOM image: {r}") })?;
    let s = p.size as i64;
    let max = match opts.bit_depth {
        chess_ingest::pipeline::BitDepth::U8 => 255.0,
        chess_ingest::pipeline::BitDepth::U16 => 65535.0,
    };
    let v: Vec<f32> = p.pixels.iter().map(|&x| x as f32 / max).collect();
    Ok(Tensor::from_slice(&v).view([1, 1, s, s]))
}

fn unit_from_png(path: &Path, bytes: &[u8]) -> Result<Tensor> {
    let bad = |msg: String| TrainError::Input { path: path.to_path_buf(), msg };
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND);
    let mut reader = dec.read_info().map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    let mut buf = vec![0u8; reader.output_buffer_size().ok_or_else(|| bad("PNG too large".into()))?];
    let info = reader.next_frame(&mut buf).map_err(|e| bad(format!("not a readable PNG: {e}")))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let sixteen = info.bit_depth == png::BitDepth::Sixteen;
    let sample = |i: usize| -> f32 {
        if sixteen {
            u16::from_be_bytes([buf[2 * i], buf[2 * i + 1]]) as f32 / 65535.0
        } else {
            buf[i] as f32 / 255.0
        }
    };
    // Grey (+alpha): the grey value; RGB(A): the mean of R, G, B.
    let colour = channels >= 3;
    let mut v = Vec::with_capacity(w * h);
    for p in 0..w * h {
        let base = p * channels;
        v.push(if colour { (sample(base) + sample(base + 1) + sample(base + 2)) / 3.0 } else { sample(base) });
    }
    if w == 0 || h == 0 {
        return Err(bad("empty image".into()));
    }
    Ok(Tensor::from_slice(&v).view([1, 1, h as i64, w as i64]))
}

/// The image of `key` in a dataset (directory or manifest) as `[1, 1, H, W]` in [0, 1].
pub fn unit_from_dataset(dataset: &Path, key: &str) -> Result<Tensor> {
    let shard_err = |e: chess_shards::ShardError| TrainError::Dataset {
        location: dataset.display().to_string(),
        msg: e.to_string(),
    };
    let ds = Dataset::open(dataset).map_err(shard_err)?;
    let i = ds.find_key(key).ok_or_else(|| TrainError::Dataset {
        location: dataset.display().to_string(),
        msg: format!("no sample with key `{key}`"),
    })?;
    let row = ds.manifest.view().row(i);
    let img = ds.read_image(&row, &mut NpyZstDecoder::new()).map_err(shard_err)?;
    let (h, w) = (img.height as i64, img.width as i64);
    let v: Vec<f32> = match img.dtype {
        chess_schemas::PixelDtype::Uint8 => img.data.iter().map(|&x| x as f32 / 255.0).collect(),
        chess_schemas::PixelDtype::Uint16 => {
            img.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as f32 / 65535.0).collect()
        }
    };
    Ok(Tensor::from_slice(&v).view([1, 1, h, w]))
}

/// What [`predict`] reads.
#[derive(Debug, Clone)]
pub enum PredictInput {
    /// A dataset directory, URL or manifest, streamed.
    Dataset(String),
    /// DICOM and PNG files (key: the file name without extension).
    Files(Vec<PathBuf>),
}

impl PredictInput {
    /// One dataset (directory with `dataset.json`, a `.parquet` manifest, or
    /// a URL), or else image files.
    pub fn from_args(args: &[String]) -> PredictInput {
        if let [one] = args {
            let p = Path::new(one);
            if chess_shards::loader::is_url(one)
                || p.join("dataset.json").is_file()
                || (p.is_file() && one.ends_with(".parquet"))
            {
                return PredictInput::Dataset(one.clone());
            }
        }
        PredictInput::Files(args.iter().map(PathBuf::from).collect())
    }
}

/// Scores every image of `input` with the classifier `ckpt`; writes `out` (CSV).
/// Returns the number of rows.
pub fn predict(
    ckpt: &Path,
    input: &PredictInput,
    out: &Path,
    device: Device,
    batch_size: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<usize> {
    let model = Classifier::load(ckpt, device)?;
    let outputs = model.card.outputs.clone();
    let mut text = String::from("key");
    if model.card.task == Task::Multiclass {
        text.push_str(",predicted");
    }
    for o in &outputs {
        text.push_str(&format!(",{}", csv_cell(&format!("{o}_score"))));
    }
    text.push('\n');
    let mut rows = 0usize;
    let mut emit = |keys: &[String], scores: &Tensor| -> Result<usize> {
        let n = outputs.len();
        let v: Vec<f32> = Vec::try_from(scores.to_device(Device::Cpu).flatten(0, -1))?;
        for (i, key) in keys.iter().enumerate() {
            let row = &v[i * n..(i + 1) * n];
            text.push_str(&csv_cell(key));
            if model.card.task == Task::Multiclass {
                text.push_str(&format!(",{}", csv_cell(&outputs[argmax(row)])));
            }
            for s in row {
                text.push_str(&format!(",{s}"));
            }
            text.push('\n');
        }
        Ok(keys.len())
    };
    let batch_size = batch_size.max(1);
    match input {
        PredictInput::Dataset(loc) => {
            let opts =
                LoaderOptions { batch_size, shuffle: false, remainder: Remainder::Drop, ..LoaderOptions::default() };
            let loader = Loader::open(loc, opts)?;
            let total = loader.len() as u64;
            for batch in &mut loader.epoch(0) {
                let batch = batch?;
                let unit = data::upload(&batch, device).to_unit(model.card.size);
                rows += emit(&batch.keys, &model.scores(&unit))?;
                progress(rows as u64, total);
            }
        }
        PredictInput::Files(files) => {
            if files.is_empty() {
                return Err(TrainError::Settings("no input files".into()));
            }
            let total = files.len() as u64;
            for chunk in files.chunks(batch_size) {
                let mut units = Vec::with_capacity(chunk.len());
                let mut keys = Vec::with_capacity(chunk.len());
                for f in chunk {
                    // Each file at the network's size (files differ in size), then one batch.
                    units.push(data::resize(&unit_from_file(f)?, model.card.size));
                    keys.push(
                        f.file_stem().map_or_else(|| f.display().to_string(), |s| s.to_string_lossy().into_owned()),
                    );
                }
                let unit = Tensor::cat(&units, 0).to_device(device).to_kind(Kind::Float);
                rows += emit(&keys, &model.scores(&unit))?;
                progress(rows as u64, total);
            }
        }
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    }
    write_bytes_atomic(out, text.as_bytes())?;
    Ok(rows)
}
