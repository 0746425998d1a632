//! JPEG and PNG to grey values, for the importers that read them
//! (CheXpert's, MIMIC's, NIH's, PadChest's and folders' images, pairs' PNG
//! files): 8-bit baseline/progressive and 8–16-bit lossless JPEG, 1–16-bit
//! PNG read at their own depth (PadChest's 16-bit PNGs stay 16-bit);
//! colour (RGB, RGBA, grey+alpha) to BT.601 luma, rounded, with alpha
//! ignored: NIH's RGBA files carry the grey value in R = G = B, so their
//! luma is that value exactly, the first channel torchxrayvision reads.
//! And one DICOM file to stored values with its pixel semantics
//! ([`decode_dicom`], [`semantics`]), for the importers that take DICOM
//! next to images (pairs, folders, VinDr-CXR). Failures are reject
//! reasons, never errors.

use crate::dicom::{self, Header, Stored};
use crate::pipeline::{self, PipelineOptions, PixelSemantics};
use crate::reject::Reason;

/// Reject code: the file is neither JPEG nor PNG.
pub const UNSUPPORTED_FORMAT: &str = "unsupported_format";

/// Largest accepted image side.
pub const MAX_SIDE: u32 = 16_384;

/// Grey values decoded from a JPEG or PNG.
#[derive(Debug, Clone, PartialEq)]
pub struct Gray {
    pub rows: u32,
    pub cols: u32,
    /// Row-major grey levels, `0..2^bits`.
    pub values: Vec<i32>,
    /// 8 or 16 (JPEG lossless may give 9–16 bits stored in 16).
    pub bits: u8,
    /// `JPEG` or `PNG`.
    pub format: &'static str,
    /// Colour was converted to luma.
    pub from_colour: bool,
}

/// Why a file did not decode: (reason code, message).
pub type DecodeFailure = (&'static str, String);

fn luma(r: u32, g: u32, b: u32) -> i32 {
    if r == g && g == b {
        return r as i32;
    }
    // BT.601, rounded.
    ((299 * r + 587 * g + 114 * b + 500) / 1000) as i32
}

fn check_dims(rows: u32, cols: u32) -> Result<(), DecodeFailure> {
    if rows == 0 || cols == 0 || rows > MAX_SIDE || cols > MAX_SIDE {
        return Err((
            Reason::BadDimensions.code(),
            format!("{cols}×{rows} pixels (each side must be 1 to {MAX_SIDE})"),
        ));
    }
    Ok(())
}

/// Decodes a JPEG or PNG (recognised by content) to grey values.
pub fn decode_image(bytes: &[u8]) -> Result<Gray, DecodeFailure> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        decode_jpeg(bytes)
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        decode_png(bytes)
    } else if bytes.is_empty() {
        Err((Reason::DecodeError.code(), "the file is empty".into()))
    } else {
        Err((UNSUPPORTED_FORMAT, "neither JPEG nor PNG (by content)".into()))
    }
}

fn decode_jpeg(bytes: &[u8]) -> Result<Gray, DecodeFailure> {
    let fail = |e: jpeg_decoder::Error| (Reason::DecodeError.code(), format!("JPEG: {e}"));
    let mut dec = jpeg_decoder::Decoder::new(bytes);
    dec.read_info().map_err(fail)?;
    let info = dec.info().ok_or((Reason::DecodeError.code(), "JPEG: no frame header".to_string()))?;
    let (rows, cols) = (info.height as u32, info.width as u32);
    check_dims(rows, cols)?;
    dec.set_max_decoding_buffer_size((MAX_SIDE as usize).pow(2) * 4);
    let data = dec.decode().map_err(fail)?;
    let n = rows as usize * cols as usize;
    use jpeg_decoder::PixelFormat as F;
    let need = n * info.pixel_format.pixel_bytes();
    if data.len() < need {
        return Err((Reason::DecodeError.code(), format!("JPEG: {} bytes decoded, {need} expected", data.len())));
    }
    let (values, bits, from_colour) = match info.pixel_format {
        F::L8 => (data[..n].iter().map(|&v| v as i32).collect(), 8, false),
        // jpeg-decoder hands lossless 9-16-bit samples over in native byte order.
        F::L16 => (data[..2 * n].chunks_exact(2).map(|c| u16::from_ne_bytes([c[0], c[1]]) as i32).collect(), 16, false),
        F::RGB24 => {
            (data[..3 * n].chunks_exact(3).map(|c| luma(c[0] as u32, c[1] as u32, c[2] as u32)).collect(), 8, true)
        }
        F::CMYK32 => return Err((Reason::Colour.code(), "JPEG: CMYK image".into())),
    };
    Ok(Gray { rows, cols, values, bits, format: "JPEG", from_colour })
}

fn decode_png(bytes: &[u8]) -> Result<Gray, DecodeFailure> {
    let fail = |e: png::DecodingError| (Reason::DecodeError.code(), format!("PNG: {e}"));
    let limits = png::Limits { bytes: (MAX_SIDE as usize).pow(2) * 8 };
    let mut dec = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    // Palette → RGB, 1/2/4-bit grey → 8-bit; 16-bit stays 16-bit.
    dec.set_transformations(png::Transformations::EXPAND);
    let hdr = dec.read_header_info().map_err(fail)?;
    check_dims(hdr.height, hdr.width)?;
    let mut reader = dec.read_info().map_err(fail)?;
    let size = reader.output_buffer_size().ok_or((Reason::BadDimensions.code(), "PNG: image too large".to_string()))?;
    let mut buf = vec![0u8; size];
    let info = reader.next_frame(&mut buf).map_err(fail)?;
    let (rows, cols) = (info.height, info.width);
    let channels = match info.color_type {
        png::ColorType::Grayscale => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        png::ColorType::Indexed => return Err((Reason::DecodeError.code(), "PNG: palette not expanded".into())),
    };
    let bits: u8 = match info.bit_depth {
        png::BitDepth::Sixteen => 16,
        png::BitDepth::Eight => 8,
        other => return Err((Reason::DecodeError.code(), format!("PNG: unexpected output depth {other:?}"))),
    };
    let bps = bits as usize / 8;
    let n = rows as usize * cols as usize;
    let mut values = Vec::with_capacity(n);
    let sample = |row: &[u8], x: usize, c: usize| -> u32 {
        let o = (x * channels + c) * bps;
        if bps == 2 {
            u16::from_be_bytes([row[o], row[o + 1]]) as u32
        } else {
            row[o] as u32
        }
    };
    for y in 0..rows as usize {
        let row = &buf[y * info.line_size..y * info.line_size + cols as usize * channels * bps];
        for x in 0..cols as usize {
            values.push(if channels >= 3 {
                luma(sample(row, x, 0), sample(row, x, 1), sample(row, x, 2))
            } else {
                sample(row, x, 0) as i32
            });
        }
    }
    Ok(Gray { rows, cols, values, bits, format: "PNG", from_colour: channels >= 3 })
}

/// Decodes an image and runs the shared pixel pipeline on it, exactly as the
/// import does (grey values as MONOCHROME2 stored values, no rescale).
pub fn process_image(bytes: &[u8], opts: &PipelineOptions) -> Result<(Gray, pipeline::Processed), DecodeFailure> {
    let gray = decode_image(bytes)?;
    let out = pipeline::run(&gray.values, gray.rows, gray.cols, &PixelSemantics::default(), opts);
    Ok((gray, out))
}

/// Parses and decodes one DICOM file as the DICOM import does; a file with
/// BurnedInAnnotation = YES is refused (header de-identification does not
/// remove text in the pixels).
pub fn decode_dicom(bytes: &[u8]) -> Result<(Header, Stored), DecodeFailure> {
    let obj = dicom::parse(bytes).map_err(|r| {
        let code = if r.reason == Reason::NotDicom { UNSUPPORTED_FORMAT } else { r.reason.code() };
        (code, format!("not readable DICOM ({})", r.message))
    })?;
    let h = Header::from_object(&obj);
    if h.burned_in_annotation == "YES" {
        return Err((Reason::BurnedInAnnotation.code(), "BurnedInAnnotation = YES".into()));
    }
    let stored = dicom::decode(&obj, &h).map_err(|r| (r.reason.code(), r.message))?;
    Ok((h, stored))
}

/// The pixel semantics a DICOM header gives (MONOCHROME1, rescale, modality LUT).
pub fn semantics(h: &Header) -> PixelSemantics<'_> {
    PixelSemantics {
        monochrome1: h.photometric == "MONOCHROME1",
        rescale_slope: h.rescale_slope,
        rescale_intercept: h.rescale_intercept,
        modality_lut: h.modality_lut.as_ref(),
    }
}
