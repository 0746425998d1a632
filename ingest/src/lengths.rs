//! Declared-length pre-check: no allocation sized by a header value.
//!
//! `dicom-parser` reserves an element's declared length (up to 4 GiB) before
//! it reads the value, so a small file with a bogus length would make it ask
//! for gigabytes (found by `scripts/fuzz_ingest.sh`). Before the parser sees a
//! data set, [`check_data_set`] walks its element stream exactly as that
//! parser will read it and rejects any defined length larger than the bytes
//! that are left, which bounds every such reservation by the file's own size.
//!
//! Rules mirrored from `dicom-encoding`: under explicit VR a 16-bit length
//! follows only the VRs of PS3.5 Table 7.1-2 (AE, AS, AT, CS, DA, DS, DT, FL,
//! FD, IS, LO, LT, PN, SH, SL, SS, ST, TM, UI, UL, US); every other VR, and
//! VR bytes that name no VR (which the parser reads as UN), have two reserved
//! bytes and a 32-bit length ([`long_length`]). Undefined-length elements are
//! stepped into as sequences; items, delimiters and encapsulated fragments
//! are handled as the parser does.
//!
//! One case is not left to the parser: an element stored as UN with
//! undefined length (a sequence whose VR the writer did not know). PS3.5
//! §6.2.2 says its content is implicit VR little endian, whatever the
//! transfer syntax; `dicom-parser` reads it in the stream's syntax and takes
//! item contents for lengths (pydicom's `UN_sequence.dcm`: 674 bytes, 3.7 GB
//! asked for). The walk finds its end as implicit VR little endian (to its
//! sequence delimiter) and returns a [`Patch`] that gives the element that
//! defined length, so the parser keeps it as opaque bytes of the same size:
//! nothing in the stream moves, enclosing lengths stay right.

/// An element header is at least this long.
const HEADER: usize = 8;
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQUENCE_END: (u16, u16) = (0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// How a data set's elements are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

impl Syntax {
    /// The transfer syntax UID of this encoding with native pixel data.
    pub fn uid(self) -> &'static str {
        match self {
            Syntax::ImplicitLe => "1.2.840.10008.1.2",
            Syntax::ExplicitLe => "1.2.840.10008.1.2.1",
            Syntax::ExplicitBe => "1.2.840.10008.1.2.2",
        }
    }

    /// In words, for notes and messages.
    pub fn name(self) -> &'static str {
        match self {
            Syntax::ImplicitLe => "implicit VR little endian",
            Syntax::ExplicitLe => "explicit VR little endian",
            Syntax::ExplicitBe => "explicit VR big endian",
        }
    }

    /// Short and stable, for note codes.
    pub fn code(self) -> &'static str {
        match self {
            Syntax::ImplicitLe => "implicit_le",
            Syntax::ExplicitLe => "explicit_le",
            Syntax::ExplicitBe => "explicit_be",
        }
    }

    fn big(self) -> bool {
        self == Syntax::ExplicitBe
    }
}

/// A length field to rewrite before parsing: the 32-bit length at byte `at`
/// (in the data set's byte order) becomes `len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patch {
    pub at: usize,
    pub len: u32,
    /// The element's tag, for notes.
    pub tag: (u16, u16),
}

/// Applies patches made by [`check_data_set`] for the same bytes and syntax.
pub fn apply(b: &mut [u8], syntax: Syntax, patches: &[Patch]) {
    for p in patches {
        let v = if syntax.big() { p.len.to_be_bytes() } else { p.len.to_le_bytes() };
        b[p.at..p.at + 4].copy_from_slice(&v);
    }
}

/// The VRs whose explicit VR header holds a 16-bit length (PS3.5 §7.1.2).
const SHORT_LENGTH_VRS: [&[u8; 2]; 21] = [
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH", b"SL", b"SS",
    b"ST", b"TM", b"UI", b"UL", b"US",
];
/// The VRs whose explicit VR header has the reserved field and a 32-bit length.
const LONG_LENGTH_VRS: [&[u8; 2]; 13] =
    [b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"];

/// Whether an explicit VR header with these VR bytes has the reserved field
/// and a 32-bit length (as `dicom-encoding` reads it: unknown VRs are UN).
pub fn long_length(vr: [u8; 2]) -> bool {
    !SHORT_LENGTH_VRS.contains(&&vr)
}

/// Whether two bytes name a VR of PS3.5 (what an explicit VR header holds).
pub fn is_vr(vr: [u8; 2]) -> bool {
    SHORT_LENGTH_VRS.contains(&&vr) || LONG_LENGTH_VRS.contains(&&vr)
}

/// One element header as read.
#[derive(Debug, Clone, Copy)]
pub struct Element {
    pub tag: (u16, u16),
    pub vr: Option<[u8; 2]>,
    /// Declared length (`0xFFFF_FFFF` for undefined length).
    pub len: u32,
    /// Where the 32-bit length field is, when there is one.
    pub len_at: Option<usize>,
    pub value_start: usize,
}

impl Element {
    pub fn undefined(&self) -> bool {
        self.len == UNDEFINED
    }
}

fn u16_at(b: &[u8], at: usize, big: bool) -> u16 {
    let x = [b[at], b[at + 1]];
    if big {
        u16::from_be_bytes(x)
    } else {
        u16::from_le_bytes(x)
    }
}

fn u32_at(b: &[u8], at: usize, big: bool) -> u32 {
    let x = [b[at], b[at + 1], b[at + 2], b[at + 3]];
    if big {
        u32::from_be_bytes(x)
    } else {
        u32::from_le_bytes(x)
    }
}

/// Reads one element header at `pos` and checks its defined length against
/// the bytes after it.
pub fn read_header(b: &[u8], pos: usize, syntax: Syntax) -> Result<Element, String> {
    let big = syntax.big();
    let need = |n: usize| {
        if b.len() < pos + n {
            Err(format!("element header at byte {pos} is cut off"))
        } else {
            Ok(())
        }
    };
    need(HEADER)?;
    let tag = (u16_at(b, pos, big), u16_at(b, pos + 2, big));
    let (vr, len, len_at, value_start) = if tag.0 == 0xFFFE || syntax == Syntax::ImplicitLe {
        // Items and delimiters never carry a VR.
        (None, u32_at(b, pos + 4, big), Some(pos + 4), pos + 8)
    } else {
        let vr = [b[pos + 4], b[pos + 5]];
        if long_length(vr) {
            need(12)?;
            (Some(vr), u32_at(b, pos + 8, big), Some(pos + 8), pos + 12)
        } else {
            (Some(vr), u16_at(b, pos + 6, big) as u32, None, pos + 8)
        }
    };
    if len != UNDEFINED && len as usize > b.len() - value_start {
        return Err(format!(
            "element ({:04X},{:04X}) declares {len} bytes but only {} are left in the file",
            tag.0,
            tag.1,
            b.len() - value_start
        ));
    }
    Ok(Element { tag, vr, len, len_at, value_start })
}

/// Walks a data set as `dicom-parser` will read it in `syntax`, stepping
/// into containers; returns the patches for undefined-length UN elements.
pub fn check_data_set(b: &[u8], syntax: Syntax) -> Result<Vec<Patch>, String> {
    let mut patches = Vec::new();
    let mut pos = 0usize;
    // Inside encapsulated pixel data, items hold fragments, not elements.
    let mut in_fragments = false;
    // Ends of the defined-length sequences and items we are in: the parser
    // closes a container where its length says, so anything inside must end
    // there too, or the parser reads a header from the middle of a value.
    let mut ends: Vec<usize> = Vec::new();
    // Trailing padding shorter than a header is tolerated, as parsers do.
    while b.len() >= pos + HEADER {
        while ends.last().is_some_and(|&e| pos >= e) {
            ends.pop();
        }
        let limit = ends.last().copied().unwrap_or(b.len());
        if pos + HEADER > limit {
            return Err(format!("element header at byte {pos} crosses the end of its sequence or item"));
        }
        let el = read_header(b, pos, syntax)?;
        if let Some(size) = value_size(&el, syntax).filter(|&n| !el.undefined() && !(el.len as usize).is_multiple_of(n))
        {
            // The parser reads len / size numbers and would continue
            // len % size bytes early, in the middle of the next header.
            return Err(format!(
                "element ({:04X},{:04X}) declares {} bytes, not a multiple of its {size}-byte values",
                el.tag.0, el.tag.1, el.len
            ));
        }
        if !el.undefined() && el.value_start + el.len as usize > limit {
            return Err(format!(
                "element ({:04X},{:04X}) declares {} bytes but its sequence or item has only {} left",
                el.tag.0,
                el.tag.1,
                el.len,
                limit.saturating_sub(el.value_start)
            ));
        }
        if el.tag == SEQUENCE_END {
            in_fragments = false;
        }
        if el.undefined() && el.vr == Some(*b"UN") {
            let end = un_sequence_end(b, el.value_start)?;
            if end > limit {
                return Err(format!(
                    "undefined-length UN ({:04X},{:04X}) runs past its sequence or item",
                    el.tag.0, el.tag.1
                ));
            }
            let len = (end - el.value_start) as u32;
            // An explicit VR UN header always has its 32-bit length field.
            let at = el.len_at.ok_or("UN element without a length field")?;
            patches.push(Patch { at, len, tag: el.tag });
            pos = end;
            continue;
        }
        // Fragments only under (7FE0,0010), as dicom-parser decides
        // (`is_encapsulated_pixeldata`: the tag and an undefined length,
        // whatever the VR); any other undefined-length element, OB or OW
        // included, it reads as a sequence of items holding elements.
        if el.undefined() && el.tag == (0x7FE0, 0x0010) {
            in_fragments = true;
        }
        let step_in = el.undefined()
            || (el.tag == ITEM && !in_fragments)
            || el.vr == Some(*b"SQ")
            // Implicit VR: a value that starts with an item tag is a sequence.
            || (el.vr.is_none()
                && el.tag.0 != 0xFFFE
                && el.len >= 8
                && b.len() >= el.value_start + 4
                && (u16_at(b, el.value_start, false), u16_at(b, el.value_start + 2, false)) == ITEM);
        if step_in && !el.undefined() {
            ends.push(el.value_start + el.len as usize);
        }
        pos = if step_in { el.value_start } else { el.value_start + el.len as usize };
    }
    Ok(patches)
}

/// The size of one value of a binary numeric VR (explicit, or the
/// dictionary's under implicit VR), `None` for text, bytes and containers.
fn value_size(el: &Element, syntax: Syntax) -> Option<usize> {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    let vr = match el.vr {
        Some(v) => v,
        None if el.tag.0 == 0xFFFE => return None,
        None if syntax == Syntax::ImplicitLe => {
            let tag = dicom_core::Tag(el.tag.0, el.tag.1);
            match dicom_dictionary_std::StandardDataDictionary.by_tag(tag).map(|e| e.vr()) {
                Some(VirtualVr::Exact(vr)) => vr.to_string().as_bytes().try_into().ok()?,
                _ if el.tag.1 == 0x0000 => *b"UL",
                _ => return None,
            }
        }
        None => return None,
    };
    match &vr {
        b"US" | b"SS" | b"OW" => Some(2),
        b"UL" | b"SL" | b"FL" | b"AT" | b"OL" | b"OF" => Some(4),
        b"FD" | b"SV" | b"UV" | b"OD" | b"OV" => Some(8),
        _ => None,
    }
}

/// The end (one past its sequence delimiter) of an undefined-length UN value
/// that starts at `start`, read as implicit VR little endian.
fn un_sequence_end(b: &[u8], start: usize) -> Result<usize, String> {
    let mut pos = start;
    // Open items and nested undefined-length sequences.
    let mut depth = 0usize;
    while b.len() >= pos + HEADER {
        let el = read_header(b, pos, Syntax::ImplicitLe)?;
        match el.tag {
            SEQUENCE_END if depth == 0 => return Ok(el.value_start),
            ITEM_END if depth == 0 => {
                return Err(format!("item delimiter outside an item in an undefined-length UN value at byte {pos}"))
            }
            SEQUENCE_END | ITEM_END => {
                depth -= 1;
                pos = el.value_start;
            }
            _ if el.undefined() => {
                depth += 1;
                pos = el.value_start;
            }
            _ => pos = el.value_start + el.len as usize,
        }
    }
    Err(format!("undefined-length UN value starting at byte {start} has no sequence delimiter"))
}

/// How a data set starting with these bytes is encoded, judged from its
/// first element as dcmtk does: VR bytes that name a VR mean explicit VR;
/// the byte order is the one that reads the smaller group number. `None`
/// when too short or implicit VR big endian (no such transfer syntax).
pub fn detect(b: &[u8]) -> Option<Syntax> {
    if b.len() < HEADER {
        return None;
    }
    let le = u16_at(b, 0, false);
    let be = u16_at(b, 0, true);
    let big = le > be;
    match (is_vr([b[4], b[5]]), big) {
        (true, false) => Some(Syntax::ExplicitLe),
        (true, true) => Some(Syntax::ExplicitBe),
        (false, false) => Some(Syntax::ImplicitLe),
        (false, true) => None,
    }
}

/// The group of the first element in `syntax` (for plausibility checks).
pub fn first_group(b: &[u8], syntax: Syntax) -> Option<u16> {
    (b.len() >= 2).then(|| u16_at(b, 0, syntax.big()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_le(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(group.to_le_bytes());
        v.extend(elem.to_le_bytes());
        v.extend(vr);
        if long_length(*vr) {
            v.extend([0, 0]);
            v.extend((value.len() as u32).to_le_bytes());
        } else {
            v.extend((value.len() as u16).to_le_bytes());
        }
        v.extend(value);
        v
    }

    #[test]
    fn sane_data_sets_pass() {
        let mut ds = explicit_le(0x0010, 0x0010, b"PN", b"DOE^JOHN");
        let item_body = explicit_le(0x0008, 0x0100, b"SH", b"1234");
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((item_body.len() as u32).to_le_bytes());
        item.extend(&item_body);
        ds.extend(explicit_le(0x0008, 0x1032, b"SQ", &item));
        ds.extend(explicit_le(0x7FE0, 0x0010, b"OW", &[0u8; 16]));
        assert_eq!(check_data_set(&ds, Syntax::ExplicitLe).unwrap(), vec![]);
    }

    #[test]
    fn a_huge_declared_length_is_refused_at_top_level_and_nested() {
        // Top level: OB declaring 4 GiB - 2 with 4 bytes present.
        let mut ds = explicit_le(0x0010, 0x0010, b"PN", b"DOE^JOHN");
        ds.extend([0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]);
        let err = check_data_set(&ds, Syntax::ExplicitLe).unwrap_err();
        assert!(err.contains("(0009,1010) declares 4294967294 bytes"), "{err}");

        // Nested inside an undefined-length sequence item, implicit VR.
        let mut ds = Vec::new();
        ds.extend([0x08, 0x00, 0x32, 0x10, 0xFF, 0xFF, 0xFF, 0xFF]); // SQ, undefined length
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]); // item, undefined length
        ds.extend([0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x40]); // 1 GiB code value
        ds.extend([0u8; 8]);
        let err = check_data_set(&ds, Syntax::ImplicitLe).unwrap_err();
        assert!(err.contains("(0008,0100) declares 1073741824 bytes"), "{err}");
    }

    #[test]
    fn unknown_vr_bytes_have_a_32_bit_length_as_the_parser_reads_them() {
        // "LG" is no VR: dicom-parser reads it as UN, with reserved bytes and
        // a 32-bit length (here 0x4000_0000); a 16-bit reading would see 0.
        let mut ds = vec![0x09, 0x00, 0x10, 0x10, b'L', b'G', 0, 0, 0, 0, 0, 0x40];
        ds.extend([0u8; 32]);
        let err = check_data_set(&ds, Syntax::ExplicitLe).unwrap_err();
        assert!(err.contains("(0009,1010) declares 1073741824 bytes"), "{err}");
        // The same under big endian.
        let mut ds = vec![0x00, 0x09, 0x10, 0x10, 0, 0, 0, 0, 0x40, 0, 0, 0];
        ds.extend([0u8; 32]);
        let err = check_data_set(&ds, Syntax::ExplicitBe).unwrap_err();
        assert!(err.contains("(0009,1010) declares 1073741824 bytes"), "{err}");
    }

    #[test]
    fn an_undefined_length_un_sequence_becomes_a_defined_length_patch() {
        // (0009,1010) UN, undefined length, holding one implicit VR item with
        // one element, then the sequence delimiter; then a normal element.
        let mut ds = vec![0x09, 0x00, 0x10, 0x10, b'U', b'N', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        let content_start = ds.len();
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]); // item, undefined
                                                                     // Implicit VR element whose value bytes would read, explicitly, as
                                                                     // a VR "UN" with a 3.7 GB length.
        ds.extend([0x09, 0x00, 0x11, 0x10, 8, 0, 0, 0, b'U', b'N', 0, 0, 0xFE, 0xFF, 0xFF, 0xDF]);
        ds.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]); // item delimiter
        ds.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]); // sequence delimiter
        let content_end = ds.len();
        ds.extend(explicit_le(0x0010, 0x0010, b"PN", b"DOE^JOHN"));
        let patches = check_data_set(&ds, Syntax::ExplicitLe).unwrap();
        assert_eq!(patches, vec![Patch { at: 8, len: (content_end - content_start) as u32, tag: (0x0009, 0x1010) }]);
        let mut patched = ds.clone();
        apply(&mut patched, Syntax::ExplicitLe, &patches);
        assert_eq!(patched.len(), ds.len());
        // Read again, the patched stream is plain defined lengths.
        assert_eq!(check_data_set(&patched, Syntax::ExplicitLe).unwrap(), vec![]);
        // Without its delimiter it is an error, not a guess.
        let cut = &ds[..content_end - 8];
        let err = check_data_set(cut, Syntax::ExplicitLe).unwrap_err();
        assert!(err.contains("no sequence delimiter"), "{err}");
    }

    /// Regression (fuzzing, issue 14): an item longer than the sequence that
    /// holds it (546-byte file); the parser closes the sequence mid-item and
    /// reads a header from the middle of a value (1.1 GB asked for).
    #[test]
    fn an_item_longer_than_its_sequence_is_refused() {
        let mut ds = vec![0x09, 0x00, 0x10, 0x10, 16, 0, 0, 0]; // implicit element, 16 bytes
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 24, 0, 0, 0]); // item of 24 bytes inside it
        ds.extend([0x08, 0x00, 0x00, 0x01, 16, 0, 0, 0]);
        ds.extend([0u8; 16]);
        let err = check_data_set(&ds, Syntax::ImplicitLe).unwrap_err();
        assert!(err.contains("(FFFE,E000) declares 24 bytes but its sequence or item has only 8 left"), "{err}");
        let bytes = include_bytes!("../tests/data/fuzz/F3-oom-item-longer-than-sequence.dcm");
        let e = crate::dicom::parse(bytes).unwrap_err();
        assert_eq!(e.reason, crate::reject::Reason::ParseError);
        assert!(e.message.contains("but its sequence or item has only"), "{}", e.message);
    }

    /// Regression (fuzzing, issue 14): a UL of 59 bytes under implicit VR;
    /// the parser reads 14 values and goes on 3 bytes early (1.5 GB).
    #[test]
    fn a_numeric_value_of_a_length_its_values_do_not_divide_is_refused() {
        let mut ds = vec![0x00, 0x00, 0x00, 0x00, 59, 0, 0, 0];
        ds.extend([0u8; 64]);
        let err = check_data_set(&ds, Syntax::ImplicitLe).unwrap_err();
        assert!(err.contains("(0000,0000) declares 59 bytes, not a multiple of its 4-byte values"), "{err}");
        let mut f = b"DICM".to_vec();
        f.extend(include_bytes!("../tests/data/fuzz/F4-oom-numeric-length-not-multiple.dcm"));
        let e = crate::dicom::parse(&f).unwrap_err();
        assert_eq!(e.reason, crate::reject::Reason::ParseError, "{}", e.message);
    }

    #[test]
    fn encapsulated_fragments_are_skipped_not_parsed() {
        let mut ds = Vec::new();
        ds.extend([0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 0, 0, 0, 0]); // empty offset table
                                                         // A fragment whose bytes would read as a huge header if parsed.
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 12, 0, 0, 0]);
        ds.extend([0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xFE, 0xFF, 0xFF, 0x7F]);
        ds.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        check_data_set(&ds, Syntax::ExplicitLe).unwrap();
        // The same under another tag (fuzz finding F5: (7FE0,1000) OW):
        // dicom-parser reads its items as data sets, so the "fragment" is
        // a header declaring 2 GiB, refused before the parser runs.
        ds[2] = 0x00;
        ds[3] = 0x10;
        let e = check_data_set(&ds, Syntax::ExplicitLe).unwrap_err();
        assert!(e.contains("(0009,1010) declares"), "{e}");
    }

    #[test]
    fn big_endian_lengths_are_read_big_endian() {
        // (0010,0010) PN, length 8, big endian: fine.
        let mut ds = vec![0x00, 0x10, 0x00, 0x10, b'P', b'N', 0x00, 0x08];
        ds.extend(b"DOE^JOHN");
        check_data_set(&ds, Syntax::ExplicitBe).unwrap();
        // The same bytes read little endian would declare 2048 bytes.
        assert!(check_data_set(&ds, Syntax::ExplicitLe).is_err());
    }

    #[test]
    fn the_encoding_is_detected_from_the_first_element() {
        let le = explicit_le(0x0008, 0x0016, b"UI", b"1.2");
        assert_eq!(detect(&le), Some(Syntax::ExplicitLe));
        let be = [0x00, 0x08, 0x00, 0x16, b'U', b'I', 0x00, 0x04];
        assert_eq!(detect(&be), Some(Syntax::ExplicitBe));
        let implicit = [0x08, 0x00, 0x16, 0x00, 4, 0, 0, 0];
        assert_eq!(detect(&implicit), Some(Syntax::ImplicitLe));
        assert_eq!(detect(&implicit[..6]), None);
    }

    /// Regression (issue 3, item 11): the input `scripts/fuzz_ingest.sh`
    /// reported as out-of-memory, a 6 KB file declaring a 48 KB element in a
    /// private group; it is now a parse error before the parser runs. (With
    /// VR bytes that name no VR read as the parser reads them, a 32-bit
    /// length, an earlier mutated element is the one caught.)
    #[test]
    fn fuzz_oom_input_is_a_parse_error() {
        let bytes = include_bytes!("../tests/data/fuzz_oom_declared_length.dcm");
        let err = crate::dicom::parse(bytes).unwrap_err();
        assert_eq!(err.reason, crate::reject::Reason::ParseError);
        assert!(
            err.message.contains("(BDBD,BDBD) declares 3183328701 bytes but only 4793 are left"),
            "{}",
            err.message
        );
    }
}
