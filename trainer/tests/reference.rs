//! Agreement with PyTorch: torchvision ResNets and one MoCo v2 step
//! computed by `scripts/python/trainer_reference.py` (the venv's torch),
//! loaded here through safetensors. CPU, float32: outputs, weights and
//! losses agree within `common::F32_DEEP` relative to their size
//! (`common::rel_diff`: kernels differ between CPUs, so bounds scale with
//! the magnitudes involved).

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use chess_train::io::weights;
use chess_train::models::resnet::{Arch, HeadKind, ResNet};
use chess_train::tasks::pretrain::moco::{Moco, MocoConfig};
use tch::nn::{self, ModuleT};
use tch::{Device, Tensor};

/// libtorch's generator is global: tests that seed it take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    common::rel_diff(a, b)
}

fn check_resnet(arch: &str, head: HeadKind, extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let mut args =
        vec!["resnet", "--arch", arch, "--out", dir.path().to_str().unwrap(), "--batch", "4", "--size", "64"];
    args.extend_from_slice(extra);
    common::python_reference(&args);
    let w = weights::read(&dir.path().join("weights.safetensors")).unwrap();
    let io = weights::read(&dir.path().join("io.safetensors")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = ResNet::new(&vs.root(), arch.parse::<Arch>().unwrap(), head);
    // Same names both ways: every torchvision tensor is ours and vice versa.
    weights::load_into(&vs, &w, "", Path::new("weights.safetensors"), true).unwrap();
    assert_eq!(vs.variables().len(), w.len(), "tensor count differs from torchvision's");
    let x = &io["x"];
    let train = model.forward_t(x, true);
    let d_train = max_abs_diff(&train, &io["train"]);
    let eval = tch::no_grad(|| model.forward_t(x, false));
    let d_eval = max_abs_diff(&eval, &io["eval"]);
    eprintln!("{arch}: max |Δ| train {d_train:.2e}, eval {d_eval:.2e}");
    assert!(d_train <= common::F32_DEEP, "{arch} train-mode output differs by {d_train}");
    assert!(d_eval <= common::F32_DEEP, "{arch} eval-mode output differs by {d_eval}");
}

#[test]
fn resnet18_matches_torchvision() {
    check_resnet("resnet18", HeadKind::Linear(10), &["--num-classes", "10"]);
}

#[test]
fn resnet50_matches_torchvision() {
    check_resnet("resnet50", HeadKind::Linear(10), &["--num-classes", "10"]);
}

#[test]
fn resnet50_mlp_head_matches_moco_upstream() {
    check_resnet("resnet50", HeadKind::Mlp(128), &["--num-classes", "128", "--mlp"]);
}

/// Our init is torchvision's: conv weights Kaiming normal fan-out (std √(2/fan_out)),
/// BN weight 1 / bias 0, linear uniform ±1/√fan_in.
#[test]
fn init_is_torchvision() {
    let _g = rng();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let _m = ResNet::new(&vs.root(), Arch::Resnet50, HeadKind::Mlp(128));
    let v = vs.variables();
    for (name, fan_out) in
        [("conv1.weight", 64 * 49), ("layer3.0.conv2.weight", 256 * 9), ("layer4.2.conv3.weight", 2048)]
    {
        let std = v[name].std(true).double_value(&[]);
        let want = (2.0 / fan_out as f64).sqrt();
        assert!((std / want - 1.0).abs() < 0.05, "{name}: std {std}, want {want}");
    }
    assert_eq!(v["bn1.weight"].min().double_value(&[]), 1.0);
    assert_eq!(v["layer1.0.bn3.bias"].abs().max().double_value(&[]), 0.0);
    let bound = 1.0 / 2048f64.sqrt();
    let fc = &v["fc.0.weight"];
    assert!(fc.abs().max().double_value(&[]) <= bound);
    assert!(fc.abs().max().double_value(&[]) > 0.99 * bound);
    assert_eq!(v["conv1.weight"].size(), vec![64, 1, 7, 7]);
}

fn moco_step_case(steps: usize) {
    // The batch shuffle draws from the global generator: seeded, in turn.
    let _g = rng();
    tch::manual_seed(0);
    let dir = tempfile::tempdir().unwrap();
    let steps_s = steps.to_string();
    // m = 0.9 so that the momentum update is visible at 1e-4.
    common::python_reference(&[
        "moco-step",
        "--arch",
        "resnet18",
        "--queue",
        "64",
        "--batch",
        "8",
        "--size",
        "64",
        "--momentum",
        "0.9",
        "--steps",
        &steps_s,
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    let before = weights::read(&dir.path().join("before.safetensors")).unwrap();
    let after = weights::read(&dir.path().join("after.safetensors")).unwrap();
    let cfg = MocoConfig {
        arch: Arch::Resnet18,
        dim: 128,
        queue: 64,
        momentum: 0.9,
        temperature: 0.2,
        mlp: true,
        shuffle_bn: true,
    };
    let mut moco = Moco::new(cfg, Device::Cpu, 0.9, 1e-4).unwrap();
    let f = Path::new("before.safetensors");
    weights::load_into(&moco.vs_q, &before, "q.", f, true).unwrap();
    weights::load_into(&moco.vs_k, &before, "k.", f, true).unwrap();
    tch::no_grad(|| moco.queue.copy_(&before["queue"]));
    moco.queue_ptr = before["queue_ptr"].int64_value(&[0]);
    let (im_q, im_k) = (&before["im_q"], &before["im_k"]);
    let mut losses = Vec::new();
    for _ in 0..steps {
        losses.push(moco.step(im_q, im_k, 0.03).unwrap().loss);
    }
    let want: Vec<f64> = Vec::<f64>::try_from(&after["loss"].to_kind(tch::Kind::Double)).unwrap();
    for (i, (a, b)) in losses.iter().zip(&want).enumerate() {
        assert!(common::rel_diff_scalar(*a, *b) <= common::F32_DEEP, "step {i}: loss {a} vs PyTorch {b}");
    }
    let mut worst: HashMap<&str, (f64, String)> = HashMap::new();
    for (prefix, vs) in [("q.", &moco.vs_q), ("k.", &moco.vs_k)] {
        for (name, t) in weights::named(vs, prefix) {
            let d = max_abs_diff(&t, &after[&name]);
            let e = worst.entry(prefix).or_insert((0.0, String::new()));
            if d > e.0 {
                *e = (d, name.clone());
            }
            assert!(d <= common::F32_DEEP, "{name}: max |Δ| {d} after {steps} step(s)");
        }
    }
    let dq = max_abs_diff(&moco.queue, &after["queue"]);
    assert!(dq <= common::F32_DEEP, "queue differs by {dq}");
    assert_eq!(moco.queue_ptr, after["queue_ptr"].int64_value(&[0]));
    // The step did change the weights (the comparison is not vacuous).
    let moved = max_abs_diff(&weights::named(&moco.vs_q, "q.")[0].1, &before[&weights::named(&moco.vs_q, "q.")[0].0]);
    assert!(moved > 1e-6, "weights did not move");
    eprintln!("loss {losses:?} (PyTorch {want:?}); worst {worst:?}; queue {dq:.2e}");
}

#[test]
fn moco_one_step_matches_pytorch_reference() {
    moco_step_case(1);
}

/// Three steps: momentum buffers and the queue pointer carry over.
#[test]
fn moco_three_steps_match_pytorch_reference() {
    moco_step_case(3);
}

/// bf16 autocast through the C++ shim: convolutions run in bf16 inside,
/// the state is restored outside, and a bf16 MoCo step stays close to fp32
/// with fp32 weights.
#[test]
fn bf16_autocast_on_cpu() {
    let _g = rng();
    use chess_train::runtime::amp::{self, Precision};
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = ResNet::new(&vs.root(), Arch::Resnet18, HeadKind::None);
    let x = Tensor::randn([2, 1, 32, 32], (tch::Kind::Float, Device::Cpu));
    assert!(!amp::state(Device::Cpu).0);
    let (kind, inside) = amp::autocast(Device::Cpu, Precision::Bf16, || {
        (
            x.conv2d(&vs.variables()["conv1.weight"], None::<Tensor>, [2, 2], [3, 3], [1, 1], 1).kind(),
            amp::state(Device::Cpu),
        )
    });
    assert_eq!(kind, tch::Kind::BFloat16);
    assert_eq!(inside, (true, Some(tch::Kind::BFloat16)));
    assert!(!amp::state(Device::Cpu).0, "autocast left on");
    let f32_out = tch::no_grad(|| model.forward_t(&x, false));
    let bf_out = tch::no_grad(|| amp::autocast(Device::Cpu, Precision::Bf16, || model.forward_t(&x, false)));
    let rel = (f32_out - bf_out.to_kind(tch::Kind::Float)).abs().max().double_value(&[]);
    assert!(rel < 0.1, "bf16 features off by {rel}");

    let cfg = MocoConfig { arch: Arch::Resnet18, queue: 16, ..MocoConfig::default() };
    let step = |p: Precision| {
        tch::manual_seed(1);
        let mut m = Moco::new(cfg.clone(), Device::Cpu, 0.9, 1e-4).unwrap();
        m.precision = p;
        tch::manual_seed(2);
        let im = Tensor::randn([8, 1, 32, 32], (tch::Kind::Float, Device::Cpu));
        let loss = m.step(&im, &im.flip([3]), 0.03).unwrap().loss;
        (loss, m.vs_q.variables()["conv1.weight"].kind())
    };
    let (l32, _) = step(Precision::Fp32);
    let (l16, kind) = step(Precision::Bf16);
    assert_eq!(kind, tch::Kind::Float, "weights must stay fp32");
    assert!((l32 - l16).abs() < 0.05 * l32.abs().max(1.0), "bf16 loss {l16} vs fp32 {l32}");
}

/// Channels-last weights and inputs compute the same step.
#[test]
fn channels_last_step_equals_default() {
    let _g = rng();
    let cfg = MocoConfig { arch: Arch::Resnet18, queue: 16, ..MocoConfig::default() };
    let run = |cl: bool| {
        tch::manual_seed(1);
        let mut m = Moco::new(cfg.clone(), Device::Cpu, 0.9, 1e-4).unwrap();
        if cl {
            m.set_channels_last();
            let w = &m.vs_q.variables()["layer1.0.conv1.weight"];
            assert!(!w.is_contiguous(), "weights not in channels-last order");
        }
        tch::manual_seed(2);
        let im = Tensor::randn([8, 1, 32, 32], (tch::Kind::Float, Device::Cpu));
        let loss = m.step(&im, &im.flip([3]), 0.03).unwrap().loss;
        (loss, weights::named(&m.vs_q, ""))
    };
    let (l0, w0) = run(false);
    let (l1, w1) = run(true);
    assert!(common::rel_diff_scalar(l0, l1) < common::F32_DEEP, "{l0} vs {l1}");
    for ((n, a), (_, b)) in w0.iter().zip(&w1) {
        let d = max_abs_diff(a, b);
        assert!(d < common::F32_DEEP, "{n}: {d}");
    }
}
