//! From the streaming loader's batches to network input: the `[B, H, W]`
//! integer buffer becomes a tensor, is sent to the device asynchronously,
//! and only there becomes float: uint8 / 255 or uint16 / 65535, resized to
//! the configured side, augmented and normalised with the CheSS mean and std.
//!
//! [`wrap`] (the training path) copies nothing on the CPU: the tensor views
//! the loader's own buffer, which the [`RawBatch`] keeps alive until the
//! batch is handed back. For CUDA it makes the one copy a transfer needs,
//! into pinned (page-locked) memory, and starts a non-blocking copy to the
//! device. [`upload`] copies from a borrowed batch (the tools use it).
#![allow(unsafe_code)]

use chess_shards::loader::{Batch, Pixels};
use tch::{Device, Kind, Tensor};

use crate::data::augment::{augment, AugmentConfig};

/// A batch's raw pixels on their way to (or on) the device.
pub struct RawBatch {
    /// `[B, H, W]`, `Uint8`, or `Int16` holding uint16 bit patterns. May view
    /// `owner`'s buffer: never let it (or a view of it) outlive this struct.
    pixels: Tensor,
    unsigned16: bool,
    /// The loader batch whose buffer `pixels` views (CPU), kept alive here.
    owner: Option<Batch>,
}

fn kind_and_bytes(pixels: &Pixels) -> (Kind, *const u8, bool) {
    match pixels {
        Pixels::U8(v) => (Kind::Uint8, v.as_ptr(), false),
        // libtorch has no uint16 tensors for these ops: carry the bits as int16.
        Pixels::U16(v) => (Kind::Int16, v.as_ptr() as *const u8, true),
    }
}

/// Starts the transfer of a host tensor to `device`: pinned memory makes the
/// copy asynchronous with respect to the host (it is queued on the device's
/// current stream, so later kernels on that stream see the data).
fn to_device_async(host: &Tensor, device: Device) -> Tensor {
    host.pin_memory(device).to_device_(device, host.kind(), true, false)
}

/// Wraps a loader batch as a `[B, H, W]` tensor without copying its pixels
/// (CPU), or with the one copy into pinned memory that an asynchronous
/// transfer to `device` needs (CUDA). Get the batch back with
/// [`RawBatch::into_batch`] once [`RawBatch::to_unit`] has been taken.
pub fn wrap(batch: Batch, device: Device) -> RawBatch {
    let [b, h, w] = batch.shape().map(|v| v as i64);
    let (kind, ptr, unsigned16) = kind_and_bytes(&batch.pixels);
    let expected = (b * h * w) as usize;
    assert_eq!(batch.pixels.len(), expected, "loader batch pixels do not match its shape");
    // SAFETY: `ptr` points at `b·h·w` initialised elements of `kind`'s size
    // (checked above), in a Vec's heap buffer that does not move when the
    // Batch is moved. The view is stored next to its owner and is private to
    // RawBatch; every tensor derived from it by `to_unit` is a fresh
    // allocation (a dtype conversion), and the CUDA path copies it out before
    // returning.
    let view = unsafe { Tensor::from_blob(ptr, &[b, h, w], &[h * w, w, 1], kind, Device::Cpu) };
    if device == Device::Cpu {
        RawBatch { pixels: view, unsigned16, owner: Some(batch) }
    } else {
        let pixels = to_device_async(&view, device);
        drop(view);
        RawBatch { pixels, unsigned16, owner: Some(batch) }
    }
}

/// Copies a borrowed loader batch into a host tensor and starts its transfer to `device`.
pub fn upload(batch: &Batch, device: Device) -> RawBatch {
    let [b, h, w] = batch.shape().map(|v| v as i64);
    let (host, unsigned16) = match &batch.pixels {
        Pixels::U8(v) => (Tensor::from_data_size(v, &[b, h, w], Kind::Uint8), false),
        Pixels::U16(v) => (Tensor::from_data_size(bytemuck::cast_slice(v), &[b, h, w], Kind::Int16), true),
    };
    let pixels = if device == Device::Cpu { host } else { to_device_async(&host, device) };
    RawBatch { pixels, unsigned16, owner: None }
}

impl RawBatch {
    /// The raw `[B, H, W]` integers (`Int16` for uint16 data), for comparisons.
    pub fn pixels(&self) -> Tensor {
        self.pixels.copy()
    }

    /// The loader batch this wraps (its keys, state, labels, buffers), when
    /// it was made by [`wrap`]. The pixel view is dropped first.
    pub fn into_batch(self) -> Option<Batch> {
        let RawBatch { pixels, owner, .. } = self;
        drop(pixels);
        owner
    }

    /// Address of the raw pixel data (on its device): equal to the loader
    /// buffer's address when [`wrap`] made no copy.
    pub fn data_ptr(&self) -> usize {
        self.pixels.data_ptr() as usize
    }

    /// The wrapped loader batch's metadata, when made by [`wrap`].
    pub fn batch(&self) -> Option<&Batch> {
        self.owner.as_ref()
    }

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
