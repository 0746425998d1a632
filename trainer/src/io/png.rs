//! 8-bit greyscale PNGs, as the commands write their images (suppressed
//! images, residual maps, sample grids, augmentation previews).

use std::path::Path;

use crate::{write_err, Result, TrainError};

/// Encodes `pixels` (`width × height × channels`, row-major; 1 grey, 3 RGB) as an 8-bit PNG in memory.
pub fn encode(width: u32, height: u32, channels: u32, pixels: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| TrainError::Internal(format!("encoding a PNG: {e}"));
    enc.write_header().map_err(err)?.write_image_data(pixels).map_err(err)?;
    Ok(out)
}

/// Writes `pixels` (`width × height`, row-major) as an 8-bit grey PNG.
pub fn write_gray(path: &Path, width: u32, height: u32, pixels: &[u8]) -> Result<()> {
    let f = std::fs::File::create(path).map_err(write_err(path))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let err = |e: png::EncodingError| TrainError::Output { path: path.to_path_buf(), msg: e.to_string() };
    enc.write_header().map_err(err)?.write_image_data(pixels).map_err(err)
}
