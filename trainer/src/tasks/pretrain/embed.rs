//! Pooled encoder features per image: `features.parquet` with `key`
//! (utf8) and `features` (fixed-size list of float32, 2048 for ResNet-50),
//! in manifest order, computed in eval mode on normalised images.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use chess_shards::loader::{Loader, LoaderOptions};
use parquet::arrow::ArrowWriter;
use tch::nn::{self, ModuleT};
use tch::Device;

use crate::data;
use crate::io::weights;
use crate::models::encoder::{load_encoder, read_encoder};
use crate::models::resnet::{HeadKind, ResNet};
use crate::tasks::pretrain::checkpoint;
use crate::tasks::pretrain::config::DataConfig;
use crate::{write_err, Result, TrainError};

/// What [`embed`] wrote.
#[derive(Debug, Clone)]
pub struct EmbedSummary {
    pub rows: u64,
    pub dim: i64,
}

/// Writes the features of every image of `input` under the query encoder of
/// `ckpt` (a run directory or a checkpoint JSON), or under an encoder in a
/// `.safetensors` file (what `chess-train import` or `export` writes), to
/// `out`. A run's images are prepared at its size, mean and std; an encoder
/// file's at `size` (default 512) and the pretraining defaults' mean and std.
pub fn embed(
    ckpt: &Path,
    input: &str,
    out: &Path,
    device: Device,
    batch_size: usize,
    size: Option<i64>,
    mut progress: impl FnMut(u64, u64),
) -> Result<EmbedSummary> {
    let vs = nn::VarStore::new(device);
    let (model, arch, data_cfg) = if ckpt.extension().is_some_and(|e| e == "safetensors") {
        let enc = read_encoder(ckpt)?;
        let model = ResNet::new(&vs.root(), enc.arch, HeadKind::None);
        load_encoder(&vs, &enc.tensors, ckpt)?;
        (model, enc.arch, DataConfig::default())
    } else {
        let (state, json) = checkpoint::read_state(ckpt)?;
        let (t, file) = checkpoint::read_tensors(&state, &json)?;
        let cfg = state.config;
        let model = ResNet::new(&vs.root(), cfg.moco.arch, HeadKind::None);
        // The projection head (`fc.*`) is not part of the features.
        weights::load_into(&vs, &t, "encoder_q.", &file, false)?;
        (model, cfg.moco.arch, cfg.data)
    };
    let (mean, std) = (data_cfg.mean, data_cfg.std);
    let side = size.unwrap_or(data_cfg.size);
    let opts = LoaderOptions { batch_size: batch_size.max(1), shuffle: false, ..LoaderOptions::default() };
    let loader = Loader::open(input, opts)?;
    let total = loader.len() as u64;
    let dim = arch.feature_dim();
    let item = Arc::new(Field::new("item", DataType::Float32, false));
    let schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("features", DataType::FixedSizeList(item.clone(), dim as i32), false),
    ]));
    let tmp = out.with_file_name(format!(
        ".{}.tmp-{}",
        out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        std::process::id()
    ));
    let f = std::fs::File::create(&tmp).map_err(write_err(&tmp))?;
    let pq = |e: parquet::errors::ParquetError| TrainError::Output { path: out.to_path_buf(), msg: e.to_string() };
    let mut w = ArrowWriter::try_new(f, schema.clone(), None).map_err(pq)?;
    let mut rows = 0u64;
    for batch in &mut loader.epoch(0) {
        let batch = batch?;
        let x = data::normalise(&data::upload(&batch, device).to_unit(side), mean, std);
        let feats = tch::no_grad(|| model.forward_t(&x, false)).to_device(Device::Cpu).contiguous();
        let values: Vec<f32> = Vec::try_from(feats.flatten(0, -1))?;
        let list = FixedSizeListArray::try_new(item.clone(), dim as i32, Arc::new(Float32Array::from(values)), None)
            .map_err(|e| TrainError::Internal(format!("feature columns: {e}")))?;
        let keys: ArrayRef = Arc::new(StringArray::from(batch.keys.clone()));
        let rb = RecordBatch::try_new(schema.clone(), vec![keys, Arc::new(list)])
            .map_err(|e| TrainError::Internal(format!("feature columns: {e}")))?;
        w.write(&rb).map_err(pq)?;
        rows += batch.len() as u64;
        progress(rows, total);
    }
    w.close().map_err(pq)?;
    std::fs::rename(&tmp, out).map_err(write_err(out))?;
    Ok(EmbedSummary { rows, dim })
}
