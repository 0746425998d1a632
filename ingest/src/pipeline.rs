//! The pixel pipeline, from stored values to the array that is shared.
//!
//! In this order (issue 3, item 3):
//! 1. stored values, masked to BitsStored and sign-extended when
//!    PixelRepresentation is 1 ([`crate::dicom::decode`]);
//! 2. Modality LUT: the Modality LUT Sequence when present, otherwise
//!    RescaleSlope/RescaleIntercept (identity when absent) — "source units";
//! 3. MONOCHROME1 inverted so that a higher value is always brighter:
//!    `v' = min + max - v` over the image, which keeps source units;
//! 4. resize to `size`×`size`: `Stretch` (default, as the CheSS paper) or
//!    `Pad` (pad to square with the image minimum first, centred), with a
//!    separable triangle filter whose support widens with the scale factor
//!    (antialiased, like Pillow's BILINEAR reducing filter);
//! 5. clip at the `percentile`-th percentile of the resized image (NumPy's
//!    default linear interpolation); the lower bound is the image minimum;
//! 6. min-max to the full range of the output type (uint16 or uint8),
//!    rounded to nearest. A constant image (range below 1e-5 relative) becomes
//!    all zeros.
//!
//! VOI LUTs and windows are deliberately not applied.

/// How a non-square image becomes square.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Aspect {
    /// Stretch to square (the paper's choice).
    #[default]
    Stretch,
    /// Pad to square with the minimum value, then resize.
    Pad,
}

/// Output bit depth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BitDepth {
    #[default]
    U16,
    U8,
}

/// Pipeline options.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PipelineOptions {
    pub size: u32,
    pub clip_percentile: f64,
    pub aspect: Aspect,
    pub bit_depth: BitDepth,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions { size: 512, clip_percentile: 99.0, aspect: Aspect::Stretch, bit_depth: BitDepth::U16 }
    }
}

/// What the pipeline needs from the header besides the stored values.
#[derive(Debug, Clone, Default)]
pub struct PixelSemantics<'a> {
    pub monochrome1: bool,
    pub rescale_slope: Option<f64>,
    pub rescale_intercept: Option<f64>,
    pub modality_lut: Option<&'a crate::dicom::ModalityLut>,
}

/// The pipeline's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Processed {
    pub size: u32,
    /// `size*size` values; for `BitDepth::U8` they are within 0..=255.
    pub pixels: Vec<u16>,
    /// Upper clip in source units (after the Modality LUT).
    pub clip_value: f64,
}

/// Step 2: stored values to source units.
pub fn modality(stored: &[i32], sem: &PixelSemantics<'_>) -> Vec<f32> {
    let mut out = vec![0f32; stored.len()];
    modality_into(stored, sem, &mut out);
    out
}

/// Step 2 on a part of an image (a row, say) into `out`: so that a pass
/// that already holds the stored values in cache (the burned-in scan's)
/// can convert them on the way.
pub fn modality_into(stored: &[i32], sem: &PixelSemantics<'_>, out: &mut [f32]) {
    if let Some(lut) = sem.modality_lut {
        out.iter_mut().zip(stored).for_each(|(o, &v)| *o = lut.apply(v) as f32);
        return;
    }
    let slope = sem.rescale_slope.unwrap_or(1.0);
    let intercept = sem.rescale_intercept.unwrap_or(0.0);
    if slope == 1.0 && intercept == 0.0 {
        out.iter_mut().zip(stored).for_each(|(o, &v)| *o = v as f32);
    } else {
        out.iter_mut().zip(stored).for_each(|(o, &v)| *o = (v as f64 * slope + intercept) as f32);
    }
}

fn min_max(v: &[f32]) -> (f32, f32) {
    v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// Step 3: MONOCHROME1 inverted in place.
pub fn invert(v: &mut [f32]) {
    let (lo, hi) = min_max(v);
    for x in v {
        *x = lo + hi - *x;
    }
}

/// Precomputed filter taps for one axis: for each output index, the first
/// input index and the normalised weights.
fn taps(in_len: usize, out_len: usize) -> Vec<(usize, Vec<f32>)> {
    let scale = in_len as f64 / out_len as f64;
    let support = scale.max(1.0); // triangle radius in input pixels
    (0..out_len)
        .map(|o| {
            let center = (o as f64 + 0.5) * scale;
            let lo = ((center - support).floor().max(0.0)) as usize;
            let hi = ((center + support).ceil() as usize).min(in_len);
            let mut w: Vec<f64> = (lo..hi)
                .map(|i| {
                    let d = ((i as f64 + 0.5) - center).abs() / support;
                    (1.0 - d).max(0.0)
                })
                .collect();
            let sum: f64 = w.iter().sum();
            if sum > 0.0 {
                w.iter_mut().for_each(|x| *x /= sum);
            } else {
                // Cannot happen for out_len >= 1, kept as a guard.
                w = vec![1.0];
            }
            (lo, w.into_iter().map(|x| x as f32).collect())
        })
        .collect()
}

/// Separable antialiased resize of a `h`×`w` image to `oh`×`ow`.
pub fn resize(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    assert_eq!(src.len(), h * w);
    let tx = taps(w, ow);
    let ty = taps(h, oh);
    // Horizontal pass: h rows of ow.
    let mut tmp = vec![0f32; h * ow];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        let out = &mut tmp[y * ow..(y + 1) * ow];
        for (o, (lo, wt)) in out.iter_mut().zip(&tx) {
            *o = row[*lo..*lo + wt.len()].iter().zip(wt).map(|(a, b)| a * b).sum();
        }
    }
    // Vertical pass.
    let mut dst = vec![0f32; oh * ow];
    for (oy, (lo, wt)) in ty.iter().enumerate() {
        let out = &mut dst[oy * ow..(oy + 1) * ow];
        for (k, &wk) in wt.iter().enumerate() {
            let row = &tmp[(lo + k) * ow..(lo + k + 1) * ow];
            for (o, &r) in out.iter_mut().zip(row) {
                *o += wk * r;
            }
        }
    }
    dst
}

/// Pads a `h`×`w` image to a centred square with `fill`.
pub fn pad_square(src: &[f32], h: usize, w: usize, fill: f32) -> (Vec<f32>, usize) {
    let n = h.max(w);
    let (y0, x0) = ((n - h) / 2, (n - w) / 2);
    let mut out = vec![fill; n * n];
    for y in 0..h {
        out[(y + y0) * n + x0..(y + y0) * n + x0 + w].copy_from_slice(&src[y * w..(y + 1) * w]);
    }
    (out, n)
}

/// NumPy's `np.percentile(v, q)` with linear interpolation.
pub fn percentile(v: &[f32], q: f64) -> f64 {
    assert!(!v.is_empty());
    let mut s: Vec<f32> = v.to_vec();
    let pos = (q / 100.0).clamp(0.0, 1.0) * (s.len() - 1) as f64;
    let i = pos.floor() as usize;
    let frac = pos - i as f64;
    let (_, a, rest) = s.select_nth_unstable_by(i, |a, b| a.total_cmp(b));
    let a = *a as f64;
    if frac == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    a + (b - a) * frac
}

/// Steps 2–6 on one image of stored values.
pub fn run(stored: &[i32], rows: u32, cols: u32, sem: &PixelSemantics<'_>, opts: &PipelineOptions) -> Processed {
    run_on_modality(modality(stored, sem), rows, cols, sem, opts)
}

/// Steps 3–6 on one image already in source units (step 2's [`modality`]).
pub fn run_on_modality(
    mut v: Vec<f32>,
    rows: u32,
    cols: u32,
    sem: &PixelSemantics<'_>,
    opts: &PipelineOptions,
) -> Processed {
    let (h, w) = (rows as usize, cols as usize);
    if sem.monochrome1 {
        invert(&mut v);
    }
    let (lo_src, _) = min_max(&v);
    let (v, h, w) = match opts.aspect {
        Aspect::Stretch => (v, h, w),
        Aspect::Pad => {
            let (p, n) = pad_square(&v, h, w, lo_src);
            (p, n, n)
        }
    };
    let n = opts.size as usize;
    let r = resize(&v, h, w, n, n);
    let (lo, _) = min_max(&r);
    let clip = percentile(&r, opts.clip_percentile);
    let maxv = match opts.bit_depth {
        BitDepth::U16 => u16::MAX as f64,
        BitDepth::U8 => u8::MAX as f64,
    };
    let lo = lo as f64;
    let range = clip - lo;
    // Float noise from resampling a constant image is not contrast.
    let pixels = if range > 1e-5 * lo.abs().max(1.0) {
        r.iter().map(|&x| (((x as f64).min(clip) - lo) / range * maxv).round().clamp(0.0, maxv) as u16).collect()
    } else {
        vec![0; n * n]
    };
    Processed { size: opts.size, pixels, clip_value: clip }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy() {
        // np.percentile([1,2,3,4,5,6,7,8,9,10], 99) == 9.91. Tolerance: two f64
        // roundings of values near 10 (ulp 1.8e-15); 1e-9 is far above that and
        // far below a wrong interpolation (steps of 0.01).
        let v: Vec<f32> = (1..=10).map(|x| x as f32).collect();
        assert!((percentile(&v, 99.0) - 9.91).abs() < 1e-9);
        assert_eq!(percentile(&v, 100.0), 10.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!((percentile(&[3.0, 1.0], 50.0) - 2.0).abs() < 1e-9);
    }

    #[test]
    fn resize_preserves_constants_and_means() {
        let src = vec![7.0f32; 30 * 20];
        let out = resize(&src, 30, 20, 8, 8);
        // Two separable f32 passes of at most ~10 normalised taps each: the
        // weights sum to 1 within 10·2⁻²⁴, so |error| ≤ 2·10·2⁻²⁴·7 ≈ 8e-6 < 1e-4.
        assert!(out.iter().all(|&x| (x - 7.0).abs() < 1e-4));
        // A ramp keeps its mean when reduced by an integer factor.
        let src: Vec<f32> = (0..64 * 64).map(|i| (i % 64) as f32).collect();
        let out = resize(&src, 64, 64, 16, 16);
        let mean_in: f32 = src.iter().sum::<f32>() / src.len() as f32;
        let mean_out: f32 = out.iter().sum::<f32>() / out.len() as f32;
        // Not a float tolerance: the renormalised edge taps may move the mean
        // by a fraction of one input step (1.0); float error is ~1e-5.
        assert!((mean_in - mean_out).abs() < 0.5, "{mean_in} {mean_out}");
        // Upscaling works too.
        let out = resize(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4);
        assert_eq!(out.len(), 16);
    }

    #[test]
    fn monochrome1_is_inverted_and_clip_is_in_source_units() {
        let stored: Vec<i32> = (0..100).collect();
        let opts = PipelineOptions { size: 10, clip_percentile: 100.0, ..Default::default() };
        let m2 = run(&stored, 10, 10, &PixelSemantics::default(), &opts);
        let m1 = run(&stored, 10, 10, &PixelSemantics { monochrome1: true, ..Default::default() }, &opts);
        assert_eq!(m2.pixels[0], 0);
        assert_eq!(m2.pixels[99], 65535);
        assert_eq!(m1.pixels[0], 65535);
        assert_eq!(m1.pixels[99], 0);
        let sem = PixelSemantics { rescale_slope: Some(2.0), rescale_intercept: Some(-1000.0), ..Default::default() };
        let r = run(&stored, 10, 10, &sem, &opts);
        assert_eq!(r.clip_value, 198.0 - 1000.0);
    }

    #[test]
    fn clipping_saturates_the_top_percent() {
        let stored: Vec<i32> = (0..10_000).collect();
        let opts = PipelineOptions { size: 100, bit_depth: BitDepth::U8, ..Default::default() };
        let r = run(&stored, 100, 100, &PixelSemantics::default(), &opts);
        assert!(r.pixels.iter().all(|&p| p <= 255));
        let sat = r.pixels.iter().filter(|&&p| p == 255).count();
        // 1% clipped, plus the values that round up to 255 (half a step: 0.2% of the range).
        assert!((100..=121).contains(&sat), "{sat}");
        assert_eq!(run(&[5; 16], 4, 4, &PixelSemantics::default(), &opts).pixels, vec![0; 100 * 100]);
    }

    #[test]
    fn pad_centres_the_image() {
        let (p, n) = pad_square(&[1.0, 2.0], 1, 2, 0.0);
        assert_eq!(n, 2);
        assert_eq!(p, vec![1.0, 2.0, 0.0, 0.0]);
        let (p, n) = pad_square(&[1.0; 3], 3, 1, 0.0);
        assert_eq!((n, p), (3, vec![0.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0]));
    }
}
