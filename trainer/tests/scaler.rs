//! fp16 loss scaling: inf/NaN gradients skip the step and halve the scale,
//! the scale doubles after `growth_interval` good steps, and a sequence of
//! steps matches `torch.amp.GradScaler` + `torch.optim.SGD` (scales and
//! parameters); an fp16 MoCo step runs under autocast on the CPU.

use crate::common;

use std::process::Command;

use chess_train::models::resnet::Arch;
use chess_train::runtime::amp::Precision;
use chess_train::runtime::optim::Sgd;
use chess_train::runtime::scaler::GradScaler;
use chess_train::tasks::pretrain::moco::{Moco, MocoConfig};
use tch::{Device, Kind, Tensor};

/// One step on `p` with loss `sum(p · w)`: scaled backward, unscale, SGD unless inf, update.
fn step(scaler: &mut GradScaler, sgd: &mut Sgd, p: &Tensor, w: &Tensor) -> bool {
    Sgd::zero_grad(std::slice::from_ref(p));
    let loss = (p * w).sum(Kind::Float);
    scaler.scale_loss(&loss).backward();
    let found_inf = scaler.unscale(std::slice::from_ref(p));
    if !found_inf {
        sgd.step(std::slice::from_ref(p), 0.1);
    }
    scaler.update(found_inf);
    found_inf
}

#[test]
fn inf_gradients_skip_the_step_and_halve_the_scale() {
    let mut scaler = GradScaler { growth_interval: 3, ..GradScaler::default() };
    let mut sgd = Sgd::new(1, 0.0, 0.0);
    let p = Tensor::from_slice(&[1.0f32, 2.0]).set_requires_grad(true);
    let before = p.copy();
    for w in [f32::INFINITY, f32::NAN] {
        let scale = scaler.scale;
        assert!(step(&mut scaler, &mut sgd, &p, &Tensor::from_slice(&[1.0f32, w])));
        assert!(p.equal(&before), "a skipped step must not move the parameters");
        assert_eq!(scaler.scale, scale * 0.5);
        assert_eq!(scaler.growth_tracker, 0);
    }
    // Good steps: the gradient is unscaled (w), the parameters move by lr·w.
    let w = Tensor::from_slice(&[0.5f32, -1.0]);
    assert!(!step(&mut scaler, &mut sgd, &p, &w));
    let moved = &before - &w * 0.1;
    assert!((&p - &moved).abs().max().double_value(&[]) < 1e-7);
    assert!((p.grad() - &w).abs().max().double_value(&[]) < 1e-7, "gradients are unscaled before the step");
    assert_eq!((scaler.scale, scaler.growth_tracker), (16384.0, 1));
    assert!(!step(&mut scaler, &mut sgd, &p, &w));
    assert!(!step(&mut scaler, &mut sgd, &p, &w));
    // Third good step in a row: doubled, tracker reset.
    assert_eq!((scaler.scale, scaler.growth_tracker), (32768.0, 0));
}

#[test]
fn defaults_are_gradscalers() {
    let s = GradScaler::default();
    assert_eq!((s.scale, s.growth_factor, s.backoff_factor, s.growth_interval), (65536.0, 2.0, 0.5, 2000));
    let mut s = GradScaler { growth_interval: 1, scale: f64::MAX, ..s };
    s.update(false);
    assert_eq!(s.scale, f64::MAX, "never grows to inf");
}

/// The same pattern of good and inf steps through torch.amp.GradScaler.
#[test]
fn matches_torch_gradscaler() {
    let pattern = [false, true, false, false, false, true, true, false, false, false, false];
    let mut scaler = GradScaler { growth_interval: 3, scale: 1024.0, ..GradScaler::default() };
    let mut sgd = Sgd::new(1, 0.9, 1e-4);
    let p = Tensor::from_slice(&[1.0f32, -2.0, 3.0]).set_requires_grad(true);
    let mut ours = Vec::new();
    for (i, &bad) in pattern.iter().enumerate() {
        let w = Tensor::from_slice(&[0.5f32, 1.5 + i as f32, if bad { f32::INFINITY } else { -0.25 }]);
        step(&mut scaler, &mut sgd, &p, &w);
        ours.push((scaler.scale, Vec::<f32>::try_from(&p.detach()).unwrap()));
    }
    let script = r#"
import json, sys, torch
pattern = json.loads(sys.argv[1])
p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4)
s = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_factor=2.0, backoff_factor=0.5, growth_interval=3)
out = []
for i, bad in enumerate(pattern):
    opt.zero_grad()
    w = torch.tensor([0.5, 1.5 + i, float("inf") if bad else -0.25])
    s.scale((p * w).sum()).backward()
    s.step(opt)
    s.update()
    out.append([s.get_scale(), p.detach().tolist()])
print(json.dumps(out))
"#;
    let out = Command::new(common::python())
        .arg("-c")
        .arg(script)
        .arg(serde_json::to_string(&pattern).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let theirs: Vec<(f64, Vec<f32>)> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (i, (o, t)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(o.0, t.0, "step {i}: scale");
        for (a, b) in o.1.iter().zip(&t.1) {
            assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "step {i}: parameters {:?} vs {:?}", o.1, t.1);
        }
    }
}

#[test]
fn fp16_moco_step_runs_under_autocast_on_cpu() {
    tch::manual_seed(0);
    let cfg = MocoConfig { arch: Arch::Resnet18, queue: 16, ..MocoConfig::default() };
    let mut moco = Moco::new(cfg, Device::Cpu, 0.9, 1e-4).unwrap();
    moco.precision = Precision::Fp16;
    // Autocast really computes convolutions in fp16 (and restores the state after).
    let w = Tensor::randn([2, 1, 3, 3], (Kind::Float, Device::Cpu));
    let probe = Tensor::rand([1, 1, 8, 8], (Kind::Float, Device::Cpu));
    let kind = chess_train::runtime::amp::autocast(Device::Cpu, Precision::Fp16, || {
        probe.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1).kind()
    });
    assert_eq!(kind, Kind::Half);
    assert_eq!(probe.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], 1).kind(), Kind::Float);
    let x = Tensor::rand([4, 1, 32, 32], (Kind::Float, Device::Cpu));
    let before = moco.q_params[0].copy();
    let out = moco.step(&x, &x.flip([3]), 0.03).unwrap();
    assert!(out.loss.is_finite());
    let moved = (&moco.q_params[0] - &before).abs().max().double_value(&[]) > 0.0;
    // Either the step was taken (parameters moved, one good step counted)
    // or skipped on inf (scale halved); nothing else.
    if moco.skipped_steps == 0 {
        assert!(moved);
        assert_eq!((moco.scaler.scale, moco.scaler.growth_tracker), (65536.0, 1));
    } else {
        assert!(!moved);
        assert_eq!(moco.scaler.scale, 32768.0);
    }
    assert_eq!("fp16".parse::<Precision>().unwrap(), Precision::Fp16);
}
