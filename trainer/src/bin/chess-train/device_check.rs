//! `chess-train device-check`: what `scripts/device/check.sh` asks of the
//! binary itself — whether CUDA is visible to this libtorch, and whether the
//! device augmentations give the CPU's result on the same input and the same
//! parameters (drawn on the CPU, so both sides transform identically). One
//! JSON line per check on stdout; exit 1 when a comparison is off.
//!
//! Tolerances: the resampling ops (shift-scale-rotate, optical distortion)
//! and the median are a few float32 operations per pixel on values in
//! [0, 1], so CPU and CUDA agree to ~1e-6; 1e-4 leaves room for fused
//! multiply-adds and `grid_sampler`'s own rounding of the source coordinate
//! (a 1e-5 px shift moves a pixel by ≤ 1e-5). The per-sample convolutions
//! (motion blur, sharpen) run in cuDNN, which uses TF32 (10-bit mantissa,
//! relative error ≤ 2⁻¹¹ ≈ 5e-4 per product) by default on Ampere and
//! later; a sharpen kernel's |weights| sum to ≤ 17, so ≤ 17 · 5e-4 ≈ 1e-2.
//! A wrong border or axis order differs by ≥ 0.1 on these test images.

use chess_train::data::augment::{
    conv_per_sample, median_blur3, motion_kernels, optical_distortion, sharpen_kernels, shift_scale_rotate,
};
use chess_train::runtime::device::{device_name, parse_device};
use clap::Args;
use tch::{Device, Kind, Tensor};

#[derive(Args, Debug)]
pub struct DeviceCheckArgs {
    /// The device compared with the CPU: cuda, cuda:N, or cpu (a dry run: CPU against itself).
    #[arg(long, default_value = "cuda")]
    device: String,
    /// Side of the test images.
    #[arg(long, default_value_t = 128)]
    size: i64,
}

fn line(check: &str, value: serde_json::Value) {
    let mut o = serde_json::json!({ "check": check });
    if let (Some(m), serde_json::Value::Object(v)) = (o.as_object_mut(), value) {
        m.extend(v);
    }
    println!("{o}");
}

pub fn run(a: DeviceCheckArgs) -> anyhow::Result<()> {
    let device = parse_device(&a.device)?;
    line(
        "cuda",
        serde_json::json!({
            "available": tch::Cuda::is_available(),
            "devices": tch::Cuda::device_count(),
            "cudnn": tch::Cuda::cudnn_is_available(),
            "device": device_name(device),
        }),
    );
    if let Device::Cuda(n) = device {
        if !tch::Cuda::is_available() || n >= tch::Cuda::device_count() as usize {
            anyhow::bail!("device cuda:{n} is not visible ({} CUDA devices)", tch::Cuda::device_count());
        }
    }
    tch::manual_seed(0);
    // A smooth image with edges: a ramp, a disc and stripes (values in [0, 1]).
    let n = 4i64;
    let s = a.size;
    let c = Tensor::arange(s, (Kind::Float, Device::Cpu)) / (s - 1) as f64;
    let (yy, xx) = (c.view([1, 1, s, 1]), c.view([1, 1, 1, s]));
    let disc = ((&yy - 0.5).square() + (&xx - 0.4).square()).lt(0.08).to_kind(Kind::Float);
    let stripes = ((&xx * 40.0).sin() * 0.5 + 0.5) * 0.3;
    let base = (&yy * 0.4 + disc * 0.4 + stripes).clamp(0.0, 1.0);
    let x =
        base.expand([n, 1, s, s], false).contiguous() + Tensor::rand([n, 1, s, s], (Kind::Float, Device::Cpu)) * 0.05;
    let u = |lo: f64, hi: f64| Tensor::rand([n], (Kind::Float, Device::Cpu)) * (hi - lo) + lo;
    let (deg, scale, tx, ty) = (u(-45.0, 45.0), u(0.8, 1.2), u(-0.1, 0.1), u(-0.1, 0.1));
    let (k, dx, dy) = (u(-0.3, 0.3), u(-0.05, 0.05), u(-0.05, 0.05));
    let motion = motion_kernels(n, 7, Device::Cpu);
    let sharpen = sharpen_kernels(&u(0.2, 0.5), &u(0.5, 1.0));
    let on = |t: &Tensor| t.to_device(device);
    type Op<'a> = (&'a str, f64, Box<dyn Fn(&Tensor, bool) -> Tensor + 'a>);
    let ops: Vec<Op<'_>> = vec![
        (
            "shift_scale_rotate",
            1e-4,
            Box::new(|x: &Tensor, dev: bool| {
                if dev {
                    shift_scale_rotate(x, &on(&deg), &on(&scale), &on(&tx), &on(&ty))
                } else {
                    shift_scale_rotate(x, &deg, &scale, &tx, &ty)
                }
            }),
        ),
        (
            "optical_distortion",
            1e-4,
            Box::new(|x: &Tensor, dev: bool| {
                if dev {
                    optical_distortion(x, &on(&k), &on(&dx), &on(&dy))
                } else {
                    optical_distortion(x, &k, &dx, &dy)
                }
            }),
        ),
        ("median_blur3", 1e-6, Box::new(|x: &Tensor, _: bool| median_blur3(x))),
        (
            "motion_blur",
            1e-2,
            Box::new(|x: &Tensor, dev: bool| {
                conv_per_sample(x, &if dev { on(&motion) } else { motion.shallow_clone() })
            }),
        ),
        (
            "sharpen",
            1e-2,
            Box::new(|x: &Tensor, dev: bool| {
                conv_per_sample(x, &if dev { on(&sharpen) } else { sharpen.shallow_clone() })
            }),
        ),
    ];
    let mut failed = Vec::new();
    for (name, tol, op) in &ops {
        let cpu = op(&x, false);
        let dev = op(&on(&x), true).to_device(Device::Cpu);
        let diff = (&dev - &cpu).abs().max().double_value(&[]);
        let ok = diff <= *tol;
        if !ok {
            failed.push(*name);
        }
        line(
            "augment",
            serde_json::json!({ "op": name, "max_abs_diff": diff, "tolerance": tol, "ok": ok, "device": device_name(device) }),
        );
    }
    if !failed.is_empty() {
        return Err(chess_cli::CliError::check_failed(format!(
            "device augmentations differ from the CPU's: {}",
            failed.join(", ")
        ))
        .into());
    }
    Ok(())
}
