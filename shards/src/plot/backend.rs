//! The drawing backend of the charts: plotters' RGB bitmap backend for
//! every shape, with horizontal text drawn by [`super::text`] (glyphs at
//! their side bearings, the bundled font) instead of plotters' own
//! ab_glyph renderer.

use plotters::prelude::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind, FontTransform,
};

use super::text;

/// A [`BitMapBackend`] over an RGB buffer that draws text itself.
pub struct TextBackend<'a>(BitMapBackend<'a>);

type Error<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> TextBackend<'a> {
    /// Draws into `pixels`: `width × height` RGB, row-major.
    pub fn new(pixels: &'a mut [u8], (width, height): (u32, u32)) -> TextBackend<'a> {
        text::register();
        TextBackend(BitMapBackend::with_buffer(pixels, (width, height)))
    }
}

impl<'a> DrawingBackend for TextBackend<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), Error<'a>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), Error<'a>> {
        self.0.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Error<'a>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(&mut self, from: BackendCoord, to: BackendCoord, style: &S) -> Result<(), Error<'a>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error<'a>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error<'a>> {
        self.0.fill_polygon(vert, style)
    }
    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> Result<(), Error<'a>> {
        self.0.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, style: &S) -> Result<(u32, u32), Error<'a>> {
        let (w, h) = text::extent(style.size() as f32, text);
        Ok((w.ceil() as u32, h.ceil() as u32))
    }

    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, style: &S, pos: BackendCoord) -> Result<(), Error<'a>> {
        if !matches!(style.transform(), FontTransform::None) {
            // Rotated text (none of this crate's charts use it): plotters' renderer.
            return self.0.draw_text(text, style, pos);
        }
        let size = style.size() as f32;
        let (w, h) = text::extent(size, text);
        let anchor = style.anchor();
        let left = pos.0 as f32
            - match anchor.h_pos {
                HPos::Left => 0.0,
                HPos::Center => w / 2.0,
                HPos::Right => w,
            };
        let top = pos.1 as f32
            - match anchor.v_pos {
                VPos::Top => 0.0,
                VPos::Center => h / 2.0,
                VPos::Bottom => h,
            };
        let color = style.color();
        let (width, height) = self.0.get_size();
        let mut result = Ok(());
        text::rasterize(left, top, size, text, |x, y, coverage| {
            if result.is_ok() && x >= 0 && y >= 0 && x < width as i64 && y < height as i64 {
                let ink = BackendColor { alpha: color.alpha * coverage.clamp(0.0, 1.0) as f64, rgb: color.rgb };
                result = self.0.draw_pixel((x as i32, y as i32), ink);
            }
        });
        result
    }
}
