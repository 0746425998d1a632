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
use crate::models::resnet::{HeadKind, ResNet};
use crate::tasks::pretrain::checkpoint;
use crate::{write_err, Result, TrainError};

/// What [`embed`] wrote.
#[derive(Debug, Clone)]
pub struct EmbedSummary {
    pub rows: u64,
    pub dim: i64,
}

/// Writes the features of every image of `input` under the query encoder of
/// `ckpt` (a run directory or a checkpoint JSON) to `out`.
pub fn embed(
    ckpt: &Path,
    input: &str,
    out: &Path,
    device: Device,
    batch_size: usize,
    mut progress: impl FnMut(u64, u64),
) -> Result<EmbedSummary> {
    let (state, json) = checkpoint::read_state(ckpt)?;
    let (t, file) = checkpoint::read_tensors(&state, &json)?;
    let cfg = &state.config;
    let vs = nn::VarStore::new(device);
    let model = ResNet::new(&vs.root(), cfg.moco.arch, HeadKind::None);
    // The projection head (`fc.*`) is not part of the features.
    weights::load_into(&vs, &t, "encoder_q.", &file, false)?;
    let opts = LoaderOptions { batch_size: batch_size.max(1), shuffle: false, ..LoaderOptions::default() };
    let loader = Loader::open(input, opts)?;
    let total = loader.len() as u64;
    let dim = cfg.moco.arch.feature_dim();
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
        let x = data::normalise(&data::upload(&batch, device).to_unit(cfg.data.size), cfg.data.mean, cfg.data.std);
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
