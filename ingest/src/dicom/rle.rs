//! RLE Lossless (1.2.840.10008.1.2.5, PS3.5 Annex G) frames of one sample
//! per pixel decoded straight to stored values.
//!
//! Why not through dicom-pixeldata: its adapter decodes each segment into a
//! growing buffer byte-run by byte-run through `io::Read`, copies it into a
//! little-endian frame buffer with a strided loop, and that buffer is read
//! back by [`super::stored_values`]; and it panics (index out of bounds) on
//! a segment that decodes short (issue 14's fuzz finding). Here each
//! segment is decoded into a plain byte buffer (runs are `fill`s, literals
//! `copy_from_slice`s) and the segments are combined into stored values in
//! one pass. Same values as dicom-rs for every frame dicom-rs decodes: the
//! first `rows × columns` bytes of each segment, most significant byte
//! first (segment 0 is the high byte of a 16-bit sample).
//!
//! Leniency: a segment that decodes to more than `rows × columns` bytes is
//! cut there (as dicom-rs and pydicom do: encoders pad to an even length);
//! one that decodes short is an error, as in pydicom.
//!
//! Memory: the output is `rows × columns` (bounded by the header checks in
//! [`super::decode_with`]); nothing is allocated from values in the stream.

/// Decodes one frame (the fragments of the frame joined) of `pixels`
/// samples of `bits_allocated` (8 or 16) bits; each sample's raw value goes
/// through `to_stored`.
pub fn decode(
    frame: &[u8],
    pixels: usize,
    bits_allocated: u16,
    to_stored: impl Fn(u32) -> i32,
) -> Result<Vec<i32>, String> {
    let segments = match bits_allocated {
        8 => 1,
        16 => 2,
        b => return Err(format!("RLE with BitsAllocated {b}")),
    };
    if frame.len() < 64 {
        return Err(format!("RLE header is 64 bytes, the frame has {}", frame.len()));
    }
    let u32_at = |i: usize| u32::from_le_bytes([frame[i], frame[i + 1], frame[i + 2], frame[i + 3]]) as usize;
    let declared = u32_at(0);
    if declared < segments || declared > 15 {
        return Err(format!("RLE header declares {declared} segments, {segments} needed"));
    }
    let offset = |s: usize| if s < declared { u32_at(4 + 4 * s) } else { frame.len() };
    let segment = |s: usize| -> Result<Vec<u8>, String> {
        let (start, end) = (offset(s), offset(s + 1));
        let bytes =
            frame.get(start..end).ok_or_else(|| format!("RLE segment {s} at {start}..{end} is not in the frame"))?;
        let out = unpack(bytes, pixels);
        if out.len() < pixels {
            return Err(format!("RLE segment {s} decodes to {} bytes, {pixels} expected", out.len()));
        }
        Ok(out)
    };
    if segments == 1 {
        return Ok(segment(0)?.into_iter().map(|b| to_stored(b as u32)).collect());
    }
    let (hi, lo) = (segment(0)?, segment(1)?);
    Ok(hi.iter().zip(&lo).map(|(&h, &l)| to_stored((h as u32) << 8 | l as u32)).collect())
}

/// PackBits: a header byte `n` of 0..=127 copies the next `n + 1` bytes, one
/// of -127..=-1 repeats the next byte `1 - n` times, -128 does nothing.
/// Stops at `limit` bytes of output; a literal cut short by the segment's
/// end gives what is there (as dicom-rs).
fn unpack(seg: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(limit);
    let mut i = 0;
    while i < seg.len() && out.len() < limit {
        let n = seg[i] as i8;
        i += 1;
        let room = limit - out.len();
        if n >= 0 {
            let take = (n as usize + 1).min(seg.len() - i).min(room);
            out.extend_from_slice(&seg[i..i + take]);
            i += n as usize + 1;
        } else if n != -128 {
            let Some(&b) = seg.get(i) else { break };
            i += 1;
            out.resize(out.len() + ((1 - n as isize) as usize).min(room), b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offsets: &[u32]) -> Vec<u8> {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&(offsets.len() as u32).to_le_bytes());
        for (i, o) in offsets.iter().enumerate() {
            h[4 + 4 * i..8 + 4 * i].copy_from_slice(&o.to_le_bytes());
        }
        h
    }

    #[test]
    fn packbits_runs_literals_and_no_ops() {
        // literal of 2, run of 3 × 7, no-op, literal of 1
        assert_eq!(unpack(&[1, 10, 11, 0xFE, 7, 0x80, 0, 9], 100), vec![10, 11, 7, 7, 7, 9]);
        // cut at the limit (a padding byte after the data)
        assert_eq!(unpack(&[0xFD, 5, 0, 1], 3), vec![5, 5, 5]);
        // a literal cut short by the end of the segment
        assert_eq!(unpack(&[3, 1, 2], 10), vec![1, 2]);
    }

    #[test]
    fn sixteen_bit_frames_have_the_high_byte_first() {
        let mut f = header(&[64, 68]);
        f.extend_from_slice(&[1, 0x12, 0x0F, 0]); // segment 0: high bytes 0x12 0x0F
        f.extend_from_slice(&[0xFF, 0x34]); // segment 1: low bytes 0x34 0x34
        assert_eq!(decode(&f, 2, 16, |v| v as i32).unwrap(), vec![0x1234, 0x0F34]);
    }

    #[test]
    fn short_segments_and_bad_headers_are_errors_not_panics() {
        let mut f = header(&[64]);
        f.extend_from_slice(&[0, 1]); // one byte for two pixels
        assert!(decode(&f, 2, 8, |v| v as i32).unwrap_err().contains("decodes to 1 bytes"));
        assert!(decode(&f, 2, 16, |v| v as i32).is_err()); // one segment for 16 bits
        assert!(decode(&f[..10], 2, 8, |v| v as i32).is_err());
        let f = header(&[64, 9999]);
        assert!(decode(&f, 2, 16, |v| v as i32).is_err());
    }
}
