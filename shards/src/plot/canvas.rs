//! [`Canvas`]: a plain RGB raster for figures that are not charts (the
//! trainer's Grad-CAM overlays and sweep summary): rectangles, text in the
//! bundled font, PNG output.
//!
//! Kept by hand rather than on plotters: its rectangles are direct pixel
//! writes (an overlay calls `fill_rect` once per pixel, which must stay a
//! few stores), and its text goes through the same [`super::text`]
//! rasteriser as the charts.

use std::io::BufWriter;
use std::path::Path;

use super::text;
use crate::error::{Result, ShardError};

type Rgb = [u8; 3];

/// An RGB raster with text in the bundled font.
pub struct Canvas {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
}

impl Canvas {
    /// A white canvas.
    pub fn new(width: u32, height: u32) -> Canvas {
        Canvas { width, height, pixels: vec![255; width as usize * height as usize * 3] }
    }

    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f32) {
        if x < 0 || y < 0 || x >= self.width as i64 || y >= self.height as i64 {
            return;
        }
        let i = (y as usize * self.width as usize + x as usize) * 3;
        let alpha = alpha.clamp(0.0, 1.0);
        for (old, new) in self.pixels[i..i + 3].iter_mut().zip(color) {
            *old = (*old as f32 + (new as f32 - *old as f32) * alpha).round() as u8;
        }
    }

    /// Fills the pixels `x0..x1 × y0..y1` (either order), clipped to the canvas.
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
        let (width, _) = text::extent(size, text);
        let mut ink = Vec::new();
        text::rasterize(x - width * anchor, y, size, text, |px, py, coverage| ink.push((px, py, coverage)));
        for (px, py, coverage) in ink {
            self.blend(px, py, color, coverage);
        }
    }

    /// Writes the canvas as an 8-bit RGB PNG.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        write_rgb_png(path, self.width, self.height, &self.pixels)
    }
}

/// Writes `pixels` (`width × height` RGB, row-major) as an 8-bit RGB PNG.
pub(crate) fn write_rgb_png(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<()> {
    let png_error = |cause| ShardError::Png { path: path.to_path_buf(), cause };
    let file = std::fs::File::create(path).map_err(ShardError::write(path))?;
    let mut encoder = png::Encoder::new(BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(png_error)?;
    writer.write_image_data(pixels).map_err(png_error)?;
    writer.finish().map_err(png_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::tests::decode;

    #[test]
    fn text_and_rects_land_where_asked() {
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
        assert_eq!(pixels.chunks(3).filter(|p| p == &[0, 0, 255]).count(), 200 * 10);
        // Text: dark pixels centred on x = 100, between y = 40 and 40 + size.
        let ink: Vec<(usize, usize)> = (0..100)
            .flat_map(|y| (0..200).map(move |x| (x, y)))
            .filter(|&(x, y)| at(x, y).iter().all(|&v| v < 100))
            .collect();
        assert!(ink.len() > 50, "text drawn: {}", ink.len());
        assert!(ink.iter().all(|&(x, y)| (40..=56).contains(&y) && (20..180).contains(&x)), "text placement");
        let mean_x = ink.iter().map(|p| p.0 as f64).sum::<f64>() / ink.len() as f64;
        assert!((mean_x - 100.0).abs() < 10.0, "centred: {mean_x}");
    }
}
