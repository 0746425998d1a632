//! The cheap text-region detector in front of OCR: which parts of an image
//! look like lines of text, at a cost of a few passes over its pixels.
//!
//! 1. Working resolution: blocks of `f × f` source pixels (`f` the smallest
//!    factor that brings the longer side to ≤ [`WORK_MAX`]), each kept as
//!    its maximum and its minimum so that a one-pixel stroke survives.
//!    A cap height of 8 source pixels is ≥ 4 working pixels up to 4096-pixel
//!    images.
//! 2. Strokes: white and black morphological top-hats (the maxima minus
//!    their opening, the closing of the minima minus them) with a square of
//!    `2·`[`STROKE_RADIUS`]`+1` working pixels, thresholded at
//!    [`EDGE_FRACTION`] of the image's robust range (0.1th to 99.9th
//!    percentile), and within [`INK_FRACTION`] of the range's top (white
//!    marks) or bottom (black marks): thin, high-contrast marks in ink of
//!    either polarity — rendered text; anatomy is soft and seldom at the
//!    ends of the range, and a collimator edge is a step, not a stroke.
//! 3. Connected components (8-neighbourhood) of the edge map, kept when
//!    glyph- or word-sized: thickness (the shorter side) between
//!    [`MIN_THICK`] and [`MAX_THICK`] working pixels, length at most
//!    [`MAX_ELONGATION`] times the thickness, and enough of the box filled.
//!    Collimator edges, wires and the image border fail these.
//! 4. Lines: components of similar size side by side (horizontally, or
//!    vertically for text rotated by 90°), gaps below 1.5 sizes, grouped;
//!    a group of two or more glyphs at least [`MIN_LINE_LENGTH`] sizes long
//!    is a text line. A
//!    single letter or two (`L`, `R`, `PA`, `AP`) is shorter than that and
//!    never a line.
//!
//! The result is in source pixel coordinates.

/// Longest working side.
pub const WORK_MAX: usize = 2048;
/// Stroke contrast threshold as a fraction of the robust range.
pub const EDGE_FRACTION: f64 = 0.12;
/// Ink: within this fraction of the robust range from its top (white
/// strokes) or its bottom (black strokes).
pub const INK_FRACTION: f64 = 0.25;
/// Half the width of the top-hats' square: strokes up to `2r` working pixels.
pub const STROKE_RADIUS: usize = 4;
/// Glyph thickness bounds, working pixels.
pub const MIN_THICK: usize = 4;
pub const MAX_THICK: usize = 72;
/// Longest component, in thicknesses (a word of merged glyphs).
pub const MAX_ELONGATION: usize = 30;
/// Most of a glyph's box its marks fill (a solid block is no glyph).
pub const MAX_FILL: f64 = 0.97;
/// Fewest glyphs in a line (one long mark is an edge or a wire, and small
/// text whose glyphs all merge into one mark is missed for that).
pub const MIN_GLYPHS: usize = 2;
/// Shortest text line, in line thicknesses (three glyphs or so).
pub const MIN_LINE_LENGTH: f64 = 2.8;

/// A rectangle in source pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub w: usize,
    pub h: usize,
}

impl Rect {
    /// Grown by `by` on every side, clipped to `cols × rows`.
    pub fn grown(self, by: usize, cols: usize, rows: usize) -> Rect {
        let x = self.x.saturating_sub(by);
        let y = self.y.saturating_sub(by);
        let x1 = (self.x + self.w + by).min(cols);
        let y1 = (self.y + self.h + by).min(rows);
        Rect { x, y, w: x1 - x, h: y1 - y }
    }
}

/// A candidate line of text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Line {
    /// Its box, source pixels.
    pub rect: Rect,
    /// Its glyphs' size across the line, source pixels.
    pub size: usize,
    /// Runs top to bottom (text rotated by 90°).
    pub vertical: bool,
    /// Its glyphs (connected marks; touching glyphs count as one).
    pub glyphs: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Comp {
    pub(super) x0: usize,
    pub(super) y0: usize,
    pub(super) x1: usize,
    pub(super) y1: usize,
    pub(super) n: usize,
}

impl Comp {
    pub(super) fn w(&self) -> usize {
        self.x1 - self.x0 + 1
    }
    pub(super) fn h(&self) -> usize {
        self.y1 - self.y0 + 1
    }
}

fn find(parent: &mut [u32], mut i: u32) -> u32 {
    while parent[i as usize] != i {
        parent[i as usize] = parent[parent[i as usize] as usize];
        i = parent[i as usize];
    }
    i
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb) as usize] = ra.min(rb);
    }
}

/// The robust range of `values` (0.1th..99.9th percentile of a subsample
/// of about 20,000 values, by selection: no sort).
pub fn robust_range(values: &[i32]) -> (i32, i32) {
    let step = (values.len() / 20_000).max(1);
    let mut s: Vec<i32> = values.iter().step_by(step).copied().collect();
    if s.is_empty() {
        return (0, 0);
    }
    let n = s.len() - 1;
    let (i0, i1) = ((n as f64 * 0.001).round() as usize, (n as f64 * 0.999).round() as usize);
    let lo = *s.select_nth_unstable(i0).1;
    let hi = *s.select_nth_unstable(i1).1;
    (lo, hi)
}

/// Running max (or min, by `pick`) over windows of `2r + 1` of `line`
/// (values outside it are `id`), into `dst`, in O(n) (van Herk /
/// Gil–Werman: block-wise prefix and suffix runs). `g` and `h` are scratch.
fn run_filter<P: Fn(i32, i32) -> i32 + Copy>(
    line: &[i32],
    dst: &mut [i32],
    r: usize,
    pick: P,
    id: i32,
    g: &mut Vec<i32>,
    h: &mut Vec<i32>,
) {
    let (n, k) = (line.len(), 2 * r + 1);
    let len = n + 2 * r;
    g.clear();
    g.resize(len, id);
    h.clear();
    h.resize(len, id);
    g[r..r + n].copy_from_slice(line);
    h[r..r + n].copy_from_slice(line);
    for block in g.chunks_mut(k) {
        for j in 1..block.len() {
            block[j] = pick(block[j - 1], block[j]);
        }
    }
    for block in h.chunks_mut(k) {
        for j in (0..block.len().saturating_sub(1)).rev() {
            block[j] = pick(block[j + 1], block[j]);
        }
    }
    for (i, d) in dst.iter_mut().enumerate().take(n) {
        // the window [i, i + 2r] in padded indices
        *d = pick(h[i], g[i + 2 * r]);
    }
}

/// Square `(2r + 1)²` dilation (`pick` = max) or erosion (min): rows one
/// by one, then columns as whole rows at a time (the same block-wise runs,
/// element-wise over a row, which vectorises).
pub(super) fn square<P: Fn(i32, i32) -> i32 + Copy>(
    src: &[i32],
    w: usize,
    h: usize,
    r: usize,
    pick: P,
    id: i32,
) -> Vec<i32> {
    let mut tmp = vec![0; w * h];
    let (mut g, mut hh) = (Vec::new(), Vec::new());
    for y in 0..h {
        run_filter(&src[y * w..(y + 1) * w], &mut tmp[y * w..(y + 1) * w], r, pick, id, &mut g, &mut hh);
    }
    let (k, len) = (2 * r + 1, h + 2 * r);
    // Padded rows: r rows of `id` above and below.
    let mut pg = vec![id; len * w];
    pg[r * w..(r + h) * w].copy_from_slice(&tmp);
    let mut ph = pg.clone();
    for b in (0..len).step_by(k) {
        let end = (b + k).min(len);
        for j in b + 1..end {
            let (prev, cur) = pg[(j - 1) * w..(j + 1) * w].split_at_mut(w);
            cur.iter_mut().zip(prev.iter()).for_each(|(c, &p)| *c = pick(p, *c));
        }
        for j in (b..end.saturating_sub(1)).rev() {
            let (cur, next) = ph[j * w..(j + 2) * w].split_at_mut(w);
            cur.iter_mut().zip(next.iter()).for_each(|(c, &n)| *c = pick(n, *c));
        }
    }
    for (i, out) in tmp.chunks_mut(w).enumerate() {
        let (a, b) = (&ph[i * w..(i + 1) * w], &pg[(i + 2 * r) * w..(i + 2 * r + 1) * w]);
        out.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&x, &y))| *o = pick(x, y));
    }
    tmp
}

#[cfg(test)]
fn square_naive(src: &[i32], w: usize, h: usize, r: usize, pick: fn(i32, i32) -> i32, id: i32) -> Vec<i32> {
    let mut out = vec![id; w * h];
    for y in 0..h {
        for x in 0..w {
            let mut m = id;
            for yy in y.saturating_sub(r)..(y + r + 1).min(h) {
                for xx in x.saturating_sub(r)..(x + r + 1).min(w) {
                    m = pick(m, src[yy * w + xx]);
                }
            }
            out[y * w + x] = m;
        }
    }
    out
}

/// Finds the lines of text-like marks in a `rows × cols` image of stored
/// (or modality) values: the cheap first pass ([`super::coarse`]) names the
/// candidate regions, the fine pass below looks for lines in each. Empty
/// for an image without sharp marks, after the first pass only.
pub fn text_lines(values: &[i32], rows: usize, cols: usize) -> Vec<Line> {
    if rows < 8 || cols < 8 || values.len() < rows * cols {
        return Vec::new();
    }
    let range = robust_range(&values[..rows * cols]);
    let mut lines = Vec::new();
    for region in super::coarse::candidates(values, rows, cols, range) {
        lines.extend(lines_in(values, rows, cols, region, range));
    }
    lines
}

/// The fine pass: the lines of text-like marks inside `region` (source
/// pixels) of a `rows × cols` image whose robust range is `range`, at the
/// working resolution of the whole image.
pub fn lines_in(values: &[i32], rows: usize, cols: usize, region: Rect, range: (i32, i32)) -> Vec<Line> {
    let f = rows.max(cols).div_ceil(WORK_MAX).max(1);
    // The region on whole working pixels, so that blocks match the whole-image grid.
    let (x0, y0) = (region.x / f * f, region.y / f * f);
    let (x1, y1) = ((region.x + region.w).min(cols), (region.y + region.h).min(rows));
    if x1 <= x0 || y1 <= y0 {
        return Vec::new();
    }
    let (w, h) = ((x1 - x0).div_ceil(f), (y1 - y0).div_ceil(f));
    let mut hi = vec![i32::MIN; w * h];
    let mut lo = vec![i32::MAX; w * h];
    for y in y0..y1 {
        let row = &values[y * cols + x0..y * cols + x1];
        let wy = ((y - y0) / f) * w;
        for (x, &v) in row.iter().enumerate() {
            let i = wy + x / f;
            hi[i] = hi[i].max(v);
            lo[i] = lo[i].min(v);
        }
    }
    let (white, black) = stroke_masks(&hi, &lo, w, h, STROKE_RADIUS, range);
    drop((hi, lo));
    let mut lines = Vec::new();
    // One ink at a time: a line of text is drawn in one, and the gaps
    // between bright glyphs are dark marks of another size.
    for mask in [&white, &black] {
        let glyphs = components(mask, w, h, MIN_THICK, MAX_THICK, MAX_FILL);
        for vertical in [false, true] {
            lines.extend(group(&glyphs, vertical, MIN_GLYPHS).into_iter().map(|(c, size, n)| Line {
                rect: Rect {
                    x: x0 + c.x0 * f,
                    y: y0 + c.y0 * f,
                    w: (c.w() * f).min(cols - (x0 + c.x0 * f)),
                    h: (c.h() * f).min(rows - (y0 + c.y0 * f)),
                },
                size: size * f,
                vertical,
                glyphs: n,
            }));
        }
    }
    lines
}

/// The white and black stroke masks of a block-maximum / block-minimum
/// image pair: top-hats with a `(2r + 1)²` square above [`EDGE_FRACTION`]
/// of `range`, in ink near its top (white) or bottom (black).
pub(super) fn stroke_masks(
    hi: &[i32],
    lo: &[i32],
    w: usize,
    h: usize,
    r: usize,
    range: (i32, i32),
) -> (Vec<bool>, Vec<bool>) {
    let (p0, p1) = (range.0 as f64, range.1 as f64);
    let threshold = ((p1 - p0) * EDGE_FRACTION).max(1.0);
    // Top-hats: what an opening (closing) by a square wider than any stroke
    // removes. A stroke, bright or dark, stands out; a step edge does not.
    let open = square(&square(hi, w, h, r, i32::min, i32::MAX), w, h, r, i32::max, i32::MIN);
    let close = square(&square(lo, w, h, r, i32::max, i32::MIN), w, h, r, i32::min, i32::MAX);
    // Bright strokes and dark strokes apart: between bright glyphs, the gaps
    // are dark "strokes" too, and together they would fill the word's box.
    // Rendered text is drawn near an end of the range (white or black ink);
    // bright bone and dark gas are strokes too, but rarely that far out.
    let (top, bottom) = (p1 - INK_FRACTION * (p1 - p0), p0 + INK_FRACTION * (p1 - p0));
    let white = (0..w * h).map(|i| hi[i] as f64 - open[i] as f64 > threshold && hi[i] as f64 >= top).collect();
    let black = (0..w * h).map(|i| close[i] as f64 - lo[i] as f64 > threshold && lo[i] as f64 <= bottom).collect();
    (white, black)
}

/// The glyph-sized connected components (8-neighbourhood) of a `w × h`
/// mask: thickness (the shorter side) in `min_thick..=max_thick`.
pub(super) fn components(
    edge: &[bool],
    w: usize,
    h: usize,
    min_thick: usize,
    max_thick: usize,
    max_fill: f64,
) -> Vec<Comp> {
    // Connected components, two passes with union-find.
    let mut label = vec![u32::MAX; w * h];
    let mut parent: Vec<u32> = Vec::new();
    for y in 0..h {
        for x in 0..w {
            if !edge[y * w + x] {
                continue;
            }
            let mut mine = u32::MAX;
            let neighbours = [
                (x > 0).then(|| y * w + x - 1),
                (y > 0 && x > 0).then(|| (y - 1) * w + x - 1),
                (y > 0).then(|| (y - 1) * w + x),
                (y > 0 && x + 1 < w).then(|| (y - 1) * w + x + 1),
            ];
            for j in neighbours.into_iter().flatten() {
                let l = label[j];
                if l == u32::MAX {
                    continue;
                }
                if mine == u32::MAX {
                    mine = l;
                } else if mine != l {
                    union(&mut parent, mine, l);
                }
            }
            if mine == u32::MAX {
                mine = parent.len() as u32;
                parent.push(mine);
            }
            label[y * w + x] = mine;
        }
    }
    let mut comps: Vec<Option<Comp>> = vec![None; parent.len()];
    for y in 0..h {
        for x in 0..w {
            let l = label[y * w + x];
            if l == u32::MAX {
                continue;
            }
            let r = find(&mut parent, l) as usize;
            let c = comps[r].get_or_insert(Comp { x0: x, y0: y, x1: x, y1: y, n: 0 });
            c.x0 = c.x0.min(x);
            c.x1 = c.x1.max(x);
            c.y0 = c.y0.min(y);
            c.y1 = c.y1.max(y);
            c.n += 1;
        }
    }
    comps
        .into_iter()
        .flatten()
        .filter(|c| {
            let (t, l) = (c.w().min(c.h()), c.w().max(c.h()));
            let fill = c.n as f64 / (c.w() * c.h()) as f64;
            (min_thick..=max_thick).contains(&t) && l <= MAX_ELONGATION * t && (0.12..=max_fill).contains(&fill)
        })
        .collect()
}

/// Groups glyphs into lines along x (or y when `vertical`); returns each
/// line's box and glyph size when it is long enough and has at least
/// `min_glyphs` of them.
pub(super) fn group(glyphs: &[Comp], vertical: bool, min_glyphs: usize) -> Vec<(Comp, usize, usize)> {
    // (along start, along end, across start, across end) of each glyph.
    let span = |c: &Comp| if vertical { (c.y0, c.y1, c.x0, c.x1) } else { (c.x0, c.x1, c.y0, c.y1) };
    let mut order: Vec<usize> = (0..glyphs.len()).collect();
    order.sort_by_key(|&i| span(&glyphs[i]).0);
    let mut parent: Vec<u32> = (0..glyphs.len() as u32).collect();
    for (k, &i) in order.iter().enumerate() {
        let (_, a1, b0, b1) = span(&glyphs[i]);
        let si = b1 - b0 + 1;
        for &j in &order[k + 1..] {
            let (c0, _, d0, d1) = span(&glyphs[j]);
            let sj = d1 - d0 + 1;
            let size = si.max(sj);
            if c0 > a1 + size * 3 / 2 {
                break; // sorted by start: nothing further is near
            }
            let similar = si.min(sj) * 2 >= size;
            let centre = |s: usize, e: usize| (s + e) as f64 / 2.0;
            let aligned = (centre(b0, b1) - centre(d0, d1)).abs() <= 0.4 * size as f64;
            if similar && aligned {
                union(&mut parent, i as u32, j as u32);
            }
        }
    }
    let mut groups: std::collections::BTreeMap<u32, (Comp, Vec<usize>)> = Default::default();
    // (box, sizes of its glyphs, glyph count)
    for (i, &c) in glyphs.iter().enumerate() {
        let r = find(&mut parent, i as u32);
        let (_, _, b0, b1) = span(&c);
        let e = groups.entry(r).or_insert((c, Vec::new()));
        e.0 = Comp {
            x0: e.0.x0.min(c.x0),
            y0: e.0.y0.min(c.y0),
            x1: e.0.x1.max(c.x1),
            y1: e.0.y1.max(c.y1),
            n: e.0.n + c.n,
        };
        e.1.push(b1 - b0 + 1);
    }
    groups
        .into_values()
        .filter_map(|(c, mut sizes)| {
            sizes.sort_unstable();
            let size = sizes[sizes.len() / 2];
            let along = if vertical { c.h() } else { c.w() };
            let across = if vertical { c.w() } else { c.h() };
            // A line is long for its size, not much thicker than its glyphs,
            // and made of several of them (one long mark is an edge or a wire).
            (sizes.len() >= min_glyphs && along as f64 >= MIN_LINE_LENGTH * size as f64 && across <= size * 2)
                .then_some((c, size, sizes.len()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smooth "radiograph" with bars standing in for glyphs.
    fn image(rows: usize, cols: usize, glyphs: &[(usize, usize, usize, usize)]) -> Vec<i32> {
        let mut v: Vec<i32> = (0..rows * cols)
            .map(|i| {
                let (y, x) = ((i / cols) as f64, (i % cols) as f64);
                (1500.0 + 800.0 * (x / 90.0).sin() * (y / 70.0).cos()) as i32
            })
            .collect();
        for &(x, y, w, h) in glyphs {
            for yy in y..y + h {
                for xx in x..x + w {
                    // an outlined glyph: a ring two pixels thick
                    if yy < y + 2 || yy >= y + h - 2 || xx < x + 2 || xx >= x + w - 2 {
                        v[yy * cols + xx] = 4095;
                    }
                }
            }
        }
        v
    }

    #[test]
    fn square_filters_match_the_naive_ones() {
        let (w, h) = (37, 23);
        let v: Vec<i32> = (0..w * h).map(|i| ((i * 7919) % 1013) as i32 - 300).collect();
        for r in [0, 1, 2, 5, 30] {
            assert_eq!(
                square(&v, w, h, r, i32::max, i32::MIN),
                square_naive(&v, w, h, r, i32::max, i32::MIN),
                "max r {r}"
            );
            assert_eq!(
                square(&v, w, h, r, i32::min, i32::MAX),
                square_naive(&v, w, h, r, i32::min, i32::MAX),
                "min r {r}"
            );
        }
    }

    #[test]
    fn a_row_of_glyphs_is_a_line_and_one_or_two_are_not() {
        let (rows, cols) = (600, 500);
        assert!(text_lines(&image(rows, cols, &[]), rows, cols).is_empty(), "a smooth image has no text");
        let word: Vec<_> = (0..6).map(|i| (40 + i * 14, 50, 10, 16)).collect();
        let lines = text_lines(&image(rows, cols, &word), rows, cols);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(!lines[0].vertical);
        let r = lines[0].rect;
        assert!(r.x <= 40 && r.x + r.w >= 40 + 5 * 14 + 10 && r.y <= 50 && r.y + r.h >= 66, "{r:?}");
        // A collimator: a sharp step along a jagged boundary is no stroke.
        let mut step = image(rows, cols, &[]);
        for (i, v) in step.iter_mut().enumerate() {
            let (y, x) = (i / cols, i % cols);
            if x < 100 + (y / 7) % 5 * 3 || y < 60 + (x / 9) % 4 * 4 {
                *v = 4095;
            }
        }
        assert!(text_lines(&step, rows, cols).is_empty(), "{:?}", text_lines(&step, rows, cols));
        let marker = [(300, 300, 10, 16), (314, 300, 10, 16)];
        assert!(text_lines(&image(rows, cols, &marker), rows, cols).is_empty(), "two glyphs are a marker");
        let down: Vec<_> = (0..5).map(|i| (400, 100 + i * 14, 16, 10)).collect();
        let lines = text_lines(&image(rows, cols, &down), rows, cols);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].vertical);
    }
}
