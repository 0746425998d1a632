//! Each device augmentation does what it must, per sample.

use chess_train::data::augment::{self, AugmentConfig};
use tch::{Device, Kind, Tensor};

const CPU: (Kind, Device) = (Kind::Float, Device::Cpu);

/// libtorch's generator is global: tests that draw from it take turns.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every op off, then `f` turns one on.
fn only(f: impl FnOnce(&mut AugmentConfig)) -> AugmentConfig {
    let mut c = AugmentConfig {
        blur_p: 0.0,
        brightness_contrast_p: 0.0,
        noise_p: 0.0,
        value_shift_p: 0.0,
        shift_scale_rotate_p: 0.0,
        optical_distortion_p: 0.0,
        cutout_p: 0.0,
        ..AugmentConfig::default()
    };
    f(&mut c);
    c
}

fn maxabs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

fn ramp(n: i64, s: i64) -> Tensor {
    // A smooth, asymmetric image in [0.1, 0.9], different per sample.
    let y = Tensor::arange(s, CPU).view([1, 1, s, 1]) / s as f64;
    let x = Tensor::arange(s, CPU).view([1, 1, 1, s]) / s as f64;
    let k = (Tensor::arange(n, CPU).view([n, 1, 1, 1]) + 1.0) / (n as f64 + 1.0);
    ((&y * 0.5 + &x * 0.3) * k + 0.1).clamp(0.0, 1.0)
}

#[test]
fn defaults_are_chess_upstream() {
    let c = AugmentConfig::default();
    assert_eq!(
        (c.blur_p, c.brightness_contrast_p, c.noise_p, c.value_shift_p, c.shift_scale_rotate_p, c.optical_distortion_p),
        (0.2, 0.6, 0.2, 0.3, 0.2, 0.2)
    );
    assert_eq!((c.brightness_limit, c.contrast_limit, c.value_shift), (0.1, [-0.2, 0.1], 0.1));
    assert_eq!((c.shift_limit, c.scale_limit, c.rotate_limit), (0.0625, 0.2, 10.0));
}

#[test]
fn median_blur_removes_impulses_and_keeps_flat_regions() {
    let x = Tensor::full([2, 1, 16, 16], 0.4, CPU);
    let _ = x.get(0).get(0).get(5).get(7).fill_(1.0);
    let _ = x.get(1).get(0).get(0).get(0).fill_(0.0); // corner: reflect-101 border
    let y = augment::median_blur3(&x);
    assert!(maxabs(&(&y - 0.4)) < 1e-7, "impulses survive the 3×3 median");
    // An edge stays an edge.
    let e = Tensor::cat(&[Tensor::zeros([1, 1, 8, 4], CPU), Tensor::ones([1, 1, 8, 4], CPU)], 3);
    assert!(maxabs(&(augment::median_blur3(&e) - &e)) < 1e-7);
}

#[test]
fn motion_blur_kernels_are_normalised_lines() {
    let _g = rng();
    tch::manual_seed(1);
    let k = augment::motion_kernels(64, 7, Device::Cpu);
    assert_eq!(k.size(), vec![64, 7, 7]);
    let sums = k.sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float);
    assert!(maxabs(&(sums - 1.0)) < 1e-5);
    // Through the centre, symmetric (a line segment centred on it).
    assert!(k.select(1, 3).select(1, 3).min().double_value(&[]) > 0.0);
    assert!(maxabs(&(&k - k.flip([1, 2]))) < 1e-6);
    // Several lengths (nonzero counts 3..=7 cells along the line at least).
    let counts = k.gt(0.0).sum_dim_intlist([1i64, 2].as_slice(), false, Kind::Float);
    assert!(counts.min().double_value(&[]) >= 3.0);
    assert!(counts.max().double_value(&[]) > counts.min().double_value(&[]));
    // A flat image stays flat; a dot becomes a streak of the same total.
    let flat = Tensor::full([64, 1, 12, 12], 0.3, CPU);
    assert!(maxabs(&(augment::conv_per_sample(&flat, &k) - 0.3)) < 1e-5);
    let dot = Tensor::zeros([64, 1, 15, 15], CPU);
    let _ = dot.narrow(2, 7, 1).narrow(3, 7, 1).fill_(1.0);
    let streak = augment::conv_per_sample(&dot, &k);
    assert!(maxabs(&(streak.sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float) - 1.0)) < 1e-5);
}

#[test]
fn sharpen_kernel_is_albumentations() {
    let a = Tensor::from_slice(&[0.2f32, 0.5]);
    let l = Tensor::from_slice(&[0.5f32, 1.0]);
    let k = augment::sharpen_kernels(&a, &l);
    // centre (1 − α) + α(8 + λ), neighbours −α
    let c: Vec<f32> = Vec::try_from(k.select(1, 1).select(1, 1)).unwrap();
    assert!((c[0] - (0.8 + 0.2 * 8.5)).abs() < 1e-6 && (c[1] - (0.5 + 0.5 * 9.0)).abs() < 1e-6);
    assert!((k.double_value(&[0, 0, 0]) + 0.2).abs() < 1e-6);
    // A flat image is scaled by the kernel sum 1 − α + αλ.
    let flat = Tensor::full([2, 1, 8, 8], 0.5, CPU);
    let y = augment::conv_per_sample(&flat, &k);
    assert!((y.double_value(&[0, 0, 4, 4]) - 0.5 * (0.8 + 0.2 * 0.5)).abs() < 1e-6);
    // An edge gets an overshoot.
    let e = Tensor::cat(&[Tensor::full([2, 1, 8, 4], 0.2, CPU), Tensor::full([2, 1, 8, 4], 0.6, CPU)], 3);
    let y = augment::conv_per_sample(&e, &k);
    assert!(y.double_value(&[1, 0, 4, 4]) > 0.6);
}

#[test]
fn brightness_contrast_is_affine_per_sample_within_limits() {
    let _g = rng();
    tch::manual_seed(3);
    // In [0.25, 0.65]: no clipping at the range's extremes.
    let x = ramp(16, 16) * 0.5 + 0.2;
    let y = augment::augment(&x, &only(|c| c.brightness_contrast_p = 1.0));
    // y = αx + β per sample: recover α, β from two pixels, check all and the ranges.
    let (x0, x1) = (x.select(3, 0).select(2, 0), x.select(3, 15).select(2, 15));
    let (y0, y1) = (y.select(3, 0).select(2, 0), y.select(3, 15).select(2, 15));
    let alpha = (&y1 - &y0) / (&x1 - &x0);
    let beta = &y0 - &alpha * &x0;
    let pred = &x * alpha.view([-1, 1, 1, 1]) + beta.view([-1, 1, 1, 1]);
    assert!(maxabs(&(pred - &y)) < 1e-5);
    assert!(alpha.min().double_value(&[]) >= 0.8 - 1e-5 && alpha.max().double_value(&[]) <= 1.1 + 1e-5);
    assert!(maxabs(&beta) <= 0.1 + 1e-5);
    assert!(alpha.std(true).double_value(&[]) > 1e-3, "one α for the whole batch");
}

#[test]
fn value_shift_is_a_constant_offset_per_sample() {
    let _g = rng();
    tch::manual_seed(4);
    let x = Tensor::full([32, 1, 8, 8], 0.5, CPU);
    let y = augment::augment(&x, &only(|c| c.value_shift_p = 1.0));
    let d = (&y - &x).flatten(1, -1);
    assert!(maxabs(&(&d - d.select(1, 0).unsqueeze(1))) < 1e-6);
    assert!(maxabs(&d) <= 0.1 + 1e-6);
    assert!(d.select(1, 0).std(true).double_value(&[]) > 0.01);
}

#[test]
fn probability_selects_samples() {
    let _g = rng();
    tch::manual_seed(5);
    let x = Tensor::full([400, 1, 4, 4], 0.5, CPU);
    let y = augment::augment(&x, &only(|c| c.value_shift_p = 0.3));
    let changed = (&y - &x)
        .abs()
        .flatten(1, -1)
        .max_dim(1, false)
        .0
        .gt(1e-7)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!((changed - 0.3).abs() < 0.08, "fraction augmented {changed}");
}

#[test]
fn noise_is_gaussian_or_multiplicative_per_sample() {
    let _g = rng();
    tch::manual_seed(6);
    let x = Tensor::full([64, 1, 64, 64], 0.5, CPU);
    let y = augment::augment(&x, &only(|c| c.noise_p = 1.0));
    let (mut gauss, mut mult) = (0, 0);
    for i in 0..64 {
        let d = y.get(i) - x.get(i);
        let std = d.std(true).double_value(&[]);
        if std < 1e-6 {
            // multiplicative: one factor in [0.9, 1.1]
            let f = y.get(i).mean(Kind::Float).double_value(&[]) / 0.5;
            assert!((0.9 - 1e-6..=1.1 + 1e-6).contains(&f), "factor {f}");
            mult += 1;
        } else {
            assert!(std >= 10f64.sqrt() / 255.0 * 0.9 && std <= 50f64.sqrt() / 255.0 * 1.1, "noise std {std}");
            gauss += 1;
        }
    }
    assert!(gauss > 10 && mult > 10, "gauss {gauss} mult {mult}");
}

#[test]
fn shift_scale_rotate_geometry() {
    let n = 2;
    let x = ramp(n, 32);
    let zeros = Tensor::zeros([n], CPU);
    let ones = Tensor::ones([n], CPU);
    // Identity parameters leave the image as is.
    let id = augment::shift_scale_rotate(&x, &zeros, &ones, &zeros, &zeros);
    assert!(maxabs(&(&id - &x)) < 1e-5);
    // A shift of 1/4 of the side moves a column by 8 pixels to the right.
    let col = Tensor::zeros([n, 1, 32, 32], CPU);
    let _ = col.narrow(3, 10, 1).fill_(1.0);
    let q = Tensor::full([n], 0.25, CPU);
    let moved = augment::shift_scale_rotate(&col, &zeros, &ones, &q, &zeros);
    assert!((moved.double_value(&[0, 0, 16, 18]) - 1.0).abs() < 1e-5);
    assert!(moved.double_value(&[0, 0, 16, 10]).abs() < 1e-5);
    // 90° is a quarter turn of the grid.
    let r = augment::shift_scale_rotate(&x, &Tensor::full([n], 90.0, CPU), &ones, &zeros, &zeros);
    let best = maxabs(&(&r - x.rot90(1, [2, 3]))).min(maxabs(&(&r - x.rot90(-1, [2, 3]))));
    assert!(best < 1e-4, "90° rotation off by {best}");
    // Scale 2 magnifies about the centre: the centre pixel stays, a pixel 8 out moves to 16 out... sampled from 4 out.
    let s = augment::shift_scale_rotate(&col, &zeros, &Tensor::full([n], 2.0, CPU), &zeros, &zeros);
    // column 10 (5.5 px left of the centre 15.5) appears at 15.5 − 11 = 4.5 → columns 4 and 5
    assert!(s.double_value(&[0, 0, 16, 4]) > 0.4 && s.double_value(&[0, 0, 16, 5]) > 0.4);
}

#[test]
fn optical_distortion_is_radial_about_the_centre() {
    let n = 2;
    let x = ramp(n, 32);
    let zeros = Tensor::zeros([n], CPU);
    assert!(maxabs(&(augment::optical_distortion(&x, &zeros, &zeros, &zeros) - &x)) < 1e-5);
    let k = Tensor::from_slice(&[0.5f32, -0.5]);
    let y = augment::optical_distortion(&x, &k, &zeros, &zeros);
    // Near the centre little changes, at the corners a lot; opposite k, opposite direction.
    let centre =
        (y.narrow(2, 15, 2).narrow(3, 15, 2) - x.narrow(2, 15, 2).narrow(3, 15, 2)).abs().max().double_value(&[]);
    let corner = (y.narrow(2, 0, 3).narrow(3, 0, 3) - x.narrow(2, 0, 3).narrow(3, 0, 3)).abs().max().double_value(&[]);
    assert!(centre < 0.01 && corner > 0.02, "centre {centre} corner {corner}");
}

#[test]
fn cutout_zeroes_squares_only() {
    let _g = rng();
    tch::manual_seed(7);
    let x = Tensor::full([8, 1, 64, 64], 0.5, CPU);
    let y = augment::augment(
        &x,
        &only(|c| {
            c.cutout_p = 1.0;
            c.cutout_holes = 2;
            c.cutout_size = 0.25;
        }),
    );
    let zero = y.eq(0.0).to_kind(Kind::Float);
    let kept = y.eq(0.5).to_kind(Kind::Float);
    assert!(maxabs(&(&zero + &kept - 1.0)) < 1e-7, "values other than 0 and the input");
    let frac = zero.mean(Kind::Float).double_value(&[]);
    assert!(frac > 0.001 && frac < 2.0 * 0.25 * 0.25 + 1e-6, "cut fraction {frac}");
}

#[test]
fn full_pipeline_is_seeded_bounded_and_views_differ() {
    let x = ramp(8, 64);
    let c = AugmentConfig {
        blur_p: 1.0,
        noise_p: 1.0,
        shift_scale_rotate_p: 1.0,
        optical_distortion_p: 1.0,
        ..AugmentConfig::default()
    };
    let _g = rng();
    tch::manual_seed(9);
    let a = augment::augment(&x, &c);
    let b = augment::augment(&x, &c);
    tch::manual_seed(9);
    let a2 = augment::augment(&x, &c);
    assert_eq!(a.size(), x.size());
    assert!(maxabs(&(&a - &a2)) == 0.0, "not reproducible under one seed");
    assert!(maxabs(&(&a - &b)) > 1e-3, "two views are the same");
    assert!(a.min().double_value(&[]) >= -1e-6 && a.max().double_value(&[]) <= 1.0 + 1e-6);
    let off = augment::augment(&x, &AugmentConfig { enabled: false, ..c });
    assert_eq!(maxabs(&(off - &x)), 0.0);
}

fn batch(pixels: chess_shards::loader::Pixels, n: usize, h: u32, w: u32) -> chess_shards::loader::Batch {
    use chess_shards::loader::{Batch, LoaderState};
    let state = LoaderState {
        seed: 0,
        epoch: 0,
        world: 1,
        rank: 0,
        workers: 1,
        worker: 0,
        batch_size: n as u64,
        slot: 0,
        batches: 0,
        delivered: 0,
        skipped: 0,
        plan_id: 0,
    };
    Batch {
        epoch: 0,
        index: 0,
        keys: (0..n).map(|i| format!("k{i}")).collect(),
        rows: (0..n).collect(),
        padded: vec![false; n],
        height: h,
        width: w,
        pixels,
        extras: Vec::new(),
        labels: vec![Vec::new(); n],
        state,
    }
}

/// uint16 (carried as int16 bits) and uint8 become value / max on the device, full range.
#[test]
fn raw_pixels_become_unit_floats() {
    use chess_shards::loader::Pixels;
    use chess_train::data;
    let v16: Vec<u16> = vec![0, 1, 32767, 32768, 40000, 65535];
    let u = data::upload(&batch(Pixels::U16(v16.clone()), 1, 2, 3), Device::Cpu).to_unit(0);
    assert_eq!(u.size(), vec![1, 1, 2, 3]);
    let got: Vec<f32> = Vec::try_from(u.flatten(0, -1)).unwrap();
    for (g, v) in got.iter().zip(&v16) {
        assert!((g - *v as f32 / 65535.0).abs() < 1e-7, "{v} → {g}");
    }
    let v8: Vec<u8> = vec![0, 1, 127, 128, 200, 255, 3, 4];
    let u = data::upload(&batch(Pixels::U8(v8.clone()), 2, 2, 2), Device::Cpu).to_unit(0);
    let got: Vec<f32> = Vec::try_from(u.flatten(0, -1)).unwrap();
    for (g, v) in got.iter().zip(&v8) {
        assert!((g - *v as f32 / 255.0).abs() < 1e-7);
    }
    // Resizing on the device: a flat image stays flat at the new side.
    let flat = data::upload(&batch(Pixels::U16(vec![30000; 2 * 64 * 64]), 2, 64, 64), Device::Cpu).to_unit(32);
    assert_eq!(flat.size(), vec![2, 1, 32, 32]);
    assert!(maxabs(&(flat - 30000.0 / 65535.0)) < 1e-6);
    // Normalisation with CheSS's mean and std.
    let n = data::normalise(&Tensor::from_slice(&[0.658f32, 0.879]), 0.658, 0.221);
    assert!(maxabs(&(n - Tensor::from_slice(&[0.0f32, 1.0]))) < 1e-6);
}
