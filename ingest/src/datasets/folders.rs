//! `chess-ingest folders`: an ImageFolder-style tree (`ROOT/<class>/FILE`,
//! e.g. the CheSS repository's `clipped/png/512/<class>/`) with the class
//! folder's name as the Utf8 label column `class`; with `--flat`, a tree of
//! unlabelled images at any depth (pretraining data), without a class.
//!
//! Every file except hidden ones (`.name`) is one item, in path order:
//! `.png`, `.jpg`/`.jpeg` are decoded as images, `.dcm`/`.dicom` go
//! through the DICOM path (decode, BurnedInAnnotation check,
//! de-identification with keyed pseudonyms as `chess-ingest dicom`);
//! another extension is rejected (`unsupported_format`), and so is an image
//! outside a class folder in the class layout (`not_in_class_folder`).
//! Keys are `<name>_<class>_<file stem>` (`<name>_<path without extension>`
//! for a flat tree), so the folder and file names of the tree are kept: use
//! it for public or already pseudonymised trees; a DICOM file's key is its
//! keyed pseudonym. `--split` sets the `split` of every sample (a tree per
//! split is imported once per split and merged).

use std::path::{Path, PathBuf};

use chess_shards::{LabelValue, SampleFields};

use super::table::sample_key;
use super::{DicomIds, Format, Item, Plan, Rejected, Release, Result, Vocabulary};
use crate::error::IngestError;
use crate::image::UNSUPPORTED_FORMAT;

/// Reject code: an image directly under ROOT or deeper than `ROOT/<class>/FILE`.
pub const NOT_IN_CLASS_FOLDER: &str = "not_in_class_folder";

/// The importer's options.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A flat tree: no class column, files at any depth.
    pub flat: bool,
    /// The `source_dataset` value and key prefix (default: ROOT's folder name).
    pub name: Option<String>,
    /// The split of every sample.
    pub split: Option<String>,
}

fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "png" | "jpg" | "jpeg" => Some(Format::Image),
        "dcm" | "dicom" => Some(Format::Dicom),
        _ => None,
    }
}

/// Reads the tree at `root` into a plan.
pub fn plan(root: &Path, opts: &Options) -> Result<Plan> {
    let root = super::root_folder(root, "the tree's top folder (ROOT/<class>/*.png, or any tree with --flat)")?;
    let name =
        opts.name.clone().unwrap_or_else(|| root.file_name().and_then(|n| n.to_str()).unwrap_or("folders").to_string());
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    let walk = walkdir::WalkDir::new(&root).min_depth(1).sort_by_file_name().follow_links(true);
    for entry in walk.into_iter().filter_entry(|e| !e.file_name().to_string_lossy().starts_with('.')) {
        let entry = entry.map_err(|e| IngestError::ReadInput {
            path: e.path().map_or(root.clone(), Path::to_path_buf),
            source: e.into_io_error().unwrap_or_else(|| std::io::Error::other("file system loop")),
        })?;
        if entry.file_type().is_file() {
            files.push((entry.path().to_path_buf(), entry.depth()));
        }
    }
    if !opts.flat && !files.is_empty() && files.iter().all(|(_, d)| *d == 1) {
        return Err(IngestError::Layout {
            path: root,
            message: "no class folders (every file is directly in ROOT): give --flat for an unlabelled tree, or ROOT/<class>/FILE".into(),
        });
    }
    let mut classes: Vec<String> = Vec::new();
    let mut items = Vec::with_capacity(files.len());
    for (path, depth) in files {
        let rel = path.strip_prefix(&root).unwrap_or(&path);
        let source = rel.to_string_lossy().into_owned();
        let reject = |code: &str, message: String| Rejected { source: source.clone(), code: code.into(), message };
        let Some(format) = format_of(&path) else {
            items.push(Err(reject(UNSUPPORTED_FORMAT, format!("{source}: not .png, .jpg, .jpeg, .dcm or .dicom"))));
            continue;
        };
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_string();
        let (key, labels) = if opts.flat {
            let no_ext = rel.with_extension("");
            (sample_key(&[&name, &no_ext.to_string_lossy()]), Vec::new())
        } else {
            if depth != 2 {
                items.push(Err(reject(
                    NOT_IN_CLASS_FOLDER,
                    format!("{source}: not in a class folder (ROOT/<class>/FILE); give --flat for an unlabelled tree"),
                )));
                continue;
            }
            let class = rel.iter().next().and_then(|c| c.to_str()).unwrap_or_default().to_string();
            if !classes.contains(&class) {
                classes.push(class.clone());
            }
            (sample_key(&[&name, &class, &stem]), vec![LabelValue::Str(class)])
        };
        let fields = SampleFields { split: opts.split.clone(), labels, ..SampleFields::default() };
        items.push(Ok(Item { source: source.clone(), place: source, file: path, format, key, fields }));
    }
    let columns = if opts.flat { Vec::new() } else { vec![super::text_column("class")] };
    Ok(Plan {
        release: Release::Folders,
        name: name.clone(),
        vocabulary: Vocabulary::Classes,
        columns,
        boxes: None,
        items,
        inputs: Vec::new(),
        mapping: serde_json::json!({
            "class": if opts.flat { "none (flat tree)".to_string() } else { format!("the class folder's name ({} classes: {})", classes.len(), classes.join(", ")) },
            "key": "PNG/JPEG: <name>_<class>_<file stem> (flat: <name>_<relative path>); DICOM: keyed pseudonym of its SOPInstanceUID",
            "patient_id": "null for PNG/JPEG; DICOM: keyed pseudonym of PatientID",
            "split": opts.split.clone().map_or("null".to_string(), |s| format!("{s} (--split)")),
            "modality": "PNG or JPEG for images; the DICOM Modality otherwise",
        }),
        deid: format!(
            "PNG/JPEG: none applied (folder and file names are kept in keys: public or pseudonymised trees only); DICOM: {}",
            crate::deid::DEID_METHOD
        ),
        dicom_ids: DicomIds::Pseudonyms,
        options: serde_json::json!({ "flat": opts.flat, "split": opts.split, "name": name }),
    })
}
