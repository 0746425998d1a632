//! PNG charts for people to look at: line plots (training curves),
//! histograms and bar charts, stacked as panels in one image, drawn with
//! `plotters` on its bitmap backend.
//!
//! Text comes from the bundled DejaVu Sans Mono (see `assets/DejaVu-LICENSE`),
//! registered with plotters as its `sans-serif` family through the `ab_glyph`
//! feature, so no system fonts or native libraries (fontconfig, FreeType) are
//! needed and every machine draws the same pixels. Images are encoded with the
//! `png` crate (plotters' own encoder would pull in the `image` crate).
//!
//! Axis tick labels are formatted from the ticks themselves ([`TickFormat`]):
//! as many decimals as the tick step needs, scientific notation for small
//! magnitudes and k/M/G for large ones, so no two ticks print alike.
//!
//! [`Canvas`] is a plain RGB raster for figures that are not charts (Grad-CAM
//! overlays, the sweep summary). Its rectangles are direct pixel writes (a
//! `fill_rect` per pixel of an overlay must stay cheap) and its text is drawn
//! by plotters with the same bundled font.

use std::io::BufWriter;
use std::path::Path;
use std::sync::Once;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{register_font, FontStyle};

use crate::error::{Result, ShardError};

static FONT_BYTES: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
/// The family plotters uses by default for captions, tick labels and legends.
const FONT_FAMILY: &str = "sans-serif";

type Rgb = [u8; 3];
const INK: RGBColor = RGBColor(30, 30, 30);
const BAR: RGBColor = RGBColor(52, 101, 164);
const GRID: RGBColor = RGBColor(225, 225, 225);
/// Line colours of the series of one panel, in order (Tango palette).
const SERIES_COLOURS: [RGBColor; 6] = [
    RGBColor(52, 101, 164),
    RGBColor(204, 0, 0),
    RGBColor(78, 154, 6),
    RGBColor(245, 121, 0),
    RGBColor(117, 80, 123),
    RGBColor(193, 125, 17),
];

const PANEL_WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 300;

/// Registers the bundled font with plotters (once per process).
fn register_bundled_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).is_err() {
            panic!("the bundled DejaVu Sans Mono does not parse");
        }
    });
}

/// An RGB raster with text in the bundled font.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
}

/// plotters' ab_glyph text puts the baseline half a font size below the
/// text's top; DejaVu Sans Mono's ascent is 0.797 of its size (1901 of
/// 1901 + 483 font units), so this shift puts the glyphs' tops at `y` as
/// [`Canvas::text`] promises.
const ASCENT_BELOW_HALF_SIZE: f32 = 1901.0 / 2384.0 - 0.5;

impl Canvas {
    pub fn new(width: u32, height: u32) -> Canvas {
        register_bundled_font();
        Canvas { width, height, pixels: vec![255; width as usize * height as usize * 3] }
    }

    pub fn fill_rect(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        let clamp_x = |x: i64| x.clamp(0, self.width as i64) as usize;
        let clamp_y = |y: i64| y.clamp(0, self.height as i64) as usize;
        let (xa, xb) = (clamp_x(x0.min(x1)), clamp_x(x0.max(x1)));
        let (ya, yb) = (clamp_y(y0.min(y1)), clamp_y(y0.max(y1)));
        let stride = self.width as usize * 3;
        for row in self.pixels.chunks_exact_mut(stride).take(yb).skip(ya) {
            for pixel in row[xa * 3..xb * 3].chunks_exact_mut(3) {
                pixel.copy_from_slice(&color);
            }
        }
    }

    /// Draws text with its top-left corner at (x, y); `anchor` 0 = left, 0.5 = centre, 1 = right.
    pub fn text(&mut self, x: f32, y: f32, size: f32, anchor: f32, text: &str, color: Rgb) {
        let (width, height) = (self.width, self.height);
        let mut backend = BitMapBackend::with_buffer(&mut self.pixels, (width, height));
        let colour = RGBColor(color[0], color[1], color[2]);
        let style =
            TextStyle::from((FONT_FAMILY, size as f64).into_font()).color(&colour).pos(Pos::new(HPos::Left, VPos::Top));
        let text_width = backend.estimate_text_size(text, &style).map_or(0, |(w, _)| w);
        let left = x - text_width as f32 * anchor;
        let top = y + size * ASCENT_BELOW_HALF_SIZE;
        // The font is registered and pixels outside the raster are skipped,
        // so drawing text cannot fail.
        let _ = backend.draw_text(text, &style, (left.round() as i32, top.round() as i32));
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        write_rgb_png(path, self.width, self.height, &self.pixels)
    }
}

fn write_rgb_png(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<()> {
    let png_error = |cause| ShardError::Png { path: path.to_path_buf(), cause };
    let file = std::fs::File::create(path).map_err(ShardError::write(path))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)
}

/// How the tick labels of one axis are printed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TickFormat {
    /// Fixed point with this many decimals (`0.005`).
    Fixed(usize),
    /// Scientific with this many mantissa decimals (`2.5e-5`).
    Scientific(usize),
    /// Divided by `scale` with a suffix (`20k`, `1.5M`), this many decimals.
    Scaled { scale: f64, suffix: char, decimals: usize },
}

impl TickFormat {
    /// The format for ticks `ticks` (ascending, evenly spaced): the fewest
    /// decimals that print each tick to within a thousandth of the step.
    pub fn for_ticks(ticks: &[f64]) -> TickFormat {
        let largest = ticks.iter().fold(0.0f64, |m, t| m.max(t.abs()));
        if largest == 0.0 || !largest.is_finite() {
            return TickFormat::Fixed(0);
        }
        let step = ticks.windows(2).map(|w| (w[1] - w[0]).abs()).fold(f64::INFINITY, f64::min);
        let step = if step.is_finite() && step > 0.0 { step } else { largest };
        let tolerance = step * 1e-3;
        let decimals_for = |scale: f64| {
            (0..=12)
                .find(|&d| {
                    let unit = 10f64.powi(d as i32);
                    ticks.iter().all(|t| ((t / scale * unit).round() / unit * scale - t).abs() <= tolerance)
                })
                .unwrap_or(12)
        };
        if largest >= 1e4 {
            let (scale, suffix) = if largest >= 1e9 {
                (1e9, 'G')
            } else if largest >= 1e6 {
                (1e6, 'M')
            } else {
                (1e3, 'k')
            };
            return TickFormat::Scaled { scale, suffix, decimals: decimals_for(scale) };
        }
        match decimals_for(1.0) {
            d if d <= 4 => TickFormat::Fixed(d),
            _ => {
                // Mantissa decimals: the step's digits below the largest tick's exponent.
                let exponent = largest.log10().floor();
                let digits = (exponent - step.log10().floor()).max(0.0) as usize;
                TickFormat::Scientific(digits.min(12))
            }
        }
    }

    /// `value` as a label; values within a millionth of the step of zero print as zero.
    pub fn format(&self, value: f64) -> String {
        match *self {
            TickFormat::Fixed(d) => {
                let s = format!("{value:.d$}");
                // "-0.000" for a rounding residue below zero
                if s.starts_with('-') && s[1..].chars().all(|c| c == '0' || c == '.') {
                    s[1..].to_string()
                } else {
                    s
                }
            }
            TickFormat::Scientific(_) if value == 0.0 => "0".into(),
            TickFormat::Scientific(d) => format!("{value:.d$e}"),
            TickFormat::Scaled { .. } if value == 0.0 => "0".into(),
            TickFormat::Scaled { scale, suffix, decimals } => format!("{:.decimals$}{suffix}", value / scale),
        }
    }
}

/// The ticks plotters draws on an axis over `range` with at most `max_ticks`
/// labels, and the format that prints them distinctly.
fn axis_ticks(range: (f64, f64), max_ticks: usize) -> (Vec<f64>, TickFormat) {
    let coord = RangedCoordf64::from(range.0..range.1);
    let mut ticks = coord.key_points(max_ticks);
    // Snap float residues (1e-18 for 0) so they print as the tick they are.
    let step = ticks.windows(2).map(|w| w[1] - w[0]).fold(f64::INFINITY, f64::min);
    if step.is_finite() {
        for t in &mut ticks {
            if t.abs() < step * 1e-9 {
                *t = 0.0;
            }
        }
    }
    let format = TickFormat::for_ticks(&ticks);
    (ticks, format)
}

/// One named curve of a line panel.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// (x, y) points in drawing order; a non-finite y breaks the line.
    pub points: Vec<(f64, f64)>,
}

/// What a panel draws.
#[derive(Clone, Debug)]
pub enum PanelKind {
    /// One bar per category, labelled with its value.
    Bars { categories: Vec<String>, values: Vec<f64> },
    /// Counts of equal-width bins spanning `x_range`.
    Histogram { counts: Vec<f64>, x_range: (f64, f64) },
    /// Line plots, with a legend when there are several.
    Lines { series: Vec<Series> },
}

/// One chart of a [`save_panels`] image.
#[derive(Clone, Debug)]
pub struct Panel {
    pub title: String,
    pub x_label: String,
    pub kind: PanelKind,
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
type DrawResult = std::result::Result<(), String>;

impl Panel {
    /// A bar chart: one bar per category.
    pub fn bars(title: &str, x_label: &str, categories: Vec<String>, values: Vec<f64>) -> Panel {
        Panel { title: title.into(), x_label: x_label.into(), kind: PanelKind::Bars { categories, values } }
    }

    /// A histogram: `values` are the counts of equal-width bins over `x_range`.
    pub fn histogram(title: &str, x_label: &str, values: Vec<f64>, x_range: (f64, f64)) -> Panel {
        Panel { title: title.into(), x_label: x_label.into(), kind: PanelKind::Histogram { counts: values, x_range } }
    }

    /// Line plots of one or more series over a shared x axis.
    pub fn lines(title: &str, x_label: &str, series: Vec<Series>) -> Panel {
        Panel { title: title.into(), x_label: x_label.into(), kind: PanelKind::Lines { series } }
    }

    fn draw(&self, area: &Area<'_>) -> DrawResult {
        match &self.kind {
            PanelKind::Bars { categories, values } => self.draw_bars(area, categories, values),
            PanelKind::Histogram { counts, x_range } => self.draw_histogram(area, counts, *x_range),
            PanelKind::Lines { series } => self.draw_lines(area, series),
        }
    }

    fn draw_bars(&self, area: &Area<'_>, categories: &[String], values: &[f64]) -> DrawResult {
        let n = values.len().max(1);
        // Headroom above the tallest bar for its value label.
        let y_top = nonnegative_max(values) * 1.15;
        let (y_ticks, y_format) = axis_ticks((0.0, y_top), 6);
        let y_label = |v: &f64| y_format.format(*v);
        // Category i sits at x = i; plotters' ticks on [-0.5, n - 0.5] with
        // at most n labels are exactly the integers 0..n.
        let x_label = |v: &f64| {
            let i = v.round();
            let name = categories.get(i as usize).filter(|_| i >= 0.0 && (v - i).abs() < 1e-6);
            name.cloned().unwrap_or_default()
        };
        let mut chart = chart_builder(area, &self.title)
            .build_cartesian_2d(-0.5..n as f64 - 0.5, 0.0..y_top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_labels(n)
            .y_labels(y_ticks.len().max(2))
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(self.x_label.as_str())
            .draw()
            .map_err(|e| e.to_string())?;
        let value_format = TickFormat::for_ticks(values);
        chart
            .draw_series(values.iter().enumerate().map(|(i, &v)| {
                let x = i as f64;
                Rectangle::new([(x - 0.35, 0.0), (x + 0.35, v.max(0.0))], BAR.filled())
            }))
            .map_err(|e| e.to_string())?;
        let label_style =
            TextStyle::from((FONT_FAMILY, 12).into_font()).color(&INK).pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(
                values.iter().enumerate().map(|(i, &v)| {
                    Text::new(short_value(v, value_format), (i as f64, v.max(0.0)), label_style.clone())
                }),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn draw_histogram(&self, area: &Area<'_>, counts: &[f64], (lo, hi): (f64, f64)) -> DrawResult {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        let y_top = nonnegative_max(counts) * 1.05;
        let (_, x_format) = axis_ticks((lo, hi), 8);
        let (_, y_format) = axis_ticks((0.0, y_top), 6);
        let (x_label, y_label) = (|v: &f64| x_format.format(*v), |v: &f64| y_format.format(*v));
        let mut chart =
            chart_builder(area, &self.title).build_cartesian_2d(lo..hi, 0.0..y_top).map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(self.x_label.as_str())
            .draw()
            .map_err(|e| e.to_string())?;
        let width = (hi - lo) / counts.len().max(1) as f64;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, &c)| {
                let x0 = lo + i as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c.max(0.0))], BAR.filled())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    fn draw_lines(&self, area: &Area<'_>, series: &[Series]) -> DrawResult {
        let finite = || series.iter().flat_map(|s| &s.points).filter(|(x, y)| x.is_finite() && y.is_finite());
        let x_range = padded_range(finite().map(|p| p.0), 0.0);
        let y_range = padded_range(finite().map(|p| p.1), 0.05);
        let (_, x_format) = axis_ticks(x_range, 8);
        let (_, y_format) = axis_ticks(y_range, 8);
        let (x_label, y_label) = (|v: &f64| x_format.format(*v), |v: &f64| y_format.format(*v));
        let mut chart = chart_builder(area, &self.title)
            .build_cartesian_2d(x_range.0..x_range.1, y_range.0..y_range.1)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(self.x_label.as_str())
            .draw()
            .map_err(|e| e.to_string())?;
        for (k, s) in series.iter().enumerate() {
            let colour = SERIES_COLOURS[k % SERIES_COLOURS.len()];
            // Runs of finite points; a lone point is drawn as a dot.
            let runs: Vec<Vec<(f64, f64)>> = s
                .points
                .split(|(x, y)| !(x.is_finite() && y.is_finite()))
                .filter(|run| !run.is_empty())
                .map(|run| run.to_vec())
                .collect();
            for (r, run) in runs.iter().enumerate() {
                let annotation = if run.len() == 1 {
                    chart.draw_series(std::iter::once(Circle::new(run[0], 3, colour.filled())))
                } else {
                    chart.draw_series(LineSeries::new(run.iter().copied(), colour.stroke_width(2)))
                }
                .map_err(|e| e.to_string())?;
                if r == 0 {
                    annotation
                        .label(s.name.as_str())
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
                }
            }
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(INK)
                .label_font((FONT_FAMILY, 12))
                .draw()
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

fn chart_builder<'a, 'b>(area: &'a Area<'b>, title: &str) -> ChartBuilder<'a, 'b, BitMapBackend<'b>> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, (FONT_FAMILY, 18).into_font().color(&INK))
        .margin(10)
        .margin_right(24)
        .x_label_area_size(42)
        .y_label_area_size(76);
    builder
}

/// The largest value, at least a small positive number so an empty or
/// all-zero chart still has a y axis.
fn nonnegative_max(values: &[f64]) -> f64 {
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    if max > 0.0 {
        max
    } else {
        1.0
    }
}

/// The span of `values` widened by `pad` of it on each side; a single value
/// gets a span of its own size (or 1 for zero), no values give [0, 1].
fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    if hi > lo {
        let margin = (hi - lo) * pad;
        return (lo - margin, hi + margin);
    }
    let half = if lo == 0.0 { 0.5 } else { lo.abs() * 0.05 };
    (lo - half, hi + half)
}

/// A bar's value label: integers as integers (with k/M/G when large), others
/// with the precision their spread needs.
fn short_value(v: f64, spread: TickFormat) -> String {
    if v.fract() == 0.0 && v.abs() < 1e4 {
        format!("{v:.0}")
    } else {
        spread.format(v)
    }
}

/// Renders panels stacked vertically into one PNG, 900 × 300 pixels each.
pub fn save_panels(path: &Path, panels: &[Panel]) -> Result<()> {
    register_bundled_font();
    let (width, height) = (PANEL_WIDTH, PANEL_HEIGHT * panels.len().max(1) as u32);
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            panel.draw(area).map_err(|reason| ShardError::Chart {
                path: path.to_path_buf(),
                title: panel.title.clone(),
                reason,
            })?;
        }
    }
    write_rgb_png(path, width, height, &pixels)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        (info.width, info.height, buf)
    }

    fn count(pixels: &[u8], colour: RGBColor) -> usize {
        pixels.chunks(3).filter(|p| p == &[colour.0, colour.1, colour.2]).count()
    }

    /// Pixels of text and axes: dark in all three channels.
    fn dark(pixels: &[u8]) -> usize {
        pixels.chunks(3).filter(|p| p[0] < 100 && p[1] < 100 && p[2] < 100).count()
    }

    #[test]
    fn a_histogram_and_bars_render() {
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
        let (w, h, pixels) = decode(&path);
        assert_eq!((w, h), (900, 600));
        let top = &pixels[..pixels.len() / 2];
        let bottom = &pixels[pixels.len() / 2..];
        assert!(count(top, BAR) > 10_000, "histogram bins drawn: {}", count(top, BAR));
        assert!(count(bottom, BAR) > 10_000, "bars drawn: {}", count(bottom, BAR));
        assert!(dark(top) > 500 && dark(bottom) > 500, "axes and text drawn: {} {}", dark(top), dark(bottom));
    }

    #[test]
    fn a_single_category_bar_chart_renders() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.png");
        save_panels(&path, &[Panel::bars("views", "view", vec!["PA".into()], vec![4.0])]).unwrap();
        let (w, h, pixels) = decode(&path);
        assert_eq!((w, h), (900, 300));
        assert!(count(&pixels, BAR) > 10_000);
    }

    #[test]
    fn line_panels_render_each_series_with_a_legend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("curves.png");
        let steps = 0..200;
        let lr = Series {
            name: "lr".into(),
            points: steps.clone().map(|s| (s as f64, 0.03 * (1.0 - s as f64 / 199.0))).collect(),
        };
        let train = Series {
            name: "train".into(),
            points: steps.clone().map(|s| (s as f64, 2.0 / (1.0 + s as f64))).collect(),
        };
        let mut valid =
            Series { name: "valid".into(), points: steps.map(|s| (s as f64, 2.5 / (1.0 + s as f64))).collect() };
        valid.points[50].1 = f64::NAN; // a gap, not a failure
        save_panels(
            &path,
            &[Panel::lines("learning rate", "step", vec![lr]), Panel::lines("loss", "step", vec![train, valid])],
        )
        .unwrap();
        let (w, h, pixels) = decode(&path);
        assert_eq!((w, h), (900, 600));
        let (top, bottom) = pixels.split_at(pixels.len() / 2);
        assert!(count(top, SERIES_COLOURS[0]) > 500, "the lr line: {}", count(top, SERIES_COLOURS[0]));
        assert_eq!(count(top, SERIES_COLOURS[1]), 0, "one series, one colour");
        assert!(count(bottom, SERIES_COLOURS[0]) > 500 && count(bottom, SERIES_COLOURS[1]) > 500);
        assert!(dark(top) > 500 && dark(bottom) > 500);
    }

    #[test]
    fn empty_and_constant_line_panels_render() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flat.png");
        let flat = Series { name: "flat".into(), points: vec![(0.0, 1.0), (1.0, 1.0)] };
        let dot = Series { name: "dot".into(), points: vec![(3.0, 0.0)] };
        save_panels(&path, &[Panel::lines("flat", "x", vec![flat, dot]), Panel::lines("none", "x", vec![])]).unwrap();
        let (_, h, pixels) = decode(&path);
        assert_eq!(h, 600);
        assert!(count(&pixels, SERIES_COLOURS[0]) > 100 && count(&pixels, SERIES_COLOURS[1]) > 10);
    }

    fn labels(range: (f64, f64), max_ticks: usize) -> Vec<String> {
        let (ticks, format) = axis_ticks(range, max_ticks);
        ticks.iter().map(|&t| format.format(t)).collect()
    }

    fn assert_distinct(labels: &[String]) {
        let set: std::collections::BTreeSet<&String> = labels.iter().collect();
        assert_eq!(set.len(), labels.len(), "duplicated tick labels: {labels:?}");
        assert!(labels.len() >= 3, "too few ticks: {labels:?}");
    }

    #[test]
    fn tick_labels_are_distinct_and_readable() {
        // The learning-rate axis of the issue: 0.03 down to 0.
        let lr = labels((-0.0015, 0.0315), 8);
        assert_distinct(&lr);
        assert_eq!(lr, ["0.000", "0.005", "0.010", "0.015", "0.020", "0.025", "0.030"]);
        assert_distinct(&labels((0.0, 3e-5), 6));
        assert!(labels((0.0, 3e-5), 6).iter().any(|l| l.contains('e')), "small values in scientific notation");
        assert_eq!(labels((0.0, 120_000.0), 8), ["0", "20k", "40k", "60k", "80k", "100k", "120k"]);
        assert_eq!(labels((0.0, 100.0), 6), ["0", "20", "40", "60", "80", "100"]);
        assert_distinct(&labels((0.999, 1.001), 6));
        assert_distinct(&labels((-2.5, 2.5), 8));
        assert_eq!(labels((0.0, 2.5e6), 6), ["0", "0.5M", "1.0M", "1.5M", "2.0M", "2.5M"]);
    }

    #[test]
    fn a_demo_figure_for_people() {
        // Writes the panels to CHESS_PLOT_DEMO (when set) to look at them.
        let Some(dir) = std::env::var_os("CHESS_PLOT_DEMO") else { return };
        let lr = Series {
            name: "lr".into(),
            points: (0..200).map(|s| (s as f64, 0.03 * (1.0 - s as f64 / 199.0))).collect(),
        };
        let a = Series {
            name: "train".into(),
            points: (0..200).map(|s| (s as f64, 2.0 / (1.0 + 0.1 * s as f64))).collect(),
        };
        let b = Series {
            name: "valid".into(),
            points: (0..200).map(|s| (s as f64, 2.3 / (1.0 + 0.08 * s as f64))).collect(),
        };
        save_panels(
            &Path::new(&dir).join("demo.png"),
            &[
                Panel::lines("learning rate", "step", vec![lr]),
                Panel::lines("loss", "step", vec![a, b]),
                Panel::histogram(
                    "pixels",
                    "value",
                    (0..128).map(|i| ((i * 37) % 91) as f64 * 1000.0).collect(),
                    (0.0, 65535.0),
                ),
                Panel::bars("views", "view", vec!["AP".into(), "LL".into(), "PA".into()], vec![120.0, 7.0, 1500.0]),
            ],
        )
        .unwrap();
    }

    #[test]
    fn canvas_text_and_rects_land_where_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let mut c = Canvas::new(200, 100);
        c.fill_rect(10, 10, 20, 30, [255, 0, 0]);
        c.fill_rect(-5, 90, 500, 500, [0, 0, 255]); // clipped to the raster
        c.text(100.0, 40.0, 16.0, 0.5, "Grad-CAM", [0, 0, 0]);
        c.save_png(&path).unwrap();
        let (w, h, pixels) = decode(&path);
        assert_eq!((w, h), (200, 100));
        let at = |x: usize, y: usize| &pixels[(y * 200 + x) * 3..(y * 200 + x) * 3 + 3];
        assert_eq!(at(10, 10), [255, 0, 0]);
        assert_eq!(at(19, 29), [255, 0, 0]);
        assert_eq!(at(20, 30), [255, 255, 255]);
        assert_eq!(count(&pixels, RGBColor(0, 0, 255)), 200 * 10);
        // Text: dark pixels centred on x = 100, between y = 40 and 40 + size.
        let ink: Vec<(usize, usize)> = (0..100)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| at(x, y).iter().all(|&v| v < 100))
            .collect();
        assert!(ink.len() > 50, "text drawn: {}", ink.len());
        assert!(ink.iter().all(|&(x, y)| (40..=58).contains(&y) && (20..180).contains(&x)), "text placement");
        let mean_x = ink.iter().map(|p| p.0 as f64).sum::<f64>() / ink.len() as f64;
        assert!((mean_x - 100.0).abs() < 10.0, "centred: {mean_x}");
    }
}
