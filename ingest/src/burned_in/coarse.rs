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
//! 4. A candidate with soft edges ([`MIN_SHARPNESS`]) is anatomy and
//!    dropped.
//!
//! Each candidate, grown by its height, is a region for the fine pass;
//! overlapping regions are merged so that the fine pass sees whole lines.
//! A region keeps the sizes of the candidates that named it, so that the
//! fine pass looks at each at a resolution that suits it ([`Region::factors`]).

use super::contrast::sharpness;
use super::detect::{self, Rect, RowVisitor, MAX_THICK, MIN_THICK};

/// Longest side of the coarse image (when [`MAX_FACTOR`] allows).
pub const COARSE_SIDE: usize = 512;
/// Largest block: 8 source pixels of cap height must span two blocks.
pub const MAX_FACTOR: usize = 4;
/// The coarse top-hats' square is wider than this many source pixels: the
/// tallest line (40 pixels of cap height, with descenders), whose glyphs
/// merge into one bar at this scale, still stands out whole.
pub const COARSE_REACH: usize = 56;

/// A candidate line whose [`sharpness`] is below this is not handed to the
/// fine pass: on the bench set's seeds 15–17 (`burned_in_eval --features`,
/// the `coarse` rows) every planted line had a candidate of 0.37 or more,
/// and 60 % of the clean images' candidates (bone and soft-tissue edges)
/// measured less than this.
pub const MIN_SHARPNESS: f64 = 0.25;

/// The fine pass wants a line's glyphs about this many working pixels
/// across: up to twice that, its strokes (a bold face's are a fifth of
/// its height) stay thinner than the top-hats' square
/// ([`super::detect::STROKE_RADIUS`]), and 8 source pixels of cap height
/// stay at full resolution.
pub const FINE_SIZE: usize = 16;

/// A region for the fine pass (source pixels), with the smallest and the
/// largest size (source pixels across the line) of the candidate lines in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub rect: Rect,
    pub smallest: usize,
    pub largest: usize,
}

impl Region {
    /// The fine pass's block sizes for this region: one per size of line
    /// in it, [`FINE_SIZE`] working pixels across (one, or two when its
    /// smallest and largest lines want different ones).
    pub fn factors(&self) -> impl Iterator<Item = usize> {
        let of = |size: usize| (size / FINE_SIZE).max(1);
        let (a, b) = (of(self.smallest), of(self.largest));
        std::iter::once(a).chain((b != a).then_some(b))
    }
}

/// The block size for a `rows × cols` image.
pub fn factor(rows: usize, cols: usize) -> usize {
    rows.max(cols).div_ceil(COARSE_SIDE).clamp(1, MAX_FACTOR)
}

/// Candidate regions (source pixels, disjoint) of a `rows × cols` image
/// whose robust range is `range`; empty when nothing looks like a line.
/// Every row goes to `visit` once, in order, while the pass holds it.
pub fn candidates(values: &[i32], rows: usize, cols: usize, range: (i32, i32), visit: RowVisitor<'_>) -> Vec<Region> {
    let f = factor(rows, cols);
    let regions = candidate_lines(values, rows, cols, range, visit)
        .into_iter()
        // Soft candidates are anatomy: not worth the fine pass.
        .filter(|&(line, size)| sharpness(values, cols, line.grown(size / 3 + 1, cols, rows)) >= MIN_SHARPNESS)
        .map(|(line, size)| Region { rect: line.grown((size + 1) * f, cols, rows), smallest: size, largest: size })
        .collect();
    merge(regions)
}

/// The first pass's candidate lines (source pixels, possibly overlapping)
/// with their sizes across the line (source pixels).
pub fn candidate_lines(
    values: &[i32],
    rows: usize,
    cols: usize,
    range: (i32, i32),
    visit: RowVisitor<'_>,
) -> Vec<(Rect, usize)> {
    let f = factor(rows, cols);
    let levels = detect::Levels::narrow(range);
    let (hi, lo, w, h) = detect::blocks(values, cols, (0, 0, cols, rows), f, &levels, visit);
    let narrow = |v: Vec<u16>| -> Vec<u8> { v.into_iter().map(|l| l as u8).collect() };
    let (hi, lo) = (narrow(hi), narrow(lo));
    let (white, black) = detect::stroke_masks(&hi, &lo, w, h, COARSE_REACH.div_ceil(2 * f), &levels);
    drop((hi, lo));
    let (min_thick, max_thick) = ((6 / f).clamp(2, MIN_THICK), MAX_THICK.div_ceil(f) + 1);
    let mut lines = Vec::new();
    // One ink at a time: a line of text is drawn in one, and the gaps
    // between bright glyphs are dark marks of another size.
    for mask in [&white, &black] {
        // At this scale a word of small text is one solid bar: no fill limit.
        let glyphs = detect::components(mask, w, h, min_thick, max_thick, 1.0);
        for vertical in [false, true] {
            for g in detect::group(&glyphs, vertical, 1) {
                // Its core: the sharpness test measures the text, not the
                // anatomy a glyph touches (the region is grown anyway).
                let (c, size) = (g.core, g.size);
                let r = Rect {
                    x: c.x0 * f,
                    y: c.y0 * f,
                    w: (c.w() * f).min(cols - c.x0 * f),
                    h: (c.h() * f).min(rows - c.y0 * f),
                };
                lines.push((r, size * f));
            }
        }
    }
    lines
}

fn overlap(a: &Rect, b: &Rect) -> bool {
    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h
}

/// Merges overlapping regions into their bounding boxes (and the range of
/// their sizes) until none overlap.
fn merge(mut regions: Vec<Region>) -> Vec<Region> {
    let mut merged = true;
    while merged {
        merged = false;
        let mut out: Vec<Region> = Vec::with_capacity(regions.len());
        for r in regions {
            if let Some(o) = out.iter_mut().find(|o| overlap(&o.rect, &r.rect)) {
                let (a, b) = (&mut o.rect, r.rect);
                let (x1, y1) = ((a.x + a.w).max(b.x + b.w), (a.y + a.h).max(b.y + b.h));
                a.x = a.x.min(b.x);
                a.y = a.y.min(b.y);
                a.w = x1 - a.x;
                a.h = y1 - a.y;
                o.smallest = o.smallest.min(r.smallest);
                o.largest = o.largest.max(r.largest);
                merged = true;
            } else {
                out.push(r);
            }
        }
        regions = out;
    }
    regions.sort_by_key(|r| (r.rect.y, r.rect.x));
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(x: usize, y: usize, w: usize, h: usize, size: usize) -> Region {
        Region { rect: Rect { x, y, w, h }, smallest: size, largest: size }
    }

    #[test]
    fn overlapping_regions_merge_and_apart_ones_do_not() {
        let (a, b, c, d) =
            (region(0, 0, 10, 10, 9), region(5, 5, 10, 10, 40), region(14, 14, 5, 5, 12), region(100, 0, 5, 5, 8));
        let whole = Region { rect: Rect { x: 0, y: 0, w: 19, h: 19 }, smallest: 9, largest: 40 };
        assert_eq!(merge(vec![a, d, c, b]), vec![whole, d]);
    }

    #[test]
    fn small_and_large_lines_get_their_own_fine_factors() {
        assert_eq!(region(0, 0, 9, 9, 10).factors().collect::<Vec<_>>(), vec![1], "cap 8-10: full resolution");
        assert_eq!(region(0, 0, 9, 9, 31).factors().collect::<Vec<_>>(), vec![1]);
        let both = Region { rect: Rect { x: 0, y: 0, w: 9, h: 9 }, smallest: 10, largest: 56 };
        assert_eq!(both.factors().collect::<Vec<_>>(), vec![1, 3], "cap 40 bold: strokes under the square");
    }

    #[test]
    fn factor_keeps_eight_pixel_text_two_blocks_tall() {
        assert_eq!(factor(300, 200), 1);
        assert_eq!(factor(1955, 1841), 4);
        assert_eq!(factor(4096, 4096), MAX_FACTOR);
    }
}
