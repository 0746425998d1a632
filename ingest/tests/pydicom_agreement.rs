//! Stored values and Modality-LUT output agree exactly with pydicom on real
//! files across transfer syntaxes; undecodable syntaxes are rejected with a
//! reason.
//!
//! Tolerances: stored values are integers and must be equal, except lossy
//! baseline JPEG, where the standard lets IDCTs differ by one grey step.
//! The Modality LUT output is ours rounded once to f32 from the same f64
//! `slope·x + intercept` pydicom computes (IEEE mul and add, the same on every
//! CPU), or an integer LUT entry: it is within half an f32 ulp of pydicom's
//! float64, i.e. a relative error of at most 2⁻²⁴; the bound is one ulp
//! (`f32::EPSILON` = 2⁻²³), relative to `max(|value|, 1)`.

use crate::common;
use chess_ingest::dicom::{self, Header};
use chess_ingest::pipeline::{self, PixelSemantics};
use chess_ingest::reject::Reason;
use std::path::PathBuf;
use std::process::Command;

fn read_i32(p: &std::path::Path) -> Vec<i32> {
    std::fs::read(p).unwrap().chunks_exact(4).map(|c| i32::from_le_bytes(c.try_into().unwrap())).collect()
}
fn read_f64(p: &std::path::Path) -> Vec<f64> {
    std::fs::read(p).unwrap().chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

const LOSSY_BASELINE: &str = "1.2.840.10008.1.2.4.50";
const JPEG_EXTENDED: &str = "1.2.840.10008.1.2.4.51";
const HTJ2K_LOSSY: &str = "1.2.840.10008.1.2.4.203";

#[test]
fn stored_values_equal_pydicom_across_syntaxes() {
    let tmp = tempfile::tempdir().unwrap();
    let files: Vec<(PathBuf, &str)> = vec![
        (common::pydicom_test_file("MR_small_implicit.dcm"), "1.2.840.10008.1.2"),
        (common::pydicom_test_file("MR_small.dcm"), "1.2.840.10008.1.2.1"),
        (common::pydicom_test_file("MR_small_bigendian.dcm"), "1.2.840.10008.1.2.2"),
        (common::pydicom_test_file("image_dfl.dcm"), "1.2.840.10008.1.2.1.99"),
        (common::pydicom_test_file("CT_small.dcm"), "1.2.840.10008.1.2.1"),
        (common::pydicom_test_file("MR_small_RLE.dcm"), "1.2.840.10008.1.2.5"),
        (common::pydicom_test_file("JPEGLSNearLossless_16.dcm"), "1.2.840.10008.1.2.4.81"),
        (common::pydicom_test_file("693_J2KI.dcm"), "1.2.840.10008.1.2.4.91"),
        (common::fixture("dfl_jpeg_baseline.dcm"), "1.2.840.10008.1.2.4.50"),
        (common::fixture("mr_small_jpll.dcm"), "1.2.840.10008.1.2.4.70"),
        (common::fixture("mr_small_jls.dcm"), "1.2.840.10008.1.2.4.80"),
        (common::fixture("mr_small_j2k.dcm"), "1.2.840.10008.1.2.4.90"),
        (common::pydicom_data_file("RG1_UNCR.dcm"), "1.2.840.10008.1.2.1"),
        (common::pydicom_data_file("RG1_J2KR.dcm"), "1.2.840.10008.1.2.4.90"),
        (common::pydicom_data_file("mlut_18.dcm"), "1.2.840.10008.1.2.1"),
        (common::wg04("RG1_JLSN.dcm"), "1.2.840.10008.1.2.4.81"),
        (common::wg04("RG2_JPLL.dcm"), "1.2.840.10008.1.2.4.70"),
        (common::wg04("RG2_JLSL.dcm"), "1.2.840.10008.1.2.4.80"),
        (common::wg04("RG3_RLE.dcm"), "1.2.840.10008.1.2.5"),
        (common::wg04("CT1_JPLL.dcm"), "1.2.840.10008.1.2.4.70"),
        (common::wg04_unc("RG3_UNC.zst", tmp.path()), "1.2.840.10008.1.2.1"),
        // 12-bit lossy JPEG (libjpeg-turbo here, pylibjpeg-libjpeg there).
        (common::pydicom_test_file("JPGExtended.dcm"), JPEG_EXTENDED),
        (common::wg04("RG2_JPLY.dcm"), JPEG_EXTENDED),
        (common::wg04("RG3_JPLY.dcm"), JPEG_EXTENDED),
        // HTJ2K written by OpenJPH (tests/data/make_htj2k_fixtures.py).
        (common::fixture("htj2k_lossless.dcm"), "1.2.840.10008.1.2.4.201"),
        (common::fixture("htj2k_rpcl.dcm"), "1.2.840.10008.1.2.4.202"),
        (common::fixture("htj2k_lossy.dcm"), HTJ2K_LOSSY),
    ];
    // What pydicom reads: the WG04 JPLY files end their scan header with
    // Se = 0, which libjpeg (pylibjpeg-libjpeg) refuses for a sequential
    // process ("scan stop must be 63") and IJG-derived decoders (dcmtk,
    // libjpeg-turbo) ignore; pydicom gets a copy with Se = 63, nothing else
    // changed, we decode the original.
    let reference: Vec<PathBuf> = files
        .iter()
        .map(|(p, _)| {
            let name = p.file_name().unwrap().to_string_lossy();
            if !name.ends_with("_JPLY.dcm") {
                return p.clone();
            }
            let mut b = std::fs::read(p).unwrap();
            let sos = b.windows(4).position(|w| w == [0xFF, 0xDA, 0x00, 0x08]).expect("one-component SOS");
            assert_eq!(b[sos + 8], 0, "{name}: Se");
            b[sos + 8] = 63;
            let fixed = tmp.path().join(format!("Se63_{name}"));
            std::fs::write(&fixed, b).unwrap();
            fixed
        })
        .collect();
    let out = tmp.path().join("ref");
    std::fs::create_dir(&out).unwrap();
    let script = common::repo_root().join("scripts/python/ingest_pydicom_reference.py");
    let st = Command::new(common::python()).arg(&script).arg(&out).args(&reference).status().unwrap();
    assert!(st.success());
    let status: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("status.json")).unwrap()).unwrap();
    let mut syntaxes = std::collections::BTreeSet::new();
    for (i, (path, ts)) in files.iter().enumerate() {
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(status[i.to_string()], "ok", "pydicom could not decode {name}");
        let bytes = std::fs::read(path).unwrap();
        let obj = dicom::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let h = Header::from_object(&obj);
        assert_eq!(&h.transfer_syntax, ts, "{name}");
        let stored = dicom::decode(&obj, &h).unwrap_or_else(|e| panic!("{name}: {e}"));
        let reference = read_i32(&out.join(format!("{i}.stored")));
        assert_eq!(stored.values.len(), reference.len(), "{name}");
        let bad = stored.values.iter().zip(&reference).filter(|(a, b)| a != b).count();
        let max_diff = stored.values.iter().zip(&reference).map(|(a, b)| (a - b).abs()).max().unwrap_or(0);
        if [LOSSY_BASELINE, JPEG_EXTENDED, HTJ2K_LOSSY].contains(ts) {
            // Lossy JPEG: the standard allows IDCTs to differ by one step
            // (jpeg-decoder or libjpeg-turbo vs libjpeg); lossy HTJ2K's
            // irreversible 9/7 wavelet is floating point and rounds once per
            // sample (OpenJPEG builds may differ there by one). Everything
            // else is exact.
            assert!(max_diff <= 1, "{name}: stored values differ from pydicom by up to {max_diff}");
            eprintln!(
                "{name} ({ts}): {bad} of {} stored values differ from pydicom, by at most {max_diff}",
                reference.len()
            );
        } else {
            assert_eq!(bad, 0, "{name}: {bad} stored values differ from pydicom (up to {max_diff})");
        }
        let sem = PixelSemantics {
            monochrome1: false,
            rescale_slope: h.rescale_slope,
            rescale_intercept: h.rescale_intercept,
            modality_lut: h.modality_lut.as_ref(),
        };
        // The LUT step on pydicom's stored values, so lossy IDCT noise stays out.
        let ours = pipeline::modality(&reference, &sem);
        let theirs = read_f64(&out.join(format!("{i}.modality")));
        let worst = ours.iter().zip(&theirs).map(|(a, b)| (*a as f64 - b).abs() / b.abs().max(1.0)).fold(0.0, f64::max);
        assert!(worst <= f32::EPSILON as f64, "{name}: modality LUT output differs from pydicom by {worst}");
        syntaxes.insert(*ts);
    }
    assert!(syntaxes.len() >= 15, "{syntaxes:?}");
}

#[test]
fn an_unsupported_transfer_syntax_is_rejected_naming_its_uid() {
    // JPEG 2000 Part 2 stays a parse of the header and an honest reject
    // when no decoder is registered; a made-up UID likewise.
    let mut bytes = std::fs::read(common::fixture("mr_small_jpll.dcm")).unwrap();
    let at = bytes.windows(22).position(|w| w == b"1.2.840.10008.1.2.4.70").unwrap();
    bytes[at..at + 22].copy_from_slice(b"1.2.840.10008.1.2.4.99");
    let obj = dicom::parse(&bytes).unwrap();
    let h = Header::from_object(&obj);
    let err = dicom::decode(&obj, &h).unwrap_err();
    assert_eq!(err.reason, Reason::UnsupportedTransferSyntax, "{err}");
    assert!(err.message.contains("1.2.840.10008.1.2.4.99"), "{err}");
}
