//! `chess-ingest pairs` end to end: a pairs CSV of PNGs written by the test
//! (16-bit source, 8-bit target, 3-class label-map mask) and one of DICOMs
//! (`ingest/tests/data`), each with a row of mismatched dimensions and a
//! missing file. Checks: `chess-shards verify` passes; source/target arrays
//! are the ingest pipeline's output, masks keep their label values exactly
//! (nearest neighbour); rejected rows are listed with their CSV lines;
//! DICOM keys are chess-ingest's; no path or identifier from the input
//! appears in any shareable byte (tar members and manifest decompressed).
//!
//! The `chess-shards` binary is taken from `CHESS_SHARDS_BIN` when set,
//! otherwise built with `cargo build -p chess-shards` (same target dir).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{self, chess_ingest, chess_shards_bin};
use chess_ingest::deid::Key;
use chess_ingest::pairs::resize_labels;
use chess_ingest::pipeline::{self, Aspect, BitDepth, PipelineOptions, PixelSemantics};
use chess_shards::{Dataset, NpyZstDecoder};

const SIZE: u32 = 16;
/// A folder name standing in for a patient's name in the input paths.
const NAME_IN_PATH: &str = "Doe_Jane_19570312";

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn write_png(path: &Path, w: u32, h: u32, depth: png::BitDepth, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(depth);
    enc.write_header().unwrap().write_image_data(data).unwrap();
}

fn source16(w: u32, h: u32, seed: u32) -> Vec<u16> {
    // The seed changes the pattern, not just an offset (min-max would undo that).
    (0..w * h)
        .map(|i| ((i % w) * 1900 + (i / w) * 650 + ((i % w) * (i / w) * (seed + 1)) % 97 * 40 + 100) as u16)
        .collect()
}

fn target8(w: u32, h: u32, seed: u32) -> Vec<u8> {
    (0..w * h).map(|i| ((i % w) * 7 + (i / w) * 3 + seed * 11 + 20).min(250) as u8).collect()
}

/// A label map with classes 0, 1 and 2 in blocks.
fn mask8(w: u32, h: u32) -> Vec<u8> {
    (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if (4..12).contains(&x) && (3..9).contains(&y) {
                1
            } else if x >= 16 && y >= 12 {
                2
            } else {
                0
            }
        })
        .collect()
}

fn ingest_pairs(csv: &Path, out: &Path, key: &Path, extra: &[&str]) -> Output {
    chess_ingest()
        .arg("pairs")
        .arg(csv)
        .arg("--out")
        .arg(out)
        .arg("--key-file")
        .arg(key)
        .args(["--size", &SIZE.to_string(), "--threads", "2"])
        .args(extra)
        .output()
        .unwrap()
}

fn verify(out: &Path) {
    let o = Command::new(chess_shards_bin()).arg("verify").arg(out).output().unwrap();
    check(&o, "chess-shards verify");
}

/// (csv_line, reason_code, message) rows of private/rejected.parquet.
fn rejected(out: &Path) -> Vec<(u64, String, String)> {
    use arrow_array::{Array, StringArray, UInt64Array};
    let f = std::fs::File::open(out.join("private/rejected.parquet")).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f).unwrap().build().unwrap();
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let lines = b.column_by_name("csv_line").unwrap().as_any().downcast_ref::<UInt64Array>().unwrap().clone();
        let s = |n: &str| b.column_by_name(n).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
        let (r, m) = (s("reason_code"), s("message"));
        for i in 0..lines.len() {
            rows.push((lines.value(i), r.value(i).to_string(), m.value(i).to_string()));
        }
    }
    rows
}

/// Every shareable byte (all but private/): raw files, tar members with
/// `.zst` members decompressed, and the manifest rows as text.
fn shareable_bytes(out: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for e in walk(out) {
        if e.strip_prefix(out).unwrap().starts_with("private") {
            continue;
        }
        let bytes = std::fs::read(&e).unwrap();
        all.extend_from_slice(e.strip_prefix(out).unwrap().to_string_lossy().as_bytes());
        if e.extension().is_some_and(|x| x == "tar") {
            let mut ar = tar::Archive::new(&bytes[..]);
            for m in ar.entries().unwrap() {
                let mut m = m.unwrap();
                let name = m.path().unwrap().to_string_lossy().to_string();
                let mut data = Vec::new();
                m.read_to_end(&mut data).unwrap();
                all.extend_from_slice(name.as_bytes());
                if name.ends_with(".zst") {
                    data = zstd::decode_all(&data[..]).unwrap();
                }
                all.extend_from_slice(&data);
            }
        }
        all.extend_from_slice(&bytes);
    }
    let ds = Dataset::open(out).unwrap();
    all.extend_from_slice(format!("{:?}", ds.manifest.rows()).as_bytes());
    all
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// (image, target, mask) arrays of a sample, as u16 values.
fn arrays(out: &Path, key: &str) -> (Vec<u16>, Vec<u16>, Option<Vec<u16>>) {
    let ds = Dataset::open(out).unwrap();
    let i = ds.find_key(key).unwrap_or_else(|| panic!("no sample {key}"));
    let s = ds.read_sample(&ds.manifest.view().row(i), &mut NpyZstDecoder::new()).unwrap();
    let extra = |n: &str| s.extras.iter().find(|(f, _)| f == n).map(|(_, im)| im);
    for (_, im) in &s.extras {
        assert_eq!((im.height, im.width), (SIZE, SIZE));
    }
    assert_eq!((s.image.height, s.image.width), (SIZE, SIZE));
    (s.image.to_u16(), extra("target").expect("target array").to_u16(), extra("mask").map(|m| m.to_u16()))
}

#[test]
fn png_pairs_with_masks() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("in").join(NAME_IN_PATH);
    let (w, h) = (24u32, 20u32);
    let be = |v: &[u16]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    for i in 0..2 {
        write_png(&data.join(format!("src{i}.png")), w, h, png::BitDepth::Sixteen, &be(&source16(w, h, i)));
        write_png(&data.join(format!("tgt{i}.png")), w, h, png::BitDepth::Eight, &target8(w, h, i));
    }
    write_png(&data.join("mask.png"), w, h, png::BitDepth::Eight, &mask8(w, h));
    // Not label maps: a 16-bit value above 255, and a colour PNG.
    let big: Vec<u16> = mask8(w, h).into_iter().map(|v| if v == 2 { 300 } else { u16::from(v) }).collect();
    write_png(&data.join("mask300.png"), w, h, png::BitDepth::Sixteen, &be(&big));
    {
        let f = std::fs::File::create(data.join("mask_rgb.png")).unwrap();
        let mut enc = png::Encoder::new(std::io::BufWriter::new(f), w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let rgb: Vec<u8> = mask8(w, h).into_iter().flat_map(|v| [v, 0, 0]).collect();
        enc.write_header().unwrap().write_image_data(&rgb).unwrap();
    }
    // Transposed dimensions: a mismatch.
    write_png(&data.join("tgt_wrong.png"), h, w, png::BitDepth::Eight, &target8(h, w, 0));
    let csv = dir.path().join("in/pairs.csv");
    let abs_src1 = data.join("src1.png");
    std::fs::write(
        &csv,
        format!(
            "source,target,mask\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/tgt0.png,{NAME_IN_PATH}/mask.png\n\
             {},{NAME_IN_PATH}/tgt1.png,{NAME_IN_PATH}/mask.png\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/tgt_wrong.png,{NAME_IN_PATH}/mask.png\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/gone.png,{NAME_IN_PATH}/mask.png\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/tgt0.png,{NAME_IN_PATH}/mask300.png\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/tgt0.png,{NAME_IN_PATH}/mask_rgb.png\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/tgt0.png\n\
             {NAME_IN_PATH}/src0.png,{NAME_IN_PATH}/tgt0.png,{NAME_IN_PATH}/mask.png\n",
            abs_src1.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, [7u8; 32]).unwrap();
    let o = ingest_pairs(&csv, &out, &key_file, &[]);
    check(&o, "chess-ingest pairs");
    verify(&out);

    let ds = Dataset::open(&out).unwrap();
    assert_eq!(ds.manifest.len(), 2);
    let info = chess_shards::dataset::read_dataset_json(&out).unwrap();
    assert_eq!(info.extra_fields, vec!["target".to_string(), "mask".to_string()]);

    // Each array is the pipeline's output on its own image; the mask keeps its labels.
    let opts = PipelineOptions { size: SIZE, ..PipelineOptions::default() };
    let want_mask: Vec<u16> = resize_labels(&mask8(w, h), h as usize, w as usize, SIZE as usize, Aspect::Stretch)
        .into_iter()
        .map(u16::from)
        .collect();
    let mut seen_classes = std::collections::BTreeSet::new();
    let mut seen_pairs = std::collections::BTreeSet::new();
    for row in ds.manifest.rows() {
        let (img, tgt, mask) = arrays(&out, &row.key);
        let i = (0..2)
            .find(|&i| {
                let v: Vec<i32> = source16(w, h, i).into_iter().map(i32::from).collect();
                pipeline::run(&v, h, w, &PixelSemantics::default(), &opts).pixels == img
            })
            .expect("the source array is the pipeline's output of one of the sources");
        assert!(seen_pairs.insert(i), "two samples from pair {i}");
        let t: Vec<i32> = target8(w, h, i).into_iter().map(i32::from).collect();
        assert_eq!(tgt, pipeline::run(&t, h, w, &PixelSemantics::default(), &opts).pixels, "target of pair {i}");
        let mask = mask.expect("mask array");
        assert_eq!(mask, want_mask);
        seen_classes.extend(mask);
        assert_eq!(row.modality.as_deref(), Some("PNG"));
        assert_eq!(row.patient_id, None);
    }
    assert_eq!(
        seen_classes.into_iter().collect::<Vec<_>>(),
        vec![0, 1, 2],
        "all three classes survive nearest resizing"
    );

    let rej = rejected(&out);
    let by_line: BTreeMap<u64, &str> = rej.iter().map(|(l, c, _)| (*l, c.as_str())).collect();
    assert_eq!(
        by_line,
        BTreeMap::from([
            (4, "dimension_mismatch"),
            (5, "missing_file"),
            (6, "bad_mask"),
            (7, "unsupported_format"),
            (8, "bad_csv_row"),
            (9, "duplicate_row"),
        ]),
        "{rej:?}"
    );
    let (_, _, msg) = rej.iter().find(|r| r.0 == 4).unwrap();
    assert!(msg.contains("tgt_wrong.png") && msg.contains("src0.png") && msg.contains("20×24"), "{msg}");

    let bytes = shareable_bytes(&out);
    for needle in [NAME_IN_PATH, "src0", "tgt0", "mask.png", "pairs.csv", &dir.path().display().to_string()] {
        assert!(!contains(&bytes, needle), "shareable output holds `{needle}`");
    }

    // Keys are keyed: another key gives other keys for the same rows.
    let other_key = dir.path().join("key2");
    std::fs::write(&other_key, [9u8; 32]).unwrap();
    let out2 = dir.path().join("out2");
    check(&ingest_pairs(&csv, &out2, &other_key, &["--bit-depth", "8", "--quiet"]), "chess-ingest pairs (8-bit)");
    verify(&out2);
    let keys = |p: &Path| {
        Dataset::open(p).unwrap().manifest.rows().into_iter().map(|r| r.key).collect::<std::collections::BTreeSet<_>>()
    };
    assert!(keys(&out).is_disjoint(&keys(&out2)));
    // 8-bit: masks keep their class ids in the uint8 dataset.
    let ds2 = Dataset::open(&out2).unwrap();
    for row in ds2.manifest.rows() {
        assert_eq!(row.dtype, "uint8");
        let (_, _, mask) = arrays(&out2, &row.key);
        assert_eq!(mask.unwrap(), want_mask);
    }
}

#[test]
fn dicom_pairs_are_deidentified() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let dir = tempfile::tempdir().unwrap();
    let masks = dir.path().join(NAME_IN_PATH);
    // A 64×64 label map for the 64×64 MR images.
    let m64: Vec<u8> = (0..64 * 64).map(|i| if (i % 64) > 40 && (i / 64) < 20 { 1 } else { 0 }).collect();
    write_png(&masks.join("m.png"), 64, 64, png::BitDepth::Eight, &m64);
    let csv = dir.path().join("pairs.csv");
    let rle = data.join("mr_small_rle.dcm");
    let jpll = data.join("mr_small_jpll.dcm");
    let big = data.join("dfl_jpeg_baseline.dcm");
    // A CR with identifying values (common::Synth: PatientName DOE^JANE, PatientID PAT3),
    // its target, and one with BurnedInAnnotation = YES.
    let cr_src = dir.path().join(NAME_IN_PATH).join("cr_src.dcm");
    let cr_tgt = dir.path().join(NAME_IN_PATH).join("cr_tgt.dcm");
    common::Synth::new("1.2.826.0.1.777.1", 3).write(&cr_src);
    common::Synth::new("1.2.826.0.1.777.2", 10).write(&cr_tgt);
    let burned = dir.path().join(NAME_IN_PATH).join("burned.dcm");
    {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let mut o = dicom_object::open_file(&cr_src).unwrap();
        o.put(DataElement::new(dicom_dictionary_std::tags::BURNED_IN_ANNOTATION, VR::CS, PrimitiveValue::from("YES")));
        o.write_to_file(&burned).unwrap();
    }
    let m_cr: Vec<u8> = (0..80 * 96).map(|i| u8::from(i % 80 < 10)).collect();
    write_png(&masks.join("m_cr.png"), 80, 96, png::BitDepth::Eight, &m_cr);
    std::fs::write(
        &csv,
        format!(
            "source,target,mask\n{},{},{NAME_IN_PATH}/m.png\n{},{},{NAME_IN_PATH}/m.png\n{},{NAME_IN_PATH}/missing.dcm,{NAME_IN_PATH}/m.png\n\
             {NAME_IN_PATH}/cr_src.dcm,{NAME_IN_PATH}/cr_tgt.dcm,{NAME_IN_PATH}/m_cr.png\n\
             {NAME_IN_PATH}/burned.dcm,{NAME_IN_PATH}/cr_tgt.dcm,{NAME_IN_PATH}/m_cr.png\n",
            rle.display(),
            jpll.display(),
            big.display(),
            jpll.display(),
            rle.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("out");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, [3u8; 32]).unwrap();
    let o = ingest_pairs(&csv, &out, &key_file, &[]);
    check(&o, "chess-ingest pairs");
    verify(&out);

    // The key is chess-ingest's: HMAC of the SOPInstanceUID under the key file.
    let obj = chess_ingest::dicom::parse(&std::fs::read(&rle).unwrap()).unwrap();
    let h = chess_ingest::dicom::Header::from_object(&obj);
    let key = Key::from_bytes(vec![3u8; 32]).unwrap();
    let d = chess_ingest::deid::deidentify(&key, &h);
    let ds = Dataset::open(&out).unwrap();
    let rows = ds.manifest.rows();
    assert_eq!(rows.len(), 2);
    let mr = rows.iter().find(|r| r.key == d.key).expect("the MR pair's key is chess-ingest's");
    assert_eq!(mr.patient_id, d.patient_id);
    assert_eq!(mr.modality.as_deref(), Some("MR"));
    // The CR: pseudonymised patient, new study UID, closed-vocabulary fields.
    let cr_obj = chess_ingest::dicom::parse(&std::fs::read(&cr_src).unwrap()).unwrap();
    let cr = chess_ingest::deid::deidentify(&key, &chess_ingest::dicom::Header::from_object(&cr_obj));
    let row = rows.iter().find(|r| r.key == cr.key).expect("the CR pair");
    assert_eq!(row.patient_id.as_deref(), Some(key.patient_pseudonym("PAT3").as_str()));
    assert!(row.study_id.as_deref().unwrap().starts_with("2.25."));
    assert_eq!((row.modality.as_deref(), row.view_position.as_deref()), (Some("CR"), Some("PA")));

    // RLE and JPEG lossless hold the same pixels: source and target arrays are equal,
    // and equal to the pipeline run here on the decoded values.
    let (img, tgt, mask) = arrays(&out, &d.key);
    let stored = chess_ingest::dicom::decode(&obj, &h).unwrap();
    let opts = PipelineOptions { size: SIZE, bit_depth: BitDepth::U16, ..PipelineOptions::default() };
    let want = pipeline::run(&stored.values, 64, 64, &PixelSemantics::default(), &opts).pixels;
    assert_eq!(img, want);
    assert_eq!(tgt, want);
    let want_mask: Vec<u16> =
        resize_labels(&m64, 64, 64, SIZE as usize, Aspect::Stretch).into_iter().map(u16::from).collect();
    assert!(want_mask.contains(&1) && want_mask.contains(&0));
    assert_eq!(mask.unwrap(), want_mask);

    let rej = rejected(&out);
    let by_line: BTreeMap<u64, &str> = rej.iter().map(|(l, c, _)| (*l, c.as_str())).collect();
    assert_eq!(
        by_line,
        BTreeMap::from([(3, "dimension_mismatch"), (4, "missing_file"), (6, "burned_in_annotation")]),
        "{rej:?}"
    );

    // Nothing identifying: no paths, no original UIDs, no patient name or ID.
    let bytes = shareable_bytes(&out);
    let mut needles =
        vec![NAME_IN_PATH.to_string(), "mr_small".into(), dir.path().display().to_string(), h.sop_instance_uid.clone()];
    needles.extend(
        [h.study_instance_uid.clone(), h.series_instance_uid.clone(), h.patient_id.clone()]
            .into_iter()
            .filter(|s| !s.is_empty()),
    );
    needles.extend(
        ["CompressedSamples", "DOE^JANE", "PAT3", "1.2.826.0.1.777", "1.2.3.4.3", "1.2.3.5.3", "cr_src", "burned.dcm"]
            .map(String::from),
    );
    for needle in &needles {
        assert!(!contains(&bytes, needle), "shareable output holds `{needle}`");
    }
}

/// Mask resizing equals PyTorch's `interpolate(mode="nearest-exact")`
/// (after `np.pad` with zeros to a centred square for `--aspect pad`).
#[test]
fn label_resize_equals_torch_nearest_exact() {
    let cases = [(20usize, 24usize, 16usize), (37, 64, 33), (2, 1, 33), (64, 37, 17), (300, 211, 64), (5, 9, 5)];
    let mut script = String::from(
        "import sys, numpy as np, torch\nimport torch.nn.functional as F\n\
         for line in sys.stdin:\n    h, w, s, pad, *v = map(int, line.split())\n    \
         a = np.array(v, dtype=np.float32).reshape(h, w)\n    \
         if pad:\n        n = max(h, w)\n        a = np.pad(a, (((n - h) // 2, n - h - (n - h) // 2), ((n - w) // 2, n - w - (n - w) // 2)))\n    \
         r = F.interpolate(torch.from_numpy(a)[None, None], size=(s, s), mode='nearest-exact')[0, 0]\n    \
         print(' '.join(str(int(x)) for x in r.flatten().tolist()))\n",
    );
    script.push('\n');
    let mut input = String::new();
    let mut want_rust = Vec::new();
    for &(h, w, s) in &cases {
        let labels: Vec<u8> = (0..h * w).map(|i| ((i * 7 + i / w * 13) % 5) as u8).collect();
        for aspect in [Aspect::Stretch, Aspect::Pad] {
            let pad = u8::from(aspect == Aspect::Pad);
            input.push_str(&format!("{h} {w} {s} {pad}"));
            for v in &labels {
                input.push_str(&format!(" {v}"));
            }
            input.push('\n');
            want_rust.push(resize_labels(&labels, h, w, s, aspect));
        }
    }
    let mut child = Command::new(common::python())
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), input.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    check(&o, "python (torch nearest-exact)");
    let lines: Vec<Vec<u8>> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(lines.len(), want_rust.len());
    for (i, (torch, ours)) in lines.iter().zip(&want_rust).enumerate() {
        assert_eq!(torch, ours, "case {i}");
    }
}

#[test]
fn bad_header_is_a_fatal_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pairs.csv");
    std::fs::write(&csv, "image,target\na.png,b.png\n").unwrap();
    let o = ingest_pairs(&csv, &dir.path().join("out"), &dir.path().join("key"), &[]);
    assert_eq!(o.status.code(), Some(3), "a wrong header is an invalid input");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pairs.csv") && err.contains("source,target"), "{err}");
}

#[test]
fn interrupted_import_resumes() {
    // Simulate a crash after the first shard: remove the finished outputs and
    // the later shards, stage the first shard's rows, then re-run.
    let dir = tempfile::tempdir().unwrap();
    let (w, h) = (12u32, 10u32);
    let be = |v: &[u16]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
    let mut csv_text = String::from("source,target\n");
    for i in 0..5 {
        write_png(&dir.path().join(format!("s{i}.png")), w, h, png::BitDepth::Sixteen, &be(&source16(w, h, i)));
        write_png(&dir.path().join(format!("t{i}.png")), w, h, png::BitDepth::Eight, &target8(w, h, i));
        csv_text.push_str(&format!("s{i}.png,t{i}.png\n"));
    }
    csv_text.push_str("s0.png,absent.png\n");
    let csv = dir.path().join("pairs.csv");
    std::fs::write(&csv, csv_text).unwrap();
    let out = dir.path().join("out");
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, [5u8; 32]).unwrap();
    check(&ingest_pairs(&csv, &out, &key_file, &["--shard-samples", "2", "-q"]), "first import");
    let m = chess_shards::Manifest::open(&out.join("manifest.parquet")).unwrap();
    let clean: BTreeMap<String, String> = m.rows().into_iter().map(|r| (r.key, r.pixel_hash)).collect();
    assert_eq!(clean.len(), 5);
    let first: Vec<usize> = (0..m.len()).filter(|&i| m.view().shard(i).ends_with("pairs-000000.tar")).collect();
    assert_eq!(first, vec![0, 1]);
    let staged = out.join(".staging");
    std::fs::create_dir_all(&staged).unwrap();
    chess_shards::manifest::write_parquet(
        &staged.join("pairs-000000.parquet"),
        &m.schema,
        &[m.batch.slice(0, 2)],
        None,
    )
    .unwrap();
    std::fs::remove_file(out.join("dataset.json")).unwrap();
    std::fs::remove_file(out.join("manifest.parquet")).unwrap();
    for e in std::fs::read_dir(out.join("shards")).unwrap() {
        let p = e.unwrap().path();
        if !p.ends_with("pairs-000000.tar") {
            std::fs::remove_file(p).unwrap();
        }
    }
    // Other options, or another key: refused, nothing changed.
    let o = ingest_pairs(&csv, &out, &key_file, &["--shard-samples", "2", "--clip-percentile", "98"]);
    assert_eq!(o.status.code(), Some(2), "options differing from the interrupted run are a usage error");
    assert!(String::from_utf8_lossy(&o.stderr).contains("different options"), "{}", String::from_utf8_lossy(&o.stderr));
    let other_key = dir.path().join("key2");
    std::fs::write(&other_key, [6u8; 32]).unwrap();
    let o = ingest_pairs(&csv, &out, &other_key, &["--shard-samples", "2"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("key_fingerprint"), "{}", String::from_utf8_lossy(&o.stderr));

    let o = ingest_pairs(&csv, &out, &key_file, &["--shard-samples", "2"]);
    check(&o, "resumed import");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("6 rows: 5 samples") && stdout.contains("(resumed; 3 written now)"), "{stdout}");
    verify(&out);
    let resumed: BTreeMap<String, String> = chess_shards::Manifest::open(&out.join("manifest.parquet"))
        .unwrap()
        .rows()
        .into_iter()
        .map(|r| (r.key, r.pixel_hash))
        .collect();
    assert_eq!(resumed, clean);
    assert_eq!(rejected(&out).iter().map(|r| (r.0, r.1.as_str())).collect::<Vec<_>>(), vec![(7, "missing_file")]);
    // The same command on the finished dataset does nothing (exit 0); other
    // options are a usage error (exit 2) instead of a silent success.
    let o = ingest_pairs(&csv, &out, &key_file, &["--shard-samples", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to do"));
    let o = ingest_pairs(&csv, &out, &key_file, &["--shard-samples", "2", "--bit-depth", "8"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("finished pairs import made with different options"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
