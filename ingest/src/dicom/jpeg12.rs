//! JPEG with 12-bit samples (JPEG Extended, 1.2.840.10008.1.2.4.51, and
//! 12-bit data labelled baseline .50) and lossless JPEG (.57, .70, 2–16
//! bits: [`decode_lossless`]), decoded by libjpeg-turbo 3.1.
//!
//! dicom-rs decodes JPEG with the `jpeg-decoder` crate, which stops at
//! `SamplePrecision(12)`; older CR archives are full of 12-bit lossy JPEG.
//! libjpeg-turbo ≥ 3.0 decodes 8-, 12-bit lossy and 2–16-bit lossless
//! JPEG through one API (`tj3Decompress12`); `turbojpeg-sys` builds it from
//! its bundled source with cmake (no system library, no SIMD needed: the
//! 12-bit paths are plain C). pydicom's pylibjpeg-libjpeg decodes the same
//! streams with Thomas Richter's libjpeg; both are exact-integer IDCT
//! implementations of ITU T.81, so results may differ by IDCT rounding (the
//! agreement tests allow one stored value).
//!
//! Memory: the frame size is checked against the DICOM header's rows and
//! columns (already bounded by [`super::MAX_PIXELS`]) before decoding, and
//! libjpeg-turbo's own working memory is capped ([`MAX_MEMORY_MB`]).
//!
//! The crate's only FFI: every `unsafe` block below says why it is sound.
#![allow(unsafe_code)]

use turbojpeg_sys as tj;

/// libjpeg-turbo's limit on its working buffers (progressive coefficient
/// buffers, ...), in MB.
const MAX_MEMORY_MB: i32 = 512;
/// Progressive scans accepted (a hostile stream can hold thousands).
const MAX_SCANS: i32 = 500;

/// The sample precision (P of the SOFn segment) of a JPEG stream, `None`
/// when no frame header is found.
pub fn precision(jpeg: &[u8]) -> Option<u8> {
    if jpeg.len() < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 {
        return None;
    }
    let mut pos = 2;
    while pos + 4 <= jpeg.len() {
        if jpeg[pos] != 0xFF {
            return None;
        }
        let marker = jpeg[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        let len = u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]) as usize;
        let sof = (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if sof {
            return jpeg.get(pos + 4).copied();
        }
        if marker == 0xDA || len < 2 {
            return None;
        }
        pos += 2 + len;
    }
    None
}

struct Handle(tj::tjhandle);

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { tj::tj3Destroy(self.0) }
    }
}

impl Handle {
    fn error(&self) -> String {
        // SAFETY: tj3GetErrorStr returns a NUL-terminated static or
        // per-handle buffer, valid until the next call on this handle.
        let s = unsafe { std::ffi::CStr::from_ptr(tj::tj3GetErrorStr(self.0)) };
        s.to_string_lossy().into_owned()
    }

    fn fatal(&self) -> bool {
        // SAFETY: valid handle.
        unsafe { tj::tj3GetErrorCode(self.0) != tj::TJERR_TJERR_WARNING as i32 }
    }
}

/// Decodes a single-component JPEG with 9–12-bit lossy samples to
/// `rows × columns` values.
pub fn decode(jpeg: &[u8], rows: u32, columns: u32) -> Result<Vec<u16>, String> {
    decode_with(jpeg, rows, columns, |v| v as u16)
}

/// Decodes a single-component lossless JPEG (process 14, SOF3, 2–16-bit
/// samples: 1.2.840.10008.1.2.4.57/.70) to `rows × columns` values, each
/// sample through `to_stored`. libjpeg-turbo's lossless decoder is plain C
/// and exact (as every conforming one: the corpus test compares it with
/// pydicom's); the samples go from its buffer to stored values in one pass.
pub fn decode_lossless(
    jpeg: &[u8],
    rows: u32,
    columns: u32,
    to_stored: impl Fn(u32) -> i32,
) -> Result<Vec<i32>, String> {
    decode_with(jpeg, rows, columns, to_stored)
}

/// Either kind of stream, whatever the transfer syntax said: lossy with 8-
/// or 12-bit samples, lossless with 2–16.
fn decode_with<T>(jpeg: &[u8], rows: u32, columns: u32, out: impl Fn(u32) -> T) -> Result<Vec<T>, String> {
    // SAFETY: tj3Init has no preconditions; a null handle is checked.
    let h = Handle(unsafe { tj::tj3Init(tj::TJINIT_TJINIT_DECOMPRESS as i32) });
    if h.0.is_null() {
        return Err("libjpeg-turbo could not start a decompressor".into());
    }
    // SAFETY: valid handle and parameters; the buffer outlives the call.
    unsafe {
        tj::tj3Set(h.0, tj::TJPARAM_TJPARAM_MAXMEMORY as i32, MAX_MEMORY_MB);
        tj::tj3Set(h.0, tj::TJPARAM_TJPARAM_SCANLIMIT as i32, MAX_SCANS);
        if tj::tj3DecompressHeader(h.0, jpeg.as_ptr(), jpeg.len() as tj::size_t) != 0 {
            return Err(format!("JPEG header: {}", h.error()));
        }
    }
    // SAFETY: valid handle.
    let (w, ht, p, is_lossless) = unsafe {
        (
            tj::tj3Get(h.0, tj::TJPARAM_TJPARAM_JPEGWIDTH as i32),
            tj::tj3Get(h.0, tj::TJPARAM_TJPARAM_JPEGHEIGHT as i32),
            tj::tj3Get(h.0, tj::TJPARAM_TJPARAM_PRECISION as i32),
            tj::tj3Get(h.0, tj::TJPARAM_TJPARAM_LOSSLESS as i32) == 1,
        )
    };
    if w != columns as i32 || ht != rows as i32 {
        return Err(format!("JPEG frame is {w}x{ht}, the header says {columns}x{rows}"));
    }
    if !(if is_lossless { (2..=16).contains(&p) } else { p == 8 || p == 12 }) {
        let expected = if is_lossless { "2 to 16 (lossless)" } else { "8 or 12 (lossy)" };
        return Err(format!("JPEG sample precision {p}, expected {expected}"));
    }
    let n = rows as usize * columns as usize;
    let fail = |h: &Handle| format!("JPEG decode: {}", h.error());
    // SAFETY (the three calls): each buffer holds width × height samples of
    // one component of the API's sample type (pitch 0 = width × 1 sample),
    // as TJPF_GRAY writes them; the precision picks the API libjpeg-turbo
    // requires for it (2–8, 9–12, 13–16 bits).
    match p {
        2..=8 => {
            let mut buf = vec![0u8; n];
            let rc = unsafe {
                tj::tj3Decompress8(
                    h.0,
                    jpeg.as_ptr(),
                    jpeg.len() as tj::size_t,
                    buf.as_mut_ptr(),
                    0,
                    tj::TJPF_TJPF_GRAY,
                )
            };
            if rc != 0 && h.fatal() {
                return Err(fail(&h));
            }
            Ok(buf.into_iter().map(|v| out(v as u32)).collect())
        }
        9..=12 => {
            let mut buf = vec![0i16; n];
            let rc = unsafe {
                tj::tj3Decompress12(
                    h.0,
                    jpeg.as_ptr(),
                    jpeg.len() as tj::size_t,
                    buf.as_mut_ptr(),
                    0,
                    tj::TJPF_TJPF_GRAY,
                )
            };
            if rc != 0 && h.fatal() {
                return Err(fail(&h));
            }
            Ok(buf.into_iter().map(|v| out(v as u16 as u32)).collect())
        }
        _ => {
            let mut buf = vec![0u16; n];
            let rc = unsafe {
                tj::tj3Decompress16(
                    h.0,
                    jpeg.as_ptr(),
                    jpeg.len() as tj::size_t,
                    buf.as_mut_ptr(),
                    0,
                    tj::TJPF_TJPF_GRAY,
                )
            };
            if rc != 0 && h.fatal() {
                return Err(fail(&h));
            }
            Ok(buf.into_iter().map(|v| out(v as u32)).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_read_from_the_frame_header() {
        // SOI, APP0 (len 4), SOF1 with P = 12.
        let j = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0, 0, 0xFF, 0xC1, 0x00, 0x0B, 12, 0, 1, 0, 1, 1];
        assert_eq!(precision(&j), Some(12));
        assert_eq!(precision(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]), None);
        assert_eq!(precision(b"not a jpeg"), None);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(decode(&[0xFF, 0xD8, 0xFF, 0xC1, 0, 3, 12], 4, 4).is_err());
    }
}
