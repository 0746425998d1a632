//! From the streaming loader's batches to network input: the `[B, H, W]`
//! integer buffer becomes one host tensor (a single copy of the raw
//! integers, pinned when the device is CUDA), is sent to the device
//! asynchronously, and only there becomes float: uint8 / 255 or
//! uint16 / 65535, resized to the configured side, augmented and
//! normalised with the CheSS mean and std.

use chess_shards::loader::{Batch, Pixels};
use tch::{Device, Kind, Tensor};

use crate::augment::{augment, AugmentConfig};

/// A batch's raw pixels on their way to (or on) the device.
pub struct RawBatch {
    /// `[B, H, W]`, `Uint8`, or `Int16` holding uint16 bit patterns.
    pub pixels: Tensor,
    pub unsigned16: bool,
}

/// Wraps a loader batch as a host tensor and starts its transfer to `device`.
pub fn upload(batch: &Batch, device: Device) -> RawBatch {
    let [b, h, w] = batch.shape().map(|v| v as i64);
    let (host, unsigned16) = match &batch.pixels {
        Pixels::U8(v) => (Tensor::from_data_size(v, &[b, h, w], Kind::Uint8), false),
        // libtorch has no uint16 tensors for these ops: carry the bits as int16.
        Pixels::U16(v) => (Tensor::from_data_size(bytemuck::cast_slice(v), &[b, h, w], Kind::Int16), true),
    };
    let pixels = if device == Device::Cpu {
        host
    } else {
        // Pinned memory makes the copy asynchronous with respect to the host.
        host.pin_memory(device).to_device_(device, host.kind(), true, false)
    };
    RawBatch { pixels, unsigned16 }
}

impl RawBatch {
    /// `[B, 1, size, size]` float in [0, 1] on the batch's device.
    pub fn to_unit(&self, size: i64) -> Tensor {
        let x = if self.unsigned16 {
            // int16 bits → int32 → & 0xffff recovers the unsigned value.
            self.pixels.to_kind(Kind::Int).bitwise_and(0xffff).to_kind(Kind::Float) / 65535.0
        } else {
            self.pixels.to_kind(Kind::Float) / 255.0
        };
        resize(&x.unsqueeze(1), size)
    }
}

/// Resizes `[N, 1, H, W]` to `size × size` (antialiased bilinear) when needed; `size` ≤ 0 keeps it.
pub fn resize(x: &Tensor, size: i64) -> Tensor {
    let s = x.size();
    if size <= 0 || (s[2] == size && s[3] == size) {
        return x.shallow_clone();
    }
    x.internal_upsample_bilinear2d_aa([size, size], false, None, None)
}

/// `(x − mean) / std`.
pub fn normalise(x: &Tensor, mean: f64, std: f64) -> Tensor {
    (x - mean) / std
}

/// Query and key views of a batch (independent augmentations), normalised.
pub fn views(unit: &Tensor, aug: &AugmentConfig, mean: f64, std: f64) -> (Tensor, Tensor) {
    let q = normalise(&augment(unit, aug), mean, std);
    let k = normalise(&augment(unit, aug), mean, std);
    (q, k)
}
