//! The cheap text-region detector in front of OCR: which parts of an image
//! look like lines of text, at a cost of a few passes over its pixels.
//!
//! 1. Working resolution: blocks of `f × f` source pixels (`f` chosen per
//!    region from the sizes of the lines the first pass saw in it, so that
//!    their glyphs are about [`super::coarse::FINE_SIZE`] working pixels
//!    across: full resolution for small text, coarser for large bold text,
//!    whose strokes would otherwise be wider than the top-hats' square),
//!    each kept as its maximum and its minimum so that a one-pixel stroke
//!    survives.
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
//!    is a text line (a pair only when its glyphs are alike,
//!    [`PAIR_MIN_TENTHS`]: a glyph beside a clip is no line), its thickness
//!    that of its core (median glyph start to end across it: a glyph merged
//!    with the bone it touches does not make the line too thick). A
//!    single letter or two (`L`, `R`, `PA`, `AP`) is shorter than that and
//!    never a line. Small monospaced or condensed text, whose glyphs touch,
//!    is one mark: it is a line when it is long for its thickness and its
//!    middle rows are crossed by many strokes ([`WORD_MIN_STROKES`]; an edge
//!    or a wire is crossed once).
//! 5. Filters: the values mapped onto `u16` ([`Levels`]), the squares'
//!    maxima / minima by doubling windows, element-wise over whole rows, so
//!    that they vectorise.
//!
//! The result is in source pixel coordinates.

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
/// The smaller glyph of a two-glyph line, in tenths of the larger (across
/// the line): the capitals and digits of a font differ by less.
pub const PAIR_MIN_TENTHS: usize = 7;
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
        self.grown_by(by, by, cols, rows)
    }

    /// Grown by `bx` left and right and `by` above and below, clipped to
    /// `cols × rows`.
    pub fn grown_by(self, bx: usize, by: usize, cols: usize, rows: usize) -> Rect {
        let x = self.x.saturating_sub(bx);
        let y = self.y.saturating_sub(by);
        let x1 = (self.x + self.w + bx).min(cols);
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
    /// Drawn in bright ink (on a darker background), else in dark ink.
    pub bright: bool,
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

/// Stored values mapped onto `u16` for the filters: clamped to the robust
/// range widened by the range on each side (`p0 − R ..= p1 + R`), shifted
/// down until that fits. The map is monotone, so it commutes with the
/// block maxima / minima and the morphology; the thresholds are mapped the
/// same way. Values beyond the widened range (far outside the 0.1th–99.9th
/// percentiles) are only brought to its ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    base: i32,
    top: i32,
    shift: u32,
    /// Stroke contrast threshold and ink bounds, mapped.
    pub(super) threshold: u16,
    pub(super) white_ink: u16,
    pub(super) black_ink: u16,
}

impl Levels {
    pub fn new(range: (i32, i32)) -> Levels {
        Levels::fitting(range, u16::MAX)
    }

    /// Levels that fit a `u8` (the first pass's: for a 12-bit range a level
    /// is 1/64 of the robust range and the stroke threshold 7 levels).
    pub fn narrow(range: (i32, i32)) -> Levels {
        Levels::fitting(range, u8::MAX as u16)
    }

    fn fitting(range: (i32, i32), most: u16) -> Levels {
        let (p0, p1) = (range.0 as i64, range.1 as i64);
        let r = (p1 - p0).max(1);
        let clamp32 = |v: i64| v.clamp(i32::MIN as i64, i32::MAX as i64) as i32;
        let (base, top) = (clamp32(p0 - r), clamp32(p1 + r));
        let mut shift = 0;
        while ((top as i64 - base as i64) >> shift) > most as i64 {
            shift += 1;
        }
        let mut l = Levels { base, top, shift, threshold: 0, white_ink: 0, black_ink: 0 };
        let (f0, f1) = (p0 as f64, p1 as f64);
        let threshold = ((f1 - f0) * EDGE_FRACTION).max(1.0);
        // v > t for integers is v > floor(t); v ≥ t is v ≥ ceil(t).
        l.threshold = ((threshold.floor() as i64) >> shift).min(u16::MAX as i64) as u16;
        l.white_ink = l.map((f1 - INK_FRACTION * (f1 - f0)).ceil() as i32);
        l.black_ink = l.map((f0 + INK_FRACTION * (f1 - f0)).floor() as i32);
        l
    }

    #[inline(always)]
    pub fn map(&self, v: i32) -> u16 {
        (v.clamp(self.base, self.top).wrapping_sub(self.base) as u32 >> self.shift) as u16
    }
}

/// What a pass over the source rows hands each row to, while it is in
/// cache: its index and its values (the region's part of it).
pub type RowVisitor<'a> = &'a mut dyn FnMut(usize, &[i32]);

/// Block maxima and minima (`f × f` source pixels, mapped by `levels`) of
/// the region `x0..x1 × y0..y1` of a row-major image `cols` wide: the rows
/// of each row of blocks folded element-wise in one pass (vectorises), then
/// each row of blocks. Every row of the region goes to `visit` once, in
/// order, right after it was read.
pub(super) fn blocks(
    values: &[i32],
    cols: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
    f: usize,
    levels: &Levels,
    visit: RowVisitor<'_>,
) -> (Vec<u16>, Vec<u16>, usize, usize) {
    let (rw, rh) = (x1 - x0, y1 - y0);
    let (w, h) = (rw.div_ceil(f), rh.div_ceil(f));
    let (mut hi, mut lo) = (vec![0u16; w * h], vec![0u16; w * h]);
    let (mut rmax, mut rmin) = (vec![i32::MIN; rw], vec![i32::MAX; rw]);
    let mut scratch: Scratch = (vec![0i32; rw], vec![0i32; rw]);
    let mut rows: Vec<&[i32]> = Vec::with_capacity(f);
    for by in 0..h {
        let (ya, yb) = (y0 + by * f, (y0 + (by + 1) * f).min(y1));
        rows.clear();
        rows.extend((ya..yb).map(|y| &values[y * cols + x0..y * cols + x1]));
        let out = (&mut hi[by * w..(by + 1) * w], &mut lo[by * w..(by + 1) * w]);
        block_row(&rows, (&mut rmax, &mut rmin), &mut scratch, f, levels, out);
        for (k, row) in rows.iter().enumerate() {
            visit(ya + k, row);
        }
    }
    (hi, lo, w, h)
}

type Scratch = (Vec<i32>, Vec<i32>);

/// The running column maxima and minima of a row of blocks.
type Folds<'a> = (&'a mut Vec<i32>, &'a mut Vec<i32>);
/// One row of blocks' maxima and minima, mapped.
type BlockRow<'a> = (&'a mut [u16], &'a mut [u16]);

/// One row of blocks: the maximum / minimum of each column over `rows`
/// (the one pass over every source pixel, up to four rows at a time), then
/// over each block's `f` columns (clipped at the row's end), mapped by
/// `levels` into `out`. Runs 8 lanes wide where the CPU has AVX2 (x86-64's
/// baseline, SSE2, has no 32-bit max / min).
#[allow(unsafe_code)]
fn block_row(rows: &[&[i32]], folds: Folds<'_>, scratch: &mut Scratch, f: usize, levels: &Levels, out: BlockRow<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { block_row_avx2(rows, folds, scratch, f, levels, out) };
    }
    block_row_portable(rows, folds, scratch, f, levels, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn block_row_avx2(
    rows: &[&[i32]],
    folds: Folds<'_>,
    scratch: &mut Scratch,
    f: usize,
    levels: &Levels,
    out: BlockRow<'_>,
) {
    block_row_portable(rows, folds, scratch, f, levels, out)
}

#[inline(always)]
fn block_row_portable(
    rows: &[&[i32]],
    (rmax, rmin): Folds<'_>,
    scratch: &mut Scratch,
    f: usize,
    levels: &Levels,
    (oh, ol): BlockRow<'_>,
) {
    // A local copy: the map's constants stay in registers through the loops.
    let levels = *levels;
    let map = |v: i32| levels.map(v);
    if f == 1 {
        // One source pixel per block: nothing to fold.
        for (o, &v) in oh.iter_mut().zip(rows[0]) {
            *o = map(v);
        }
        for (o, &v) in ol.iter_mut().zip(rows[0]) {
            *o = map(v);
        }
        return;
    }
    let n = rmax.len();
    // Four rows per pass: each source value read once, the running maxima
    // and minima written once per four rows instead of once per row.
    for (k, group) in rows.chunks(4).enumerate() {
        let (a, b) = (&mut rmax[..n], &mut rmin[..n]);
        let fold = k > 0;
        macro_rules! fold_rows {
            ($($r:ident),+) => {{
                let ($($r,)+) = ($(&$r[..n],)+);
                for i in 0..n {
                    let mut mx = i32::MIN;
                    let mut mn = i32::MAX;
                    $( mx = mx.max($r[i]); mn = mn.min($r[i]); )+
                    if fold {
                        mx = mx.max(a[i]);
                        mn = mn.min(b[i]);
                    }
                    a[i] = mx;
                    b[i] = mn;
                }
            }};
        }
        match *group {
            [r0, r1, r2, r3] => fold_rows!(r0, r1, r2, r3),
            [r0, r1, r2] => fold_rows!(r0, r1, r2),
            [r0, r1] => fold_rows!(r0, r1),
            [r0] => fold_rows!(r0),
            _ => {}
        }
    }
    // Across each block's columns: the common small blocks straight from
    // fixed-size chunks (interleaved loads, which vectorise), others by
    // windows of doubling length.
    macro_rules! across {
        ($f:literal) => {{
            let (full_max, full_min) = (rmax[..n].chunks_exact($f), rmin[..n].chunks_exact($f));
            let (tail_max, tail_min) = (full_max.remainder(), full_min.remainder());
            for (o, c) in oh.iter_mut().zip(full_max) {
                *o = map(c.iter().copied().fold(i32::MIN, i32::max));
            }
            for (o, c) in ol.iter_mut().zip(full_min) {
                *o = map(c.iter().copied().fold(i32::MAX, i32::min));
            }
            if !tail_max.is_empty() {
                oh[n / $f] = map(tail_max.iter().copied().fold(i32::MIN, i32::max));
                ol[n / $f] = map(tail_min.iter().copied().fold(i32::MAX, i32::min));
            }
        }};
    }
    match f {
        2 => across!(2),
        3 => across!(3),
        4 => across!(4),
        _ => {
            let mut len = 1;
            while len < f {
                let step = len.min(f - len);
                if step < n {
                    let (tmax, tmin) = (&mut scratch.0[..n], &mut scratch.1[..n]);
                    let m = n - step;
                    let (a, b, c, d) = (&rmax[..m], &rmax[step..], &rmin[..m], &rmin[step..]);
                    for i in 0..m {
                        tmax[i] = a[i].max(b[i]);
                        tmin[i] = c[i].min(d[i]);
                    }
                    tmax[m..].copy_from_slice(&rmax[m..]);
                    tmin[m..].copy_from_slice(&rmin[m..]);
                    std::mem::swap(rmax, &mut scratch.0);
                    std::mem::swap(rmin, &mut scratch.1);
                }
                len += step;
            }
            for (o, &v) in oh.iter_mut().zip(rmax.iter().step_by(f)) {
                *o = map(v);
            }
            for (o, &v) in ol.iter_mut().zip(rmin.iter().step_by(f)) {
                *o = map(v);
            }
        }
    }
}

/// `pick` over windows of `k` along a flat buffer, `step` apart: after it,
/// `a[i] = pick(a[i], a[i + step], …, a[i + (k − 1)·step])` wherever those
/// exist (the tail is left partial). By doubling (van Herk's runs do not
/// vectorise along a row; this does, as whole-slice element-wise passes):
/// ⌈log₂ k⌉ passes.
fn windows<T: Copy, P: Fn(T, T) -> T + Copy>(a: &mut Vec<T>, b: &mut Vec<T>, k: usize, step: usize, pick: P) {
    let n = a.len();
    // Every pass writes all of `b`: filled by extending, not zeroed first.
    let pass = |a: &mut Vec<T>, b: &mut Vec<T>, off: usize| {
        if off < n {
            b.clear();
            b.extend(a[..n - off].iter().zip(&a[off..]).map(|(&x, &y)| pick(x, y)));
            b.extend_from_slice(&a[n - off..]);
            std::mem::swap(a, b);
        }
    };
    let mut len = 1;
    while len * 2 <= k {
        pass(a, b, len * step);
        len *= 2;
    }
    if len < k {
        pass(a, b, (k - len) * step);
    }
}

/// Square `(2r + 1)²` dilation (`pick` = max) or erosion (min) of a
/// `w × h` image, values outside it `id`: rows padded by `r` on each side,
/// windows along them, then along the columns of the result padded by `r`
/// rows above and below.
pub(super) fn square<T: Copy, P: Fn(T, T) -> T + Copy>(
    src: &[T],
    w: usize,
    h: usize,
    r: usize,
    pick: P,
    id: T,
) -> Vec<T> {
    let (k, pw) = (2 * r + 1, w + 2 * r);
    // Built by extending, so that no byte is written twice before the windows.
    let mut a = Vec::with_capacity(pw * h);
    for row in src.chunks_exact(w).take(h) {
        a.extend(std::iter::repeat_n(id, r));
        a.extend_from_slice(row);
        a.extend(std::iter::repeat_n(id, r));
    }
    let mut b = Vec::with_capacity(pw * h);
    windows(&mut a, &mut b, k, 1, pick);
    // a[y·pw + x] is now the window of row y starting at padded x, i.e. centred on x.
    let mut v = Vec::with_capacity(w * (h + 2 * r));
    v.extend(std::iter::repeat_n(id, r * w));
    for row in a.chunks_exact(pw) {
        v.extend_from_slice(&row[..w]);
    }
    v.extend(std::iter::repeat_n(id, r * w));
    windows(&mut v, &mut b, k, w, pick);
    v.truncate(w * h);
    v
}

#[cfg(test)]
fn square_naive(src: &[u16], w: usize, h: usize, r: usize, pick: fn(u16, u16) -> u16, id: u16) -> Vec<u16> {
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
    for region in super::coarse::candidates(values, rows, cols, range, &mut |_, _| {}) {
        lines.extend(lines_in(values, rows, cols, &region, range));
    }
    lines
}

/// The fine pass: the lines of text-like marks inside `region` of a
/// `rows × cols` image whose robust range is `range`, at each of the
/// region's working resolutions ([`super::coarse::Region::factors`]).
pub fn lines_in(
    values: &[i32],
    rows: usize,
    cols: usize,
    region: &super::coarse::Region,
    range: (i32, i32),
) -> Vec<Line> {
    region.factors().flat_map(|f| lines_at(values, rows, cols, region.rect, range, f)).collect()
}

/// The fine pass in `region` (source pixels) at blocks of `f × f`.
fn lines_at(values: &[i32], rows: usize, cols: usize, region: Rect, range: (i32, i32), f: usize) -> Vec<Line> {
    // The region on whole working pixels, so that blocks match the whole-image grid.
    let (x0, y0) = (region.x / f * f, region.y / f * f);
    let (x1, y1) = ((region.x + region.w).min(cols), (region.y + region.h).min(rows));
    if x1 <= x0 || y1 <= y0 {
        return Vec::new();
    }
    let levels = Levels::new(range);
    let (hi, lo, w, h) = blocks(values, cols, (x0, y0, x1, y1), f, &levels, &mut |_, _| {});
    let (white, black) = stroke_masks(&hi, &lo, w, h, STROKE_RADIUS, &levels);
    drop((hi, lo));
    let mut lines = Vec::new();
    // One ink at a time: a line of text is drawn in one, and the gaps
    // between bright glyphs are dark marks of another size.
    for (mask, bright) in [(&white, true), (&black, false)] {
        let glyphs = components(mask, w, h, MIN_THICK, MAX_THICK, MAX_FILL);
        let to_line = |c: &Comp, size: usize, vertical: bool, glyphs: usize| Line {
            rect: Rect {
                x: x0 + c.x0 * f,
                y: y0 + c.y0 * f,
                w: (c.w() * f).min(cols - (x0 + c.x0 * f)),
                h: (c.h() * f).min(rows - (y0 + c.y0 * f)),
            },
            size: size * f,
            vertical,
            glyphs,
            bright,
        };
        let mut found: Vec<Comp> = Vec::new();
        for vertical in [false, true] {
            for g in group(&glyphs, vertical, MIN_GLYPHS) {
                // A line of two rests on one pair: a glyph and a speck or a
                // clip beside it is not one, the glyphs of a word are alike.
                if g.glyphs == 2 && g.smallest * 10 < g.size * PAIR_MIN_TENTHS {
                    continue;
                }
                lines.push(to_line(&g.bounds, g.size, vertical, g.glyphs));
                found.push(g.bounds);
            }
        }
        // Small monospaced or condensed text: its glyphs touch, and a word
        // is one mark. It is a line when it is long for its thickness and
        // crossed by many strokes along its middle (a bone edge or a wire
        // is crossed once).
        for c in &glyphs {
            let inside = |o: &Comp| o.x0 <= c.x0 && o.y0 <= c.y0 && o.x1 >= c.x1 && o.y1 >= c.y1;
            if found.iter().any(inside) {
                continue;
            }
            if let Some((vertical, strokes)) = word_strokes(mask, w, c) {
                let size = if vertical { c.w() } else { c.h() };
                lines.push(to_line(c, size, vertical, strokes / WORD_STROKES_PER_GLYPH));
            }
        }
    }
    lines
}

/// Strokes a glyph has across its middle, at least (most glyphs have two;
/// `I`, `1`, `L` one): a word's stroke count over this is its glyph count.
pub const WORD_STROKES_PER_GLYPH: usize = 2;
/// Fewest strokes across the middle of a one-mark word (three glyphs or so).
pub const WORD_MIN_STROKES: usize = 6;

/// Whether the mark `c` of `mask` (`w` wide) is a word of touching glyphs:
/// at least [`MIN_LINE_LENGTH`] times as long as it is thick, and its rows
/// (columns when it runs top to bottom) in the middle half of its
/// thickness crossed by at least [`WORD_MIN_STROKES`] runs of marks, and
/// that many runs for every two thicknesses of length (the median over
/// those rows). Returns its direction and that median.
fn word_strokes(mask: &[bool], w: usize, c: &Comp) -> Option<(bool, usize)> {
    let vertical = c.h() > c.w();
    let (along, across) = if vertical { (c.h(), c.w()) } else { (c.w(), c.h()) };
    if (along as f64) < MIN_LINE_LENGTH * across as f64 {
        return None;
    }
    let runs = |k: usize| -> usize {
        let mut n = 0;
        let mut prev = false;
        for j in 0..along {
            let (x, y) = if vertical { (c.x0 + k, c.y0 + j) } else { (c.x0 + j, c.y0 + k) };
            let m = mask[y * w + x];
            n += usize::from(m && !prev);
            prev = m;
        }
        n
    };
    let mut counts: Vec<usize> = (across / 4..across - across / 4).map(runs).collect();
    if counts.is_empty() {
        return None;
    }
    counts.sort_unstable();
    let strokes = counts[counts.len() / 2];
    (strokes >= WORD_MIN_STROKES && strokes * across >= along / 2).then_some((vertical, strokes))
}

/// A level of a mapped image: `u16` ([`Levels`]) or `u8` (the first
/// pass's, [`Levels::narrow`]: half the memory and twice the lanes).
pub(super) trait Level: Copy + Ord {
    const MIN: Self;
    const MAX: Self;
    fn from_level(v: u16) -> Self;
    fn saturating_sub(self, other: Self) -> Self;
}

impl Level for u16 {
    const MIN: u16 = u16::MIN;
    const MAX: u16 = u16::MAX;
    fn from_level(v: u16) -> u16 {
        v
    }
    fn saturating_sub(self, other: u16) -> u16 {
        u16::saturating_sub(self, other)
    }
}

impl Level for u8 {
    const MIN: u8 = u8::MIN;
    const MAX: u8 = u8::MAX;
    fn from_level(v: u16) -> u8 {
        v.min(255) as u8
    }
    fn saturating_sub(self, other: u8) -> u8 {
        u8::saturating_sub(self, other)
    }
}

/// Square `(2r + 1)²` closing (dilation, then erosion) of a `w × h`
/// image: dark marks narrower than the square are filled in.
pub(super) fn closing<T: Level>(src: &[T], w: usize, h: usize, r: usize) -> Vec<T> {
    square(&square(src, w, h, r, T::max, T::MIN), w, h, r, T::min, T::MAX)
}

/// The white and black stroke masks of a block-maximum / block-minimum
/// image pair (mapped by `levels`): top-hats with a `(2r + 1)²` square
/// above [`EDGE_FRACTION`] of the robust range, in ink near its top (white)
/// or bottom (black).
pub(super) fn stroke_masks<T: Level>(
    hi: &[T],
    lo: &[T],
    w: usize,
    h: usize,
    r: usize,
    levels: &Levels,
) -> (Vec<bool>, Vec<bool>) {
    // Top-hats: what an opening (closing) by a square wider than any stroke
    // removes. A stroke, bright or dark, stands out; a step edge does not.
    let open = square(&square(hi, w, h, r, T::min, T::MAX), w, h, r, T::max, T::MIN);
    let close = closing(lo, w, h, r);
    // Bright strokes and dark strokes apart: between bright glyphs, the gaps
    // are dark "strokes" too, and together they would fill the word's box.
    // Rendered text is drawn near an end of the range (white or black ink);
    // bright bone and dark gas are strokes too, but rarely that far out.
    let (t, top, bottom) =
        (T::from_level(levels.threshold), T::from_level(levels.white_ink), T::from_level(levels.black_ink));
    let white = hi.iter().zip(&open).map(|(&v, &o)| v.saturating_sub(o) > t && v >= top).collect();
    let black = lo.iter().zip(&close).map(|(&v, &c)| c.saturating_sub(v) > t && v <= bottom).collect();
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
    // Connected components, two passes with union-find. The masks are
    // sparse: the first pass steps over empty runs of 16 at a time, and the
    // second visits only the pixels the first labelled.
    const RUN: usize = 16;
    let mut label = vec![u32::MAX; w * h];
    let mut parent: Vec<u32> = Vec::new();
    let mut marked: Vec<u32> = Vec::new();
    for y in 0..h {
        let row = &edge[y * w..(y + 1) * w];
        let mut x = 0;
        while x < w {
            if x % RUN == 0 && x + RUN <= w {
                let run: &[bool; RUN] = row[x..x + RUN].try_into().expect("a run of RUN");
                if !run.iter().fold(false, |a, &b| a | b) {
                    x += RUN;
                    continue;
                }
            }
            if !row[x] {
                x += 1;
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
            marked.push((y * w + x) as u32);
            x += 1;
        }
    }
    let mut comps: Vec<Option<Comp>> = vec![None; parent.len()];
    for &i in &marked {
        let (x, y) = (i as usize % w, i as usize / w);
        let r = find(&mut parent, label[i as usize]) as usize;
        let c = comps[r].get_or_insert(Comp { x0: x, y0: y, x1: x, y1: y, n: 0 });
        c.x0 = c.x0.min(x);
        c.x1 = c.x1.max(x);
        c.y0 = c.y0.min(y);
        c.y1 = c.y1.max(y);
        c.n += 1;
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

/// A line of glyphs that [`group`] found.
#[derive(Debug, Clone, Copy)]
pub(super) struct Grouped {
    /// The box of all its glyphs.
    pub(super) bounds: Comp,
    /// The box from the median glyph's start to the median glyph's end
    /// across the line: the text without what a glyph merged with (a bright
    /// bone edge touching a bright letter).
    pub(super) core: Comp,
    /// Median and smallest glyph size across the line, and glyph count.
    pub(super) size: usize,
    pub(super) smallest: usize,
    pub(super) glyphs: usize,
}

/// Groups glyphs into lines along x (or y when `vertical`); returns each
/// line long enough for its size and of at least `min_glyphs` glyphs.
pub(super) fn group(glyphs: &[Comp], vertical: bool, min_glyphs: usize) -> Vec<Grouped> {
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
    // (box, sizes of its glyphs, their starts and ends across the line)
    type Members = (Comp, Vec<usize>, Vec<usize>, Vec<usize>);
    let mut groups: std::collections::BTreeMap<u32, Members> = Default::default();
    for (i, &c) in glyphs.iter().enumerate() {
        let r = find(&mut parent, i as u32);
        let (_, _, b0, b1) = span(&c);
        let e = groups.entry(r).or_insert((c, Vec::new(), Vec::new(), Vec::new()));
        e.0 = Comp {
            x0: e.0.x0.min(c.x0),
            y0: e.0.y0.min(c.y0),
            x1: e.0.x1.max(c.x1),
            y1: e.0.y1.max(c.y1),
            n: e.0.n + c.n,
        };
        e.1.push(b1 - b0 + 1);
        e.2.push(b0);
        e.3.push(b1);
    }
    groups
        .into_values()
        .filter_map(|(c, mut sizes, mut starts, mut ends)| {
            sizes.sort_unstable();
            starts.sort_unstable();
            ends.sort_unstable();
            let size = sizes[sizes.len() / 2];
            let along = if vertical { c.h() } else { c.w() };
            // Across the line its core only: a glyph merged with the anatomy
            // it touches does not make the whole line too thick.
            let (b1, b0) = (ends[ends.len() / 2], starts[(starts.len() - 1) / 2]);
            let b0 = b0.min(b1);
            let core = if vertical { Comp { x0: b0, x1: b1, ..c } } else { Comp { y0: b0, y1: b1, ..c } };
            // A line is long for its size, not much thicker than its glyphs,
            // and made of several of them (one long mark is an edge or a wire).
            (sizes.len() >= min_glyphs && along as f64 >= MIN_LINE_LENGTH * size as f64 && b1 + 1 - b0 <= size * 2)
                .then_some(Grouped { bounds: c, core, size, smallest: sizes[0], glyphs: sizes.len() })
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
        let v: Vec<u16> = (0..w * h).map(|i| ((i * 7919) % 1013) as u16).collect();
        for r in [0, 1, 2, 3, 4, 5, 7, 30] {
            assert_eq!(square(&v, w, h, r, u16::max, 0), square_naive(&v, w, h, r, u16::max, 0), "max r {r}");
            assert_eq!(
                square(&v, w, h, r, u16::min, u16::MAX),
                square_naive(&v, w, h, r, u16::min, u16::MAX),
                "min r {r}"
            );
        }
    }

    /// The first pass's `u8` levels: monotone, within a byte, and the same
    /// masks as `u16` levels holding the same values.
    #[test]
    fn narrow_levels_fit_a_byte_and_give_the_same_masks() {
        let narrow = Levels::narrow((0, 4095));
        let mapped: Vec<u16> = (-5000..10000).step_by(7).map(|v| narrow.map(v)).collect();
        assert!(mapped.windows(2).all(|p| p[0] <= p[1]), "monotone");
        assert!(*mapped.last().unwrap() <= 255 && narrow.threshold >= 6, "{narrow:?}");
        let (w, h) = (64, 40);
        let v: Vec<u16> = (0..w * h)
            .map(|i| if (i % w) % 9 < 2 && (i / w) % 13 < 8 { 240 } else { ((i * 7919) % 61) as u16 + 60 })
            .collect();
        let bytes: Vec<u8> = v.iter().map(|&l| l as u8).collect();
        let (white, black) = stroke_masks(&v, &v, w, h, 4, &narrow);
        assert!(white.iter().any(|&m| m), "the bright strokes are seen");
        assert_eq!((white, black), stroke_masks(&bytes, &bytes, w, h, 4, &narrow));
    }

    /// The vectorised block maxima / minima (row folds and window spreads)
    /// against a plain loop over every block, partial blocks at the edges
    /// and a region that does not start at 0 included.
    #[test]
    fn blocks_match_a_plain_loop() {
        let (rows, cols) = (41, 67);
        let values: Vec<i32> = (0..rows * cols).map(|i| ((i as i64 * 104_729) % 9_973) as i32 - 4_000).collect();
        let levels = Levels::new(robust_range(&values));
        for f in 1..=9 {
            for (x0, y0, x1, y1) in [(0, 0, cols, rows), (5, 3, 60, 40), (8, 8, 9, 9)] {
                let mut seen = Vec::new();
                let (hi, lo, w, h) = blocks(&values, cols, (x0, y0, x1, y1), f, &levels, &mut |y, row| {
                    seen.push(y);
                    assert_eq!(row, &values[y * cols + x0..y * cols + x1], "row {y} handed over whole");
                });
                assert_eq!(seen, (y0..y1).collect::<Vec<_>>(), "every row visited once, in order");
                assert_eq!((w, h), ((x1 - x0).div_ceil(f), (y1 - y0).div_ceil(f)));
                for by in 0..h {
                    for bx in 0..w {
                        let (mut mx, mut mn) = (i32::MIN, i32::MAX);
                        for y in y0 + by * f..(y0 + (by + 1) * f).min(y1) {
                            for x in x0 + bx * f..(x0 + (bx + 1) * f).min(x1) {
                                mx = mx.max(values[y * cols + x]);
                                mn = mn.min(values[y * cols + x]);
                            }
                        }
                        let at = format!("f {f} region {:?} block {bx},{by}", (x0, y0, x1, y1));
                        assert_eq!(hi[by * w + bx], levels.map(mx), "max {at}");
                        assert_eq!(lo[by * w + bx], levels.map(mn), "min {at}");
                    }
                }
            }
        }
    }

    /// Small monospaced or condensed text (issue 15: cap 8–10 px in DejaVu
    /// Sans Mono, Serif Condensed): its glyphs touch and make one mark,
    /// which is still a line; one ring as long (a box outline, an edge) is not.
    #[test]
    fn a_word_of_touching_glyphs_is_a_line_and_an_outline_is_not() {
        let (rows, cols) = (600, 500);
        // Eight 6×10 rings side by side, no gap: one mark of 48×10.
        let word: Vec<_> = (0..8).map(|i| (100 + i * 6, 200, 6, 10)).collect();
        let lines = text_lines(&image(rows, cols, &word), rows, cols);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let r = lines[0].rect;
        assert!(!lines[0].vertical && lines[0].glyphs >= 4, "{:?}", lines[0]);
        assert!(r.x <= 100 && r.x + r.w >= 148 && r.y <= 200 && r.y + r.h >= 210, "{r:?}");
        // The same turned by 90°.
        let down: Vec<_> = (0..8).map(|i| (300, 100 + i * 6, 10, 6)).collect();
        let lines = text_lines(&image(rows, cols, &down), rows, cols);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].vertical);
        // One ring 48×10: crossed twice along its middle, no word.
        let outline = text_lines(&image(rows, cols, &[(100, 200, 48, 10)]), rows, cols);
        assert!(outline.is_empty(), "{outline:?}");
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

    /// A line is as thick as its middle glyphs: two glyphs merged with what
    /// they touch (one with a mark above, one below: bone, issue 15 seed 23)
    /// make its box too thick, not the line.
    #[test]
    fn glyphs_merged_with_anatomy_do_not_make_a_line_too_thick() {
        let (rows, cols) = (600, 500);
        let mut word: Vec<_> = (0..6).map(|i| (40 + i * 14, 200, 10, 16)).collect();
        word[2] = (68, 186, 10, 30);
        word[4] = (96, 200, 10, 30);
        let lines = text_lines(&image(rows, cols, &word), rows, cols);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(!lines[0].vertical && lines[0].glyphs == 6, "{:?}", lines[0]);
    }

    /// Two glyphs far enough apart are a line only when they are alike: a
    /// glyph under a clip or a speck of anatomy (issue 15, seed 17: the `P`
    /// of a `PA` marker under a short bright wire) is not.
    #[test]
    fn a_pair_is_a_line_only_when_its_glyphs_are_alike() {
        let (rows, cols) = (600, 500);
        let alike = [(200, 100, 26, 40), (200, 160, 26, 40)];
        let lines = text_lines(&image(rows, cols, &alike), rows, cols);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].vertical && lines[0].glyphs == 2, "{:?}", lines[0]);
        let speck_over_glyph = [(206, 100, 14, 14), (200, 150, 26, 40)];
        let lines = text_lines(&image(rows, cols, &speck_over_glyph), rows, cols);
        assert!(lines.is_empty(), "{lines:?}");
    }
}
