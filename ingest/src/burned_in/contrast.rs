//! How sharp a candidate line is at the source resolution, before OCR is
//! asked: rendered text has edges one or two pixels wide, so the steepest
//! neighbour differences in its box are a large part of its contrast; bone,
//! wire and soft tissue change over many pixels, and their steepest
//! differences are noise.

use super::detect::Rect;

/// Most pixels [`sharpness`] looks at: a larger box is sampled every few
/// rows (percentiles of a few thousand values are as good as of all).
pub const MAX_SAMPLES: usize = 2048;

/// Edge sharpness of the box `r` of a row-major image `cols` wide: the
/// 99th percentile of the absolute differences between neighbouring pixels
/// (along rows and columns) over the box's contrast (its 2nd to 98th
/// percentile). About 0.5–1 for rendered text, whose edges cross most of
/// the contrast within two pixels; 0 for a flat box. A box of more than
/// [`MAX_SAMPLES`] pixels is measured on every `k`-th row (and the
/// differences down from it).
pub fn sharpness(values: &[i32], cols: usize, r: Rect) -> f64 {
    if r.w < 2 || r.h < 2 {
        return 0.0;
    }
    let step = (r.w * r.h / MAX_SAMPLES).max(1);
    let row = |y: usize| &values[(r.y + y) * cols + r.x..(r.y + y) * cols + r.x + r.w];
    let sampled = || (0..r.h).step_by(step);
    let mut px: Vec<i32> = sampled().flat_map(|y| row(y).iter().copied()).collect();
    let lo = percentile(&mut px, 0.02) as i64;
    let hi = percentile(&mut px, 0.98) as i64;
    if hi <= lo {
        return 0.0;
    }
    let diff = |a: i32, b: i32| (a as i64 - b as i64).unsigned_abs().min(u32::MAX as u64) as u32;
    let mut diffs: Vec<u32> = Vec::with_capacity(2 * px.len());
    for y in sampled() {
        let here = row(y);
        diffs.extend(here.windows(2).map(|p| diff(p[1], p[0])));
        if y + 1 < r.h {
            diffs.extend(row(y + 1).iter().zip(here).map(|(&b, &a)| diff(b, a)));
        }
    }
    percentile(&mut diffs, 0.99) as f64 / (hi - lo) as f64
}

fn percentile<T: Ord + Copy>(v: &mut [T], q: f64) -> T {
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    *v.select_nth_unstable(i).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharp_strokes_score_high_and_a_smooth_edge_low() {
        let (w, h) = (40, 20);
        let all = Rect { x: 0, y: 0, w, h };
        // Bars two pixels wide, four apart: strokes.
        let bars: Vec<i32> = (0..w * h).map(|i| if (i % w) % 6 < 2 { 4000 } else { 100 }).collect();
        assert!(sharpness(&bars, w, all) > 0.9);
        // A ramp across the box: an edge of anatomy.
        let ramp: Vec<i32> = (0..w * h).map(|i| (i % w) as i32 * 100).collect();
        assert!(sharpness(&ramp, w, all) < 0.05);
        assert_eq!(sharpness(&[7; 800], w, all), 0.0);
    }
}
