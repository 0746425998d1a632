//! Text in the bundled DejaVu Sans Mono (see `assets/DejaVu-LICENSE`),
//! rasterised with `ab_glyph`: no system fonts, the same pixels on every
//! machine.
//!
//! The font is also registered with plotters (its `ab_glyph` feature), which
//! measures text with it when laying out captions, tick labels and legends.
//! The glyphs themselves are drawn here, for charts through
//! [`super::backend::TextBackend`]: plotters 0.3.7's ab_glyph renderer
//! places each glyph's bitmap at the pen position without its left side
//! bearing, so `0.030` prints as `0. 030` and `(40` as `( 40`.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};
use plotters::style::{register_font, FontStyle};

static FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

/// The family name plotters knows the bundled font by (its default family).
pub const FAMILY: &str = "sans-serif";

/// The bundled font, registered with plotters on first use.
fn font() -> &'static FontRef<'static> {
    static FONT: OnceLock<FontRef<'static>> = OnceLock::new();
    FONT.get_or_init(|| {
        if register_font(FAMILY, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the bundled DejaVu Sans Mono does not parse");
        }
        FontRef::try_from_slice(FONT_BYTES).expect("the bundled DejaVu Sans Mono parses")
    })
}

/// Makes sure plotters can measure text in the bundled font.
pub fn register() {
    font();
}

/// Width and height (ascent to descent) of `text` at `size` pixels.
pub fn extent(size: f32, text: &str) -> (f32, f32) {
    let font = font();
    let scaled = font.as_scaled(PxScale::from(size));
    let mut width = 0.0;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            width += scaled.kern(p, id);
        }
        width += scaled.h_advance(id);
        prev = Some(id);
    }
    (width, scaled.height())
}

/// Rasterises `text` at `size` pixels with its top-left corner at
/// (`left`, `top`), calling `put(x, y, coverage)` for every pixel it touches.
pub fn rasterize(left: f32, top: f32, size: f32, text: &str, mut put: impl FnMut(i64, i64, f32)) {
    let font = font();
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let baseline = top + scaled.ascent();
    let mut pen = left;
    let mut prev = None;
    for c in text.chars() {
        let id = font.glyph_id(c);
        if let Some(p) = prev {
            pen += scaled.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, ab_glyph::point(pen, baseline));
        pen += scaled.h_advance(id);
        prev = Some(id);
        if let Some(outline) = font.outline_glyph(glyph) {
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                put(bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64, coverage)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Columns holding ink of `text` rasterised at size 20.
    fn ink_columns(text: &str) -> Vec<bool> {
        let mut columns = vec![false; 200];
        rasterize(0.0, 0.0, 20.0, text, |x, _, c| {
            if c > 0.3 {
                columns[x as usize] = true;
            }
        });
        columns
    }

    #[test]
    fn glyphs_keep_their_side_bearings() {
        // In a monospace font the dot of "0.0" sits centred in its cell: the
        // blank gap either side of it is about equal (plotters' renderer
        // shifts it left, leaving one wide gap).
        let columns = ink_columns("0.0");
        let runs: Vec<(bool, usize)> = columns.iter().fold(Vec::new(), |mut runs, &ink| {
            match runs.last_mut() {
                Some((last, n)) if *last == ink => *n += 1,
                _ => runs.push((ink, 1)),
            }
            runs
        });
        // ink, gap, dot, gap, ink, (blank tail)
        let gaps: Vec<usize> = runs.iter().skip(1).filter(|r| !r.0).map(|r| r.1).take(2).collect();
        assert_eq!(gaps.len(), 2, "{runs:?}");
        assert!(gaps[0].abs_diff(gaps[1]) <= 2, "dot not centred between the zeros: {runs:?}");
        // PxScale is the ascent-to-descent height; every cell of the monospace
        // font has the same advance.
        let (width, height) = extent(20.0, "0.0");
        assert!((height - 20.0).abs() < 1e-3, "{height}");
        assert!((width - 3.0 * extent(20.0, "0").0).abs() < 1e-3, "{width}");
    }
}
