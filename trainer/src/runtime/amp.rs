//! Mixed precision: libtorch's autocast for CPU or CUDA with a chosen dtype
//! (bf16, or fp16 together with the loss scaling of [`crate::runtime::scaler`]),
//! through the small C++ shim in `csrc/autocast.cpp`. Parameters,
//! gradients, the optimizer and the queue stay float32; only the autocast
//! ops (convs, matmuls) run in bf16/fp16, as `torch.autocast(dtype=…)` does.
#![allow(unsafe_code)]

use serde::{Deserialize, Serialize};
use tch::{Device, Kind};

mod ffi {
    extern "C" {
        pub fn chess_autocast_is_enabled(cuda: i32) -> i32;
        pub fn chess_autocast_get_dtype(cuda: i32) -> i32;
        pub fn chess_autocast_set(cuda: i32, enabled: i32, dtype: i32);
        pub fn chess_autocast_increment_nesting() -> i32;
        pub fn chess_autocast_decrement_nesting() -> i32;
        pub fn chess_autocast_clear_cache();
    }
}

/// Compute precision of the forward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Bf16,
    /// fp16 autocast with dynamic loss scaling (GradScaler semantics).
    Fp16,
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fp32" => Ok(Precision::Fp32),
            "bf16" => Ok(Precision::Bf16),
            "fp16" => Ok(Precision::Fp16),
            other => Err(format!("precision `{other}`: fp32, bf16 or fp16")),
        }
    }
}

/// c10::ScalarType codes.
fn scalar_type(kind: Kind) -> i32 {
    match kind {
        Kind::Half => 5,
        Kind::Float => 6,
        Kind::BFloat16 => 15,
        other => panic!("no autocast dtype {other:?}"),
    }
}

fn kind_of(code: i32) -> Option<Kind> {
    match code {
        5 => Some(Kind::Half),
        6 => Some(Kind::Float),
        15 => Some(Kind::BFloat16),
        _ => None,
    }
}

/// Whether autocast is on for `device`'s type, and its dtype.
pub fn state(device: Device) -> (bool, Option<Kind>) {
    let cuda = device.is_cuda() as i32;
    // SAFETY: plain calls into libtorch's thread-local autocast state.
    unsafe { (ffi::chess_autocast_is_enabled(cuda) != 0, kind_of(ffi::chess_autocast_get_dtype(cuda))) }
}

/// Runs `f` with autocast on `device` at `precision` (like `with torch.autocast(...)`),
/// restoring the previous state afterwards.
pub fn autocast<T>(device: Device, precision: Precision, f: impl FnOnce() -> T) -> T {
    if precision == Precision::Fp32 {
        return f();
    }
    let cuda = device.is_cuda() as i32;
    // SAFETY: as above; the previous state is restored below.
    let (prev_on, prev_dtype) = unsafe { (ffi::chess_autocast_is_enabled(cuda), ffi::chess_autocast_get_dtype(cuda)) };
    unsafe {
        let dtype = if precision == Precision::Fp16 { Kind::Half } else { Kind::BFloat16 };
        ffi::chess_autocast_set(cuda, 1, scalar_type(dtype));
        ffi::chess_autocast_increment_nesting();
    }
    let r = f();
    unsafe {
        if ffi::chess_autocast_decrement_nesting() == 0 {
            ffi::chess_autocast_clear_cache();
        }
        ffi::chess_autocast_set(cuda, prev_on, prev_dtype);
    }
    r
}
