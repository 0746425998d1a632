//! 8-bit greyscale PNGs, as the commands write their images (suppressed
//! images, residual maps, sample grids, augmentation previews).

use std::path::Path;

use crate::{write_err, Result, TrainError};

/// Writes `pixels` (`width × height`, row-major) as an 8-bit grey PNG.
pub fn write_gray(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<()> {
    let f = std::fs::File::create(path).map_err(write_err(path))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| TrainError::Output { path: path.to_path_buf(), msg: e.to_string() };
    enc.write_header().map_err(err)?.write_image_data(pixels).map_err(err)
}
