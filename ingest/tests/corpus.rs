//! The corpus test (issue 14, item 4): every file of pydicom's test data,
//! of PyPI pydicom-data and of the WG04 folder, read by the library as the
//! importer reads it, with the modalities widened to whatever the file
//! says. Every file that pydicom decodes as a single-frame grayscale image
//! must either be decoded to pydicom's stored values or be rejected for a
//! named selection reason (body part, secondary capture, burned-in
//! annotation, presentation state, or BitsAllocated 1 or 32, which the
//! pipeline does not take); any other outcome is listed as a failure with
//! the file's name. Files the selection rejects are decoded and compared
//! all the same. Every other file must end in an outcome (a sample or a
//! reject), never a panic.
//!
//! Tolerance: stored values are integers and equal, except lossy JPEG and
//! lossy HTJ2K (IDCT / irreversible-wavelet rounding: one stored value,
//! see `pydicom_agreement`).

use std::path::PathBuf;
use std::process::Command;

use crate::common;
use chess_ingest::dicom::{self, read, Header};
use chess_ingest::reject::{Reason, Reject};
use chess_ingest::select::Selection;
use rayon::prelude::*;

const LOSSY: [&str; 3] = ["1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.203"];

fn files_under(dir: PathBuf) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    v.sort();
    v
}

/// What the library makes of one file, as the importer would; a file the
/// selection rejects is decoded too (its values are checked all the same).
enum Ours {
    Decoded { values: Vec<i32>, transfer_syntax: String, bits_allocated: u16, selection: Option<Reject> },
    Rejected { reject: Reject, bits_allocated: u16 },
}

fn ours(bytes: &[u8]) -> Ours {
    let r = match read::read(bytes) {
        Ok(r) => r,
        Err(reject) => return Ours::Rejected { reject, bits_allocated: 0 },
    };
    let h = Header::from_object(&r.obj);
    let rejected = |reject| Ours::Rejected { reject, bits_allocated: h.bits_allocated };
    let widened = Selection { modalities: vec![h.modality.clone()], views: None };
    let selection = widened.check(&h).err();
    if selection.is_none() && h.sop_instance_uid.is_empty() {
        return rejected(Reject::new(Reason::MissingSopInstanceUid, "no SOPInstanceUID"));
    }
    match dicom::decode(&r.obj, &h) {
        Ok(s) => Ours::Decoded {
            values: s.values,
            transfer_syntax: h.transfer_syntax.clone(),
            bits_allocated: h.bits_allocated,
            selection,
        },
        Err(e) => rejected(selection.unwrap_or(e)),
    }
}

/// A rejection allowed for an image pydicom decodes.
fn named_selection_reason(r: &Reject, bits_allocated: u16) -> bool {
    match r.reason {
        Reason::BodyPart | Reason::SecondaryCapture | Reason::BurnedInAnnotation | Reason::PresentationState => true,
        Reason::BadDimensions => matches!(bits_allocated, 1 | 32),
        _ => false,
    }
}

#[test]
fn every_file_pydicom_decodes_as_grayscale_is_ingested_equal_or_rejected_for_a_named_reason() {
    let mut files = files_under(common::pydicom_test_file("CT_small.dcm").parent().unwrap().to_path_buf());
    files.extend(files_under(common::pydicom_data_file("RG1_UNCR.dcm").parent().unwrap().to_path_buf()));
    files.extend(files_under(common::wg04("RG2_JPLY.dcm").parent().unwrap().to_path_buf()));
    assert!(files.len() > 200, "{} files", files.len());

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ref");
    std::fs::create_dir(&out).unwrap();
    let script = common::repo_root().join("scripts/python/ingest_pydicom_reference.py");
    let st = Command::new(common::python())
        .arg(&script)
        .arg("--grayscale-only")
        .arg(&out)
        .args(&files)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let status: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("status.json")).unwrap()).unwrap();

    let results: Vec<(String, Result<String, String>)> = files
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let name = path.strip_prefix(path.parent().unwrap().parent().unwrap()).unwrap().display().to_string();
            let bytes = std::fs::read(path).unwrap();
            let got = dicom::quiet::catch(|| ours(&bytes));
            let theirs = status[i.to_string()].as_str().unwrap_or("missing").to_string();
            let verdict = match got {
                Err(p) => Err(format!("panicked: {p}")),
                Ok(o) if theirs != "ok" => Ok(match o {
                    Ours::Decoded { selection: Some(r), .. } => format!("{}; pydicom: {theirs}", r.reason),
                    Ours::Decoded { .. } => format!("decoded; pydicom: {theirs}"),
                    Ours::Rejected { reject, .. } => format!("{}; pydicom: {theirs}", reject.reason),
                }),
                Ok(Ours::Rejected { reject, bits_allocated }) if named_selection_reason(&reject, bits_allocated) => {
                    Ok(format!("{} (named reason)", reject.reason))
                }
                Ok(Ours::Rejected { reject, .. }) => {
                    Err(format!("rejected {}: {} (pydicom decodes it)", reject.reason, reject.message))
                }
                Ok(Ours::Decoded { values, transfer_syntax, bits_allocated, selection }) => {
                    let reference: Vec<i32> = std::fs::read(out.join(format!("{i}.stored")))
                        .unwrap()
                        .chunks_exact(4)
                        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    let diff = values.iter().zip(&reference).map(|(a, b)| (a - b).abs()).max().unwrap_or(0);
                    let tolerance = if LOSSY.contains(&transfer_syntax.as_str()) { 1 } else { 0 };
                    if values.len() != reference.len() {
                        Err(format!("{} values, pydicom {}", values.len(), reference.len()))
                    } else if diff > tolerance {
                        Err(format!("stored values differ from pydicom by up to {diff} ({transfer_syntax})"))
                    } else if matches!(bits_allocated, 1 | 32) {
                        Err(format!("BitsAllocated {bits_allocated} decoded"))
                    } else if let Some(r) = selection.as_ref().filter(|r| !named_selection_reason(r, bits_allocated)) {
                        Err(format!("rejected {}: {} (pydicom decodes it)", r.reason, r.message))
                    } else {
                        let why = selection.map(|r| format!(", then {} (named reason)", r.reason)).unwrap_or_default();
                        Ok(format!("equal ({transfer_syntax}, max |diff| {diff}){why}"))
                    }
                }
            };
            (name, verdict)
        })
        .collect();
    if std::env::var_os("CHESS_CORPUS_LIST").is_some() {
        for (n, v) in &results {
            eprintln!("{n}: {v:?}");
        }
    }
    let failures: Vec<String> =
        results.iter().filter_map(|(n, v)| v.as_ref().err().map(|e| format!("{n}: {e}"))).collect();
    let equal = results.iter().filter(|(_, v)| v.as_ref().is_ok_and(|s| s.starts_with("equal"))).count();
    eprintln!("corpus: {} files, {equal} decoded equal to pydicom, {} failures", results.len(), failures.len());
    assert!(failures.is_empty(), "{} disagreements:\n{}", failures.len(), failures.join("\n"));
    assert!(equal >= 40, "only {equal} files decoded equal to pydicom");
}
