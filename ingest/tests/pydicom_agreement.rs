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
    ];
    let out = tmp.path().join("ref");
    std::fs::create_dir(&out).unwrap();
    let script = common::repo_root().join("scripts/python/ingest_pydicom_reference.py");
    let st = Command::new(common::python()).arg(&script).arg(&out).args(files.iter().map(|f| &f.0)).status().unwrap();
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
        if *ts == LOSSY_BASELINE {
            // Lossy JPEG: the standard allows IDCTs to differ by one step
            // (jpeg-decoder vs libjpeg-turbo); everything else is exact.
            assert!(max_diff <= 1, "{name}: stored values differ from pydicom by up to {max_diff}");
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
    assert!(syntaxes.len() >= 11, "{syntaxes:?}");
}

#[test]
fn twelve_bit_lossy_jpeg_is_rejected_with_a_reason() {
    let bytes = std::fs::read(common::wg04("RG2_JPLY.dcm")).unwrap();
    let obj = dicom::parse(&bytes).unwrap();
    let h = Header::from_object(&obj);
    let err = dicom::decode(&obj, &h).unwrap_err();
    assert!(matches!(err.reason, Reason::DecodeError | Reason::UnsupportedTransferSyntax), "{err}");
}
