//! Decoded images and the `.npy.zst` member codec.
//!
//! An [`Image`] is a 2-D uint8/uint16 array held as little-endian bytes in
//! C order — exactly the data part of its `.npy` file — so encoding is one
//! header plus one zstd frame, and the pixel hash is computed over the same
//! bytes that Python's `arr.tobytes()` gives.

use chess_schemas::PixelDtype;

use crate::npy::{self, NpyError};

/// Largest decoded member accepted (a 16-bit 16384×16384 image is 512 MiB).
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// A 2-D image: little-endian pixel bytes in C order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub dtype: PixelDtype,
    pub height: u32,
    pub width: u32,
    pub data: Vec<u8>,
}

impl Image {
    pub fn from_u16(height: u32, width: u32, px: &[u16]) -> Image {
        assert_eq!(px.len(), height as usize * width as usize, "pixel count must equal height*width");
        let mut data = Vec::with_capacity(px.len() * 2);
        for &v in px {
            data.extend_from_slice(&v.to_le_bytes());
        }
        Image { dtype: PixelDtype::Uint16, height, width, data }
    }

    pub fn from_u8(height: u32, width: u32, px: Vec<u8>) -> Image {
        assert_eq!(px.len(), height as usize * width as usize, "pixel count must equal height*width");
        Image { dtype: PixelDtype::Uint8, height, width, data: px }
    }

    pub fn pixel_count(&self) -> usize {
        self.height as usize * self.width as usize
    }

    /// Pixel values widened to u16 (uint8 images keep their 0..255 values).
    pub fn to_u16(&self) -> Vec<u16> {
        match self.dtype {
            PixelDtype::Uint16 => self.data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect(),
            PixelDtype::Uint8 => self.data.iter().map(|&v| v as u16).collect(),
        }
    }

    /// Pixel `i` (row-major), widened to u32.
    pub fn get(&self, i: usize) -> u32 {
        match self.dtype {
            PixelDtype::Uint16 => u16::from_le_bytes([self.data[2 * i], self.data[2 * i + 1]]) as u32,
            PixelDtype::Uint8 => self.data[i] as u32,
        }
    }

    /// Checks that the byte length matches the shape.
    pub fn check(&self) -> Result<(), String> {
        let expected = self.pixel_count() * self.dtype.bytes_per_pixel();
        if self.data.len() != expected || self.height == 0 || self.width == 0 {
            return Err(format!(
                "image of {}x{} {} needs {expected} bytes, has {}",
                self.height,
                self.width,
                self.dtype,
                self.data.len()
            ));
        }
        Ok(())
    }
}

/// BLAKE3-256 (hex) of the image's bytes: the manifest's `pixel_hash`.
pub fn pixel_hash(image: &Image) -> String {
    blake3::hash(&image.data).to_hex().to_string()
}

/// Encodes an image as one zstd frame holding a `.npy` file.
pub fn encode_npy_zst(image: &Image, level: i32) -> std::io::Result<Vec<u8>> {
    let mut npy = Vec::with_capacity(128 + image.data.len());
    npy::write_header(&mut npy, image.dtype, image.height, image.width);
    npy.extend_from_slice(&image.data);
    zstd::bulk::compress(&npy, level)
}

/// What went wrong decoding a `.npy.zst` member.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("zstd: {0}")]
    Zstd(String),
    #[error("decoded size {0} exceeds the limit of {MAX_DECODED_BYTES} bytes")]
    TooLarge(u64),
    #[error(transparent)]
    Npy(#[from] NpyError),
}

/// Reusable decoder (keeps a zstd context between calls).
pub struct NpyZstDecoder {
    ctx: zstd::bulk::Decompressor<'static>,
}

impl Default for NpyZstDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl NpyZstDecoder {
    pub fn new() -> Self {
        NpyZstDecoder { ctx: zstd::bulk::Decompressor::new().expect("zstd context allocation") }
    }

    /// Decodes a member. The output size comes from the frame header when
    /// present (bounded by [`MAX_DECODED_BYTES`]); otherwise the frame is
    /// streamed with the same bound.
    pub fn decode(&mut self, compressed: &[u8]) -> Result<Image, DecodeError> {
        let npy = match zstd::zstd_safe::get_frame_content_size(compressed) {
            Ok(Some(size)) => {
                if size > MAX_DECODED_BYTES {
                    return Err(DecodeError::TooLarge(size));
                }
                let mut out = Vec::with_capacity(size as usize);
                self.ctx.decompress_to_buffer(compressed, &mut out).map_err(|e| DecodeError::Zstd(e.to_string()))?;
                if out.len() as u64 != size {
                    return Err(DecodeError::Zstd(format!("frame announced {size} bytes, produced {}", out.len())));
                }
                out
            }
            Ok(None) => {
                use std::io::Read;
                let decoder =
                    zstd::stream::read::Decoder::new(compressed).map_err(|e| DecodeError::Zstd(e.to_string()))?;
                let mut out = Vec::new();
                decoder
                    .take(MAX_DECODED_BYTES + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| DecodeError::Zstd(e.to_string()))?;
                if out.len() as u64 > MAX_DECODED_BYTES {
                    return Err(DecodeError::TooLarge(out.len() as u64));
                }
                out
            }
            Err(_) => return Err(DecodeError::Zstd("not a zstd frame".into())),
        };
        into_image(npy)
    }
}

/// Interprets a whole `.npy` buffer as an image, reusing its allocation.
pub fn into_image(mut npy: Vec<u8>) -> Result<Image, DecodeError> {
    let header = npy::parse(&npy)?;
    npy.drain(..header.data_offset);
    Ok(Image { dtype: header.dtype, height: header.height, width: header.width, data: npy })
}

/// One-shot decode of a `.npy.zst` member.
pub fn decode_npy_zst(compressed: &[u8]) -> Result<Image, DecodeError> {
    NpyZstDecoder::new().decode(compressed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_hash() {
        let px: Vec<u16> = (0..12u16).map(|v| v * 5000).collect();
        let img = Image::from_u16(3, 4, &px);
        let enc = encode_npy_zst(&img, 3).unwrap();
        let back = decode_npy_zst(&enc).unwrap();
        assert_eq!(back, img);
        assert_eq!(back.to_u16(), px);
        assert_eq!(pixel_hash(&img), blake3::hash(&img.data).to_hex().to_string());
        assert_ne!(pixel_hash(&img), pixel_hash(&Image::from_u16(3, 4, &[0u16; 12])));
    }

    #[test]
    fn corrupt_members_are_errors() {
        let img = Image::from_u8(2, 2, vec![1, 2, 3, 4]);
        let enc = encode_npy_zst(&img, 3).unwrap();
        assert!(decode_npy_zst(&enc[..enc.len() - 3]).is_err());
        assert!(decode_npy_zst(b"garbage").is_err());
        let mut flipped = enc.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        // Either zstd notices or the npy header does; never a panic.
        let _ = decode_npy_zst(&flipped);
    }
}
