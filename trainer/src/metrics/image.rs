//! Image-to-image metrics (bone suppression): MSE, RMSE, PSNR and SSIM of a
//! test image against its reference, both row-major `height × width`
//! greyscale buffers of any numeric type (converted to `f64`, as
//! scikit-image does for integer and float64 input; for float32 input
//! scikit-image stays in float32, so expect differences near 1e-7 there).
//!
//! [`ssim`] is scikit-image's `structural_similarity(reference, test,
//! gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
//! data_range=R)`: local statistics under a Gaussian window (σ = 1.5,
//! truncated at 3.5σ → 11 taps, normalised), separable, with SciPy's
//! `reflect` edges (`d c b a | a b c d | d c b a`); K1 = 0.01, K2 = 0.03;
//! the SSIM map is averaged after cropping 5 pixels from every border.

use super::{same_len, MetricsError, Result};

/// Both images as `f64`, checked for matching sizes.
fn pair<T: Copy + Into<f64>>(what: &'static str, reference: &[T], test: &[T]) -> Result<(Vec<f64>, Vec<f64>)> {
    same_len(what, reference.len(), test.len())?;
    if reference.is_empty() {
        return Err(MetricsError::Empty(what));
    }
    let a: Vec<f64> = reference.iter().map(|&v| v.into()).collect();
    let b: Vec<f64> = test.iter().map(|&v| v.into()).collect();
    super::finite(what, &a)?;
    super::finite(what, &b)?;
    Ok((a, b))
}

fn check_range(data_range: f64) -> Result<()> {
    if !(data_range.is_finite() && data_range > 0.0) {
        return Err(MetricsError::Invalid(format!("data range {data_range} must be positive and finite")));
    }
    Ok(())
}

/// Mean squared error (`skimage.metrics.mean_squared_error`).
pub fn mse<T: Copy + Into<f64>>(reference: &[T], test: &[T]) -> Result<f64> {
    let (a, b) = pair("MSE: reference and test pixels", reference, test)?;
    Ok(a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>() / a.len() as f64)
}

/// Root mean squared error, in the images' units.
pub fn rmse<T: Copy + Into<f64>>(reference: &[T], test: &[T]) -> Result<f64> {
    Ok(mse(reference, test)?.sqrt())
}

/// Peak signal-to-noise ratio in dB, `10 log10(R² / MSE)`
/// (`skimage.metrics.peak_signal_noise_ratio(..., data_range=R)`); +∞ for
/// identical images.
pub fn psnr<T: Copy + Into<f64>>(reference: &[T], test: &[T], data_range: f64) -> Result<f64> {
    check_range(data_range)?;
    let e = mse(reference, test)?;
    Ok(if e == 0.0 { f64::INFINITY } else { 10.0 * (data_range * data_range / e).log10() })
}

/// SSIM's Gaussian: σ = 1.5, truncate 3.5 → radius `int(3.5σ + 0.5)` = 5.
const SIGMA: f64 = 1.5;
const TRUNCATE: f64 = 3.5;

fn gaussian_kernel() -> Vec<f64> {
    let radius = (TRUNCATE * SIGMA + 0.5) as i64;
    let w: Vec<f64> = (-radius..=radius).map(|x| (-0.5 / (SIGMA * SIGMA) * (x * x) as f64).exp()).collect();
    let sum: f64 = w.iter().sum();
    w.into_iter().map(|v| v / sum).collect()
}

/// SciPy's `reflect` boundary: index `i` of a length-`n` axis, mirrored
/// about the half-sample edges.
fn reflect(i: i64, n: i64) -> usize {
    let period = 2 * n;
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - 1 - m }) as usize
}

/// `scipy.ndimage.gaussian_filter(img, 1.5, mode="reflect", truncate=3.5)`:
/// axis 0 (rows) first, then axis 1.
fn gaussian_filter(img: &[f64], h: usize, w: usize, kernel: &[f64]) -> Vec<f64> {
    let r = (kernel.len() / 2) as i64;
    let mut tmp = vec![0.0; h * w];
    for y in 0..h {
        for (k, &wk) in kernel.iter().enumerate() {
            let src = reflect(y as i64 + k as i64 - r, h as i64) * w;
            let row = &img[src..src + w];
            let out = &mut tmp[y * w..(y + 1) * w];
            for (o, &v) in out.iter_mut().zip(row) {
                *o += wk * v;
            }
        }
    }
    // Along rows: each row copied once with its reflected borders, so the
    // inner loop is a plain dot product.
    let mut out = vec![0.0; h * w];
    let mut padded = vec![0.0; w + 2 * r as usize];
    for y in 0..h {
        let row = &tmp[y * w..(y + 1) * w];
        for (i, p) in padded.iter_mut().enumerate() {
            *p = row[reflect(i as i64 - r, w as i64)];
        }
        for (x, o) in out[y * w..(y + 1) * w].iter_mut().enumerate() {
            *o = kernel.iter().zip(&padded[x..x + kernel.len()]).map(|(k, v)| k * v).sum();
        }
    }
    out
}

/// Mean structural similarity of `test` against `reference` (row-major,
/// `height × width`, both sides at least 11), for pixel values spanning
/// `data_range` (e.g. 65535 for uint16, 1 for unit floats).
pub fn ssim<T: Copy + Into<f64>>(
    reference: &[T],
    test: &[T],
    height: usize,
    width: usize,
    data_range: f64,
) -> Result<f64> {
    check_range(data_range)?;
    let (a, b) = pair("SSIM: reference and test pixels", reference, test)?;
    if a.len() != height * width {
        return Err(MetricsError::Invalid(format!("SSIM: {} pixels for a {height}×{width} image", a.len())));
    }
    let kernel = gaussian_kernel();
    if height < kernel.len() || width < kernel.len() {
        return Err(MetricsError::Invalid(format!(
            "SSIM: a {height}×{width} image is smaller than the {0}×{0} window",
            kernel.len()
        )));
    }
    let f = |v: &[f64]| gaussian_filter(v, height, width, &kernel);
    let prod = |x: &[f64], y: &[f64]| -> Vec<f64> { x.iter().zip(y).map(|(p, q)| p * q).collect() };
    let (ux, uy) = (f(&a), f(&b));
    let (uxx, uyy, uxy) = (f(&prod(&a, &a)), f(&prod(&b, &b)), f(&prod(&a, &b)));
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let pad = kernel.len() / 2;
    let mut sum = 0.0;
    for y in pad..height - pad {
        for x in pad..width - pad {
            let i = y * width + x;
            let (mx, my) = (ux[i], uy[i]);
            let vx = uxx[i] - mx * mx;
            let vy = uyy[i] - my * my;
            let vxy = uxy[i] - mx * my;
            let num = (2.0 * mx * my + c1) * (2.0 * vxy + c2);
            let den = (mx * mx + my * my + c1) * (vx + vy + c2);
            sum += num / den;
        }
    }
    Ok(sum / ((height - 2 * pad) * (width - 2 * pad)) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_images() {
        let img: Vec<u16> = (0..16 * 20).map(|i| (i * 97 % 4000) as u16).collect();
        assert_eq!(ssim(&img, &img, 16, 20, 65535.0).unwrap(), 1.0);
        assert_eq!(psnr(&img, &img, 65535.0).unwrap(), f64::INFINITY);
        assert_eq!(rmse(&img, &img).unwrap(), 0.0);
    }

    #[test]
    fn reflect_is_half_sample_symmetric() {
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![2, 1, 0, 0, 1, 2, 3, 3, 2, 1]);
    }

    #[test]
    fn bad_sizes_are_errors() {
        let img = vec![0.5f64; 100];
        assert!(ssim(&img, &img, 10, 10, 1.0).is_err());
        assert!(ssim(&img, &img, 11, 10, 1.0).is_err());
        assert!(psnr(&img, &img[..99], 1.0).is_err());
        assert!(psnr(&img, &img, 0.0).is_err());
    }
}
