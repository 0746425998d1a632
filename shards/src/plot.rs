//! Small PNG charts (histograms and bar charts) for people to look at.
//!
//! Rendering is done here on an RGB canvas, with text from the bundled
//! DejaVu Sans Mono font (see `assets/DejaVu-LICENSE`), so no system fonts
//! or native libraries are needed.

use std::io::BufWriter;
use std::path::Path;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont};

use crate::error::{Result, ShardError};

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");

type Rgb = [u8; 3];
const BLACK: Rgb = [30, 30, 30];
const GRID: Rgb = [225, 225, 225];
const BAR: Rgb = [52, 101, 164];

/// An RGB raster.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
    font: FontRef<'static>,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas {
            width,
            height,
            pixels: vec![255; (width * height * 3) as usize],
            font: FontRef::try_from_slice(FONT_BYTES).expect("bundled font parses"),
        }
    }

    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = ((y as u32 * self.width + x as u32) * 3) as usize;
        for c in 0..3 {
            let old = self.pixels[i + c] as f32;
            self.pixels[i + c] = (old + (color[c] as f32 - old) * alpha.clamp(0.0, 1.0)).round() as u8;
        }
    }

    pub fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        for y in y0.min(y1)..y0.max(y1) {
            for x in x0.min(x1)..x0.max(x1) {
                self.blend(x, y, color, 1.0);
            }
        }
    }

    /// Draws text with its top-left corner at (x, y); `anchor` 0 = left, 0.5 = centre, 1 = right.
    pub fn text(&mut self, x: f32, y: f32, size: f32, anchor: f32, text: &str, color: Rgb) {
        let font = self.font.clone();
        let scaled = font.as_scaled(PxScale::from(size));
        let width: f32 = text.chars().map(|c| scaled.h_advance(font.glyph_id(c))).sum();
        let mut pen = x - width * anchor;
        let baseline = y + scaled.ascent();
        for c in text.chars() {
            let id = font.glyph_id(c);
            let glyph = id.with_scale_and_position(PxScale::from(size), ab_glyph::point(pen, baseline));
            pen += scaled.h_advance(id);
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                let mut draws = Vec::new();
                outline.draw(|gx, gy, cov| draws.push((gx, gy, cov)));
                for (gx, gy, cov) in draws {
                    self.blend(bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64, color, cov);
                }
            }
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let file = std::fs::File::create(path).map_err(ShardError::io(path))?;
        let mut encoder = png::Encoder::new(BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| ShardError::Other(format!("{}: {e}", path.display())))?;
        writer.write_image_data(&self.pixels).map_err(|e| ShardError::Other(format!("{}: {e}", path.display())))?;
        writer.finish().map_err(|e| ShardError::Other(format!("{}: {e}", path.display())))?;
        Ok(())
    }
}

/// A rounded axis step giving about `target` ticks over `max`.
fn nice_step(max: f64, target: f64) -> f64 {
    if max <= 0.0 {
        return 1.0;
    }
    let raw = max / target;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm < 1.5 {
        1.0
    } else if norm < 3.5 {
        2.0
    } else if norm < 7.5 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn short_number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// One chart: bars with x labels (category chart) or a histogram over a numeric range.
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub values: Vec<f64>,
    /// Category labels (one per bar), or empty for a numeric histogram.
    pub categories: Vec<String>,
    /// Numeric x range of a histogram.
    pub x_range: (f64, f64),
}

impl Panel {
    pub fn bars(title: &str, x_label: &str, categories: Vec<String>, values: Vec<f64>) -> Panel {
        Panel { title: title.into(), x_label: x_label.into(), values, categories, x_range: (0.0, 0.0) }
    }

    pub fn histogram(title: &str, x_label: &str, values: Vec<f64>, x_range: (f64, f64)) -> Panel {
        Panel { title: title.into(), x_label: x_label.into(), values, categories: Vec::new(), x_range }
    }

    fn draw(&self, c: &mut Canvas, top: i64, height: i64) {
        let (left, right) = (80i64, c.width as i64 - 20);
        let (plot_top, plot_bottom) = (top + 34, top + height - 48);
        c.text(c.width as f32 / 2.0, top as f32 + 6.0, 18.0, 0.5, &self.title, BLACK);
        let max = self.values.iter().cloned().fold(0.0f64, f64::max);
        let step = nice_step(max, 5.0);
        let y_max = (max / step).ceil().max(1.0) * step;
        let y_of = |v: f64| plot_bottom - ((v / y_max) * (plot_bottom - plot_top) as f64).round() as i64;
        let mut tick = 0.0;
        while tick <= y_max + step * 0.01 {
            let y = y_of(tick);
            c.fill_rect(left, y, right, y + 1, GRID);
            c.text(left as f32 - 6.0, y as f32 - 7.0, 12.0, 1.0, &short_number(tick), BLACK);
            tick += step;
        }
        let n = self.values.len().max(1) as f64;
        let slot = (right - left) as f64 / n;
        for (i, &v) in self.values.iter().enumerate() {
            let x0 = left + (i as f64 * slot).round() as i64;
            let x1 = left + ((i + 1) as f64 * slot).round() as i64;
            let gap = if self.categories.is_empty() { 0 } else { (slot * 0.15) as i64 };
            c.fill_rect(x0 + gap, y_of(v), (x1 - gap).max(x0 + gap + 1), plot_bottom, BAR);
            if !self.categories.is_empty() {
                let label = &self.categories[i];
                c.text((x0 + x1) as f32 / 2.0, plot_bottom as f32 + 4.0, 12.0, 0.5, label, BLACK);
                c.text((x0 + x1) as f32 / 2.0, y_of(v) as f32 - 15.0, 11.0, 0.5, &short_number(v), BLACK);
            }
        }
        c.fill_rect(left, plot_bottom, right, plot_bottom + 1, BLACK);
        c.fill_rect(left, plot_top, left + 1, plot_bottom, BLACK);
        if self.categories.is_empty() {
            let (lo, hi) = self.x_range;
            let step = nice_step(hi - lo, 8.0);
            let mut t = (lo / step).ceil() * step;
            while t <= hi + step * 1e-6 {
                let x = left + (((t - lo) / (hi - lo).max(1e-9)) * (right - left) as f64).round() as i64;
                c.fill_rect(x, plot_bottom, x + 1, plot_bottom + 5, BLACK);
                c.text(x as f32, plot_bottom as f32 + 6.0, 12.0, 0.5, &short_number(t), BLACK);
                t += step;
            }
        }
        c.text((left + right) as f32 / 2.0, (plot_bottom + 24) as f32, 13.0, 0.5, &self.x_label, BLACK);
    }
}

/// Renders panels stacked vertically into one PNG.
pub fn save_panels(path: &Path, panels: &[Panel]) -> Result<()> {
    let panel_height = 300i64;
    let mut canvas = Canvas::new(900, (panel_height * panels.len().max(1) as i64) as u32);
    for (i, panel) in panels.iter().enumerate() {
        panel.draw(&mut canvas, i as i64 * panel_height, panel_height);
    }
    canvas.save_png(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_png_with_bars_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.png");
        save_panels(
            &path,
            &[
                Panel::histogram("pixels", "value", (0..64).map(|i| (i * i) as f64).collect(), (0.0, 65535.0)),
                Panel::bars("views", "view", vec!["PA".into(), "AP".into()], vec![10.0, 3.0]),
            ],
        )
        .unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (900, 600));
        let bar_pixels = buf.chunks(3).filter(|p| p == &BAR).count();
        assert!(bar_pixels > 1000, "bars drawn: {bar_pixels}");
        let dark = buf.chunks(3).filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100).count();
        assert!(dark > 500, "axes and text drawn: {dark}");
    }
}
