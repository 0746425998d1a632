//! Declared-length pre-check: no allocation sized by a header value.
//!
//! `dicom-parser` reserves an element's declared length (up to 4 GiB) before
//! it reads the value, so a small file with a bogus length would make it ask
//! for gigabytes (found by `scripts/fuzz_ingest.sh`). Before the parser sees a
//! file, [`check_declared_lengths`] walks its element stream and rejects any
//! defined length larger than the bytes that are left, which bounds every
//! such reservation by the file's own size.
//!
//! The walk steps *into* sequences, items and encapsulated pixel data (so
//! nested lengths are checked too) and skips every other value. The file
//! meta group is explicit VR little endian; the data set follows the
//! transfer syntax it names: implicit VR little endian, explicit VR big
//! endian, deflated explicit VR little endian (inflated here, bounded), or
//! explicit VR little endian (all the others, encapsulated ones included).

use std::io::Read;

/// Largest inflated data set of a deflated file we look at, in bytes.
const MAX_INFLATED: u64 = 1 << 30;

const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const UNDEFINED: u32 = 0xFFFF_FFFF;

#[derive(Clone, Copy, PartialEq)]
enum Syntax {
    ExplicitLe,
    ImplicitLe,
    ExplicitBe,
}

/// Checks every defined length of a Part 10 stream that starts at its `DICM`
/// magic. `Err` says which element declares what.
pub fn check_declared_lengths(data: &[u8]) -> Result<(), String> {
    let Some(body) = data.strip_prefix(b"DICM") else {
        return Err("no DICM magic".into());
    };
    // File meta group: explicit VR little endian, group 0002 only.
    let mut pos = 0usize;
    let mut transfer_syntax = String::new();
    while body.len() >= pos + 2 && u16::from_le_bytes([body[pos], body[pos + 1]]) == 0x0002 {
        let el = read_header(body, pos, Syntax::ExplicitLe)?;
        if el.len == UNDEFINED {
            return Err(format!("file meta element ({:04X},{:04X}) has an undefined length", el.tag.0, el.tag.1));
        }
        let value_len = el.len as usize;
        if el.tag == (0x0002, 0x0010) {
            let v = &body[el.value_start..el.value_start + value_len];
            transfer_syntax = String::from_utf8_lossy(v).trim_end_matches(['\0', ' ']).to_string();
        }
        pos = el.value_start + value_len;
    }
    let rest = &body[pos..];
    match transfer_syntax.as_str() {
        "1.2.840.10008.1.2" => walk(rest, Syntax::ImplicitLe),
        "1.2.840.10008.1.2.2" => walk(rest, Syntax::ExplicitBe),
        "1.2.840.10008.1.2.1.99" => {
            let mut inflated = Vec::new();
            flate2::read::DeflateDecoder::new(rest)
                .take(MAX_INFLATED)
                .read_to_end(&mut inflated)
                .map_err(|e| format!("deflated data set does not inflate: {e}"))?;
            walk(&inflated, Syntax::ExplicitLe)
        }
        _ => walk(rest, Syntax::ExplicitLe),
    }
}

struct Element {
    tag: (u16, u16),
    vr: Option<[u8; 2]>,
    /// Declared length (UNDEFINED for undefined length).
    len: u32,
    value_start: usize,
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
fn read_header(b: &[u8], pos: usize, syntax: Syntax) -> Result<Element, String> {
    let big = syntax == Syntax::ExplicitBe;
    let need = |n: usize| {
        if b.len() < pos + n {
            Err(format!("element header at byte {pos} is cut off"))
        } else {
            Ok(())
        }
    };
    need(8)?;
    let tag = (u16_at(b, pos, big), u16_at(b, pos + 2, big));
    let (vr, len, value_start) = if tag.0 == 0xFFFE || syntax == Syntax::ImplicitLe {
        // Items and delimiters never carry a VR.
        (None, u32_at(b, pos + 4, big), pos + 8)
    } else {
        let vr = [b[pos + 4], b[pos + 5]];
        if matches!(
            &vr,
            b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV"
        ) {
            need(12)?;
            (Some(vr), u32_at(b, pos + 8, big), pos + 12)
        } else {
            (Some(vr), u16_at(b, pos + 6, big) as u32, pos + 8)
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
    Ok(Element { tag, vr, len, value_start })
}

/// Walks a data set as a flat stream of headers, stepping into containers.
// The walk reads the data set as `dicom-parser` will, in the declared
// syntax (no guessing from the bytes, unlike pydicom): what matters is the
// lengths that parser would act on.
fn walk(b: &[u8], syntax: Syntax) -> Result<(), String> {
    let mut pos = 0usize;
    // Inside encapsulated pixel data, items hold fragments, not elements.
    let mut in_fragments = false;
    // Trailing padding shorter than a header is tolerated, as parsers do.
    while b.len() >= pos + 8 {
        let el = read_header(b, pos, syntax)?;
        if el.tag == (0xFFFE, 0xE0DD) {
            in_fragments = false;
        }
        if el.len == UNDEFINED && el.vr == Some(*b"UN") {
            // An undefined-length UN holds an implicit VR sequence inside an
            // explicit VR stream; rather than guess, leave the rest to the
            // parser (its lengths are not checked).
            return Ok(());
        }
        if el.len == UNDEFINED && (matches!(el.vr, Some([b'O', b'B' | b'W'])) || el.tag == (0x7FE0, 0x0010)) {
            in_fragments = true;
        }
        let step_in = el.len == UNDEFINED
            || (el.tag == ITEM && !in_fragments)
            || el.vr == Some(*b"SQ")
            // Implicit VR: a value that starts with an item tag is a sequence.
            || (el.vr.is_none()
                && el.tag.0 != 0xFFFE
                && el.len >= 8
                && b.len() >= el.value_start + 4
                && (u16_at(b, el.value_start, false), u16_at(b, el.value_start + 2, false)) == ITEM);
        pos = if step_in { el.value_start } else { el.value_start + el.len as usize };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explicit_le(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(group.to_le_bytes());
        v.extend(elem.to_le_bytes());
        v.extend(vr);
        if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
            v.extend([0, 0]);
            v.extend((value.len() as u32).to_le_bytes());
        } else {
            v.extend((value.len() as u16).to_le_bytes());
        }
        v.extend(value);
        v
    }

    fn file(ts: &str, dataset: &[u8]) -> Vec<u8> {
        let mut uid = ts.as_bytes().to_vec();
        if uid.len() % 2 == 1 {
            uid.push(0);
        }
        let mut f = b"DICM".to_vec();
        f.extend(explicit_le(0x0002, 0x0010, b"UI", &uid));
        f.extend(dataset);
        f
    }

    #[test]
    fn sane_files_pass() {
        let mut ds = explicit_le(0x0010, 0x0010, b"PN", b"DOE^JOHN");
        let item_body = explicit_le(0x0008, 0x0100, b"SH", b"1234");
        let mut item = vec![0xFE, 0xFF, 0x00, 0xE0];
        item.extend((item_body.len() as u32).to_le_bytes());
        item.extend(&item_body);
        ds.extend(explicit_le(0x0008, 0x1032, b"SQ", &item));
        ds.extend(explicit_le(0x7FE0, 0x0010, b"OW", &[0u8; 16]));
        check_declared_lengths(&file("1.2.840.10008.1.2.1", &ds)).unwrap();
    }

    #[test]
    fn a_huge_declared_length_is_refused_at_top_level_and_nested() {
        // Top level: OB declaring 4 GiB - 2 with 4 bytes present.
        let mut ds = explicit_le(0x0010, 0x0010, b"PN", b"DOE^JOHN");
        ds.extend([0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4]);
        let err = check_declared_lengths(&file("1.2.840.10008.1.2.1", &ds)).unwrap_err();
        assert!(err.contains("(0009,1010) declares 4294967294 bytes"), "{err}");

        // Nested inside an undefined-length sequence item, implicit VR.
        let mut ds = Vec::new();
        ds.extend([0x08, 0x00, 0x32, 0x10, 0xFF, 0xFF, 0xFF, 0xFF]); // SQ, undefined length
        ds.extend([0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF]); // item, undefined length
        ds.extend([0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x40]); // 1 GiB code value
        ds.extend([0u8; 8]);
        let err = check_declared_lengths(&file("1.2.840.10008.1.2", &ds)).unwrap_err();
        assert!(err.contains("(0008,0100) declares 1073741824 bytes"), "{err}");
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
        check_declared_lengths(&file("1.2.840.10008.1.2.4.70", &ds)).unwrap();
    }

    #[test]
    fn big_endian_lengths_are_read_big_endian() {
        // (0010,0010) PN, length 8, big endian: fine.
        let mut ds = vec![0x00, 0x10, 0x00, 0x10, b'P', b'N', 0x00, 0x08];
        ds.extend(b"DOE^JOHN");
        check_declared_lengths(&file("1.2.840.10008.1.2.2", &ds)).unwrap();
        // The same bytes read little endian would declare 2048 bytes.
        assert!(check_declared_lengths(&file("1.2.840.10008.1.2.1", &ds)).is_err());
    }

    /// Regression (issue 3, item 11): the input `scripts/fuzz_ingest.sh`
    /// reported as out-of-memory, a 6 KB file declaring a 48 KB element in a
    /// private group; it is now a parse error before the parser runs.
    #[test]
    fn fuzz_oom_input_is_a_parse_error() {
        let bytes = include_bytes!("../tests/data/fuzz_oom_declared_length.dcm");
        let err = crate::dicom::parse(bytes).unwrap_err();
        assert_eq!(err.reason, crate::reject::Reason::ParseError);
        assert!(err.message.contains("declares 48573 bytes but only 4797 are left"), "{}", err.message);
    }

    #[test]
    fn cut_off_meta_group_is_an_error_not_a_panic() {
        let f = b"DICM\x02\x00\x10\x00UI\x40\x00abc".to_vec();
        assert!(check_declared_lengths(&f).is_err());
        assert!(check_declared_lengths(b"DICM\x02\x00").is_err());
        // Nothing after the magic is for the parser to judge.
        assert!(check_declared_lengths(b"DICM").is_ok());
    }
}
