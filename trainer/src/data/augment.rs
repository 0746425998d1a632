//! CheSS's augmentations, batched on the device with per-sample random
//! parameters (torch's generator, so `tch::manual_seed` makes them
//! reproducible). Input and output: `[N, 1, H, W]` float in [0, 1].
//!
//! Upstream (albumentations, applied independently to query and key), in
//! this order: one of MedianBlur(3) / MotionBlur / Sharpen (p 0.2);
//! RandomBrightnessContrast(±0.1, −0.2..0.1) (p 0.6); one of GaussNoise /
//! MultiplicativeNoise (p 0.2); value shift ±0.1 (p 0.3);
//! ShiftScaleRotate(0.0625, 0.2, 10°) (p 0.2); OpticalDistortion (p 0.2).
//! Cutout (named by the paper, absent from the upstream code) is last and
//! off by default. Intensity ops clip to [0, 1] as albumentations does.
//!
//! Each op takes the whole batch, draws its parameters per sample, and is
//! applied only to the samples drawn with probability `p` (selected by
//! index, so unselected samples cost nothing).

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

/// Probabilities and ranges of every op (CheSS upstream's defaults).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Off: query and key are the input itself.
    pub enabled: bool,
    /// One of median blur (3×3), motion blur, sharpen.
    pub blur_p: f64,
    /// Largest motion-blur kernel (odd; kernels 3..=this).
    pub motion_blur_limit: i64,
    pub sharpen_alpha: [f64; 2],
    pub sharpen_lightness: [f64; 2],
    pub brightness_contrast_p: f64,
    /// Brightness offset range ±this (times the max value 1).
    pub brightness_limit: f64,
    /// Contrast factor 1 + U(lo, hi).
    pub contrast_limit: [f64; 2],
    /// One of Gaussian noise, multiplicative noise.
    pub noise_p: f64,
    /// Gaussian noise variance range, in 8-bit units (albumentations `var_limit`).
    pub gauss_var: [f64; 2],
    pub multiplier: [f64; 2],
    pub value_shift_p: f64,
    pub value_shift: f64,
    pub shift_scale_rotate_p: f64,
    /// Fraction of the side.
    pub shift_limit: f64,
    pub scale_limit: f64,
    /// Degrees.
    pub rotate_limit: f64,
    pub optical_distortion_p: f64,
    pub distort_limit: f64,
    /// Fraction of the side by which the distortion centre moves.
    pub distort_shift_limit: f64,
    pub cutout_p: f64,
    pub cutout_holes: i64,
    /// Largest hole side, fraction of the image side.
    pub cutout_size: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            enabled: true,
            blur_p: 0.2,
            motion_blur_limit: 7,
            sharpen_alpha: [0.2, 0.5],
            sharpen_lightness: [0.5, 1.0],
            brightness_contrast_p: 0.6,
            brightness_limit: 0.1,
            contrast_limit: [-0.2, 0.1],
            noise_p: 0.2,
            gauss_var: [10.0, 50.0],
            multiplier: [0.9, 1.1],
            value_shift_p: 0.3,
            value_shift: 0.1,
            shift_scale_rotate_p: 0.2,
            shift_limit: 0.0625,
            scale_limit: 0.2,
            rotate_limit: 10.0,
            optical_distortion_p: 0.2,
            distort_limit: 0.05,
            distort_shift_limit: 0.05,
            cutout_p: 0.0,
            cutout_holes: 8,
            cutout_size: 0.1,
        }
    }
}

/// U(lo, hi) per sample, `[n]` float on `device`.
fn uniform(n: i64, lo: f64, hi: f64, device: Device) -> Tensor {
    Tensor::rand([n], (Kind::Float, device)) * (hi - lo) + lo
}

/// Indices of the samples drawn with probability `p` (`None` when none).
fn select(n: i64, p: f64, device: Device) -> Option<Tensor> {
    if p <= 0.0 {
        return None;
    }
    let idx = Tensor::rand([n], (Kind::Float, device)).lt(p).nonzero().squeeze_dim(1);
    (idx.size()[0] > 0).then_some(idx)
}

/// Applies `f` to the samples at `idx` of `x`, in place of them.
fn apply_at(x: &Tensor, idx: &Tensor, f: impl FnOnce(&Tensor) -> Tensor) -> Tensor {
    let y = f(&x.index_select(0, idx));
    x.index_copy(0, idx, &y)
}

/// Per-sample scalar `[n]` → `[n, 1, 1, 1]`.
fn per_sample(t: &Tensor) -> Tensor {
    t.view([-1, 1, 1, 1])
}

/// Median of each 3×3 neighbourhood (reflect-101 border, as OpenCV).
pub fn median_blur3(x: &Tensor) -> Tensor {
    let s = x.size();
    let p = x.reflection_pad2d([1, 1, 1, 1]);
    let patches = p.unfold(2, 3, 1).unfold(3, 3, 1).reshape([s[0], s[1], s[2], s[3], 9]);
    patches.median_dim(-1, false).0
}

/// Convolves each sample with its own kernel `[n, k, k]` (k odd, reflect-101 border).
pub fn conv_per_sample(x: &Tensor, kernels: &Tensor) -> Tensor {
    let s = x.size();
    let (n, k) = (s[0], kernels.size()[1]);
    let r = k / 2;
    let p = x.reshape([1, n, s[2], s[3]]).reflection_pad2d([r, r, r, r]);
    let w = kernels.reshape([n, 1, k, k]).to_kind(x.kind());
    p.conv2d(&w, None::<Tensor>, [1, 1], [0, 0], [1, 1], n).reshape([n, 1, s[2], s[3]])
}

/// Motion-blur kernels `[n, k_max, k_max]`: a line through the centre at a
/// random angle, of random odd length 3..=k_max, normalised to sum 1.
pub fn motion_kernels(n: i64, k_max: i64, device: Device) -> Tensor {
    let k_max = (k_max.max(3) / 2) * 2 + 1;
    let half_len =
        (Tensor::randint_low(1, k_max / 2 + 1, [n], (Kind::Int64, device)).to_kind(Kind::Float)).view([-1, 1, 1]);
    let angle = uniform(n, 0.0, std::f64::consts::PI, device).view([-1, 1, 1]);
    let c = Tensor::arange(k_max, (Kind::Float, device)) - (k_max / 2) as f64;
    let yy = c.view([1, -1, 1]);
    let xx = c.view([1, 1, -1]);
    let (ca, sa) = (angle.cos(), angle.sin());
    let along = &xx * &ca + &yy * &sa;
    let across = (&xx * &sa - &yy * &ca).abs();
    let k = across.le(0.5).logical_and(&along.abs().le_tensor(&(half_len + 0.5))).to_kind(Kind::Float);
    &k / k.sum_dim_intlist([1i64, 2].as_slice(), true, Kind::Float)
}

/// Sharpen kernels `[n, 3, 3]` as albumentations builds them:
/// `(1 − α)·identity + α·[[−1,−1,−1],[−1, 8 + λ, −1],[−1,−1,−1]]`.
pub fn sharpen_kernels(alpha: &Tensor, lightness: &Tensor) -> Tensor {
    let device = alpha.device();
    let n = alpha.size()[0];
    let ident = Tensor::zeros([3, 3], (Kind::Float, device));
    let _ = ident.get(1).get(1).fill_(1.0);
    let eff = Tensor::full([3, 3], -1.0, (Kind::Float, device));
    let _ = eff.get(1).get(1).fill_(0.0);
    let centre = ident.view([1, 3, 3]) * (lightness.view([-1, 1, 1]) + 8.0);
    let effect = eff.view([1, 3, 3]).expand([n, 3, 3], false) + centre;
    let a = alpha.view([-1, 1, 1]);
    ident.view([1, 3, 3]) * (1.0 - &a) + effect * a
}

/// Affine `theta` `[n, 2, 3]` for `affine_grid`: output → input coordinates
/// of "rotate by `deg`, scale by `scale`, shift by (`tx`, `ty`) fractions of the side".
pub fn ssr_theta(deg: &Tensor, scale: &Tensor, tx: &Tensor, ty: &Tensor) -> Tensor {
    let a = deg * (std::f64::consts::PI / 180.0);
    let (c, s) = (a.cos() / scale, a.sin() / scale);
    // Inverse of p' = s·R·p + 2t (normalised coordinates span 2): p = Rᵀ(p' − 2t)/s.
    let (bx, by) = (tx * 2.0, ty * 2.0);
    let r0 = Tensor::stack(&[c.shallow_clone(), s.shallow_clone(), -(&c * &bx + &s * &by)], 1);
    let r1 = Tensor::stack(&[-&s, c.shallow_clone(), &s * &bx - &c * &by], 1);
    Tensor::stack(&[r0, r1], 1)
}

/// Resamples `x` through a grid `[n, H, W, 2]` (bilinear, reflection border).
pub fn sample(x: &Tensor, grid: &Tensor) -> Tensor {
    // mode 0 bilinear, padding 2 reflection, align_corners false
    x.grid_sampler(grid, 0, 2, false)
}

/// ShiftScaleRotate with explicit per-sample parameters.
pub fn shift_scale_rotate(x: &Tensor, deg: &Tensor, scale: &Tensor, tx: &Tensor, ty: &Tensor) -> Tensor {
    let theta = ssr_theta(deg, scale, tx, ty).to_kind(x.kind());
    let grid = Tensor::affine_grid_generator(&theta, x.size(), false);
    sample(x, &grid)
}

/// Radial (barrel/pincushion) distortion as OpenCV's camera model with
/// fx = fy = W: source = c + (p − c)·(1 + k·r²), r measured in units of W
/// from the (shifted) centre c. `k`, `dx`, `dy` per sample (shifts in
/// fractions of the side).
pub fn optical_distortion(x: &Tensor, k: &Tensor, dx: &Tensor, dy: &Tensor) -> Tensor {
    let s = x.size();
    let (n, h, w) = (s[0], s[2], s[3]);
    let device = x.device();
    // Pixel-centre coordinates in normalised units (align_corners = false).
    let ys = (Tensor::arange(h, (Kind::Float, device)) + 0.5) * (2.0 / h as f64) - 1.0;
    let xs = (Tensor::arange(w, (Kind::Float, device)) + 0.5) * (2.0 / w as f64) - 1.0;
    let gx = xs.view([1, 1, w]).expand([n, h, w], false);
    let gy = ys.view([1, h, 1]).expand([n, h, w], false);
    let cx = (dx * 2.0).view([-1, 1, 1]);
    let cy = (dy * 2.0).view([-1, 1, 1]);
    // Normalised units span 2 per side; the camera's focal length is one side.
    let (ux, uy) = ((&gx - &cx) / 2.0, (&gy - &cy) / 2.0);
    let r2 = &ux * &ux + &uy * &uy;
    let f = r2 * k.view([-1, 1, 1]) + 1.0;
    let sx = &cx + (&gx - &cx) * &f;
    let sy = &cy + (&gy - &cy) * &f;
    let grid = Tensor::stack(&[sx, sy], 3).to_kind(x.kind());
    sample(x, &grid)
}

/// Zeroes `holes` squares per sample, sides U(1, `size`·side) pixels, at random places.
pub fn cutout(x: &Tensor, holes: i64, size: f64) -> Tensor {
    let s = x.size();
    let (n, h, w) = (s[0], s[2], s[3]);
    let device = x.device();
    let ys = Tensor::arange(h, (Kind::Float, device)).view([1, 1, h, 1]);
    let xs = Tensor::arange(w, (Kind::Float, device)).view([1, 1, 1, w]);
    let side = Tensor::rand([n, holes, 1, 1], (Kind::Float, device)) * ((size * h.min(w) as f64 - 1.0).max(0.0)) + 1.0;
    let y0 = Tensor::rand([n, holes, 1, 1], (Kind::Float, device)) * h as f64 - &side / 2.0;
    let x0 = Tensor::rand([n, holes, 1, 1], (Kind::Float, device)) * w as f64 - &side / 2.0;
    let inside = ys
        .ge_tensor(&y0)
        .logical_and(&ys.lt_tensor(&(&y0 + &side)))
        .logical_and(&xs.ge_tensor(&x0))
        .logical_and(&xs.lt_tensor(&(&x0 + &side)));
    let hole = inside.any_dim(1, true);
    x.masked_fill(&hole, 0.0)
}

/// One random view of every sample of `x` (`[N, 1, H, W]`, [0, 1]).
pub fn augment(x: &Tensor, cfg: &AugmentConfig) -> Tensor {
    if !cfg.enabled {
        return x.shallow_clone();
    }
    tch::no_grad(|| {
        let n = x.size()[0];
        let d = x.device();
        let mut x = x.shallow_clone();
        if let Some(idx) = select(n, cfg.blur_p, d) {
            // One of three, uniformly.
            let which = Tensor::randint(3, [idx.size()[0]], (Kind::Int64, d));
            for op in 0..3 {
                let sub = idx.masked_select(&which.eq(op));
                if sub.size()[0] == 0 {
                    continue;
                }
                let m = sub.size()[0];
                x = apply_at(&x, &sub, |v| match op {
                    0 => median_blur3(v),
                    1 => conv_per_sample(v, &motion_kernels(m, cfg.motion_blur_limit, d)),
                    _ => {
                        let a = uniform(m, cfg.sharpen_alpha[0], cfg.sharpen_alpha[1], d);
                        let l = uniform(m, cfg.sharpen_lightness[0], cfg.sharpen_lightness[1], d);
                        conv_per_sample(v, &sharpen_kernels(&a, &l)).clamp(0.0, 1.0)
                    }
                });
            }
        }
        if let Some(idx) = select(n, cfg.brightness_contrast_p, d) {
            let m = idx.size()[0];
            let alpha = uniform(m, 1.0 + cfg.contrast_limit[0], 1.0 + cfg.contrast_limit[1], d);
            let beta = uniform(m, -cfg.brightness_limit, cfg.brightness_limit, d);
            x = apply_at(&x, &idx, |v| (v * per_sample(&alpha) + per_sample(&beta)).clamp(0.0, 1.0));
        }
        if let Some(idx) = select(n, cfg.noise_p, d) {
            let m = idx.size()[0];
            let gauss = Tensor::rand([m], (Kind::Float, d)).lt(0.5);
            let sigma = uniform(m, cfg.gauss_var[0], cfg.gauss_var[1], d).sqrt() / 255.0;
            let mult = uniform(m, cfg.multiplier[0], cfg.multiplier[1], d);
            x = apply_at(&x, &idx, |v| {
                let g = v + v.randn_like() * per_sample(&sigma);
                let mu = v * per_sample(&mult);
                g.where_self(&per_sample(&gauss), &mu).clamp(0.0, 1.0)
            });
        }
        if let Some(idx) = select(n, cfg.value_shift_p, d) {
            let m = idx.size()[0];
            let shift = uniform(m, -cfg.value_shift, cfg.value_shift, d);
            x = apply_at(&x, &idx, |v| (v + per_sample(&shift)).clamp(0.0, 1.0));
        }
        if let Some(idx) = select(n, cfg.shift_scale_rotate_p, d) {
            let m = idx.size()[0];
            let deg = uniform(m, -cfg.rotate_limit, cfg.rotate_limit, d);
            let scale = uniform(m, 1.0 - cfg.scale_limit, 1.0 + cfg.scale_limit, d);
            let tx = uniform(m, -cfg.shift_limit, cfg.shift_limit, d);
            let ty = uniform(m, -cfg.shift_limit, cfg.shift_limit, d);
            x = apply_at(&x, &idx, |v| shift_scale_rotate(v, &deg, &scale, &tx, &ty));
        }
        if let Some(idx) = select(n, cfg.optical_distortion_p, d) {
            let m = idx.size()[0];
            let k = uniform(m, -cfg.distort_limit, cfg.distort_limit, d);
            let dx = uniform(m, -cfg.distort_shift_limit, cfg.distort_shift_limit, d);
            let dy = uniform(m, -cfg.distort_shift_limit, cfg.distort_shift_limit, d);
            x = apply_at(&x, &idx, |v| optical_distortion(v, &k, &dx, &dy));
        }
        if let Some(idx) = select(n, cfg.cutout_p, d) {
            x = apply_at(&x, &idx, |v| cutout(v, cfg.cutout_holes, cfg.cutout_size));
        }
        x
    })
}

/// An 8-bit grey strip of up to four samples, one row each: the input (in
/// [0, 1]) and its query and key views (normalised with `mean`, `std`,
/// shown un-normalised), 4 px gaps. Returns (width, height, pixels).
pub fn preview_strip(unit: &Tensor, q: &Tensor, k: &Tensor, mean: f64, std: f64) -> (u32, u32, Vec<u8>) {
    let n = unit.size()[0].min(4);
    let s = unit.size()[3];
    let gap = 4i64;
    let (w, h) = (3 * s + 4 * gap, n * s + (n + 1) * gap);
    let canvas = Tensor::full([h, w], 1.0, (Kind::Float, Device::Cpu));
    let views =
        [unit.to_device(Device::Cpu), q.to_device(Device::Cpu) * std + mean, k.to_device(Device::Cpu) * std + mean];
    for i in 0..n {
        for (c, t) in views.iter().enumerate() {
            let (y0, x0) = (gap + i * (s + gap), gap + c as i64 * (s + gap));
            canvas.narrow(0, y0, s).narrow(1, x0, s).copy_(&t.get(i).get(0).to_kind(Kind::Float));
        }
    }
    let px = (canvas.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8).flatten(0, -1);
    (w as u32, h as u32, Vec::<u8>::try_from(px).unwrap_or_default())
}
