//! Lenient reading (issue 14): real files from pydicom's test data that are
//! not well-formed Part 10 (no meta, no group length, a data set encoded
//! otherwise than its transfer syntax, standard attributes stored as UN,
//! undefined-length UN), chest CRs built byte by byte in each encoding, the
//! fuzz regression inputs (`tests/data/fuzz/`, see its README), the same
//! files inside zip and tar through the binary, and the per-file memory
//! bound (peak RSS of a run over the 674-byte `UN_sequence.dcm`).
//!
//! All comparisons are exact (stored values are integers).

use std::path::Path;
use std::process::Command;

use crate::common;
use chess_ingest::dicom::read::{self, Note};
use chess_ingest::dicom::{self, Header};
use chess_ingest::lengths::Syntax;
use chess_ingest::reject::Reason;

// ---- a chest CR encoded by hand -------------------------------------------

enum V {
    Text(&'static str),
    Uid(String),
    U16(u16),
    Pixels(Vec<u16>),
}

struct El {
    tag: (u16, u16),
    vr: [u8; 2],
    value: V,
}

const ROWS: u16 = 12;
const COLS: u16 = 10;

/// Different for every SOP instance (so that no two files are duplicates).
fn pixels(sop: &str) -> Vec<u16> {
    let seed = sop.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let mut x = seed;
    (0..ROWS as u32 * COLS as u32)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 20) as u16
        })
        .collect()
}

/// A 12-bit chest CR; `modality_vr` is the VR Modality and BodyPartExamined
/// are written with (UN: a writer that did not know them).
fn cr(sop: &str, modality_vr: [u8; 2]) -> Vec<El> {
    let el = |g, e, vr: &[u8; 2], value| El { tag: (g, e), vr: *vr, value };
    vec![
        el(0x0008, 0x0016, b"UI", V::Uid("1.2.840.10008.5.1.4.1.1.1".into())),
        el(0x0008, 0x0018, b"UI", V::Uid(sop.into())),
        el(0x0008, 0x0060, &modality_vr, V::Text("CR")),
        el(0x0010, 0x0020, b"LO", V::Text("PAT1")),
        el(0x0018, 0x0015, &modality_vr, V::Text("CHEST")),
        el(0x0020, 0x000D, b"UI", V::Uid(format!("{sop}.1"))),
        el(0x0020, 0x000E, b"UI", V::Uid(format!("{sop}.2"))),
        el(0x0028, 0x0002, b"US", V::U16(1)),
        el(0x0028, 0x0004, b"CS", V::Text("MONOCHROME2")),
        el(0x0028, 0x0010, b"US", V::U16(ROWS)),
        el(0x0028, 0x0011, b"US", V::U16(COLS)),
        el(0x0028, 0x0100, b"US", V::U16(16)),
        el(0x0028, 0x0101, b"US", V::U16(12)),
        el(0x0028, 0x0102, b"US", V::U16(11)),
        el(0x0028, 0x0103, b"US", V::U16(0)),
        el(0x7FE0, 0x0010, b"OW", V::Pixels(pixels(sop))),
    ]
}

fn encode(els: &[El], syntax: Syntax) -> Vec<u8> {
    let big = syntax == Syntax::ExplicitBe;
    let u16b = |v: u16| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let u32b = |v: u32| if big { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    for e in els {
        let mut value = match &e.value {
            V::Text(s) => s.as_bytes().to_vec(),
            V::Uid(s) => s.as_bytes().to_vec(),
            V::U16(v) => u16b(*v).to_vec(),
            V::Pixels(p) => p.iter().flat_map(|v| u16b(*v)).collect(),
        };
        if value.len() % 2 == 1 {
            value.push(if matches!(e.value, V::Uid(_)) { 0 } else { b' ' });
        }
        out.extend(u16b(e.tag.0));
        out.extend(u16b(e.tag.1));
        match syntax {
            Syntax::ImplicitLe => out.extend(u32b(value.len() as u32)),
            _ if chess_ingest::lengths::long_length(e.vr) => {
                out.extend(e.vr);
                out.extend([0, 0]);
                out.extend(u32b(value.len() as u32));
            }
            _ => {
                out.extend(e.vr);
                out.extend(u16b(value.len() as u16));
            }
        }
        out.extend(value);
    }
    out
}

/// Preamble, magic and a file meta group naming `ts`; (0002,0000) holds
/// `group_length(actual)`, or is left out when that gives `None`.
fn part10(ts: &str, sop: &str, group_length: impl Fn(u32) -> Option<u32>, body: &[u8]) -> Vec<u8> {
    let el = |g, e, vr: &[u8; 2], s: &str| El { tag: (g, e), vr: *vr, value: V::Uid(s.to_string()) };
    let rest = encode(
        &[
            el(0x0002, 0x0002, b"UI", "1.2.840.10008.5.1.4.1.1.1"),
            el(0x0002, 0x0003, b"UI", sop),
            el(0x0002, 0x0010, b"UI", ts),
        ],
        Syntax::ExplicitLe,
    );
    let mut f = vec![0u8; 128];
    f.extend(b"DICM");
    if let Some(n) = group_length(rest.len() as u32) {
        f.extend([0x02, 0x00, 0x00, 0x00, b'U', b'L', 4, 0]);
        f.extend(n.to_le_bytes());
    }
    f.extend(rest);
    f.extend(body);
    f
}

fn read_ok(bytes: &[u8]) -> (Header, Vec<i32>, Vec<Note>) {
    let r = read::read(bytes).unwrap_or_else(|e| panic!("{}: {}", e.reason, e.message));
    let h = Header::from_object(&r.obj);
    let stored = dicom::decode(&r.obj, &h).unwrap_or_else(|e| panic!("{}: {}", e.reason, e.message));
    (h, stored.values, r.notes)
}

fn expected(sop: &str) -> Vec<i32> {
    pixels(sop).iter().map(|&v| v as i32).collect()
}

#[test]
fn bare_data_sets_are_read_in_each_encoding() {
    for syntax in [Syntax::ImplicitLe, Syntax::ExplicitLe, Syntax::ExplicitBe] {
        let bytes = encode(&cr("1.2.3.4.1", *b"CS"), syntax);
        let (h, values, notes) = read_ok(&bytes);
        assert_eq!(values, expected("1.2.3.4.1"), "{syntax:?}");
        assert_eq!(h.transfer_syntax, syntax.uid());
        assert_eq!((h.modality.as_str(), h.rows, h.columns), ("CR", ROWS as u32, COLS as u32));
        assert!(notes.contains(&Note::NoMagic) && notes.contains(&Note::NoFileMeta), "{notes:?}");
    }
    // Not DICOM at all stays not_dicom.
    for junk in [&b"%PDF-1.4 a document"[..], b"hello, world, this is text", &[0u8; 3]] {
        assert_eq!(read::read(junk).unwrap_err().reason, Reason::NotDicom);
    }
}

#[test]
fn pydicom_files_without_meta_are_read_as_pydicom_reads_them() {
    // (file, encoding pydicom reports with force=True). pydicom's
    // no_meta.dcm is left out: its first byte is junk and pydicom's forced
    // read of it yields nonsense tags ((0820,0500), ...); here it is
    // not_dicom. The bare implicit VR case is covered by the built files.
    for (name, syntax) in
        [("ExplVR_LitEndNoMeta.dcm", Syntax::ExplicitLe), ("ExplVR_BigEndNoMeta.dcm", Syntax::ExplicitBe)]
    {
        let bytes = std::fs::read(common::pydicom_test_file(name)).unwrap();
        let r = read::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.obj.meta().transfer_syntax(), syntax.uid(), "{name}");
        assert!(r.notes.contains(&Note::NoFileMeta), "{name}: {:?}", r.notes);
        assert!(!Header::from_object(&r.obj).sop_instance_uid.is_empty(), "{name}");
    }
    let bytes = std::fs::read(common::pydicom_test_file("no_meta.dcm")).unwrap();
    assert_eq!(read::read(&bytes).unwrap_err().reason, Reason::NotDicom);
}

#[test]
fn a_missing_or_wrong_meta_group_length_is_noted_not_fatal() {
    let body = encode(&cr("1.2.3.4.2", *b"CS"), Syntax::ExplicitLe);
    let missing = part10("1.2.840.10008.1.2.1", "1.2.3.4.2", |_| None, &body);
    let (_, values, notes) = read_ok(&missing);
    assert_eq!(values, expected("1.2.3.4.2"));
    assert!(notes.contains(&Note::MetaGroupLengthMissing), "{notes:?}");
    for wrong in [|n| Some(n - 10), |n| Some(n + 30)] {
        let f = part10("1.2.840.10008.1.2.1", "1.2.3.4.2", wrong, &body);
        let (_, values, notes) = read_ok(&f);
        assert_eq!(values, expected("1.2.3.4.2"));
        assert!(notes.iter().any(|n| matches!(n, Note::MetaGroupLengthWrong { .. })), "{notes:?}");
    }
    // pydicom's own file.
    let bytes = std::fs::read(common::pydicom_test_file("no_meta_group_length.dcm")).unwrap();
    let r = read::read(&bytes).unwrap();
    assert!(r.notes.contains(&Note::MetaGroupLengthMissing), "{:?}", r.notes);
    assert!(!Header::from_object(&r.obj).sop_instance_uid.is_empty());
}

#[test]
fn a_data_set_encoded_against_its_transfer_syntax_falls_back_and_says_so() {
    // Says explicit VR LE, is implicit; says implicit, is explicit.
    for (ts, body_syntax) in [("1.2.840.10008.1.2.1", Syntax::ImplicitLe), ("1.2.840.10008.1.2", Syntax::ExplicitLe)] {
        let body = encode(&cr("1.2.3.4.3", *b"CS"), body_syntax);
        let (h, values, notes) = read_ok(&part10(ts, "1.2.3.4.3", Some, &body));
        assert_eq!(values, expected("1.2.3.4.3"));
        assert_eq!(h.transfer_syntax, body_syntax.uid());
        assert!(
            notes.contains(&Note::EncodingFallback { transfer_syntax: ts.into(), read_as: body_syntax }),
            "{notes:?}"
        );
    }
    // An encapsulated syntax with an implicit VR data set (pydicom's
    // SC_rgb_jpeg.dcm case): the data set falls back, the pixel data stay
    // JPEG Lossless and decode to what the well-formed file decodes to.
    let good = std::fs::read(common::fixture("mr_small_jpll.dcm")).unwrap();
    let (_, want, _) = read_ok(&good);
    let obj = dicom::parse(&good).unwrap();
    let implicit = dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let mut body = Vec::new();
    obj.write_dataset_with_ts(&mut body, &implicit).unwrap();
    let sop = obj.meta().media_storage_sop_instance_uid().trim_end_matches('\0').to_string();
    let f = part10("1.2.840.10008.1.2.4.70", &sop, Some, &body);
    let (h, values, notes) = read_ok(&f);
    assert_eq!(h.transfer_syntax, "1.2.840.10008.1.2.4.70");
    assert_eq!(values, want);
    assert!(notes.iter().any(|n| matches!(n, Note::EncodingFallback { read_as: Syntax::ImplicitLe, .. })));
    // And pydicom's file of that kind reads.
    let bytes = std::fs::read(common::pydicom_test_file("SC_rgb_jpeg.dcm")).unwrap();
    let r = read::read(&bytes).unwrap();
    assert!(Header::from_object(&r.obj).has_pixel_data, "{:?}", r.notes);
}

#[test]
fn standard_attributes_stored_as_un_take_the_dictionary_vr() {
    let body = encode(&cr("1.2.3.4.4", *b"UN"), Syntax::ExplicitLe);
    let (h, values, notes) = read_ok(&part10("1.2.840.10008.1.2.1", "1.2.3.4.4", Some, &body));
    assert_eq!((h.modality.as_str(), h.body_part.as_str()), ("CR", "CHEST"));
    assert_eq!(values, expected("1.2.3.4.4"));
    assert!(notes.contains(&Note::UnReread(vec![(0x0008, 0x0060), (0x0018, 0x0015)])), "{notes:?}");
    // Selection sees the text (before: Modality "67\\82", rejected).
    chess_ingest::select::Selection::default().check(&h).unwrap();
    // pydicom-data's explicit_VR-UN.dcm: numbers and text stored as UN.
    let bytes = std::fs::read(common::pydicom_data_file("explicit_VR-UN.dcm")).unwrap();
    let r = read::read(&bytes).unwrap();
    let h = Header::from_object(&r.obj);
    assert!(r.notes.iter().any(|n| matches!(n, Note::UnReread(_))), "{:?}", r.notes);
    assert!(h.modality.chars().all(|c| c.is_ascii_uppercase()) && !h.modality.is_empty(), "{:?}", h.modality);
    assert!(h.rows > 0 && h.columns > 0 && h.bits_allocated > 0, "{h:?}");
}

// ---- fuzz regression inputs (tests/data/fuzz/README.md) -----------------------

fn fuzz(name: &str) -> Vec<u8> {
    std::fs::read(common::fixture(&format!("fuzz/{name}"))).unwrap()
}

#[test]
fn an_undefined_length_un_sequence_is_kept_as_bytes_not_read_as_a_length() {
    // pydicom's UN_sequence.dcm, unchanged.
    let bytes = fuzz("F1a-oom-UN-undefined-length__UN_sequence.dcm");
    let r = read::read(&bytes).unwrap();
    assert!(r.notes.iter().any(|n| matches!(n, Note::UnSequences(t) if !t.is_empty())), "{:?}", r.notes);
    assert!(!Header::from_object(&r.obj).sop_instance_uid.is_empty());
}

#[test]
fn unknown_vr_bytes_are_a_parse_error_before_any_allocation() {
    for name in ["F1b-oom-unknown-VR-LE.dcm", "F1b-oom-unknown-VR-4GiB-BE.dcm", "F1c-oom-unknown-VR-file-meta.dcm"] {
        let e = read::read(&fuzz(name)).unwrap_err();
        assert_eq!(e.reason, Reason::ParseError, "{name}: {}", e.message);
        assert!(e.message.contains("declares") && e.message.contains("bytes but only"), "{name}: {}", e.message);
    }
}

/// Fuzz finding F5 (issue 14's 15-minute run): an undefined-length OW under
/// a tag other than (7FE0,0010). The declared-length walk took its items
/// for pixel-data fragments and skipped them; dicom-parser reads them as
/// data sets, and a fragment byte run read as an element header declared
/// 4 GB (peak RSS 4 GB in 16 s). Now both read it as a sequence: a
/// `parse_error` before the parser runs.
#[test]
fn an_undefined_length_ow_that_is_not_pixel_data_is_walked_as_a_sequence() {
    let e = read::read(&fuzz("F5-oom-undefined-length-OW-not-pixel-data.dcm")).unwrap_err();
    assert_eq!(e.reason, Reason::ParseError, "{}", e.message);
    assert!(e.message.contains("declares") && e.message.contains("bytes but"), "{}", e.message);
}

/// The input that made dicom-rs's RLE decoder panic (index out of bounds on
/// a segment that decodes short) meets the crate's own RLE decoder now
/// (`dicom/rle.rs`): a `decode_error` naming the short segment. A panic in
/// any other decoder is caught (`dicom::quiet`, tested there).
#[test]
fn a_short_rle_segment_is_a_decode_error() {
    let bytes = fuzz("F2-panic-rle-lossless-oob.dcm");
    let obj = dicom::parse(&bytes).unwrap();
    let h = Header::from_object(&obj);
    let e = dicom::decode(&obj, &h).unwrap_err();
    assert_eq!(e.reason, Reason::DecodeError);
    assert!(e.message.contains("RLE segment") && e.message.contains("expected"), "{}", e.message);
}

// ---- through the binary ---------------------------------------------------------

/// Runs chess-ingest under a parent that reports its peak RSS (kB).
fn ingest_measured(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (std::process::Output, u64) {
    let script = "import resource, subprocess, sys\n\
                  p = subprocess.run(sys.argv[1:], capture_output=True)\n\
                  sys.stdout.buffer.write(p.stdout)\n\
                  sys.stderr.buffer.write(p.stderr)\n\
                  print(f'\\nPEAK_RSS_KB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}')\n\
                  sys.exit(p.returncode)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_chess-ingest"))
        .args(args.iter().map(|a| a.as_ref()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let kb = stdout.lines().find_map(|l| l.strip_prefix("PEAK_RSS_KB ")).unwrap().trim().parse().unwrap();
    (out, kb)
}

fn reasons(out: &Path) -> Vec<String> {
    use arrow_array::{Array, StringArray};
    let Ok(f) = std::fs::File::open(out.join("private/rejected.parquet")) else { return Vec::new() };
    let r = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap();
    let mut v = Vec::new();
    for b in r {
        let b = b.unwrap();
        let a = b.column_by_name("reason_code").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        v.extend((0..a.len()).map(|i| a.value(i).to_string()));
    }
    v
}

/// Issue 14 item 2: the 674-byte file once cost 3.7 GB; the whole run now
/// stays under 100 MB, and a decoder panic leaves stderr without a trace.
#[test]
fn fuzz_inputs_stay_in_the_memory_bound_and_quiet() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir(&inp).unwrap();
    std::fs::copy(common::fixture("fuzz/F1a-oom-UN-undefined-length__UN_sequence.dcm"), inp.join("un.dcm")).unwrap();
    let out = tmp.path().join("out");
    let (o, kb) = ingest_measured(&[&inp, &"--out", &out, &"--threads", &"2", &"--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(kb < 100 * 1024, "peak RSS {kb} kB");
    eprintln!("UN_sequence.dcm run: peak RSS {kb} kB");

    let inp = tmp.path().join("in2");
    std::fs::create_dir(&inp).unwrap();
    for f in [
        "F1b-oom-unknown-VR-LE.dcm",
        "F1b-oom-unknown-VR-4GiB-BE.dcm",
        "F1c-oom-unknown-VR-file-meta.dcm",
        "F5-oom-undefined-length-OW-not-pixel-data.dcm",
    ] {
        std::fs::copy(common::fixture(&format!("fuzz/{f}")), inp.join(f)).unwrap();
    }
    std::fs::copy(common::fixture("fuzz/F2-panic-rle-lossless-oob.dcm"), inp.join("f2.dcm")).unwrap();
    let out = tmp.path().join("out2");
    let (o, kb) = ingest_measured(&[&inp, &"--out", &out, &"--modalities", &"MR", &"--quiet"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(kb < 100 * 1024, "peak RSS {kb} kB");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!stderr.contains("panicked") && !stderr.contains("index out of bounds"), "{stderr}");
    let mut r = reasons(&out);
    r.sort();
    assert_eq!(r, ["decode_error", "parse_error", "parse_error", "parse_error", "parse_error"]);
}

#[test]
fn lenient_files_inside_zip_and_tar_are_ingested() {
    use std::io::Write;
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir(&inp).unwrap();
    let files: Vec<(String, Vec<u8>)> = vec![
        ("bare_implicit".into(), encode(&cr("1.2.3.5.1", *b"CS"), Syntax::ImplicitLe)),
        ("bare_big_endian".into(), encode(&cr("1.2.3.5.2", *b"CS"), Syntax::ExplicitBe)),
        (
            "no_group_length.dcm".into(),
            part10("1.2.840.10008.1.2.1", "1.2.3.5.3", |_| None, &encode(&cr("1.2.3.5.3", *b"CS"), Syntax::ExplicitLe)),
        ),
        (
            "un_modality.dcm".into(),
            part10("1.2.840.10008.1.2.1", "1.2.3.5.4", Some, &encode(&cr("1.2.3.5.4", *b"UN"), Syntax::ExplicitLe)),
        ),
    ];
    let mut zw = zip::ZipWriter::new(std::fs::File::create(inp.join("a.zip")).unwrap());
    for (name, bytes) in &files[..2] {
        zw.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).unwrap();
        zw.write_all(bytes).unwrap();
    }
    zw.finish().unwrap();
    let mut tb = tar::Builder::new(std::fs::File::create(inp.join("b.tar")).unwrap());
    for (name, bytes) in &files[2..] {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_cksum();
        tb.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    tb.finish().unwrap();
    drop(tb);
    let out = tmp.path().join("out");
    let o = common::chess_ingest().arg(&inp).arg("--out").arg(&out).arg("--quiet").output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let f = std::fs::File::open(out.join("manifest.parquet")).unwrap();
    let rows =
        parquet::file::reader::FileReader::metadata(&parquet::file::reader::SerializedFileReader::new(f).unwrap())
            .file_metadata()
            .num_rows();
    assert_eq!(rows, 4, "rejected: {:?}", reasons(&out));
}

/// The memory a decoder may take is tied to the file's size: an
/// encapsulated frame may not declare more than 512 times its encoded
/// bytes (plus 1 MiB); checked before any decoder runs.
#[test]
fn a_tiny_stream_declaring_a_huge_image_is_refused_before_decoding() {
    let mut bytes = std::fs::read(common::fixture("mr_small_jpll.dcm")).unwrap();
    for el in [[0x28, 0x00, 0x10, 0x00, b'U', b'S', 2, 0], [0x28, 0x00, 0x11, 0x00, b'U', b'S', 2, 0]] {
        let at = bytes.windows(8).position(|w| w == el).unwrap() + 8;
        bytes[at..at + 2].copy_from_slice(&4096u16.to_le_bytes());
    }
    let obj = dicom::parse(&bytes).unwrap();
    let h = Header::from_object(&obj);
    assert_eq!((h.rows, h.columns), (4096, 4096));
    let e = dicom::decode(&obj, &h).unwrap_err();
    assert_eq!(e.reason, Reason::BadDimensions);
    assert!(e.message.contains("more than 512:1"), "{}", e.message);
}

/// Issue 14 item 1: how each file was read reaches `private/journal.jsonl`
/// (codes only, no value from the file) and `dataset.json` counts them.
#[test]
fn lenient_read_notes_reach_the_journal_and_dataset_json_as_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let inp = tmp.path().join("in");
    std::fs::create_dir(&inp).unwrap();
    let files = [
        ("a_bare_implicit", encode(&cr("1.2.3.6.1", *b"CS"), Syntax::ImplicitLe)),
        (
            "b_un_modality.dcm",
            part10("1.2.840.10008.1.2.1", "1.2.3.6.2", Some, &encode(&cr("1.2.3.6.2", *b"UN"), Syntax::ExplicitLe)),
        ),
        (
            "c_fallback.dcm",
            part10("1.2.840.10008.1.2.1", "1.2.3.6.3", |_| None, &encode(&cr("1.2.3.6.3", *b"CS"), Syntax::ImplicitLe)),
        ),
        (
            "d_well_formed.dcm",
            part10("1.2.840.10008.1.2.1", "1.2.3.6.4", Some, &encode(&cr("1.2.3.6.4", *b"CS"), Syntax::ExplicitLe)),
        ),
    ];
    for (name, bytes) in &files {
        std::fs::write(inp.join(name), bytes).unwrap();
    }
    let out = tmp.path().join("out");
    // Noise pixels: the burned-in text detector is not what this is about.
    let o =
        common::chess_ingest().arg(&inp).args(["--burned-in", "keep", "--quiet", "--out"]).arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(reasons(&out), Vec::<String>::new());
    let journal = std::fs::read_to_string(out.join("private/journal.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> =
        journal.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
    let codes = |file: &str| -> Vec<String> {
        let e = lines.iter().find(|e| e["s"].as_str().unwrap().ends_with(file)).unwrap_or_else(|| panic!("{file}"));
        assert_eq!(e["o"], "sample", "{e}");
        e.get("n").map(|n| serde_json::from_value(n.clone()).unwrap()).unwrap_or_default()
    };
    assert_eq!(codes("a_bare_implicit"), ["no_dicm_magic", "no_file_meta"]);
    assert_eq!(codes("b_un_modality.dcm"), ["un_reread_with_dictionary_vr"]);
    assert_eq!(codes("c_fallback.dcm"), ["meta_group_length_missing", "encoding_fallback:explicit_le->implicit_le"]);
    assert!(codes("d_well_formed.dcm").is_empty(), "{journal}");
    // Nothing from the headers: not the patient ID, body part, UIDs or tags.
    for e in &lines {
        let mut e = e.clone();
        // The source path (the journal is private), the pseudonymous key and the pixel hash (hex).
        for k in ["s", "k", "h"] {
            e.as_object_mut().unwrap().remove(k);
        }
        let text = e.to_string();
        for value in ["PAT1", "CHEST", "MONOCHROME", "1.2.3.6", "1.2.840", "0008", "0060"] {
            assert!(!text.contains(value), "{value:?} in {text}");
        }
    }
    let ds: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("dataset.json")).unwrap()).unwrap();
    let counts = ds.pointer("/provenance/summary/read_notes").unwrap_or_else(|| panic!("{ds}"));
    assert_eq!(
        counts,
        &serde_json::json!({
            "encoding_fallback:explicit_le->implicit_le": 1,
            "meta_group_length_missing": 1,
            "no_dicm_magic": 1,
            "no_file_meta": 1,
            "un_reread_with_dictionary_vr": 1,
        })
    );
}
