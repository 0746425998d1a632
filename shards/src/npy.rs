//! NumPy `.npy` encoding and decoding for 2-D uint8/uint16 arrays.
//!
//! Writes format 1.0 headers padded so the data starts on a 64-byte
//! boundary, as NumPy does; reads 1.0, 2.0 and 3.0 headers. Every size is
//! checked against the bytes actually present, so a lying header cannot
//! cause a large allocation or a panic.

use chess_schemas::PixelDtype;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Headers longer than this are refused (NumPy itself caps them at 64 KiB-ish).
const MAX_HEADER_LEN: usize = 64 * 1024;

/// What is wrong with a `.npy` buffer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NpyError {
    #[error("not a .npy file (bad magic)")]
    BadMagic,
    #[error("unsupported .npy version {0}.{1}")]
    Version(u8, u8),
    #[error(".npy header is truncated or too long")]
    HeaderLength,
    #[error("malformed .npy header: {0}")]
    Header(String),
    #[error("unsupported dtype `{0}` (expected |u1, <u2)")]
    Dtype(String),
    #[error("Fortran-ordered arrays are not supported")]
    FortranOrder,
    #[error("expected a 2-D array, shape is {0:?}")]
    Shape(Vec<u64>),
    #[error(".npy data holds {found} bytes, shape and dtype need {expected}")]
    DataLength { expected: u64, found: u64 },
}

/// A parsed `.npy` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NpyHeader {
    pub dtype: PixelDtype,
    pub height: u32,
    pub width: u32,
    /// Offset of the array data from the start of the file.
    pub data_offset: usize,
}

impl NpyHeader {
    pub fn data_len(&self) -> u64 {
        self.height as u64 * self.width as u64 * self.dtype.bytes_per_pixel() as u64
    }
}

/// Writes the header of a `.npy` file holding a C-ordered `(height, width)` array.
pub fn write_header(out: &mut Vec<u8>, dtype: PixelDtype, height: u32, width: u32) {
    let dict =
        format!("{{'descr': '{}', 'fortran_order': False, 'shape': ({}, {}), }}", dtype.npy_descr(), height, width);
    // magic(6) + version(2) + len(2) + dict + padding + '\n' is a multiple of 64.
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    let padding = (64 - unpadded % 64) % 64;
    let header_len = dict.len() + padding + 1;
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header_len as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
}

/// Parses a `.npy` header from the start of `buf` (which may hold only a prefix of the file).
pub fn parse_header(buf: &[u8]) -> Result<NpyHeader, NpyError> {
    if buf.len() < 10 || &buf[..6] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (buf[6], buf[7]);
    let (len, start) = match major {
        1 => (u16::from_le_bytes([buf[8], buf[9]]) as usize, 10),
        2 | 3 => {
            if buf.len() < 12 {
                return Err(NpyError::HeaderLength);
            }
            (u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize, 12)
        }
        _ => return Err(NpyError::Version(major, minor)),
    };
    if len > MAX_HEADER_LEN || buf.len() < start + len {
        return Err(NpyError::HeaderLength);
    }
    let text = std::str::from_utf8(&buf[start..start + len]).map_err(|_| NpyError::Header("not UTF-8".into()))?;
    let descr = dict_value(text, "descr").ok_or_else(|| NpyError::Header("no 'descr'".into()))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let dtype = match descr {
        "|u1" | "<u1" | "u1" => PixelDtype::Uint8,
        "<u2" => PixelDtype::Uint16,
        other => return Err(NpyError::Dtype(other.to_string())),
    };
    let fortran = dict_value(text, "fortran_order").ok_or_else(|| NpyError::Header("no 'fortran_order'".into()))?;
    if fortran.trim().starts_with("True") {
        return Err(NpyError::FortranOrder);
    }
    let shape_text = dict_value(text, "shape").ok_or_else(|| NpyError::Header("no 'shape'".into()))?;
    let shape_text = shape_text.trim();
    let inner = shape_text
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| NpyError::Header(format!("bad shape `{shape_text}`")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<u64>())
        .collect::<Result<Vec<u64>, _>>()
        .map_err(|_| NpyError::Header(format!("bad shape `{shape_text}`")))?;
    let [h, w] = shape[..] else { return Err(NpyError::Shape(shape)) };
    let (Ok(height), Ok(width)) = (u32::try_from(h), u32::try_from(w)) else {
        return Err(NpyError::Shape(shape));
    };
    Ok(NpyHeader { dtype, height, width, data_offset: start + len })
}

/// The text of a key's value in a Python dict literal: up to the next
/// top-level comma (parentheses nest).
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pos = text.find(&format!("'{key}'")).or_else(|| text.find(&format!("\"{key}\"")))?;
    let rest = &text[pos + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

/// Parses a whole `.npy` buffer and checks that the data length matches.
pub fn parse(buf: &[u8]) -> Result<NpyHeader, NpyError> {
    let header = parse_header(buf)?;
    let found = (buf.len() - header.data_offset) as u64;
    if found != header.data_len() {
        return Err(NpyError::DataLength { expected: header.data_len(), found });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_aligned_and_round_trips() {
        for (dtype, h, w) in [(PixelDtype::Uint16, 512, 512), (PixelDtype::Uint8, 3, 70000)] {
            let mut buf = Vec::new();
            write_header(&mut buf, dtype, h, w);
            assert_eq!(buf.len() % 64, 0);
            buf.resize(buf.len() + (h * w) as usize * dtype.bytes_per_pixel(), 7);
            let parsed = parse(&buf).unwrap();
            assert_eq!((parsed.dtype, parsed.height, parsed.width), (dtype, h, w));
        }
    }

    #[test]
    fn lying_headers_are_errors() {
        let mut buf = Vec::new();
        write_header(&mut buf, PixelDtype::Uint16, 100000, 100000);
        assert!(matches!(parse(&buf), Err(NpyError::DataLength { .. })));
        assert_eq!(parse(b"\x93NUMPY\x01\x00\xff\xff{"), Err(NpyError::HeaderLength));
        assert_eq!(parse(b"PK\x03\x04"), Err(NpyError::BadMagic));
        let raw = |dict: &str| {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend_from_slice(&(dict.len() as u16).to_le_bytes());
            b.extend_from_slice(dict.as_bytes());
            b.extend_from_slice(&[0, 0]);
            b
        };
        let fortran = raw("{'descr': '<u2', 'fortran_order': True, 'shape': (1, 1), }");
        assert_eq!(parse(&fortran), Err(NpyError::FortranOrder));
        let three_d = raw("{'descr': '<u2', 'fortran_order': False, 'shape': (1, 1, 1), }");
        assert!(matches!(parse(&three_d), Err(NpyError::Shape(_))));
        let f4 = raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1), }");
        assert!(matches!(parse(&f4), Err(NpyError::Dtype(_))));
        let ok = raw("{'descr': '<u2', 'fortran_order': False, 'shape': (1, 1), }");
        assert!(parse(&ok).is_ok());
    }
}
