//! JPEG 2000 (1.2.840.10008.1.2.4.90/.91) and HTJ2K (.201/.202/.203)
//! frames decoded by OpenJPEG 2.5.3 (the `jpeg2k` crate over the vendored
//! `openjpeg-sys`, the same build dicom-pixeldata uses) straight to samples.
//!
//! Why not through dicom-pixeldata: its adapter calls the same
//! `opj_decode`, then copies every `i32` sample into a little-endian byte
//! buffer that [`super::stored_values`] reads back: two passes over the
//! frame for nothing. Here the samples go from OpenJPEG's buffer to stored
//! values in one pass (the same low 16 bits, so the values are identical).
//!
//! Optionally at a reduced resolution ([`reduction`], `--j2k-reduce`):
//! OpenJPEG's `cp_reduce` stops the inverse wavelet transform `r` levels
//! early and returns the LL band, `⌈w / 2^r⌉ × ⌈h / 2^r⌉`: tier-1 decoding
//! of the skipped subbands and the last transform levels are not done.
//! Not bit-identical to full decode + resize (the wavelet's low-pass is not
//! the pipeline's triangle filter); the correlation with the full path is
//! measured and tested.
//!
//! Memory: the codestream's own image size (SIZ) is read and compared with
//! the DICOM header's rows and columns (already bounded by
//! [`super::MAX_PIXELS`] and the compression ratio) *before* OpenJPEG
//! allocates anything.

use jpeg2k::{DecodeParameters, Image};

/// The transfer syntaxes decoded here.
pub fn is_j2k(ts: &str) -> bool {
    matches!(
        ts,
        "1.2.840.10008.1.2.4.90"
            | "1.2.840.10008.1.2.4.91"
            | "1.2.840.10008.1.2.4.201"
            | "1.2.840.10008.1.2.4.202"
            | "1.2.840.10008.1.2.4.203"
    )
}

/// What the main header of a codestream says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MainHeader {
    pub width: u32,
    pub height: u32,
    pub components: u16,
    /// Fewest wavelet decomposition levels of COD and any COC.
    pub levels: u8,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Where the codestream starts: at 0 for a raw codestream, after the `jp2c`
/// box header for a JP2 file (boxes walked, never searched).
fn codestream_start(b: &[u8]) -> Option<usize> {
    if b.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return Some(0);
    }
    let mut pos = 0usize;
    while pos + 8 <= b.len() {
        let len = be32(b, pos)? as usize;
        let (header, len) = match len {
            1 => (16, usize::try_from(u64::from_be_bytes(b.get(pos + 8..pos + 16)?.try_into().ok()?)).ok()?),
            0 => (8, b.len() - pos),
            n => (8, n),
        };
        if &b[pos + 4..pos + 8] == b"jp2c" {
            return Some(pos + header);
        }
        if len < header {
            return None;
        }
        pos = pos.checked_add(len)?;
    }
    None
}

/// Reads SIZ, COD and COC of the main header (up to the first tile part).
pub fn main_header(stream: &[u8]) -> Option<MainHeader> {
    let b = &stream[codestream_start(stream)?..];
    if !b.starts_with(&[0xFF, 0x4F, 0xFF, 0x51]) {
        return None;
    }
    let siz = 4;
    let x = be32(b, siz + 4)?.checked_sub(be32(b, siz + 12)?)?;
    let y = be32(b, siz + 8)?.checked_sub(be32(b, siz + 16)?)?;
    let components = be16(b, siz + 36)?;
    let mut pos = 2;
    let mut levels: Option<u8> = None;
    while pos + 4 <= b.len() {
        if b[pos] != 0xFF {
            return None;
        }
        let marker = b[pos + 1];
        let len = be16(b, pos + 2)? as usize;
        let seg = pos + 4;
        let found = match marker {
            0x90 | 0x93 | 0xD9 => break,     // SOT, SOD, EOC: end of the main header
            0x52 => b.get(seg + 5).copied(), // COD: Scod, SGcod(4), levels
            0x53 => b.get(seg + if components < 257 { 2 } else { 3 }).copied(), // COC: Ccoc, Scoc, levels
            _ => None,
        };
        if let Some(l) = found {
            levels = Some(levels.map_or(l, |m| m.min(l)));
        }
        if len < 2 {
            return None;
        }
        pos = seg + len - 2;
    }
    Some(MainHeader { width: x, height: y, components, levels: levels? })
}

/// The reduction factor `r` for an image of `width × height` going to an
/// output of `size × size`: the largest with both sides still at least
/// `size` after halving `r` times (so only images at least twice the output
/// are reduced), within the codestream's decomposition levels.
pub fn reduction(width: u32, height: u32, size: u32, levels: u8) -> u32 {
    let mut r = 0;
    while r < levels as u32 && (width.min(height) >> (r + 1)) >= size.max(1) {
        r += 1;
    }
    r
}

/// A decoded frame of `rows × columns` values.
pub struct Frame {
    pub rows: u32,
    pub columns: u32,
    pub values: Vec<i32>,
}

/// Decodes a single-component frame of `rows × columns` (what the DICOM
/// header says), at full resolution or, with `reduce_to = Some(size)`, at
/// the [`reduction`] for that output size; each sample goes through
/// `to_stored` (given its low `bits_allocated` bits, as dicom-pixeldata
/// would have written them).
pub fn decode(
    stream: &[u8],
    rows: u32,
    columns: u32,
    bits_allocated: u16,
    reduce_to: Option<u32>,
    to_stored: impl Fn(u32) -> i32,
) -> Result<Frame, String> {
    let mh = main_header(stream).ok_or("JPEG 2000 main header (SIZ, COD) not found or truncated")?;
    if (mh.width, mh.height) != (columns, rows) {
        return Err(format!("JPEG 2000 image is {}x{}, the header says {columns}x{rows}", mh.width, mh.height));
    }
    if mh.components != 1 {
        return Err(format!("JPEG 2000 image has {} components, 1 expected", mh.components));
    }
    let r = reduce_to.map_or(0, |size| reduction(columns, rows, size, mh.levels));
    let image = match Image::from_bytes_with(stream, DecodeParameters::new().reduce(r)) {
        Ok(i) => i,
        // A tile-part header may declare fewer levels than the main
        // header: decode at full resolution then.
        Err(_) if r > 0 => Image::from_bytes(stream).map_err(|e| format!("JPEG 2000 decode: {e}"))?,
        Err(e) => return Err(format!("JPEG 2000 decode: {e}")),
    };
    let c = image.components().first().ok_or("JPEG 2000 image without components")?;
    let (w, h) = (c.width(), c.height());
    let data = c.data();
    if data.len() != w as usize * h as usize || w == 0 || h == 0 || w > columns || h > rows {
        return Err(format!("JPEG 2000 decoded {w}x{h} ({} samples) for a {columns}x{rows} image", data.len()));
    }
    let low: u32 = if bits_allocated == 8 { 0xFF } else { 0xFFFF };
    Ok(Frame { rows: h, columns: w, values: data.iter().map(|&v| to_stored(v as u32 & low)).collect() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduction_keeps_both_sides_at_least_the_output() {
        assert_eq!(reduction(1841, 1955, 512, 5), 1); // 920×977, then 460 < 512
        assert_eq!(reduction(4096, 4096, 512, 5), 3);
        assert_eq!(reduction(4096, 4096, 512, 2), 2); // the codestream has 2 levels
        assert_eq!(reduction(1000, 1000, 512, 5), 0); // less than twice the output
        assert_eq!(reduction(1024, 1024, 512, 5), 1);
    }

    #[test]
    fn a_truncated_or_foreign_stream_has_no_main_header() {
        assert_eq!(main_header(&[0xFF, 0x4F, 0xFF, 0x51, 0, 41]), None);
        assert_eq!(main_header(b"not a codestream"), None);
        assert!(decode(&[0xFF, 0x4F, 0xFF, 0x51], 4, 4, 16, None, |v| v as i32).is_err());
    }
}
