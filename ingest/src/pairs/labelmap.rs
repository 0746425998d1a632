//! Resizing masks: label maps (class ids) take nearest neighbour, never
//! interpolation, clipping or normalisation.

use crate::pipeline::Aspect;

/// Nearest-neighbour resize of a label map to `size`×`size` (padded to
/// square with 0 first for `Aspect::Pad`, as the image pipeline pads).
/// Output pixel `i` samples input `floor((i + ½)·in/out)` in exact integer
/// arithmetic, as PyTorch's `interpolate(mode="nearest-exact")` (PIL's
/// NEAREST rounds some exact ties the other way through float error).
pub fn resize_labels(values: &[u8], rows: usize, cols: usize, size: usize, aspect: Aspect) -> Vec<u8> {
    let (src, h, w) = match aspect {
        Aspect::Stretch => (values.to_vec(), rows, cols),
        Aspect::Pad => {
            let n = rows.max(cols);
            let (top, left) = ((n - rows) / 2, (n - cols) / 2);
            let mut p = vec![0u8; n * n];
            for y in 0..rows {
                p[(top + y) * n + left..(top + y) * n + left + cols].copy_from_slice(&values[y * cols..(y + 1) * cols]);
            }
            (p, n, n)
        }
    };
    let pick = |i: usize, inn: usize| (((2 * i + 1) * inn) / (2 * size)).min(inn - 1);
    let xs: Vec<usize> = (0..size).map(|x| pick(x, w)).collect();
    let mut out = Vec::with_capacity(size * size);
    for y in 0..size {
        let sy = pick(y, h);
        out.extend(xs.iter().map(|&sx| src[sy * w + sx]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_labels_keep_values_and_geometry() {
        // 2×4 map to 4×4: each column pair maps to one source column.
        let m = [0u8, 1, 2, 3, 4, 5, 6, 7];
        let out = resize_labels(&m, 2, 4, 4, Aspect::Stretch);
        assert_eq!(out, vec![0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 4, 5, 6, 7]);
        // Pad: the 2 rows sit in the middle of a 4×4 of zeros.
        let out = resize_labels(&m, 2, 4, 4, Aspect::Pad);
        assert_eq!(out, vec![0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]);
        // Downscaling picks, never averages.
        let big: Vec<u8> = (0..64).map(|i| if i % 2 == 0 { 9 } else { 0 }).collect();
        let out = resize_labels(&big, 8, 8, 3, Aspect::Stretch);
        assert!(out.iter().all(|&v| v == 9 || v == 0));
    }
}
