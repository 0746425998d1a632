//! `--out s3://…` (and `gs://`, `az://`): publishing a finished dataset to
//! object storage through the `object_store` crate.
//!
//! The dataset is built, resumably, in a local working directory (by default
//! `$CHESS_CACHE/ingest-work/<hash of the URL>`), then uploaded: shards
//! first (multipart for large ones), then `manifest.parquet`, and
//! `dataset.json` last, so a reader that sees `dataset.json` sees a complete
//! dataset. Objects already present with the right size are skipped, so an
//! interrupted upload is finished by re-running the same command. Nothing of
//! `private/` is ever uploaded (the reject list names source files and
//! quotes header values; the journal, the run options, the burned-in
//! contact sheet and the key are private too): it stays in the local
//! working directory, or in `--private-dir`.
//! Credentials and endpoints come from the environment (`AWS_*`,
//! `GOOGLE_*`, `AZURE_*`), as for the loader.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chess_schemas::layout;
use chess_shards::loader::{Retry, Store};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

/// Files larger than twice this go up in parts of this size (S3's minimum part
/// is 5 MiB); `CHESS_UPLOAD_PART_BYTES` overrides both (tests).
fn part_bytes() -> usize {
    std::env::var("CHESS_UPLOAD_PART_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(16 << 20)
}

/// Why publishing failed: the object store refused, or the finished local
/// copy could not be read for upload. Either way the output was not
/// written (exit 4); re-running finishes the upload.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("{url}: {reason}")]
    Store { url: String, reason: String },
    #[error("'{}': {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

impl chess_cli::Classify for UploadError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        chess_cli::ExitClass::Output
    }
}

/// Whether `--out` names object storage.
pub fn is_url(out: &str) -> bool {
    chess_shards::loader::is_url(out)
}

/// The local working directory for a URL.
pub fn work_dir(url: &str) -> PathBuf {
    let cache = std::env::var_os("CHESS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/chess"));
    let h = blake3::hash(url.trim_end_matches('/').as_bytes()).to_hex();
    cache.join("ingest-work").join(&h.as_str()[..16])
}

/// What was uploaded.
#[derive(Debug, Default, Clone)]
pub struct UploadReport {
    pub uploaded: u64,
    pub skipped: u64,
    pub bytes: u64,
}

/// Files of `root` to publish, relative, in upload order (`dataset.json` last).
fn files_to_publish(root: &Path) -> Result<Vec<String>, UploadError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| UploadError::Io { path, source }
    };
    let shards = root.join(layout::SHARDS_DIR);
    let mut out: Vec<String> = Vec::new();
    let mut names: Vec<String> = std::fs::read_dir(&shards)
        .map_err(io(&shards))?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().to_str().map(str::to_string)))
        .filter(|n| n.ends_with(".tar"))
        .collect();
    names.sort();
    out.extend(names.into_iter().map(|n| format!("{}/{n}", layout::SHARDS_DIR)));
    out.push(layout::MANIFEST.to_string());
    out.push(layout::DATASET_JSON.to_string());
    Ok(out)
}

/// Uploads the finished dataset at `root` to `url`.
pub fn upload(root: &Path, url: &str) -> Result<UploadReport, UploadError> {
    let url = url.trim_end_matches('/');
    let err = |reason: String| UploadError::Store { url: url.to_string(), reason };
    let retry = Retry { retries: 5, backoff: Duration::from_millis(200) };
    let store = Store::open(url, retry, &[], || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map(Arc::new)
            .map_err(|e| chess_shards::LoaderError::Settings(e.to_string()))
    })
    .map_err(|e| err(e.to_string()))?;
    let Store::Remote { store, prefix, runtime, .. } = store else {
        return Err(err("not an object-store URL".into()));
    };
    let mut report = UploadReport::default();
    for rel in files_to_publish(root)? {
        let local = root.join(&rel);
        let size = std::fs::metadata(&local).map_err(|source| UploadError::Io { path: local.clone(), source })?.len();
        let mut object = prefix.clone();
        for part in rel.split('/') {
            object = object.clone().join(part);
        }
        // dataset.json is always rewritten: it is what marks completion.
        if rel != layout::DATASET_JSON {
            if let Ok(meta) = runtime.block_on(store.head(&object)) {
                if meta.size == size {
                    report.skipped += 1;
                    continue;
                }
            }
        }
        tracing::info!(object = %object, size, "uploading");
        let what = |e: object_store::Error| err(format!("{rel}: {e}"));
        if size <= 2 * part_bytes() as u64 {
            let data = std::fs::read(&local).map_err(|source| UploadError::Io { path: local.clone(), source })?;
            runtime.block_on(store.put(&object, PutPayload::from(data))).map_err(what)?;
        } else {
            put_multipart(&runtime, store.as_ref(), &object, &local).map_err(|e| match e {
                Either::Store(e) => what(e),
                Either::Io(source) => UploadError::Io { path: local.clone(), source },
            })?;
        }
        report.uploaded += 1;
        report.bytes += size;
    }
    Ok(report)
}

enum Either {
    Store(object_store::Error),
    Io(std::io::Error),
}

fn put_multipart(
    runtime: &tokio::runtime::Runtime,
    store: &dyn object_store::ObjectStore,
    object: &ObjectPath,
    local: &Path,
) -> Result<(), Either> {
    use std::io::Read;
    runtime.block_on(async {
        let upload = store.put_multipart(object).await.map_err(Either::Store)?;
        let part = part_bytes();
        let mut w = WriteMultipart::new_with_chunk_size(upload, part);
        let mut f = std::fs::File::open(local).map_err(Either::Io)?;
        let mut buf = vec![0u8; part];
        loop {
            let n = f.read(&mut buf).map_err(Either::Io)?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.map_err(Either::Store)?;
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(Either::Store)?;
        Ok(())
    })
}
