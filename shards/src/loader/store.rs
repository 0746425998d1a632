//! Where the bytes come from: a local directory, or an object store reached
//! through the `object_store` crate (`s3://`, `gs://`, `az://`/`abfs://`,
//! `http(s)://`), configured from the environment (`AWS_ENDPOINT_URL`,
//! `AWS_ALLOW_HTTP`, `AWS_DEFAULT_REGION`, keys, `GOOGLE_*`, `AZURE_*`).
//!
//! A byte range is read as a blocking [`Read`] that the tar parser consumes.
//! For object storage the body is streamed by a task on the loader's tokio
//! runtime into a bounded channel (back-pressure: a slow consumer pauses the
//! connection). When the body fails mid-stream — connection reset, a 5xx,
//! a server restarting — the task asks again for the rest, from the byte
//! already delivered, with exponential backoff, up to `retries` times in a
//! row without progress; then the reader fails and the error names the
//! shard and the byte it stopped at. `object_store`'s own request retries
//! come first, configured with the same budget.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, GetOptions, GetRange, ObjectStore, ObjectStoreExt, RetryConfig};

use super::LoaderError;

/// What the readers of one epoch count.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes that arrived (compressed, as stored).
    pub read_bytes: AtomicU64,
    /// Bodies re-requested from the byte already read after a failure.
    pub resumed: AtomicU64,
}

/// Retry settings for object-store reads.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts after a failure, per request and again per interrupted body.
    pub retries: usize,
    /// First backoff; doubles up to 8 s.
    pub backoff: Duration,
}

impl Retry {
    fn config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig { init_backoff: self.backoff, max_backoff: Duration::from_secs(8), base: 2.0 },
            max_retries: self.retries,
            retry_timeout: Duration::from_secs(120),
        }
    }
    fn delay(&self, attempt: usize) -> Duration {
        self.backoff.saturating_mul(1u32 << attempt.min(16)).min(Duration::from_secs(8))
    }
}

/// A dataset root: a local directory or an object-store prefix.
#[derive(Clone)]
pub enum Store {
    Local(PathBuf),
    Remote {
        store: Arc<dyn ObjectStore>,
        /// The root's path inside the store.
        prefix: ObjectPath,
        /// The root as given, for messages.
        url: String,
        runtime: Arc<tokio::runtime::Runtime>,
        retry: Retry,
    },
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.describe())
    }
}

/// Whether a location names object storage rather than a local path.
pub fn is_url(location: &str) -> bool {
    ["s3://", "s3a://", "gs://", "az://", "abfs://", "abfss://", "azure://", "http://", "https://"]
        .iter()
        .any(|p| location.starts_with(p))
}

/// Builds an object store for a URL's bucket/container/host; returns it with
/// the URL's path inside it.
/// `storage` holds `(key, value)` settings that override the environment,
/// with `object_store`'s key names (`endpoint`, `allow_http`,
/// `access_key_id`, `region`, `google_service_account`, ...).
fn build_store(
    url_text: &str,
    retry: Retry,
    storage: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), LoaderError> {
    let url = url::Url::parse(url_text).map_err(|e| LoaderError::Url(format!("{url_text}: {e}")))?;
    let bad = |e: object_store::Error| LoaderError::Url(format!("{url_text}: {e}"));
    let path = ObjectPath::from_url_path(url.path()).map_err(|e| LoaderError::Url(format!("{url_text}: {e}")))?;
    let key_err = |k: &str, e: object_store::Error| LoaderError::Settings(format!("storage option `{k}`: {e}"));
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "s3" | "s3a" => {
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url_text).with_retry(retry.config());
            for (k, v) in storage {
                b = b.with_config(k.parse().map_err(|e| key_err(k, e))?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        "gs" => {
            let mut b =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url_text).with_retry(retry.config());
            for (k, v) in storage {
                b = b.with_config(k.parse().map_err(|e| key_err(k, e))?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        "az" | "abfs" | "abfss" | "azure" => {
            let mut b =
                object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url_text).with_retry(retry.config());
            for (k, v) in storage {
                b = b.with_config(k.parse().map_err(|e| key_err(k, e))?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        "http" | "https" => {
            // The store is the server; paths are the URL's path.
            let base = format!("{}://{}", url.scheme(), url.authority());
            let mut b = object_store::http::HttpBuilder::new().with_url(base).with_retry(retry.config());
            for (k, v) in storage {
                b = b.with_config(k.parse().map_err(|e| key_err(k, e))?, v);
            }
            Arc::new(b.build().map_err(bad)?)
        }
        other => return Err(LoaderError::Url(format!("{url_text}: unsupported scheme `{other}`"))),
    };
    Ok((store, path))
}

impl Store {
    /// Opens a root. `runtime` is used (and needed) only for URLs.
    pub fn open(
        location: &str,
        retry: Retry,
        storage: &[(String, String)],
        runtime: impl FnOnce() -> Result<Arc<tokio::runtime::Runtime>, LoaderError>,
    ) -> Result<Store, LoaderError> {
        if is_url(location) {
            let (store, prefix) = build_store(location.trim_end_matches('/'), retry, storage)?;
            Ok(Store::Remote {
                store,
                prefix,
                url: location.trim_end_matches('/').to_string(),
                runtime: runtime()?,
                retry,
            })
        } else {
            Ok(Store::Local(PathBuf::from(location)))
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::Local(p) => p.display().to_string(),
            Store::Remote { url, .. } => url.clone(),
        }
    }

    /// `rel` (a `/`-separated path relative to the root) for messages.
    pub fn name(&self, rel: &str) -> String {
        match self {
            Store::Local(p) => p.join(rel).display().to_string(),
            Store::Remote { url, .. } => format!("{url}/{rel}"),
        }
    }

    fn object_path(prefix: &ObjectPath, rel: &str) -> ObjectPath {
        let mut p = prefix.clone();
        for part in rel.split('/').filter(|s| !s.is_empty()) {
            p = p.clone().join(part);
        }
        p
    }

    /// Local path of `rel` (local stores only). Shard paths must stay inside the root.
    pub fn local_path(root: &Path, rel: &str) -> Result<PathBuf, LoaderError> {
        let rel_path = Path::new(rel);
        if rel_path.is_absolute() || rel_path.components().any(|c| matches!(c, std::path::Component::ParentDir)) {
            return Err(LoaderError::Location(format!("shard path `{rel}` leaves the dataset root")));
        }
        Ok(root.join(rel_path))
    }

    /// Reads a whole (small) object: `dataset.json`, a manifest.
    pub fn read_all(&self, rel: &str) -> Result<Vec<u8>, LoaderError> {
        match self {
            Store::Local(root) => {
                let path = Self::local_path(root, rel)?;
                std::fs::read(&path)
                    .map_err(|e| LoaderError::Fetch { object: path.display().to_string(), reason: e.to_string() })
            }
            Store::Remote { store, prefix, runtime, .. } => {
                let path = Self::object_path(prefix, rel);
                let store = store.clone();
                runtime
                    .block_on(async move { store.get(&path).await?.bytes().await })
                    .map(|b| b.to_vec())
                    .map_err(|e| LoaderError::Fetch { object: self.name(rel), reason: e.to_string() })
            }
        }
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool, LoaderError> {
        match self {
            Store::Local(root) => Ok(Self::local_path(root, rel)?.exists()),
            Store::Remote { store, prefix, runtime, .. } => {
                let path = Self::object_path(prefix, rel);
                let store = store.clone();
                match runtime.block_on(async move { store.head(&path).await }) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(LoaderError::Fetch { object: self.name(rel), reason: e.to_string() }),
                }
            }
        }
    }

    /// A reader of bytes `start..end` of `rel`. `read_bytes` counts what arrives.
    pub fn open_range(
        &self,
        rel: &str,
        start: u64,
        end: u64,
        counters: Arc<Counters>,
    ) -> Result<RangeReader, LoaderError> {
        match self {
            Store::Local(root) => {
                use std::io::{Seek, SeekFrom};
                let path = Self::local_path(root, rel)?;
                let fail =
                    |e: io::Error| LoaderError::Fetch { object: path.display().to_string(), reason: e.to_string() };
                let mut file = std::fs::File::open(&path).map_err(fail)?;
                file.seek(SeekFrom::Start(start)).map_err(fail)?;
                // A small buffer: headers come through it, while member data
                // larger than it is read straight into the member's buffer
                // (BufReader bypasses itself), so most bytes are copied once.
                Ok(RangeReader::Local {
                    inner: io::BufReader::with_capacity((end - start).clamp(8 << 10, 32 << 10) as usize, file)
                        .take(end - start),
                    counters,
                })
            }
            Store::Remote { store, prefix, runtime, retry, .. } => {
                let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(8);
                let failure: Arc<Mutex<Option<LoaderError>>> = Arc::new(Mutex::new(None));
                let task = RemoteFetch {
                    store: store.clone(),
                    path: Self::object_path(prefix, rel),
                    name: self.name(rel),
                    start,
                    end,
                    retry: *retry,
                    failure: failure.clone(),
                    counters,
                };
                runtime.spawn(task.run(tx));
                Ok(RangeReader::Remote { rx, current: Bytes::new(), failure })
            }
        }
    }
}

/// The fetch task of one remote byte range.
struct RemoteFetch {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    name: String,
    start: u64,
    end: u64,
    retry: Retry,
    failure: Arc<Mutex<Option<LoaderError>>>,
    counters: Arc<Counters>,
}

impl RemoteFetch {
    async fn run(self, tx: tokio::sync::mpsc::Sender<Bytes>) {
        let mut pos = self.start;
        let mut failures = 0usize;
        while pos < self.end {
            let opts = GetOptions { range: Some(GetRange::Bounded(pos..self.end)), ..Default::default() };
            let outcome: Result<(), String> = async {
                let result = self.store.get_opts(&self.path, opts).await.map_err(|e| e.to_string())?;
                let mut stream = result.into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|e| e.to_string())?;
                    let take = chunk.len().min((self.end - pos) as usize);
                    if take == 0 {
                        break;
                    }
                    pos += take as u64;
                    failures = 0;
                    self.counters.read_bytes.fetch_add(take as u64, Ordering::Relaxed);
                    if tx.send(chunk.slice(..take)).await.is_err() {
                        return Ok(()); // the reader is gone: stop quietly
                    }
                }
                Ok(())
            }
            .await;
            if tx.is_closed() {
                return;
            }
            match outcome {
                Ok(()) if pos < self.end => {
                    // The body ended early without an error: ask for the rest.
                    failures += 1;
                    if failures > self.retry.retries {
                        self.fail(pos, format!("body ended at byte {pos} of {}", self.end));
                        return;
                    }
                    tracing::warn!(object = %self.name, pos, "body ended early; requesting the rest");
                    self.counters.resumed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(()) => {}
                Err(reason) => {
                    failures += 1;
                    if failures > self.retry.retries {
                        self.fail(pos, reason);
                        return;
                    }
                    let delay = self.retry.delay(failures - 1);
                    tracing::warn!(object = %self.name, pos, attempt = failures, ?delay, %reason, "read failed; resuming from the byte already read");
                    tokio::time::sleep(delay).await;
                    self.counters.resumed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    fn fail(&self, pos: u64, reason: String) {
        let err = LoaderError::Fetch {
            object: self.name.clone(),
            reason: format!("gave up at byte {pos} after {} retries: {reason}", self.retry.retries),
        };
        *self.failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(err);
    }
}

/// A blocking reader of one byte range.
pub enum RangeReader {
    Local { inner: io::Take<io::BufReader<std::fs::File>>, counters: Arc<Counters> },
    Remote { rx: tokio::sync::mpsc::Receiver<Bytes>, current: Bytes, failure: Arc<Mutex<Option<LoaderError>>> },
}

impl RangeReader {
    /// Where a remote reader records the fetch error that ended it.
    pub fn failure_handle(&self) -> Option<Arc<Mutex<Option<LoaderError>>>> {
        match self {
            RangeReader::Local { .. } => None,
            RangeReader::Remote { failure, .. } => Some(failure.clone()),
        }
    }
}

impl Read for RangeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            RangeReader::Local { inner, counters } => {
                let n = inner.read(buf)?;
                counters.read_bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            RangeReader::Remote { rx, current, failure } => {
                while current.is_empty() {
                    match rx.blocking_recv() {
                        Some(chunk) => *current = chunk,
                        None => {
                            // Sender gone: either the range is complete or the fetch failed.
                            if let Some(err) = failure.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
                                return Err(io::Error::other(err.to_string()));
                            }
                            return Ok(0);
                        }
                    }
                }
                let n = buf.len().min(current.len());
                buf[..n].copy_from_slice(&current[..n]);
                *current = current.slice(n..);
                Ok(n)
            }
        }
    }
}
