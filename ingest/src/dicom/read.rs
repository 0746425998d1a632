//! Lenient reading of a DICOM stream, as pydicom (`force=True`) and dcmtk
//! read real archives.
//!
//! dicom-rs reads a well-formed Part 10 file and nothing else; here the
//! stream is taken apart first and dicom-rs is handed only what it reads
//! well ([`read`]):
//!
//! - **Where it starts**: `DICM` at 128 (preamble), at 0 (no preamble), or
//!   no magic at all — a bare data set, or file meta without the magic;
//!   such a stream counts as DICOM only if its first element is a plausible
//!   one (group 0000–0008) and the whole element stream reads.
//! - **File meta**: read here, element by element, as long as the group is
//!   0002 (explicit VR little endian; implicit VR tolerated). (0002,0000) is
//!   not trusted: missing or wrong, the group ends where group 0002 ends;
//!   dicom-rs gets a [`FileMetaTableBuilder`] built from the values.
//! - **Data set encoding**: detected from its first element
//!   ([`lengths::detect`]: implicit VR LE, explicit VR LE or BE). When it
//!   contradicts the transfer syntax, the data set is read as detected and
//!   the transfer syntax is kept for the pixel data (a compressed syntax
//!   stays compressed); without a transfer syntax the detected one is used.
//!   Deflated data sets are inflated first, up to [`MAX_INFLATED`].
//! - **Lengths**: [`lengths::check_data_set`] checks every declared length
//!   against the bytes left, and turns each undefined-length UN element into
//!   a defined-length one (kept as opaque bytes), before the parser runs.
//! - **Standard attributes stored as UN** (top level, e.g. Modality written
//!   by a system that did not know it): re-read with the dictionary's VR, so
//!   selection and de-identification see `CR`, not bytes.
//!
//! Every deviation from a well-formed file is a [`Note`] on the result.

use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_core::header::Header as _;
use dicom_core::value::{PrimitiveValue, C};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::StandardDataDictionary;
use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use std::io::Read as _;

use super::quiet;
use crate::lengths::{self, Syntax};
use crate::reject::{Reason, Reject};

/// Largest inflated data set of a deflated file: the largest accepted image
/// (16-bit) plus a margin for the header.
pub const MAX_INFLATED: u64 = super::MAX_PIXELS * 2 + (16 << 20);

const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

/// A deviation from a well-formed Part 10 file that was read anyway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `DICM` at byte 0: no 128-byte preamble.
    NoPreamble,
    /// No `DICM` magic: the stream starts with file meta or a bare data set.
    NoMagic,
    /// No file meta group (or none with a transfer syntax).
    NoFileMeta,
    /// File meta without (0002,0000).
    MetaGroupLengthMissing,
    /// (0002,0000) says `declared` bytes, the group has `actual`.
    MetaGroupLengthWrong { declared: u32, actual: u32 },
    /// The data set is encoded as `read_as`, not as the transfer syntax says.
    EncodingFallback { transfer_syntax: String, read_as: Syntax },
    /// The data set was deflated.
    Inflated,
    /// Undefined-length UN elements kept as bytes (their tags).
    UnSequences(Vec<(u16, u16)>),
    /// Standard attributes stored as UN, re-read with the dictionary VR.
    UnReread(Vec<(u16, u16)>),
}

impl Note {
    /// A stable snake_case code (for the journal and the run's counts): it
    /// names the case and never holds a value from the file (no lengths,
    /// tags or UIDs); an encoding fallback names both encodings
    /// (`encoding_fallback:explicit_le->implicit_le`).
    pub fn code(&self) -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed(match self {
            Note::NoPreamble => "no_preamble",
            Note::NoMagic => "no_dicm_magic",
            Note::NoFileMeta => "no_file_meta",
            Note::MetaGroupLengthMissing => "meta_group_length_missing",
            Note::MetaGroupLengthWrong { .. } => "meta_group_length_wrong",
            Note::EncodingFallback { transfer_syntax, read_as } => {
                let from = declared_syntax(transfer_syntax).code();
                return format!("encoding_fallback:{from}->{}", read_as.code()).into();
            }
            Note::Inflated => "deflated",
            Note::UnSequences(_) => "un_undefined_length_kept_as_bytes",
            Note::UnReread(_) => "un_reread_with_dictionary_vr",
        })
    }
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tags = |t: &[(u16, u16)]| t.iter().map(|(g, e)| format!("({g:04X},{e:04X})")).collect::<Vec<_>>().join(" ");
        match self {
            Note::NoPreamble => write!(f, "no 128-byte preamble"),
            Note::NoMagic => write!(f, "no DICM magic"),
            Note::NoFileMeta => write!(f, "no file meta group: transfer syntax detected from the data set"),
            Note::MetaGroupLengthMissing => write!(f, "file meta without (0002,0000) group length"),
            Note::MetaGroupLengthWrong { declared, actual } => {
                write!(f, "(0002,0000) says {declared} bytes, the group has {actual}")
            }
            Note::EncodingFallback { transfer_syntax, read_as } => {
                write!(f, "data set read as {}, transfer syntax {transfer_syntax} says otherwise", read_as.name())
            }
            Note::Inflated => write!(f, "deflated data set inflated"),
            Note::UnSequences(t) => write!(f, "undefined-length UN kept as bytes: {}", tags(t)),
            Note::UnReread(t) => write!(f, "UN re-read with the dictionary VR: {}", tags(t)),
        }
    }
}

/// A parsed object and how leniently it was read.
#[derive(Debug)]
pub struct Lenient {
    pub obj: DefaultDicomObject,
    pub notes: Vec<Note>,
}

impl Lenient {
    /// The notes' codes ([`Note::code`]), in the order they arose.
    pub fn codes(&self) -> Vec<String> {
        self.notes.iter().map(|n| n.code().into_owned()).collect()
    }
}

/// The file meta values dicom-rs needs.
#[derive(Default)]
struct Meta {
    /// Bytes of the group (from its first element to the data set).
    end: usize,
    group_length: Option<u32>,
    /// Where the elements after (0002,0000) start.
    after_group_length: usize,
    transfer_syntax: Option<String>,
    sop_class: Option<String>,
    sop_instance: Option<String>,
    implementation_class: Option<String>,
    implementation_version: Option<String>,
}

fn uid_text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim_matches(|c: char| c == '\0' || c.is_whitespace()).to_string()
}

/// Reads group 0002 at the start of `b` (possibly empty).
fn read_meta(b: &[u8]) -> Result<Meta, String> {
    let mut m = Meta::default();
    let mut pos = 0;
    while b.len() >= pos + 8 && u16::from_le_bytes([b[pos], b[pos + 1]]) == 0x0002 {
        let syntax = if lengths::is_vr([b[pos + 4], b[pos + 5]]) { Syntax::ExplicitLe } else { Syntax::ImplicitLe };
        let el = lengths::read_header(b, pos, syntax).map_err(|e| format!("file meta: {e}"))?;
        if el.undefined() {
            return Err(format!("file meta element ({:04X},{:04X}) has an undefined length", el.tag.0, el.tag.1));
        }
        let v = &b[el.value_start..el.value_start + el.len as usize];
        let text = || Some(uid_text(v)).filter(|s| !s.is_empty());
        match el.tag.1 {
            0x0000 if v.len() == 4 => {
                m.group_length = Some(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
                m.after_group_length = el.value_start + 4;
            }
            0x0002 => m.sop_class = text(),
            0x0003 => m.sop_instance = text(),
            0x0010 => m.transfer_syntax = text(),
            0x0012 => m.implementation_class = text(),
            0x0013 => m.implementation_version = text().filter(|s| s.len() <= 16),
            _ => {}
        }
        pos = el.value_start + el.len as usize;
    }
    m.end = pos;
    Ok(m)
}

/// The encoding a transfer syntax gives its data set (deflate aside).
fn declared_syntax(ts: &str) -> Syntax {
    match ts {
        "1.2.840.10008.1.2" => Syntax::ImplicitLe,
        "1.2.840.10008.1.2.2" => Syntax::ExplicitBe,
        _ => Syntax::ExplicitLe,
    }
}

fn is_native(ts: &str) -> bool {
    matches!(ts, "1.2.840.10008.1.2" | "1.2.840.10008.1.2.1" | "1.2.840.10008.1.2.2" | DEFLATED)
}

/// Reads a DICOM stream held in memory, leniently (see the module header).
pub fn read(bytes: &[u8]) -> Result<Lenient, Reject> {
    let mut notes = Vec::new();
    let (start, magic) = if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        (132, true)
    } else if bytes.starts_with(b"DICM") {
        notes.push(Note::NoPreamble);
        (4, true)
    } else {
        notes.push(Note::NoMagic);
        (0, false)
    };
    let fail = |m: String| Reject::new(if magic { Reason::ParseError } else { Reason::NotDicom }, m);
    let s = &bytes[start..];
    let meta = read_meta(s).map_err(fail)?;
    if meta.end > 0 {
        match meta.group_length {
            None => notes.push(Note::MetaGroupLengthMissing),
            Some(declared) => {
                let actual = (meta.end - meta.after_group_length) as u32;
                if declared != actual {
                    notes.push(Note::MetaGroupLengthWrong { declared, actual });
                }
            }
        }
    }
    let declared = meta.transfer_syntax.clone();
    if declared.is_none() {
        notes.push(Note::NoFileMeta);
    }
    let mut body: std::borrow::Cow<'_, [u8]> = std::borrow::Cow::Borrowed(&s[meta.end..]);
    if declared.as_deref() == Some(DEFLATED) {
        let mut inflated = Vec::new();
        flate2::read::DeflateDecoder::new(&body[..])
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut inflated)
            .map_err(|e| fail(format!("deflated data set does not inflate: {e}")))?;
        if inflated.len() as u64 > MAX_INFLATED {
            return Err(fail(format!("deflated data set inflates to more than {MAX_INFLATED} bytes")));
        }
        body = std::borrow::Cow::Owned(inflated);
        notes.push(Note::Inflated);
    }
    let detected = lengths::detect(&body);
    let syntax = match (&declared, detected) {
        (Some(ts), Some(d)) if declared_syntax(ts) != d => {
            notes.push(Note::EncodingFallback { transfer_syntax: ts.clone(), read_as: d });
            d
        }
        (Some(ts), _) => declared_syntax(ts),
        (None, Some(d)) => d,
        (None, None) if body.is_empty() && magic => Syntax::ExplicitLe,
        (None, None) => return Err(fail("no transfer syntax and the data set encoding is not recognisable".into())),
    };
    if meta.end == 0 && !body.is_empty() {
        // A bare data set: it must start like one (command or header groups).
        let g = lengths::first_group(&body, syntax).unwrap_or(u16::MAX);
        if g > 0x0008 || !g.is_multiple_of(2) {
            return Err(fail(format!("no file meta and no DICOM data set at the start (group {g:04X})")));
        }
    }
    let patches = lengths::check_data_set(&body, syntax).map_err(fail)?;
    if !patches.is_empty() {
        lengths::apply(body.to_mut(), syntax, &patches);
        notes.push(Note::UnSequences(patches.iter().map(|p| p.tag).collect()));
    }
    let ts = TransferSyntaxRegistry.get(syntax.uid()).expect("the native transfer syntaxes are registered");
    let dataset = quiet::catch(|| InMemDicomObject::read_dataset_with_ts(&body[..], ts))
        .map_err(|p| fail(format!("parser panicked: {p}")))?
        .map_err(|e| fail(super::error_chain(&e)))?;
    drop(body);
    if !magic && dataset.iter().next().is_none() {
        return Err(Reject::new(Reason::NotDicom, "no DICM magic and no elements"));
    }
    // The object keeps the declared syntax unless the data set contradicts a
    // native one (a compressed syntax stays: it describes the pixel data).
    let object_ts = match &declared {
        Some(ts) if !is_native(ts) || ts == DEFLATED || declared_syntax(ts) == syntax => ts.clone(),
        _ => syntax.uid().to_string(),
    };
    let mut builder = FileMetaTableBuilder::new().transfer_syntax(object_ts);
    if let Some(v) = &meta.sop_class {
        builder = builder.media_storage_sop_class_uid(v.as_str());
    }
    if let Some(v) = &meta.sop_instance {
        builder = builder.media_storage_sop_instance_uid(v.as_str());
    }
    if let Some(v) = &meta.implementation_class {
        builder = builder.implementation_class_uid(v.as_str());
        if let Some(n) = &meta.implementation_version {
            builder = builder.implementation_version_name(n.as_str());
        }
    }
    let mut obj = dataset.with_meta(builder).map_err(|e| fail(super::error_chain(&e)))?;
    let reread = reread_un(&mut obj, syntax == Syntax::ExplicitBe);
    if !reread.is_empty() {
        notes.push(Note::UnReread(reread));
    }
    Ok(Lenient { obj, notes })
}

/// Re-reads top-level standard attributes stored as UN with the
/// dictionary's VR; returns their tags.
fn reread_un(obj: &mut DefaultDicomObject, big: bool) -> Vec<(u16, u16)> {
    let signed = obj
        .element_opt(dicom_dictionary_std::tags::PIXEL_REPRESENTATION)
        .ok()
        .flatten()
        .and_then(|e| e.to_int::<i32>().ok())
        == Some(1);
    let candidates: Vec<(Tag, VR, Vec<u8>)> = obj
        .iter()
        .filter(|e| e.vr() == VR::UN && e.tag().0.is_multiple_of(2))
        .filter_map(|e| {
            let vr = match StandardDataDictionary.by_tag(e.tag())?.vr() {
                VirtualVr::Exact(VR::UN | VR::SQ) => return None,
                VirtualVr::Exact(vr) => vr,
                VirtualVr::Xs if signed => VR::SS,
                VirtualVr::Xs => VR::US,
                _ => return None,
            };
            Some((e.tag(), vr, e.to_bytes().ok()?.into_owned()))
        })
        .collect();
    let mut done = Vec::new();
    for (tag, vr, bytes) in candidates {
        if let Some(value) = value_as(vr, &bytes, big) {
            obj.put(DataElement::new(tag, vr, value));
            done.push((tag.0, tag.1));
        }
    }
    done
}

/// The bytes of a value read as `vr`, `None` when they do not fit it.
fn value_as(vr: VR, b: &[u8], big: bool) -> Option<PrimitiveValue> {
    fn nums<const N: usize, T>(b: &[u8], f: impl Fn([u8; N]) -> T) -> Option<C<T>> {
        b.len().is_multiple_of(N).then(|| b.chunks_exact(N).map(|c| f(c.try_into().expect("chunk of N"))).collect())
    }
    macro_rules! num {
        ($t:ty) => {
            nums(b, |c| if big { <$t>::from_be_bytes(c) } else { <$t>::from_le_bytes(c) })
        };
    }
    Some(match vr {
        VR::AE
        | VR::AS
        | VR::CS
        | VR::DA
        | VR::DS
        | VR::DT
        | VR::IS
        | VR::LO
        | VR::PN
        | VR::SH
        | VR::TM
        | VR::UC
        | VR::UI => {
            let text = String::from_utf8_lossy(b);
            let text = text.trim_end_matches(['\0', ' ']);
            PrimitiveValue::Strs(text.split('\\').map(str::to_string).collect())
        }
        VR::LT | VR::ST | VR::UT | VR::UR => {
            PrimitiveValue::Str(String::from_utf8_lossy(b).trim_end_matches(['\0', ' ']).to_string())
        }
        VR::US => PrimitiveValue::U16(num!(u16)?),
        VR::SS => PrimitiveValue::I16(num!(i16)?),
        VR::UL => PrimitiveValue::U32(num!(u32)?),
        VR::SL => PrimitiveValue::I32(num!(i32)?),
        VR::FL => PrimitiveValue::F32(num!(f32)?),
        VR::FD => PrimitiveValue::F64(num!(f64)?),
        VR::OB => PrimitiveValue::U8(b.iter().copied().collect()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn un_values_take_the_dictionary_vr() {
        assert_eq!(
            value_as(VR::CS, b"CR", false),
            Some(PrimitiveValue::Strs(["CR".to_string()].into_iter().collect()))
        );
        assert_eq!(value_as(VR::US, &[0x00, 0x02], false), Some(PrimitiveValue::U16([512].into_iter().collect())));
        assert_eq!(value_as(VR::US, &[0x00, 0x02], true), Some(PrimitiveValue::U16([2].into_iter().collect())));
        assert_eq!(value_as(VR::US, &[1, 2, 3], false), None);
    }
}
