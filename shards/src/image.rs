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

/// How a `.npy.zst` member's frame stores its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// zstd-compressed blocks (the saving was worth the decode time).
    Compressed,
    /// Raw (stored) blocks: decoding is a copy.
    Raw,
}

/// Largest block a zstd frame may hold (the format's Block_Maximum_Size).
const ZSTD_MAX_BLOCK: usize = 128 * 1024;
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];
/// Frame header descriptor: 8-byte content size, single segment, no checksum, no dictionary.
const RAW_FRAME_DESCRIPTOR: u8 = 0b1110_0000;
/// Bytes before the first block of a frame written by [`raw_zstd_frame`].
const RAW_FRAME_HEADER: usize = 4 + 1 + 8;

/// An ordinary zstd frame holding `data` in raw blocks, with its content
/// size in the header: any zstd decoder reads it, and decoding it is a copy.
pub fn raw_zstd_frame(data: &[u8]) -> Vec<u8> {
    let blocks = data.len().div_ceil(ZSTD_MAX_BLOCK).max(1);
    let mut out = Vec::with_capacity(RAW_FRAME_HEADER + 3 * blocks + data.len());
    out.extend_from_slice(&ZSTD_MAGIC);
    out.push(RAW_FRAME_DESCRIPTOR);
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut chunks = data.chunks(ZSTD_MAX_BLOCK).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0]); // one empty last raw block
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none() as u32;
        // Block header: bit 0 last block, bits 1-2 type (0 = raw), bits 3-23 size.
        let header = last | ((chunk.len() as u32) << 3);
        out.extend_from_slice(&header.to_le_bytes()[..3]);
        out.extend_from_slice(chunk);
    }
    out
}

/// The payload pieces of a frame made only of raw blocks (any header
/// layout, as any encoder may write them), or `None` when the frame has a
/// compressed or RLE block, a checksum or dictionary, or does not parse.
/// The pieces, concatenated, are exactly what decoding gives.
pub fn raw_frame_blocks(frame: &[u8]) -> Option<Vec<&[u8]>> {
    let mut blocks = Vec::new();
    let total = raw_frame_visit(frame, |b| blocks.push(b))?;
    (blocks.iter().map(|b| b.len() as u64).sum::<u64>() == total).then_some(blocks)
}

/// Walks the raw blocks of a frame, handing each payload to `f`; returns
/// the frame's announced content size. `None` as for [`raw_frame_blocks`]
/// (then `f` may have seen some blocks).
pub fn raw_frame_visit<'a>(frame: &'a [u8], mut f: impl FnMut(&'a [u8])) -> Option<u64> {
    let (content, mut pos) = raw_frame_header(frame)?;
    loop {
        let (last, size) = raw_block_header(frame.get(pos..pos + 3)?)?;
        pos += 3;
        f(frame.get(pos..pos + size)?);
        pos += size;
        if last {
            return (pos == frame.len()).then_some(content);
        }
    }
}

/// The start of a frame that may hold only raw blocks: its announced
/// content size and the offset of its first block header; `None` when it
/// is not a zstd frame, has no content size, a checksum or a dictionary
/// (`prefix` may be just the frame's first bytes).
pub fn raw_frame_header(prefix: &[u8]) -> Option<(u64, usize)> {
    if prefix.len() < 5 || prefix[..4] != ZSTD_MAGIC {
        return None;
    }
    let fhd = prefix[4];
    let (fcs_flag, single, checksum, dict) = (fhd >> 6, fhd & 0x20 != 0, fhd & 0x04 != 0, fhd & 0x03);
    if checksum || dict != 0 || fhd & 0x08 != 0 {
        return None;
    }
    let pos = 5 + usize::from(!single); // window descriptor when not single-segment
    let fcs_len = match (fcs_flag, single) {
        (0, false) => return None, // no content size: not ours to fast-path
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let field = prefix.get(pos..pos + fcs_len)?;
    let mut le = [0u8; 8];
    le[..fcs_len].copy_from_slice(field);
    let content = u64::from_le_bytes(le) + if fcs_len == 2 { 256 } else { 0 };
    Some((content, pos + fcs_len))
}

/// A 3-byte block header of a raw block: `(last, size)`; `None` for a
/// compressed or RLE block, or a size over the format's maximum.
pub fn raw_block_header(h: &[u8]) -> Option<(bool, usize)> {
    let &[a, b, c] = h else { return None };
    let header = u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16;
    let (last, kind, size) = (header & 1 == 1, (header >> 1) & 3, (header >> 3) as usize);
    (kind == 0 && size <= ZSTD_MAX_BLOCK).then_some((last, size))
}

/// Encodes an image as one zstd frame holding a `.npy` file, keeping the
/// level-`level` frame only when it is at least `min_saving` (a share, e.g.
/// 0.10) smaller than the `.npy`; otherwise the frame stores raw blocks.
/// `min_saving <= 0` keeps every compressed frame.
pub fn encode_npy_zst_policy(image: &Image, level: i32, min_saving: f64) -> std::io::Result<(Vec<u8>, FrameKind)> {
    let mut npy = Vec::with_capacity(128 + image.data.len());
    npy::write_header(&mut npy, image.dtype, image.height, image.width);
    npy.extend_from_slice(&image.data);
    let compressed = zstd::bulk::compress(&npy, level)?;
    if min_saving <= 0.0 || (compressed.len() as f64) <= (1.0 - min_saving) * npy.len() as f64 {
        Ok((compressed, FrameKind::Compressed))
    } else {
        Ok((raw_zstd_frame(&npy), FrameKind::Raw))
    }
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

/// Incompressible test pixels: an `h` × `w` image of xorshift64 noise from
/// `state` (non-zero), shared by the codec and loader tests.
#[cfg(test)]
pub(crate) fn xorshift_noise(h: u32, w: u32, mut state: u64) -> Image {
    let px: Vec<u16> = (0..h * w)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u16
        })
        .collect();
    Image::from_u16(h, w, &px)
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
    fn raw_frames_are_zstd_frames() {
        for len in [0usize, 1, 1000, ZSTD_MAX_BLOCK, ZSTD_MAX_BLOCK + 1, 3 * ZSTD_MAX_BLOCK + 17] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 13) as u8).collect();
            let frame = raw_zstd_frame(&data);
            assert_eq!(zstd::zstd_safe::get_frame_content_size(&frame).unwrap(), Some(len as u64), "len {len}");
            assert_eq!(zstd::stream::decode_all(&frame[..]).unwrap(), data, "len {len}");
            let blocks = raw_frame_blocks(&frame).unwrap();
            assert_eq!(blocks.concat(), data);
            assert_eq!(blocks.len(), len.div_ceil(ZSTD_MAX_BLOCK).max(1));
            assert!(raw_frame_blocks(&frame[..frame.len() - 1]).is_none() || len == 0);
        }
        // Frames with compressed blocks are not raw.
        let compressed = zstd::bulk::compress(&[7u8; 4096], 3).unwrap();
        assert!(raw_frame_blocks(&compressed).is_none());
        // zstd's own raw blocks (incompressible data at a fast level) parse too.
        let noise: Vec<u8> = (0..300_000u64).map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8).collect();
        let frame = zstd::bulk::compress(&noise, 3).unwrap();
        if let Some(blocks) = raw_frame_blocks(&frame) {
            assert_eq!(blocks.concat(), noise);
        }
    }

    #[test]
    fn policy_keeps_compression_only_when_it_pays() {
        let flat = Image::from_u16(64, 64, &vec![1000u16; 64 * 64]);
        let (frame, kind) = encode_npy_zst_policy(&flat, 3, 0.10).unwrap();
        assert_eq!(kind, FrameKind::Compressed);
        assert_eq!(decode_npy_zst(&frame).unwrap(), flat);
        let noisy = xorshift_noise(64, 64, 0x1234_5678);
        let (frame, kind) = encode_npy_zst_policy(&noisy, 3, 0.10).unwrap();
        assert_eq!(kind, FrameKind::Raw);
        assert!(raw_frame_blocks(&frame).is_some());
        assert_eq!(decode_npy_zst(&frame).unwrap(), noisy);
        // A policy of 0 keeps the compressed frame whatever it saves.
        assert_eq!(encode_npy_zst_policy(&noisy, 3, 0.0).unwrap().1, FrameKind::Compressed);
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
