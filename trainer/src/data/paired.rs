//! Datasets with a second array per sample (bone-free `target`, nodule
//! `mask`) read whole into memory: opening one that must carry the array,
//! and turning loader pixels into `[B, 1, size, size]` unit tensors.

use chess_shards::loader::Pixels;
use chess_shards::{Loader, LoaderOptions};
use tch::{Kind, Tensor};

use crate::data::batch::resize;
use crate::{Result, TrainError};

/// Pixels `[B, H, W]` → `[B, 1, size, size]` float in [0, 1] (CPU).
pub fn unit(p: &Pixels, b: i64, h: i64, w: i64, size: i64) -> Tensor {
    let x = match p {
        Pixels::U8(v) => Tensor::from_slice(v).to_kind(Kind::Float) / 255.0,
        Pixels::U16(v) => Tensor::from_slice(&v.iter().map(|&x| x as f32).collect::<Vec<f32>>()) / 65535.0,
    };
    resize(&x.view([b, 1, h, w]), size)
}

/// Opens `location` asking for the extra array `field`; a dataset without
/// it is an error naming the location and `need` (what the array is for).
pub fn open_with_field(location: &str, opts: LoaderOptions, field: &str, need: &str) -> Result<Loader> {
    match Loader::open(location, opts) {
        Err(chess_shards::LoaderError::Settings(m)) if m.contains(&format!("`{field}`")) => {
            Err(TrainError::Dataset { location: location.to_string(), msg: format!("no `{field}` arrays: {need}") })
        }
        other => Ok(other?),
    }
}
