//! `verify`: every manifest row resolves to its bytes and hash, and (for a
//! dataset directory) every shard member is in the manifest.
//!
//! Shards are streamed once each, in parallel; each problem found names the
//! shard and the sample key it concerns.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chess_schemas::layout;
use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::Result;
use crate::image::{pixel_hash, NpyZstDecoder};
use crate::manifest::ManifestRow;
use crate::reader::{decode_sample, ShardReader};

/// One mismatch between the manifest and the shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub shard: String,
    /// The sample key, when the problem concerns one sample.
    pub key: Option<String>,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(f, "{}: {key}: {}", self.shard, self.what),
            None => write!(f, "{}: {}", self.shard, self.what),
        }
    }
}

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub shards: u64,
    pub samples: u64,
    pub bytes: u64,
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

fn check_sample(row: &ManifestRow, raw: &crate::RawSample, shard: &str, decoder: &mut NpyZstDecoder) -> Vec<String> {
    let mut bad = Vec::new();
    let Some(main) = raw.member(layout::IMAGE_SUFFIX) else {
        return vec!["has no .npy.zst member".into()];
    };
    if main.data_offset != row.offset || main.data.len() as u64 != row.size {
        bad.push(format!(
            "image member is at {}+{}, the manifest says {}+{}",
            main.data_offset,
            main.data.len(),
            row.offset,
            row.size
        ));
    }
    if raw.header_offset() != row.sample_offset || raw.span() != row.sample_size {
        bad.push(format!(
            "sample spans {}+{}, the manifest says {}+{}",
            raw.header_offset(),
            raw.span(),
            row.sample_offset,
            row.sample_size
        ));
    }
    let decoded = match decode_sample(raw, shard, decoder) {
        Ok(d) => d,
        Err(e) => {
            bad.push(e.to_string());
            return bad;
        }
    };
    let image = &decoded.image;
    if (image.height, image.width, image.dtype.name()) != (row.height, row.width, row.dtype.as_str()) {
        bad.push(format!(
            "decoded {}x{} {}, the manifest says {}x{} {}",
            image.height, image.width, image.dtype, row.height, row.width, row.dtype
        ));
    }
    let hash = pixel_hash(image);
    if hash != row.pixel_hash {
        bad.push(format!("pixel hash {hash} differs from the manifest's {}", row.pixel_hash));
    }
    let mut expected_extras: Vec<&str> = row.extra_field_names();
    let mut found_extras: Vec<&str> = decoded.extras.iter().map(|(f, _)| f.as_str()).collect();
    expected_extras.sort();
    found_extras.sort();
    if expected_extras != found_extras {
        bad.push(format!("extra arrays {found_extras:?}, the manifest says {expected_extras:?}"));
    }
    match decoded.meta {
        Some(meta) if meta.key != row.key || meta.pixel_hash != row.pixel_hash => {
            bad.push("its .json disagrees with the manifest (key or pixel_hash)".into())
        }
        Some(_) => {}
        None => bad.push("has no .json member".into()),
    }
    for (suffix, _) in &raw.members {
        if suffix != layout::JSON_SUFFIX && !suffix.ends_with(layout::IMAGE_SUFFIX) {
            bad.push(format!("unexpected member {}.{suffix}", raw.key));
        }
    }
    bad
}

/// Verifies a dataset (or a manifest and the shards it names).
/// `progress` is called with the number of samples checked so far.
pub fn verify(ds: &Dataset, progress: &(dyn Fn(u64) + Sync)) -> Result<VerifyReport> {
    // Rows stay columnar; one is materialised only while its sample is checked.
    let view = ds.manifest.view();
    let n = ds.manifest.len();
    let is_dataset_dir = ds.info.is_some() && ds.manifest.path == ds.root.join(layout::MANIFEST);
    let mut problems = Vec::new();

    // Key -> its first row.
    let mut by_key: HashMap<&str, usize> = HashMap::with_capacity(n);
    for i in 0..n {
        // Training manifests may repeat samples on purpose (class balancing).
        match by_key.entry(view.key(i)) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(_) if is_dataset_dir => problems.push(Problem {
                shard: view.shard(i).to_string(),
                key: Some(view.key(i).to_string()),
                what: "duplicate key in the manifest".into(),
            }),
            std::collections::hash_map::Entry::Occupied(_) => {}
        }
    }
    // Whether the sample of a key's first row was found in that row's shard.
    let found: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(false)).collect();
    let mut shards: Vec<String> = ds.shards();
    if is_dataset_dir {
        // Shard files the manifest does not name are problems too.
        let dir = ds.root.join(layout::SHARDS_DIR);
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let rel = format!("{}/{name}", layout::SHARDS_DIR);
                if name.ends_with(".tar") && !shards.contains(&rel) {
                    shards.push(rel);
                }
            }
        }
    }
    let counter = AtomicU64::new(0);
    let per_shard: Vec<(u64, u64, Vec<Problem>)> = shards
        .par_iter()
        .map(|shard| {
            let mut problems = Vec::new();
            let mut samples = 0u64;
            let problem =
                |key: Option<&str>, what: String| Problem { shard: shard.clone(), key: key.map(str::to_string), what };
            let path = match ds.shard_path(shard) {
                Ok(p) => p,
                Err(e) => return (0, 0, vec![problem(None, e.to_string())]),
            };
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => return (0, 0, vec![problem(None, format!("cannot open {}: {e}", path.display()))]),
            };
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut decoder = NpyZstDecoder::new();
            for raw in ShardReader::new(BufReader::with_capacity(1 << 20, file), shard.clone()) {
                let raw = match raw {
                    Ok(r) => r,
                    Err(e) => {
                        problems.push(problem(None, e.to_string()));
                        break;
                    }
                };
                match by_key.get(raw.key.as_str()) {
                    Some(&i) if view.shard(i) == shard => {
                        samples += 1;
                        progress(counter.fetch_add(1, Ordering::Relaxed) + 1);
                        for what in check_sample(&view.row(i), &raw, shard, &mut decoder) {
                            problems.push(problem(Some(&raw.key), what));
                        }
                        if found[i].swap(true, Ordering::Relaxed) {
                            problems.push(problem(Some(&raw.key), "appears twice in the shard".into()));
                        }
                    }
                    Some(&i) => {
                        if is_dataset_dir {
                            problems.push(problem(
                                Some(&raw.key),
                                format!("is also in this shard, the manifest places it in {}", view.shard(i)),
                            ));
                        }
                    }
                    None => {
                        if is_dataset_dir {
                            problems.push(problem(Some(&raw.key), "is in the shard but not in the manifest".into()));
                        }
                    }
                }
            }
            (samples, bytes, problems)
        })
        .collect();
    let mut report = VerifyReport { shards: shards.len() as u64, ..VerifyReport::default() };
    for (samples, bytes, shard_problems) in per_shard {
        report.samples += samples;
        report.bytes += bytes;
        problems.extend(shard_problems);
    }
    for i in 0..n {
        let first = by_key[view.key(i)];
        if !(found[first].load(Ordering::Relaxed) && view.shard(first) == view.shard(i)) {
            problems.push(Problem {
                shard: view.shard(i).to_string(),
                key: Some(view.key(i).to_string()),
                what: "is in the manifest but not found in its shard".into(),
            });
        }
    }
    problems.dedup();
    report.problems = problems;
    Ok(report)
}
