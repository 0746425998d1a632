//! PNG charts for people to look at: line plots (training curves),
//! histograms and bar charts, stacked as panels in one image, drawn with
//! `plotters` on its bitmap backend (no system fonts, no native libraries).
//!
//! - [`ticks`]: tick labels formatted from the ticks themselves (as many
//!   decimals as the step needs, scientific for small magnitudes, k/M/G for
//!   large ones), so no two ticks print alike.
//! - [`text`]: the bundled DejaVu Sans Mono, registered with plotters and
//!   rasterised with `ab_glyph`; [`backend`]: plotters' bitmap backend with
//!   that text renderer (plotters' own misplaces glyphs).
//! - [`canvas`]: [`Canvas`], a raster for figures that are not charts.
//!
//! Images are encoded with the `png` crate (plotters' encoder would pull in
//! the `image` crate).

pub mod backend;
pub mod canvas;
pub mod text;
pub mod ticks;

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub use canvas::Canvas;
pub use ticks::TickFormat;

use crate::error::{Result, ShardError};
use backend::TextBackend;
use canvas::write_rgb_png;
use text::FAMILY as FONT_FAMILY;
use ticks::axis_ticks;

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

type Area<'a> = DrawingArea<TextBackend<'a>, plotters::coord::Shift>;
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

fn chart_builder<'a, 'b>(area: &'a Area<'b>, title: &str) -> ChartBuilder<'a, 'b, TextBackend<'b>> {
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
    let (width, height) = (PANEL_WIDTH, PANEL_HEIGHT * panels.len().max(1) as u32);
    let mut pixels = vec![255u8; width as usize * height as usize * 3];
    {
        let root = TextBackend::new(&mut pixels, (width, height)).into_drawing_area();
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
pub(crate) mod tests {
    use super::*;

    /// Width, height and RGB pixels of a PNG written here.
    pub(crate) fn decode(path: &Path) -> (u32, u32, Vec<u8>) {
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
}
