//! The cheap first pass of the burned-in cascade: which regions of an image
//! could hold a line of text, from a small copy of it, so that an image
//! without any (most radiographs) costs one pass over its pixels and a few
//! passes over an image 16 times smaller, and nothing else.
//!
//! 1. Blocks of `f × f` source pixels (`f` up to [`MAX_FACTOR`], bringing
//!    the longer side to about [`COARSE_SIDE`]), each kept as its maximum
//!    and its minimum: a one-pixel stroke survives, and a cap height of 8
//!    source pixels still spans two blocks.
//! 2. The same stroke test as the fine pass ([`super::detect`]): top-hats
//!    with a square wider than [`COARSE_REACH`] source pixels, contrast and
//!    ink near an end of the range.
//! 3. Connected components of text height (8–40 source pixels of cap
//!    height, descenders included), grouped into lines as the fine pass
//!    does, except that one component may be a whole line: at this scale
//!    the glyphs of small text merge into one bar. A line at least
//!    [`super::detect::MIN_LINE_LENGTH`] heights long is a candidate.
//!
//! Each candidate, grown by its height, is a region for the fine pass;
//! overlapping regions are merged so that the fine pass sees whole lines.

use super::detect::{self, Rect, MAX_THICK, MIN_THICK};

/// Longest side of the coarse image (when [`MAX_FACTOR`] allows).
pub const COARSE_SIDE: usize = 512;
/// Largest block: 8 source pixels of cap height must span two blocks.
pub const MAX_FACTOR: usize = 4;
/// The coarse top-hats' square is wider than this many source pixels: the
/// tallest line (40 pixels of cap height, with descenders), whose glyphs
/// merge into one bar at this scale, still stands out whole.
pub const COARSE_REACH: usize = 56;

/// The block size for a `rows × cols` image.
pub fn factor(rows: usize, cols: usize) -> usize {
    rows.max(cols).div_ceil(COARSE_SIDE).clamp(1, MAX_FACTOR)
}

/// Candidate regions (source pixels, disjoint) of a `rows × cols` image
/// whose robust range is `range`; empty when nothing looks like a line.
pub fn candidates(values: &[i32], rows: usize, cols: usize, range: (i32, i32)) -> Vec<Rect> {
    let f = factor(rows, cols);
    let levels = detect::Levels::new(range);
    let (hi, lo, w, h) = detect::blocks(values, cols, (0, 0, cols, rows), f, &levels);
    let (white, black) = detect::stroke_masks(&hi, &lo, w, h, COARSE_REACH.div_ceil(2 * f), &levels);
    drop((hi, lo));
    let (min_thick, max_thick) = ((6 / f).clamp(2, MIN_THICK), MAX_THICK.div_ceil(f) + 1);
    let mut regions: Vec<Rect> = Vec::new();
    // One ink at a time: a line of text is drawn in one, and the gaps
    // between bright glyphs are dark marks of another size.
    for mask in [&white, &black] {
        // At this scale a word of small text is one solid bar: no fill limit.
        let glyphs = detect::components(mask, w, h, min_thick, max_thick, 1.0);
        for vertical in [false, true] {
            for (c, size, _) in detect::group(&glyphs, vertical, 1) {
                let r = Rect { x: c.x0 * f, y: c.y0 * f, w: c.w() * f, h: c.h() * f };
                regions.push(r.grown((size + 1) * f, cols, rows));
            }
        }
    }
    merge(regions)
}

fn overlap(a: &Rect, b: &Rect) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

/// Merges overlapping rectangles into their bounding boxes until none overlap.
fn merge(mut rects: Vec<Rect>) -> Vec<Rect> {
    let mut merged = true;
    while merged {
        merged = false;
        let mut out: Vec<Rect> = Vec::with_capacity(rects.len());
        for r in rects {
            if let Some(o) = out.iter_mut().find(|o| overlap(o, &r)) {
                let (x1, y1) = ((o.x + o.w).max(r.x + r.w), (o.y + o.h).max(r.y + r.h));
                o.x = o.x.min(r.x);
                o.y = o.y.min(r.y);
                o.w = x1 - o.x;
                o.h = y1 - o.y;
                merged = true;
            } else {
                out.push(r);
            }
        }
        rects = out;
    }
    rects.sort_by_key(|r| (r.y, r.x));
    rects
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_regions_merge_and_apart_ones_do_not() {
        let a = Rect { x: 0, y: 0, w: 10, h: 10 };
        let b = Rect { x: 5, y: 5, w: 10, h: 10 };
        let c = Rect { x: 14, y: 14, w: 5, h: 5 };
        let d = Rect { x: 100, y: 0, w: 5, h: 5 };
        assert_eq!(merge(vec![a, d, c, b]), vec![Rect { x: 0, y: 0, w: 19, h: 19 }, d]);
    }

    #[test]
    fn factor_keeps_eight_pixel_text_two_blocks_tall() {
        assert_eq!(factor(300, 200), 1);
        assert_eq!(factor(1955, 1841), 4);
        assert_eq!(factor(4096, 4096), MAX_FACTOR);
    }
}
