//! Where a command runs: the device spec (`auto`, `cpu`, `cuda`, `cuda:N`)
//! and the one prelude every training command shares ([`prepare`]: device
//! check, cuDNN autotuning, CPU threads, torch seed).

use tch::Device;

use crate::{Result, TrainError};

/// Parses `auto`, `cpu`, `cuda`, `cuda:N`.
pub fn parse_device(s: &str) -> Result<Device> {
    match s {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        _ => match s.strip_prefix("cuda:").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) => Ok(Device::Cuda(n)),
            None => Err(TrainError::Settings(format!("unknown device `{s}` (auto, cpu, cuda, cuda:N)"))),
        },
    }
}

/// Readies libtorch for a training command on `device`: a CUDA device
/// must exist (then cuDNN picks its fastest kernels), `threads` > 0 sets
/// libtorch's CPU threads (0 keeps its default), and the torch generator
/// is seeded with `seed`.
pub fn prepare(device: Device, threads: i32, seed: u64) -> Result<()> {
    if let Device::Cuda(n) = device {
        if !tch::Cuda::is_available() || n >= tch::Cuda::device_count() as usize {
            return Err(TrainError::Settings(format!(
                "device cuda:{n} is not available ({} CUDA devices)",
                tch::Cuda::device_count()
            )));
        }
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if threads > 0 {
        tch::set_num_threads(threads);
    }
    tch::manual_seed(seed as i64);
    Ok(())
}

/// `cpu`, `cuda:N`: a device as the specs name it.
pub fn device_name(d: Device) -> String {
    match d {
        Device::Cpu => "cpu".into(),
        Device::Cuda(n) => format!("cuda:{n}"),
        other => format!("{other:?}"),
    }
}
