//! Text burned into the pixels (names, IDs, dates drawn by the modality),
//! found before the resize, at the source resolution.
//!
//! For every candidate image, on its stored values:
//!
//! 1. known regions from a rules file ([`rules`], by Manufacturer /
//!    ManufacturerModelName / Rows×Columns, as CTP's pixel-anonymizer
//!    signatures) are always blanked;
//! 2. the cheap first pass ([`coarse`]), on a copy up to 16 times smaller,
//!    names the regions that could hold a line of text; an image without
//!    any (most radiographs) costs that pass and nothing else;
//! 3. the fine pass ([`detect`]) looks for lines of text-like marks in
//!    those regions, at a resolution that suits the lines the first pass
//!    saw there (full resolution for small text);
//! 4. a candidate line with soft edges ([`contrast`]; [`MIN_SHARPNESS`]
//!    for short lines, [`MIN_SHARPNESS_LONG`] for long ones) is anatomy and
//!    dismissed unread; every other line is read by Tesseract ([`ocr`],
//!    feature `ocr`), as dark ink on white from the ink the detector saw,
//!    then on a flattened background (`flatten_background`), then both
//!    in the other ink (where a read is text only with [`SURE_READ_CHARS`]
//!    alphanumerics), until a read is all markers or words read surely
//!    ([`SURE_READ_CHARS`] at [`SURE_READ_CONFIDENCE`]):
//!    a line that reads as allowed markers only ([`only_markers`];
//!    laterality and positioning: `L`, `R`, `PA`, `AP`, `ERECT`, `SUPINE`,
//!    `PORTABLE`, a configurable list) is not PHI; a line read as other
//!    words (two alphanumerics or more at a mean confidence of
//!    [`MIN_READ_CONFIDENCE`]) is text; a line OCR
//!    cannot read is text when it has [`UNREAD_MIN_GLYPHS`] glyphs or more
//!    (bone and noise make short runs of marks), and without OCR every line
//!    is text;
//! 5. the policy ([`Policy`]): `reject` (reason `burned_in_text`), `mask`
//!    (the lines blanked before the pipeline) or `keep`.
//!
//! What was rejected or masked is drawn on `private/burned-in.png`
//! ([`sheet`]) for a person to review.

pub mod coarse;
pub mod contrast;
pub mod detect;
#[cfg(feature = "ocr")]
pub mod ocr;
pub mod rules;
#[cfg(feature = "dataset")]
pub mod sheet;

pub use self::detect::{Line, Rect};
pub use self::rules::Rules;

/// What to do with an image that has burned-in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Reject it (reason `burned_in_text`); the default.
    #[default]
    Reject,
    /// Blank the detected lines, then process it.
    Mask,
    /// Process it as it is (the text stays readable in the sample).
    Keep,
}

impl Policy {
    pub fn name(self) -> &'static str {
        match self {
            Policy::Reject => "reject",
            Policy::Mask => "mask",
            Policy::Keep => "keep",
        }
    }
}

/// Markers that are not PHI.
pub const DEFAULT_MARKERS: [&str; 12] =
    ["L", "R", "PA", "AP", "LAT", "ERECT", "SUPINE", "PORTABLE", "UPRIGHT", "SEMI", "PORT", "DECUBITUS"];

/// The burned-in settings of a run.
#[derive(Debug, Clone)]
pub struct Options {
    pub policy: Policy,
    /// Allowed marker words, upper case.
    pub markers: Vec<String>,
    pub rules: Rules,
    /// Read candidate lines with Tesseract (when built with `ocr`).
    pub ocr: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            policy: Policy::Reject,
            markers: DEFAULT_MARKERS.iter().map(|s| s.to_string()).collect(),
            rules: Rules::default(),
            ocr: cfg!(feature = "ocr"),
        }
    }
}

/// What the scan found in one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finding {
    /// Lines judged to be text (source pixels).
    pub text: Vec<Rect>,
    /// Lines read as allowed markers only.
    pub markers: usize,
    /// Regions blanked by the rules file.
    pub ruled: Vec<Rect>,
    /// Regions the cheap first pass handed to the fine pass, and their pixels.
    pub regions: usize,
    pub region_pixels: usize,
    /// Lines read by OCR.
    pub read: usize,
    /// Lines dismissed unread for their soft edges ([`MIN_SHARPNESS`], [`MIN_SHARPNESS_LONG`]).
    pub soft: usize,
}

/// What the header says that the rules match on.
#[derive(Debug, Clone, Default)]
pub struct Device<'a> {
    pub manufacturer: &'a str,
    pub model: &'a str,
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Whether `word` is `marker`: the same, or one OCR slip away when both
/// have four letters or more.
fn is_marker(word: &str, marker: &str) -> bool {
    word == marker || (marker.len() >= 4 && word.len() >= 4 && edit_distance(marker, word) <= 1)
}

/// Whether `word` is exact markers run together, one of three letters or
/// more among them (`RLAT`: OCR dropped the space of `R LAT`). Short
/// markers alone do not join: `RR` or `PAL` could be initials or a name.
fn joined_markers(word: &str, markers: &[String]) -> bool {
    // ends[i]: word[..i] splits into markers; .1: a long one among them.
    let mut ends = vec![None; word.len() + 1];
    ends[0] = Some(false);
    for i in 0..word.len() {
        let Some(long) = ends[i] else { continue };
        for m in markers.iter().filter(|m| word[i..].starts_with(m.as_str())) {
            let end = &mut ends[i + m.len()];
            *end = Some(end.unwrap_or(false) | long | (m.len() >= 3));
        }
    }
    ends[word.len()] == Some(true)
}

/// Whether OCR'd `text` is only allowed markers (and at least one): every
/// word a marker ([`is_marker`]) or markers run together
/// ([`joined_markers`]), or the whole line one marker OCR split (`POR TABLE`).
pub fn only_markers(text: &str, markers: &[String]) -> bool {
    let words = words(text);
    let whole: String = words.concat();
    !words.is_empty()
        && (words.iter().all(|w| markers.iter().any(|m| is_marker(w, m)) || joined_markers(w, markers))
            || markers.iter().any(|m| is_marker(&whole, m)))
}

/// Whether every word of OCR'd `text` is within one slip of a marker, two
/// of one of five letters or more (`IR LAT`: the edge of the crop read as
/// an `I`; `EREGE`): a read that is not markers but may be a misread of
/// them, which another read of the line may get right.
pub fn near_markers(text: &str, markers: &[String]) -> bool {
    let words = words(text);
    let slips = |m: &String| 1 + usize::from(m.len() >= 5);
    !words.is_empty() && words.iter().all(|w| markers.iter().any(|m| edit_distance(w, m) <= slips(m)))
}

/// The words of OCR'd `text`, upper-cased: its runs of ASCII letters and digits.
fn words(text: &str) -> Vec<String> {
    text.to_uppercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Dark ink on a flat white: what a closing (dilation then erosion by a
/// square wider than any stroke, radius `r`) removes, stretched so that
/// all but its faintest part is black. A background that steps or slopes
/// under the text (a label's edge, anatomy) would otherwise fall on the
/// ink's side of Tesseract's threshold.
#[cfg_attr(not(feature = "ocr"), allow(dead_code))]
fn flatten_background(g: &mut [u8], w: usize, h: usize, r: usize) {
    let wide: Vec<u16> = g.iter().map(|&v| u16::from(v)).collect();
    let closed = detect::closing(&wide, w, h, r);
    let depth: Vec<u16> = closed.iter().zip(&wide).map(|(&c, &v)| c.saturating_sub(v)).collect();
    // Full black from a quarter of the deepest ink: the part of a glyph
    // over a lighter background has less contrast than the rest of it.
    let full = (u32::from(depth.iter().copied().max().unwrap_or(0)) / 4).max(1);
    for (v, &d) in g.iter_mut().zip(&depth) {
        *v = 255 - (u32::from(d).min(full) * 255 / full) as u8;
    }
}

/// The 8-bit crop of `r` as dark text on light (`bright`: the text is
/// drawn in bright ink, so the crop is inverted), `scale`d ([`resample`]),
/// rotated by 90° clockwise (`turn` 1) or counter-clockwise (`turn` 3).
#[cfg_attr(not(feature = "ocr"), allow(dead_code))]
fn crop_for_ocr(
    values: &[i32],
    cols: usize,
    r: Rect,
    bright: bool,
    stroke_radius: Option<usize>,
    scale: f64,
    turn: u8,
) -> (Vec<u8>, usize, usize) {
    let mut lo = i32::MAX;
    let mut hi = i32::MIN;
    for y in r.y..r.y + r.h {
        for &v in &values[y * cols + r.x..y * cols + r.x + r.w] {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let range = (hi - lo).max(1) as f64;
    let mut g: Vec<u8> = Vec::with_capacity(r.w * r.h);
    for y in r.y..r.y + r.h {
        g.extend(values[y * cols + r.x..y * cols + r.x + r.w].iter().map(|&v| ((v - lo) as f64 / range * 255.0) as u8));
    }
    // The detector saw the ink; the background around it can be anything
    // (a light label, a gradient of anatomy), so it is not guessed from the crop.
    if bright {
        g.iter_mut().for_each(|v| *v = 255 - *v);
    }
    if let Some(radius) = stroke_radius {
        flatten_background(&mut g, r.w, r.h, radius);
    }
    let (w, h) = (((r.w as f64 * scale) as usize).max(1), ((r.h as f64 * scale) as usize).max(1));
    let scaled = resample(&g, r.w, r.h, w, h, scale);
    // A white margin helps Tesseract find the line.
    let pad = 12;
    let (pw, ph) = (w + 2 * pad, h + 2 * pad);
    let mut padded = vec![255u8; pw * ph];
    for y in 0..h {
        padded[(y + pad) * pw + pad..(y + pad) * pw + pad + w].copy_from_slice(&scaled[y * w..(y + 1) * w]);
    }
    match turn {
        1 | 3 => {
            let mut out = vec![255u8; pw * ph];
            for y in 0..ph {
                for x in 0..pw {
                    let (nx, ny) = if turn == 1 { (ph - 1 - y, x) } else { (y, pw - 1 - x) };
                    out[ny * ph + nx] = padded[y * pw + x];
                }
            }
            (out, ph, pw)
        }
        _ => (padded, pw, ph),
    }
}

/// Bilinear resampling of a `sw × sh` image to `w × h` (`scale` apart),
/// pixel centres aligned. Nearest-neighbour blocks (a small glyph scaled
/// up threefold) are read by Tesseract as noise: the same crop it cannot
/// read scaled that way, it reads interpolated.
#[cfg_attr(not(feature = "ocr"), allow(dead_code))]
fn resample(g: &[u8], sw: usize, sh: usize, w: usize, h: usize, scale: f64) -> Vec<u8> {
    // Source position of a target pixel's centre, as (index, weight of the next).
    let at = |i: usize, n: usize| -> (usize, f64) {
        let p = ((i as f64 + 0.5) / scale - 0.5).clamp(0.0, (n - 1) as f64);
        let i0 = (p as usize).min(n.saturating_sub(2));
        (i0, if n > 1 { p - i0 as f64 } else { 0.0 })
    };
    let xs: Vec<(usize, f64)> = (0..w).map(|x| at(x, sw)).collect();
    let mut out = Vec::with_capacity(w * h);
    for y in 0..h {
        let (y0, fy) = at(y, sh);
        let y1 = (y0 + 1).min(sh - 1);
        for &(x0, fx) in &xs {
            let x1 = (x0 + 1).min(sw - 1);
            let v = |x: usize, y: usize| f64::from(g[y * sw + x]);
            let top = v(x0, y0) * (1.0 - fx) + v(x1, y0) * fx;
            let bottom = v(x0, y1) * (1.0 - fx) + v(x1, y1) * fx;
            out.push((top * (1.0 - fy) + bottom * fy).round() as u8);
        }
    }
    out
}

/// What OCR made of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Only allowed markers.
    Markers,
    /// Words that are not all markers, read with some confidence.
    Text,
    /// Nothing read with confidence (or no OCR).
    Unread,
}

/// Fewest alphanumerics, and lowest mean Tesseract confidence, for a line
/// to count as read.
pub const MIN_READ_CHARS: usize = 2;
pub const MIN_READ_CONFIDENCE: i32 = 50;
/// A read of at least this many alphanumerics at this mean confidence is
/// final: the other crops of the line are not read.
pub const SURE_READ_CHARS: usize = 4;
pub const SURE_READ_CONFIDENCE: i32 = 75;
/// A second OCR crop of a line read close to markers reaches this many
/// glyph sizes past the line's ends.
pub const OCR_REACH_GLYPHS: usize = 2;
/// A line OCR cannot read is text when it has at least this many glyphs
/// (anatomy and noise make short runs of marks; lines of text are longer).
pub const UNREAD_MIN_GLYPHS: usize = 5;
/// A line shorter than [`UNREAD_MIN_GLYPHS`] whose [`contrast::sharpness`]
/// is below this is anatomy, dismissed without a read, and so is a longer
/// one below [`MIN_SHARPNESS_LONG`]: on the bench set's seeds 15 and 16
/// (`burned_in_eval --features`, one row per candidate line) rendered text
/// measured 0.49 and more on short lines and 0.42 and more on long ones
/// (its edges cross most of its contrast within two pixels), the candidate
/// lines of bone, wire and soft tissue in the clean images 0.40 and less
/// on short lines and 0.21 and less on long ones.
pub const MIN_SHARPNESS: f64 = 0.45;
pub const MIN_SHARPNESS_LONG: f64 = 0.30;

/// Reads `line` with OCR (both 90° turns when it runs top to bottom; the better reading counts).
#[cfg_attr(not(feature = "ocr"), allow(unused_variables))]
fn read(values: &[i32], rows: usize, cols: usize, line: &Line, opts: &Options) -> Reading {
    #[cfg(feature = "ocr")]
    if opts.ocr {
        let margin = line.size / 3 + 1;
        let r = line.rect.grown(margin, cols, rows);
        // About 40 pixels across the line: Tesseract's comfortable size.
        let scale = (40.0 / line.size.max(1) as f64).clamp(0.25, 6.0);
        let turns: &[u8] = if line.vertical { &[1, 3] } else { &[0] };
        let mut best = Reading::Unread;
        let mut sure = false;
        // The crop as it is first, then on a flattened background (a text
        // over a step or slope of the background reads only that way); in
        // the ink the detector saw, then in the other (dark text on a light
        // label is also seen as the bright gaps between its glyphs). A read
        // in the other ink is text only with [`SURE_READ_CHARS`]: on a crop
        // cut to the gaps of a short word, it makes short words of parts of
        // glyphs (`PA` read as `FA`).
        for (bright, flatten) in
            [(line.bright, false), (line.bright, true), (!line.bright, false), (!line.bright, true)]
        {
            for &t in turns {
                let stroke_radius = flatten.then_some(line.size / 4 + 2);
                let (g, w, h) = crop_for_ocr(values, cols, r, bright, stroke_radius, scale, t);
                let Some((text, conf)) = ocr::read_line(&g, w, h) else { continue };
                if only_markers(&text, &opts.markers) {
                    return Reading::Markers;
                }
                // Close to markers but not them: read again as one word,
                // then on a crop reaching further along the line (a line the
                // detector cut short of its word, the end of `SUPINE` merged
                // into one mark that is no glyph, read whole). Only then:
                // more of the image around PHI makes it read worse.
                let near = near_markers(&text, &opts.markers);
                if near {
                    let marks = |read: Option<(String, i32)>| {
                        read.is_some_and(|(words, _)| only_markers(&words, &opts.markers))
                    };
                    let as_word = || marks(ocr::read(&g, w, h, ocr::Layout::Word));
                    let longer = || {
                        let reach = line.size * OCR_REACH_GLYPHS + 1;
                        let (bx, by) = if line.vertical { (margin, reach) } else { (reach, margin) };
                        let long = line.rect.grown_by(bx, by, cols, rows);
                        let (wide, ww, wh) = crop_for_ocr(values, cols, long, bright, stroke_radius, scale, t);
                        marks(ocr::read_line(&wide, ww, wh))
                    };
                    if as_word() || longer() {
                        return Reading::Markers;
                    }
                }
                let chars = text.chars().filter(|c| c.is_alphanumeric()).count();
                tracing::trace!(turn = t, flatten, chars, conf, glyphs = line.glyphs, "burned-in line read");
                let fewest = if bright == line.bright { MIN_READ_CHARS } else { SURE_READ_CHARS };
                if chars >= fewest && conf >= MIN_READ_CONFIDENCE {
                    best = Reading::Text;
                    sure |= chars >= SURE_READ_CHARS && conf >= SURE_READ_CONFIDENCE && !near;
                }
            }
            // Words read this surely (the other turn read too: one of the
            // two is upside down), and not one slip from markers, are not a
            // misread marker: no more crops.
            if sure {
                return best;
            }
        }
        return best;
    }
    Reading::Unread
}

/// Scans one image of stored values (`rows × cols`, row-major).
pub fn scan(values: &[i32], rows: usize, cols: usize, device: &Device<'_>, opts: &Options) -> Finding {
    scan_visiting(values, rows, cols, device, opts, &mut |_, _| {})
}

/// [`scan`], handing every row of the image (the first `rows × cols`
/// values) to `visit` once, in order: the first pass reads each anyway,
/// and a consumer that converts the rows on the way (the pipeline's step
/// 2) saves its own pass over memory.
pub fn scan_visiting(
    values: &[i32],
    rows: usize,
    cols: usize,
    device: &Device<'_>,
    opts: &Options,
    visit: detect::RowVisitor<'_>,
) -> Finding {
    let mut f = Finding { ruled: opts.rules.regions_for(device, rows, cols), ..Default::default() };
    let skip = opts.policy == Policy::Keep && f.ruled.is_empty();
    if skip || rows < 8 || cols < 8 || values.len() < rows * cols {
        for (y, row) in values.chunks_exact(cols.max(1)).take(rows).enumerate() {
            visit(y, row);
        }
        return f;
    }
    let range = detect::robust_range(&values[..rows * cols]);
    let regions = coarse::candidates(values, rows, cols, range, visit);
    f.regions = regions.len();
    f.region_pixels = regions.iter().map(|r| r.rect.w * r.rect.h).sum();
    tracing::trace!(regions = f.regions, pixels = f.region_pixels, "burned-in first pass");
    let mut lines: Vec<Line> = regions.iter().flat_map(|r| detect::lines_in(values, rows, cols, r, range)).collect();
    // Largest first: a line inside one already judged text or markers (the
    // counters and gaps of its own glyphs, a part of it) shares that verdict.
    lines.sort_by_key(|l| std::cmp::Reverse(l.rect.w * l.rect.h));
    let mut judged: Vec<Rect> = Vec::new();
    for line in lines {
        tracing::trace!(size = line.size, glyphs = line.glyphs, vertical = line.vertical, "burned-in line");
        // Inside a region the rules blank anyway: nothing to judge.
        if f.ruled.iter().chain(&judged).any(|r| contains(r, &line.rect)) {
            continue;
        }
        let grown = line.rect.grown(line.size / 3 + 1, cols, rows);
        // A line with soft edges is anatomy, not worth a read (a Tesseract
        // read costs ~100 ms, the measure microseconds), nor text unread.
        let min_sharpness = if line.glyphs < UNREAD_MIN_GLYPHS { MIN_SHARPNESS } else { MIN_SHARPNESS_LONG };
        if contrast::sharpness(values, cols, grown) < min_sharpness {
            f.soft += 1;
            continue;
        }
        let ocr = opts.ocr && cfg!(feature = "ocr");
        f.read += usize::from(ocr);
        match read(values, rows, cols, &line, opts) {
            Reading::Markers => f.markers += 1,
            Reading::Text => f.text.push(grown),
            // Without OCR every line is text; with it, an unread line when it is long.
            Reading::Unread if !ocr || line.glyphs >= UNREAD_MIN_GLYPHS => f.text.push(grown),
            // Dismissed, not judged: a line inside it (the text on a label
            // box read as one mark) gets its own reading.
            Reading::Unread => continue,
        }
        judged.push(grown);
    }
    f
}

fn contains(outer: &Rect, inner: &Rect) -> bool {
    inner.x >= outer.x
        && inner.y >= outer.y
        && inner.x + inner.w <= outer.x + outer.w
        && inner.y + inner.h <= outer.y + outer.h
}

/// Blanks `regions` of the stored values with `fill`.
pub fn blank(values: &mut [i32], cols: usize, regions: &[Rect], fill: i32) {
    for r in regions {
        for y in r.y..r.y + r.h {
            let row = &mut values[y * cols..(y + 1) * cols];
            row[r.x..(r.x + r.w).min(cols)].iter_mut().for_each(|v| *v = fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_words_pass_and_anything_else_does_not() {
        let m: Vec<String> = DEFAULT_MARKERS.iter().map(|s| s.to_string()).collect();
        assert!(only_markers("PORTABLE", &m));
        assert!(only_markers(" L  ERECT\n", &m));
        assert!(only_markers("PORTABIE", &m), "one OCR slip in a long marker");
        assert!(!only_markers("PA", &["L".to_string()]));
        assert!(!only_markers("DOE JANE", &m));
        assert!(!only_markers("L 19500615", &m));
        assert!(!only_markers("", &m), "nothing read is not a marker");
        assert!(!only_markers("RR", &m), "short words must match exactly");
        assert!(only_markers("POR TABLE", &m), "a marker OCR split");
        assert!(only_markers("[Por ABLE]", &m), "split, with a slip");
        assert!(only_markers("RLAT", &m), "a laterality letter OCR joined to a view");
        assert!(only_markers("L ERECTR", &m));
        assert!(!only_markers("PAL", &m), "short markers alone do not join");
        assert!(!only_markers("PORTER", &m), "two letters off");
        assert!(!only_markers("PORT ER", &m), "a split word must be one marker");
        assert!(!only_markers("RLATE", &m), "joined markers must be exact");
        assert!(near_markers("IR LAT", &m) && near_markers("PORTABIE", &m) && near_markers("Sa", &m));
        assert!(near_markers("EREGE", &m) && !near_markers("PAXX", &m), "two slips in a long marker only");
        assert!(!near_markers("DOE JANE", &m) && !near_markers("R 1957", &m) && !near_markers("", &m));
    }

    #[test]
    fn a_flattened_crop_is_black_ink_on_white_over_a_step() {
        // A dark band over a light one, a 2-px stroke across both.
        let (w, h) = (40, 20);
        let mut g: Vec<u8> = (0..w * h).map(|i| if i / w < h / 2 { 60 } else { 220 }).collect();
        for y in 0..h {
            g[y * w + 10..y * w + 12].fill(0);
        }
        flatten_background(&mut g, w, h, 3);
        for y in 0..h {
            for x in 0..w {
                let want = if (10..12).contains(&x) { 0 } else { 255 };
                assert_eq!(g[y * w + x], want, "({x}, {y})");
            }
        }
    }

    /// Scale 1 is the identity, and a step scaled up ramps (nearest
    /// neighbour would keep it a step of blocks) within its two levels.
    #[test]
    fn resampling_interpolates_between_neighbours() {
        let g: Vec<u8> = (0..6 * 4).map(|i| (i * 10) as u8).collect();
        assert_eq!(resample(&g, 6, 4, 6, 4, 1.0), g);
        let step = [0u8, 0, 200, 200];
        let up = resample(&step, 4, 1, 12, 1, 3.0);
        assert_eq!((up[0], up[11]), (0, 200));
        assert!(up.windows(2).all(|p| p[0] <= p[1]), "{up:?}");
        assert!(up.iter().filter(|&&v| v > 0 && v < 200).count() >= 2, "{up:?}");
    }

    #[test]
    fn blanking_fills_the_regions_only() {
        let mut v = vec![5; 6 * 4];
        blank(&mut v, 6, &[Rect { x: 1, y: 1, w: 2, h: 2 }], 0);
        let zeros: Vec<usize> = (0..v.len()).filter(|&i| v[i] == 0).collect();
        assert_eq!(zeros, vec![7, 8, 13, 14]);
    }
}
