//! How sharp a candidate line is at the source resolution, before OCR is
//! asked: rendered text has edges one or two pixels wide, so the steepest
//! neighbour differences in its box are a large part of its contrast; bone,
//! wire and soft tissue change over many pixels, and their steepest
//! differences are noise.

use super::detect::Rect;

/// Edge sharpness of the box `r` of a row-major image `cols` wide: the
/// 99th percentile of the absolute differences between neighbouring pixels
/// (along rows and columns) over the box's contrast (its 2nd to 98th
/// percentile). About 0.5–1 for rendered text, whose edges cross most of
/// the contrast within two pixels; 0 for a flat box.
pub fn sharpness(values: &[i32], cols: usize, r: Rect) -> f64 {
    if r.w < 2 || r.h < 2 {
        return 0.0;
    }
    let at = |x: usize, y: usize| values[(r.y + y) * cols + r.x + x] as i64;
    let mut px: Vec<i64> = (0..r.h).flat_map(|y| (0..r.w).map(move |x| at(x, y))).collect();
    let lo = percentile(&mut px, 0.02);
    let hi = percentile(&mut px, 0.98);
    if hi <= lo {
        return 0.0;
    }
    let mut diffs: Vec<i64> = Vec::with_capacity(2 * r.w * r.h);
    for y in 0..r.h {
        for x in 0..r.w {
            if x + 1 < r.w {
                diffs.push((at(x + 1, y) - at(x, y)).abs());
            }
            if y + 1 < r.h {
                diffs.push((at(x, y + 1) - at(x, y)).abs());
            }
        }
    }
    percentile(&mut diffs, 0.99) as f64 / (hi - lo) as f64
}

fn percentile(v: &mut [i64], q: f64) -> i64 {
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
