//! DICOM parsing and decoding to stored values.
//!
//! [`parse`] reads a DICOM stream from memory leniently ([`read`]: with or
//! without preamble, magic or file meta, a data set encoded otherwise than
//! its transfer syntax says, undefined-length UN, standard attributes stored
//! as UN); [`Header`] pulls out the handful of attributes the rest of the
//! pipeline needs (identifying ones stay in memory and are only ever used
//! as HMAC input or for the label join); [`decode`] turns the Pixel Data
//! into stored values with `dicom-pixeldata` (12-bit JPEG with
//! libjpeg-turbo, [`jpeg12`]): masked to BitsStored (from HighBit) and
//! sign-extended when PixelRepresentation is 1, nothing else applied.
//!
//! Safety nets against hostile input (the per-file memory bound): every
//! declared length is checked against the bytes left before the parser
//! runs ([`crate::lengths`]); dimensions are checked against [`MAX_PIXELS`]
//! and native Pixel Data against its expected length *before* anything is
//! decoded (so a 100000×100000 header allocates nothing); a worker holds at
//! most the file, the decoded frame and its stored values. The parser and
//! the decoders run under [`quiet::catch`], so a panicking codec becomes a
//! [`Reason::DecodeError`] reject and prints nothing.

pub mod j2k;
pub mod jpeg12;
pub mod quiet;
pub mod read;
pub mod rle;

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::PixelDecoder;

use crate::reject::{Reason, Reject};

/// Largest accepted image, in pixels (e.g. 8192×8192).
pub const MAX_PIXELS: u64 = 8192 * 8192;

/// Parses a DICOM file held in memory (see [`read::read`]; the notes on
/// how leniently it was read are logged at debug level and dropped: use
/// [`read::read`] and [`read::Lenient::codes`] to keep them, as the DICOM
/// import does for its journal).
pub fn parse(bytes: &[u8]) -> Result<DefaultDicomObject, Reject> {
    let r = read::read(bytes)?;
    for n in &r.notes {
        tracing::debug!(note = %n.code(), "{n}");
    }
    Ok(r.obj)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// A Modality LUT from the Modality LUT Sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct ModalityLut {
    /// First stored value mapped.
    pub first: i32,
    /// Output values, one per entry.
    pub data: Vec<f64>,
}

impl ModalityLut {
    /// Values below the first entry map to the first output, above the last
    /// to the last (PS3.3 C.11.1.1).
    pub fn apply(&self, v: i32) -> f64 {
        let i = (v as i64 - self.first as i64).clamp(0, self.data.len() as i64 - 1);
        self.data[i as usize]
    }
}

/// The attributes the pipeline needs. Holds identifying values: never
/// written anywhere shareable.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub transfer_syntax: String,
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub patient_id: String,
    pub accession_number: String,
    pub modality: String,
    pub body_part: String,
    pub view_position: String,
    pub burned_in_annotation: String,
    pub sex: String,
    pub patient_age: String,
    pub birth_date: String,
    pub study_date: String,
    pub photometric: String,
    pub rows: u32,
    pub columns: u32,
    pub samples_per_pixel: u16,
    pub number_of_frames: u32,
    pub bits_allocated: u16,
    pub bits_stored: u16,
    pub high_bit: u16,
    pub pixel_representation: u16,
    pub rescale_slope: Option<f64>,
    pub rescale_intercept: Option<f64>,
    pub modality_lut: Option<ModalityLut>,
    pub has_pixel_data: bool,
}

fn text(obj: &DefaultDicomObject, tag: Tag) -> String {
    obj.element_opt(tag)
        .ok()
        .flatten()
        .and_then(|e| e.to_str().ok().map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()))
        .unwrap_or_default()
}

fn int(obj: &DefaultDicomObject, tag: Tag) -> Option<i64> {
    let e = obj.element_opt(tag).ok().flatten()?;
    e.to_int::<i64>().ok().or_else(|| e.to_str().ok().and_then(|s| s.trim().parse().ok()))
}

fn float(obj: &DefaultDicomObject, tag: Tag) -> Option<f64> {
    obj.element_opt(tag).ok().flatten()?.to_float64().ok().filter(|v| v.is_finite())
}

impl Header {
    /// Extracts the header. Missing attributes become empty strings/zeros;
    /// the checks in [`check_image`] turn them into reasons.
    pub fn from_object(obj: &DefaultDicomObject) -> Header {
        let meta = obj.meta();
        let clean = |s: &str| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string();
        let mut sop_class_uid = text(obj, tags::SOP_CLASS_UID);
        if sop_class_uid.is_empty() {
            sop_class_uid = clean(&meta.media_storage_sop_class_uid);
        }
        let mut sop_instance_uid = text(obj, tags::SOP_INSTANCE_UID);
        if sop_instance_uid.is_empty() {
            sop_instance_uid = clean(&meta.media_storage_sop_instance_uid);
        }
        let pixel = obj.element_opt(tags::PIXEL_DATA).ok().flatten();
        let has_pixel_data = match pixel {
            None => false,
            Some(e) => match e.value() {
                dicom_core::DicomValue::PixelSequence(s) => s.fragments().iter().any(|f| !f.is_empty()),
                dicom_core::DicomValue::Primitive(p) => p.calculate_byte_len() > 0,
                dicom_core::DicomValue::Sequence(_) => false,
            },
        };
        Header {
            transfer_syntax: clean(meta.transfer_syntax()),
            sop_class_uid,
            sop_instance_uid,
            study_instance_uid: text(obj, tags::STUDY_INSTANCE_UID),
            series_instance_uid: text(obj, tags::SERIES_INSTANCE_UID),
            patient_id: text(obj, tags::PATIENT_ID),
            accession_number: text(obj, tags::ACCESSION_NUMBER),
            modality: text(obj, tags::MODALITY).to_ascii_uppercase(),
            body_part: text(obj, tags::BODY_PART_EXAMINED).to_ascii_uppercase(),
            view_position: text(obj, tags::VIEW_POSITION).to_ascii_uppercase(),
            burned_in_annotation: text(obj, tags::BURNED_IN_ANNOTATION).to_ascii_uppercase(),
            sex: text(obj, tags::PATIENT_SEX).to_ascii_uppercase(),
            patient_age: text(obj, tags::PATIENT_AGE).to_ascii_uppercase(),
            birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
            study_date: text(obj, tags::STUDY_DATE),
            photometric: text(obj, tags::PHOTOMETRIC_INTERPRETATION).to_ascii_uppercase(),
            rows: int(obj, tags::ROWS).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            columns: int(obj, tags::COLUMNS).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            samples_per_pixel: int(obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1).clamp(0, u16::MAX as i64) as u16,
            number_of_frames: int(obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).clamp(0, u32::MAX as i64) as u32,
            bits_allocated: int(obj, tags::BITS_ALLOCATED).unwrap_or(0).clamp(0, u16::MAX as i64) as u16,
            bits_stored: int(obj, tags::BITS_STORED).unwrap_or(0).clamp(0, u16::MAX as i64) as u16,
            high_bit: int(obj, tags::HIGH_BIT).unwrap_or(-1).clamp(-1, u16::MAX as i64).max(0) as u16,
            pixel_representation: int(obj, tags::PIXEL_REPRESENTATION).unwrap_or(0).clamp(0, 1) as u16,
            rescale_slope: float(obj, tags::RESCALE_SLOPE),
            rescale_intercept: float(obj, tags::RESCALE_INTERCEPT),
            modality_lut: modality_lut(obj),
            has_pixel_data,
        }
    }
}

fn modality_lut(obj: &DefaultDicomObject) -> Option<ModalityLut> {
    let seq = obj.element_opt(tags::MODALITY_LUT_SEQUENCE).ok().flatten()?;
    let item = seq.items()?.first()?;
    let desc = item.element_opt(tags::LUT_DESCRIPTOR).ok().flatten()?;
    let d: Vec<i64> = desc.to_multi_int::<i64>().ok()?;
    if d.len() < 3 {
        return None;
    }
    let n = if d[0] == 0 { 65536 } else { d[0] as usize };
    // The first mapped value is US or SS depending on the pixel representation.
    let signed = int(obj, tags::PIXEL_REPRESENTATION) == Some(1);
    let first = if signed { d[1] as u16 as i16 as i32 } else { d[1] as u16 as i32 };
    let bits = d[2];
    let lut = item.element_opt(tags::LUT_DATA).ok().flatten()?;
    let raw: Vec<u8> = lut.to_bytes().ok()?.into_owned();
    let data: Vec<f64> = if bits <= 8 && raw.len() == n {
        raw.iter().map(|&b| b as f64).collect()
    } else {
        raw.chunks_exact(2).take(n).map(|c| u16::from_le_bytes([c[0], c[1]]) as f64).collect()
    };
    if data.is_empty() {
        return None;
    }
    Some(ModalityLut { first, data })
}

/// Checks that the pixel description is a single-frame monochrome image of
/// sane size with a bit layout this pipeline handles.
pub fn check_image(h: &Header) -> Result<(), Reject> {
    if !h.has_pixel_data {
        return Err(Reject::new(Reason::NoPixelData, "Pixel Data missing or empty"));
    }
    if h.number_of_frames > 1 {
        return Err(Reject::new(Reason::MultiFrame, format!("{} frames", h.number_of_frames)));
    }
    if h.samples_per_pixel != 1 || !matches!(h.photometric.as_str(), "MONOCHROME1" | "MONOCHROME2") {
        return Err(Reject::new(
            Reason::Colour,
            format!("SamplesPerPixel {} PhotometricInterpretation {:?}", h.samples_per_pixel, h.photometric),
        ));
    }
    let px = h.rows as u64 * h.columns as u64;
    if px == 0 || px > MAX_PIXELS {
        return Err(Reject::new(
            Reason::BadDimensions,
            format!("{}x{} pixels (limit {} pixels)", h.rows, h.columns, MAX_PIXELS),
        ));
    }
    if !matches!(h.bits_allocated, 8 | 16)
        || h.bits_stored == 0
        || h.bits_stored > h.bits_allocated
        || h.high_bit >= h.bits_allocated
        || h.high_bit + 1 < h.bits_stored
    {
        return Err(Reject::new(
            Reason::BadDimensions,
            format!("BitsAllocated {} BitsStored {} HighBit {}", h.bits_allocated, h.bits_stored, h.high_bit),
        ));
    }
    Ok(())
}

/// A decoded frame of stored values.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub rows: u32,
    pub columns: u32,
    /// Row-major, masked to BitsStored and sign-extended if signed.
    pub values: Vec<i32>,
}

/// Whether the transfer syntax's pixel data is native (not encapsulated).
fn is_native(ts: &str) -> bool {
    matches!(ts, "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" | "1.2.840.10008.1.2.1.99")
}

/// How to decode (the defaults: full resolution, bit-exact).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// JPEG 2000 / HTJ2K at a reduced resolution for this output size
    /// ([`j2k::reduction`]; `--j2k-reduce`): faster, not bit-identical.
    pub j2k_reduce_to: Option<u32>,
}

/// Decodes the (single) frame to stored values at full resolution.
pub fn decode(obj: &DefaultDicomObject, h: &Header) -> Result<Stored, Reject> {
    decode_with(obj, h, DecodeOptions::default())
}

/// Decodes the (single) frame to stored values; with
/// [`DecodeOptions::j2k_reduce_to`] a JPEG 2000 frame may come back smaller
/// than the header's rows × columns (the [`Stored`] says its size).
pub fn decode_with(obj: &DefaultDicomObject, h: &Header, opts: DecodeOptions) -> Result<Stored, Reject> {
    check_image(h)?;
    let bytes_pp = (h.bits_allocated / 8) as usize;
    let expected = h.rows as usize * h.columns as usize * bytes_pp;
    let conv = to_stored(h.bits_stored, h.high_bit, h.pixel_representation == 1);
    if is_native(&h.transfer_syntax) {
        let e = obj.element(tags::PIXEL_DATA).map_err(|e| Reject::new(Reason::NoPixelData, e.to_string()))?;
        let dicom_core::DicomValue::Primitive(p) = e.value() else {
            return Err(Reject::new(Reason::PixelDataTruncated, "native Pixel Data is not a value"));
        };
        let len = p.calculate_byte_len();
        if len < expected {
            return Err(Reject::new(
                Reason::PixelDataTruncated,
                format!("Pixel Data has {len} bytes, {expected} expected"),
            ));
        }
        return Ok(Stored { rows: h.rows, columns: h.columns, values: native_values(p, h, &conv) });
    } else if let Some(encoded) = encoded_bytes(obj).filter(|&n| expected as u64 > n * MAX_COMPRESSION + RATIO_MARGIN) {
        return Err(Reject::new(
            Reason::BadDimensions,
            format!(
                "{}x{} pixels ({expected} bytes) from {encoded} encoded bytes: more than {MAX_COMPRESSION}:1",
                h.columns, h.rows
            ),
        ));
    } else if let Some(jpeg) = jpeg12_stream(obj, &h.transfer_syntax) {
        let values = quiet::catch(|| jpeg12::decode(&jpeg, h.rows, h.columns))
            .map_err(|p| Reject::new(Reason::DecodeError, format!("JPEG decoder panicked: {p}")))?
            .map_err(|e| Reject::new(Reason::DecodeError, e))?;
        let values = values.into_iter().map(|v| conv(v as u32)).collect();
        return Ok(Stored { rows: h.rows, columns: h.columns, values });
    } else if h.transfer_syntax == RLE {
        let stream = frame_stream(obj).ok_or_else(|| Reject::new(Reason::NoPixelData, "no RLE fragments"))?;
        let values = rle::decode(&stream, h.rows as usize * h.columns as usize, h.bits_allocated, &conv)
            .map_err(|e| Reject::new(Reason::DecodeError, e))?;
        return Ok(Stored { rows: h.rows, columns: h.columns, values });
    } else if let Some(values) = jpeg_lossless(obj, h, &conv) {
        return Ok(Stored { rows: h.rows, columns: h.columns, values });
    } else if j2k::is_j2k(&h.transfer_syntax) {
        let stream = frame_stream(obj).ok_or_else(|| Reject::new(Reason::NoPixelData, "no JPEG 2000 fragments"))?;
        let (rows, columns, bits) = (h.rows, h.columns, h.bits_allocated);
        let f = quiet::catch(|| j2k::decode(&stream, rows, columns, bits, opts.j2k_reduce_to, conv))
            .map_err(|p| Reject::new(Reason::DecodeError, format!("JPEG 2000 decoder panicked: {p}")))?
            .map_err(|e| Reject::new(Reason::DecodeError, e))?;
        return Ok(Stored { rows: f.rows, columns: f.columns, values: f.values });
    } else {
        use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
        use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
        match TransferSyntaxRegistry.get(&h.transfer_syntax) {
            Some(ts) if ts.can_decode_all() => {}
            Some(ts) => {
                return Err(Reject::new(
                    Reason::UnsupportedTransferSyntax,
                    format!("no pixel decoder for {} ({})", h.transfer_syntax, ts.name()),
                ))
            }
            None => {
                return Err(Reject::new(
                    Reason::UnsupportedTransferSyntax,
                    format!("unknown transfer syntax {:?}", h.transfer_syntax),
                ))
            }
        }
    }
    let decoded = quiet::catch(|| obj.decode_pixel_data())
        .map_err(|p| Reject::new(Reason::DecodeError, format!("pixel decoder panicked: {p}")))?
        .map_err(|e| Reject::new(Reason::DecodeError, error_chain(&e)))?;
    let data = decoded.data();
    if data.len() < expected {
        return Err(Reject::new(
            Reason::PixelDataTruncated,
            format!("decoded {} bytes, {expected} expected", data.len()),
        ));
    }
    let values =
        stored_values(&data[..expected], h.bits_allocated, h.bits_stored, h.high_bit, h.pixel_representation == 1);
    Ok(Stored { rows: h.rows, columns: h.columns, values })
}

const RLE: &str = "1.2.840.10008.1.2.5";

/// Native Pixel Data (at least `rows × columns` samples, checked) to stored
/// values straight from the parsed value: OW as the parser's `u16`s, OB as
/// its bytes; any other value type through its bytes as dicom-pixeldata
/// hands them over (little-endian in memory), so the values are the ones
/// `decode_pixel_data` + [`stored_values`] gave, without its copy.
fn native_values(p: &dicom_core::PrimitiveValue, h: &Header, conv: &impl Fn(u32) -> i32) -> Vec<i32> {
    use dicom_core::PrimitiveValue as P;
    let n = h.rows as usize * h.columns as usize;
    match (p, h.bits_allocated) {
        (P::U16(v), 16) => v[..n].iter().map(|&x| conv(x as u32)).collect(),
        (P::U8(v), 8) => v[..n].iter().map(|&x| conv(x as u32)).collect(),
        _ => {
            let bytes = p.to_bytes();
            let expected = n * (h.bits_allocated / 8) as usize;
            stored_values(&bytes[..expected], h.bits_allocated, h.bits_stored, h.high_bit, h.pixel_representation == 1)
        }
    }
}

/// A lossless JPEG frame (.57, .70) decoded by libjpeg-turbo
/// ([`jpeg12::decode_lossless`]); `None` when it is not one or libjpeg-turbo
/// refuses it (dicom-pixeldata's `jpeg-decoder` gets it then, as before).
fn jpeg_lossless(obj: &DefaultDicomObject, h: &Header, conv: &impl Fn(u32) -> i32) -> Option<Vec<i32>> {
    if !matches!(h.transfer_syntax.as_str(), "1.2.840.10008.1.2.4.57" | "1.2.840.10008.1.2.4.70") {
        return None;
    }
    let stream = frame_stream(obj)?;
    quiet::catch(|| jpeg12::decode_lossless(&stream, h.rows, h.columns, conv)).ok()?.ok()
}

/// Largest accepted ratio of an encapsulated frame's decoded size to its
/// encoded size (plus [`RATIO_MARGIN`]): what ties the memory a decoder may
/// allocate to the file's own size. Real radiographs stay far below it
/// (lossless 2–4:1, lossy archives 10–50:1; the corpus test's files all
/// pass); a 2 KB stream declaring 8192×8192 does not.
pub const MAX_COMPRESSION: u64 = 512;
/// Decoded bytes always allowed, whatever the encoded size (1 MiB).
pub const RATIO_MARGIN: u64 = 1 << 20;

/// The bytes of encapsulated Pixel Data (all fragments), `None` if native.
fn encoded_bytes(obj: &DefaultDicomObject) -> Option<u64> {
    let e = obj.element_opt(tags::PIXEL_DATA).ok().flatten()?;
    let dicom_core::DicomValue::PixelSequence(seq) = e.value() else { return None };
    Some(seq.fragments().iter().map(|f| f.len() as u64).sum())
}

/// The encapsulated frame's bytes (its fragments joined; borrowed when
/// there is one), `None` if native or empty.
fn frame_stream(obj: &DefaultDicomObject) -> Option<std::borrow::Cow<'_, [u8]>> {
    let e = obj.element_opt(tags::PIXEL_DATA).ok().flatten()?;
    let dicom_core::DicomValue::PixelSequence(seq) = e.value() else { return None };
    match seq.fragments() {
        [] => None,
        [one] => Some(std::borrow::Cow::Borrowed(&one[..])),
        many => Some(std::borrow::Cow::Owned(many.iter().flat_map(|f| f.iter().copied()).collect())),
    }
}

/// The JPEG stream of a JPEG Baseline/Extended frame with more than 8-bit
/// samples (what `jpeg-decoder` cannot decode), fragments joined.
fn jpeg12_stream(obj: &DefaultDicomObject, ts: &str) -> Option<Vec<u8>> {
    if !matches!(ts, "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51") {
        return None;
    }
    let e = obj.element_opt(tags::PIXEL_DATA).ok().flatten()?;
    let dicom_core::DicomValue::PixelSequence(seq) = e.value() else { return None };
    let first = seq.fragments().first()?;
    if jpeg12::precision(first)? <= 8 {
        return None;
    }
    Some(seq.fragments().iter().flat_map(|f| f.iter().copied()).collect())
}

/// Raw little-endian samples to stored values: shift so that HighBit is the
/// top stored bit, mask to BitsStored, sign-extend when signed.
pub fn stored_values(data: &[u8], bits_allocated: u16, bits_stored: u16, high_bit: u16, signed: bool) -> Vec<i32> {
    let conv = to_stored(bits_stored, high_bit, signed);
    match bits_allocated {
        8 => data.iter().map(|&b| conv(b as u32)).collect(),
        _ => data.chunks_exact(2).map(|c| conv(u16::from_le_bytes([c[0], c[1]]) as u32)).collect(),
    }
}

/// One raw sample (its allocated bits) to its stored value.
fn to_stored(bits_stored: u16, high_bit: u16, signed: bool) -> impl Fn(u32) -> i32 {
    let shift = (high_bit + 1 - bits_stored) as u32;
    let mask: u32 = if bits_stored >= 32 { u32::MAX } else { (1u32 << bits_stored) - 1 };
    let sign_bit = 1u32 << (bits_stored - 1);
    move |raw: u32| -> i32 {
        let v = (raw >> shift) & mask;
        if signed && v & sign_bit != 0 {
            (v | !mask) as i32
        } else {
            v as i32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_and_sign_extension() {
        // 12 bits stored in 16, junk in the top nibble.
        let raw: Vec<u8> = [0xF800u16, 0x0FFF, 0x0800, 0x07FF].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(stored_values(&raw, 16, 12, 11, false), vec![0x800, 0xFFF, 0x800, 0x7FF]);
        assert_eq!(stored_values(&raw, 16, 12, 11, true), vec![-2048, -1, -2048, 2047]);
        // HighBit not at BitsStored-1: values sit higher in the word.
        let raw: Vec<u8> = [0x0010u16, 0xFFF0].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(stored_values(&raw, 16, 12, 15, false), vec![1, 0xFFF]);
        assert_eq!(stored_values(&[0x80, 0x7f], 8, 8, 7, true), vec![-128, 127]);
    }

    #[test]
    fn modality_lut_clamps() {
        let lut = ModalityLut { first: -2, data: vec![10.0, 20.0, 30.0] };
        assert_eq!(lut.apply(-5), 10.0);
        assert_eq!(lut.apply(-1), 20.0);
        assert_eq!(lut.apply(9), 30.0);
    }

    #[test]
    fn non_dicom_and_garbage_are_rejected() {
        assert_eq!(parse(b"hello").unwrap_err().reason, Reason::NotDicom);
        let mut junk = b"DICM".to_vec();
        junk.extend_from_slice(&[0xff; 64]);
        assert_eq!(parse(&junk).unwrap_err().reason, Reason::ParseError);
    }
}
