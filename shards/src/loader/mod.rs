//! The streaming loader: dataset (local or object storage) → batches of
//! `[B, H, W]` pixels, with exact epochs, rank/world splitting, mid-epoch
//! resume and bounded memory.
//!
//! ```no_run
//! use chess_shards::loader::{Loader, LoaderOptions};
//! let opts = LoaderOptions { rank: 0, world: 2, batch_size: 64, ..LoaderOptions::default() };
//! let loader = Loader::open("s3://bucket/dataset", opts)?;
//! for epoch in 0..10 {
//!     let mut it = loader.epoch(epoch);
//!     for batch in &mut it {
//!         let batch = batch?;            // batch.pixels: [B, H, W] u16, batch.labels, batch.keys
//!         let _resume_here = batch.state; // save with the checkpoint; Loader::resume(state)
//!     }
//!     let report = it.report().expect("epoch ran");
//!     assert!(report.accounted());      // delivered + skipped == expected
//! }
//! # Ok::<(), chess_shards::loader::LoaderError>(())
//! ```
//!
//! Stages, one module each: [`store`] (local files or `object_store`, range
//! reads that resume from the byte already read), [`plan`] (the epoch's
//! permutation, split, segments and delivery order, computed up front),
//! [`pipeline`] (fetch/parse, decode and assemble threads with bounded
//! channels), [`batch`] (what is delivered, the resume state and the report).
//!
//! The loader owns its tokio runtime (only for object storage); its API is
//! blocking.

pub mod batch;
pub(crate) mod local;
pub(crate) mod mapped;
pub mod pipeline;
pub mod plan;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array, UInt64Array};
use chess_schemas::{col, layout, DatasetInfo, PixelDtype};

pub use batch::{Batch, EpochReport, LoaderState, Pixels, SkippedSample};
pub use plan::{Access, Remainder};
pub use store::{is_url, Retry, Store};

use crate::manifest::{label_value, LabelValue, Manifest, ManifestFile};
use crate::ShardError;

/// What can stop the loader, grouped by what the user must do about it
/// ([`chess_cli::ExitClass`]).
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    // --- usage (exit 2)
    /// Loader options that do not fit together or with the data (rank/world,
    /// batch size, an extra array the samples do not have, a storage option).
    #[error("loader settings: {0}")]
    Settings(String),
    /// A dataset URL that does not parse, has an unsupported scheme or
    /// cannot configure its object store.
    #[error("{0}")]
    Url(String),

    // --- input (exit 3)
    /// A dataset, manifest or shard path that cannot be used: no
    /// dataset.json, an invalid one, unexpected columns, mixed image sizes, a
    /// shard path leaving the root.
    #[error("{0}")]
    Location(String),
    /// Reading an object or file failed for good (retries exhausted).
    #[error("reading {object}: {reason}")]
    Fetch { object: String, reason: String },
    /// A resume state taken with other settings or data.
    #[error("cannot resume: {0}")]
    Resume(String),
    #[error(transparent)]
    Shards(#[from] ShardError),

    // --- output (exit 4)
    /// The local copy of a remote manifest cannot be written.
    #[error("{path}: cannot write: {cause}")]
    Write { path: PathBuf, cause: std::io::Error },

    // --- runtime (exit 5)
    #[error("starting the I/O runtime: {0}")]
    Runtime(std::io::Error),
}

impl chess_cli::Classify for LoaderError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        use chess_cli::ExitClass;
        match self {
            LoaderError::Settings(_) | LoaderError::Url(_) => ExitClass::Usage,
            LoaderError::Location(_) | LoaderError::Fetch { .. } | LoaderError::Resume(_) => ExitClass::Input,
            LoaderError::Shards(e) => e.exit_class(),
            LoaderError::Write { .. } => ExitClass::Output,
            LoaderError::Runtime(_) => ExitClass::Runtime,
        }
    }
}

pub type Result<T, E = LoaderError> = std::result::Result<T, E>;

/// Loader settings. `Default` is one consumer, batch 64, shuffling on.
#[derive(Debug, Clone)]
pub struct LoaderOptions {
    pub seed: u64,
    pub rank: u64,
    pub world: u64,
    /// Further split of a rank among independent loader instances (e.g.
    /// processes feeding one GPU); consumer = rank × workers + worker.
    pub worker: u64,
    pub workers: u64,
    pub batch_size: usize,
    pub remainder: Remainder,
    /// Permute each epoch (off: manifest order, for evaluation).
    pub shuffle: bool,
    /// Slots of the shuffle buffer over the shard stream (`Access::Shards`).
    pub shuffle_buffer: usize,
    pub access: Access,
    /// Decode threads (default: the available cores).
    pub decode_threads: usize,
    /// Concurrent reads: shards in flight (`Access::Shards`) or range
    /// requests in flight (`Access::Ranges`, where 4× this is used).
    pub prefetch: usize,
    /// Batches prepared ahead of the consumer.
    pub prefetch_batches: usize,
    /// Check every image's BLAKE3 against the manifest's `pixel_hash`.
    pub verify_hashes: bool,
    /// Extra arrays to deliver with each image (`target`, `mask`).
    pub fields: Vec<String>,
    /// Dataset root for a manifest, overriding the one recorded in it.
    pub root: Option<String>,
    pub retry: Retry,
    /// Object-store settings overriding the environment, with
    /// `object_store`'s key names: `("endpoint", "http://127.0.0.1:9000")`,
    /// `("allow_http", "true")`, `("access_key_id", ..)`, `("region", ..)`.
    pub storage: Vec<(String, String)>,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            seed: 0,
            rank: 0,
            world: 1,
            worker: 0,
            workers: 1,
            batch_size: 64,
            remainder: Remainder::Drop,
            shuffle: true,
            shuffle_buffer: 512,
            access: Access::Auto,
            decode_threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            prefetch: 4,
            prefetch_batches: 2,
            verify_hashes: false,
            fields: Vec::new(),
            root: None,
            retry: Retry { retries: 5, backoff: Duration::from_millis(250) },
            storage: Vec::new(),
        }
    }
}

/// The manifest columns the loader needs, compact, shared by its threads:
/// keys as one Arrow string array, shard names once each (rows hold an
/// index), locations as fixed-width integers, hashes as 32 bytes when
/// verifying, and the label columns. Nothing else of the manifest is read.
pub(crate) struct Table {
    keys: StringArray,
    pub shards: Vec<String>,
    pub locs: Vec<plan::RowLoc>,
    pub hashes: Vec<[u8; 32]>,
    pub height: u32,
    pub width: u32,
    pub dtype: PixelDtype,
    pub label_names: Vec<String>,
    /// Extra arrays the first sample carries.
    pub extra_fields: Vec<String>,
    label_arrays: Vec<ArrayRef>,
}

fn parse_hash(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let nibble = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(bytes[2 * i])? << 4 | nibble(bytes[2 * i + 1])?;
    }
    Some(out)
}

impl Table {
    /// Reads the loader's columns of a manifest file, batch by batch
    /// (memory: the table plus one batch).
    fn read(file: &ManifestFile, name: &str, with_hashes: bool) -> Result<Table> {
        let path = name.to_string();
        let bad = |what: &str| LoaderError::Location(format!("{path}: column `{what}` has an unexpected type"));
        let label_names: Vec<String> = file.columns.labels.iter().map(|l| l.name.clone()).collect();
        let mut names: Vec<&str> = vec![
            col::KEY,
            col::SHARD,
            col::SAMPLE_OFFSET,
            col::SAMPLE_SIZE,
            col::HEIGHT,
            col::WIDTH,
            col::DTYPE,
            col::EXTRA_FIELDS,
        ];
        if with_hashes {
            names.push(col::PIXEL_HASH);
        }
        names.extend(label_names.iter().map(String::as_str));
        let n = file.num_rows();
        if n == 0 {
            return Err(LoaderError::Location(format!("{path}: the manifest has no rows")));
        }
        let mut keys = StringBuilder::with_capacity(n, n * 16);
        let mut shards: Vec<String> = Vec::new();
        let mut shard_index = std::collections::HashMap::<String, u32>::new();
        let mut locs = Vec::with_capacity(n);
        let mut hashes = Vec::with_capacity(if with_hashes { n } else { 0 });
        let mut labels: Vec<Vec<ArrayRef>> = vec![Vec::new(); label_names.len()];
        let mut first: Option<(u32, u32, String, Vec<String>)> = None;
        let mut row = 0usize;
        for batch in file.batches(Some(&names), 64 * 1024)? {
            let batch = batch?;
            // Projected columns come in file order: look them up by name.
            fn get<'b, T: 'static>(b: &'b RecordBatch, name: &str) -> Option<&'b T> {
                b.column_by_name(name).and_then(|c| c.as_any().downcast_ref::<T>())
            }
            let key = get::<StringArray>(&batch, col::KEY).ok_or_else(|| bad(col::KEY))?;
            let shard = get::<StringArray>(&batch, col::SHARD).ok_or_else(|| bad(col::SHARD))?;
            let off = get::<UInt64Array>(&batch, col::SAMPLE_OFFSET).ok_or_else(|| bad(col::SAMPLE_OFFSET))?;
            let size = get::<UInt64Array>(&batch, col::SAMPLE_SIZE).ok_or_else(|| bad(col::SAMPLE_SIZE))?;
            let height = get::<UInt32Array>(&batch, col::HEIGHT).ok_or_else(|| bad(col::HEIGHT))?;
            let width = get::<UInt32Array>(&batch, col::WIDTH).ok_or_else(|| bad(col::WIDTH))?;
            let dtype = get::<StringArray>(&batch, col::DTYPE).ok_or_else(|| bad(col::DTYPE))?;
            let extra = get::<StringArray>(&batch, col::EXTRA_FIELDS).ok_or_else(|| bad(col::EXTRA_FIELDS))?;
            let hash = match with_hashes {
                true => Some(get::<StringArray>(&batch, col::PIXEL_HASH).ok_or_else(|| bad(col::PIXEL_HASH))?),
                false => None,
            };
            for column in [key, shard, dtype] {
                if column.null_count() > 0 {
                    return Err(LoaderError::Location(format!("{path}: a required column has null values")));
                }
            }
            let (h, w, d) = match &first {
                Some((h, w, d, _)) => (*h, *w, d.clone()),
                None => {
                    let fields = if extra.is_valid(0) {
                        extra.value(0).split(',').filter(|f| !f.is_empty()).map(str::to_string).collect()
                    } else {
                        Vec::new()
                    };
                    first = Some((height.value(0), width.value(0), dtype.value(0).to_string(), fields));
                    (height.value(0), width.value(0), dtype.value(0).to_string())
                }
            };
            for i in 0..batch.num_rows() {
                if height.value(i) != h || width.value(i) != w || dtype.value(i) != d {
                    return Err(LoaderError::Location(format!(
                        "{path}: the loader needs one image size and dtype, but row {} ({}) is {}x{} {} and row 0 is \
                         {h}x{w} {d} (select one size with `chess-shards subset --where`)",
                        row + i,
                        key.value(i),
                        height.value(i),
                        width.value(i),
                        dtype.value(i)
                    )));
                }
                let s = shard.value(i);
                let idx = match shard_index.get(s) {
                    Some(&idx) => idx,
                    None => {
                        shards.push(s.to_string());
                        shard_index.insert(s.to_string(), shards.len() as u32 - 1);
                        shards.len() as u32 - 1
                    }
                };
                locs.push(plan::RowLoc { shard: idx, sample_offset: off.value(i), sample_size: size.value(i) });
                keys.append_value(key.value(i));
                if let Some(hash) = hash {
                    hashes.push(parse_hash(hash.value(i)).ok_or_else(|| {
                        LoaderError::Location(format!(
                            "{path}: row {} has a pixel_hash that is not 64 hex digits",
                            row + i
                        ))
                    })?);
                }
            }
            for (name, arrays) in label_names.iter().zip(labels.iter_mut()) {
                arrays.push(batch.column_by_name(name).cloned().ok_or_else(|| bad(name))?);
            }
            row += batch.num_rows();
        }
        let (height, width, d, extra_fields) = first.expect("n > 0 rows were read");
        let dtype: PixelDtype = d.parse().map_err(LoaderError::Location)?;
        let label_arrays = labels
            .iter()
            .map(|parts| {
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                arrow_select::concat::concat(&refs).map_err(|e| LoaderError::Location(format!("{path}: {e}")))
            })
            .collect::<Result<_>>()?;
        Ok(Table {
            keys: keys.finish(),
            shards,
            locs,
            hashes,
            height,
            width,
            dtype,
            label_names,
            extra_fields,
            label_arrays,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn key(&self, row: usize) -> &str {
        self.keys.value(row)
    }

    pub(crate) fn labels(&self, row: usize) -> Vec<LabelValue> {
        self.label_arrays.iter().map(|a| label_value(a, row)).collect()
    }
}

/// Where the full manifest comes from when [`Loader::manifest`] is asked for it.
enum ManifestSource {
    Local(PathBuf),
    Remote { store: Store, rel: String },
}

/// A dataset opened for streaming.
pub struct Loader {
    opts: LoaderOptions,
    store: Store,
    table: Arc<Table>,
    access: Access,
    info: Option<DatasetInfo>,
    /// The whole manifest, read only when asked for ([`Loader::manifest`]).
    manifest: std::sync::OnceLock<Manifest>,
    source: ManifestSource,
    location: String,
    progress: Arc<Mutex<Option<LoaderState>>>,
    last_report: Arc<Mutex<Option<EpochReport>>>,
    /// Local shard files, mapped once for all epochs (`CHESS_LOADER_MMAP=0`: `pread`).
    files: Arc<local::ShardFiles>,
    /// Batch buffers handed back ([`EpochIter::recycle`]), kept across
    /// epochs: a new epoch fills them again instead of page-faulting fresh ones.
    recycled: (crossbeam_channel::Sender<Batch>, crossbeam_channel::Receiver<Batch>),
}

fn runtime() -> Result<Arc<tokio::runtime::Runtime>> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("chess-loader-io")
        .enable_all()
        .build()
        .map(Arc::new)
        .map_err(LoaderError::Runtime)
}

/// A downloaded manifest's local copy, removed when dropped.
struct TempCopy(PathBuf);

impl Drop for TempCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A manifest file opened from a store: a remote one through a temporary
/// local copy (removed when this is dropped); `name` names it in messages.
struct Opened {
    file: ManifestFile,
    name: String,
    _copy: Option<TempCopy>,
}

/// Opens a manifest of a store.
fn open_manifest(store: &Store, rel: &str) -> Result<Opened> {
    match store {
        Store::Local(root) => {
            let file = ManifestFile::open(&Store::local_path(root, rel)?)?;
            Ok(Opened { name: file.path.display().to_string(), file, _copy: None })
        }
        Store::Remote { .. } => {
            let bytes = store.read_all(rel)?;
            let tmp = std::env::temp_dir().join(format!(
                "chess-loader-{}-{}.parquet",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
            ));
            std::fs::write(&tmp, &bytes).map_err(|cause| LoaderError::Write { path: tmp.clone(), cause })?;
            drop(bytes);
            let copy = TempCopy(tmp.clone());
            Ok(Opened { file: ManifestFile::open(&tmp)?, name: store.name(rel), _copy: Some(copy) })
        }
    }
}

/// Reads a whole manifest from a store into memory.
fn read_manifest(store: &Store, rel: &str) -> Result<Manifest> {
    let opened = open_manifest(store, rel)?;
    let mut manifest = opened.file.read()?;
    manifest.path = PathBuf::from(&opened.name);
    Ok(manifest)
}

fn read_info(store: &Store) -> Result<Option<DatasetInfo>> {
    if !store.exists(layout::DATASET_JSON)? {
        return Ok(None);
    }
    let bytes = store.read_all(layout::DATASET_JSON)?;
    let info: DatasetInfo = serde_json::from_slice(&bytes).map_err(|e| {
        LoaderError::Location(format!("{}: invalid dataset.json: {e}", store.name(layout::DATASET_JSON)))
    })?;
    Ok(Some(info))
}

/// Splits `a/b/c.parquet` (or a URL) into its parent and file name.
fn split_parent(location: &str) -> (String, String) {
    let trimmed = location.trim_end_matches('/');
    match trimmed.rfind('/') {
        Some(i) => (trimmed[..i].to_string(), trimmed[i + 1..].to_string()),
        None => (".".to_string(), trimmed.to_string()),
    }
}

impl Loader {
    /// Opens a dataset directory, a dataset URL (`s3://bucket/prefix`, …), or
    /// a manifest (`.parquet`, local or URL) whose shard paths resolve
    /// against the dataset root recorded in it (or `opts.root`, or the
    /// manifest's folder).
    pub fn open(location: &str, opts: LoaderOptions) -> Result<Loader> {
        if opts.world == 0 || opts.rank >= opts.world || opts.workers == 0 || opts.worker >= opts.workers {
            return Err(LoaderError::Settings(format!(
                "need rank < world and worker < workers (rank {}, world {}, worker {}, workers {})",
                opts.rank, opts.world, opts.worker, opts.workers
            )));
        }
        if opts.batch_size == 0 {
            return Err(LoaderError::Settings("batch size must be at least 1".into()));
        }
        let mut rt: Option<Arc<tokio::runtime::Runtime>> = None;
        let mut get_rt = || -> Result<Arc<tokio::runtime::Runtime>> {
            if rt.is_none() {
                rt = Some(runtime()?);
            }
            Ok(rt.clone().expect("just set"))
        };
        let is_manifest = location.ends_with(".parquet") && (is_url(location) || Path::new(location).is_file());
        let (store, opened, source, info, auto) = if is_manifest {
            let (parent, name) = split_parent(location);
            let holder = Store::open(&parent, opts.retry, &opts.storage, &mut get_rt)?;
            let opened = open_manifest(&holder, &name)?;
            let recorded = opened.file.dataset_root.clone().filter(|r| is_url(r) || !is_url(location));
            let root = opts.root.clone().or(recorded).unwrap_or(parent);
            let store = Store::open(&root, opts.retry, &opts.storage, &mut get_rt)?;
            let info = read_info(&store).unwrap_or(None);
            let source = match &holder {
                Store::Local(_) => ManifestSource::Local(opened.file.path.clone()),
                Store::Remote { .. } => ManifestSource::Remote { store: holder.clone(), rel: name },
            };
            (store, opened, source, info, Access::Ranges)
        } else {
            let store = Store::open(location, opts.retry, &opts.storage, &mut get_rt)?;
            let info = read_info(&store)?.ok_or_else(|| {
                LoaderError::Location(format!(
                    "{}: no dataset.json (not a dataset root)",
                    store.name(layout::DATASET_JSON)
                ))
            })?;
            let opened = open_manifest(&store, layout::MANIFEST)?;
            if opened.file.num_rows() as u64 != info.sample_count {
                return Err(LoaderError::Location(format!(
                    "{}: has {} rows, dataset.json says {} samples",
                    opened.name,
                    opened.file.num_rows(),
                    info.sample_count
                )));
            }
            let source = match &store {
                Store::Local(_) => ManifestSource::Local(opened.file.path.clone()),
                Store::Remote { .. } => ManifestSource::Remote { store: store.clone(), rel: layout::MANIFEST.into() },
            };
            (store, opened, source, Some(info), Access::Shards)
        };
        let table = Table::read(&opened.file, &opened.name, opts.verify_hashes)?;
        drop(opened);
        for field in &opts.fields {
            if !table.extra_fields.contains(field) {
                return Err(LoaderError::Settings(format!("the samples have no extra array `{field}`")));
            }
        }
        let access = if opts.access == Access::Auto { auto } else { opts.access };
        tracing::info!(location, samples = table.len(), shards = table.shards.len(), ?access, "loader opened");
        Ok(Loader {
            store,
            table: Arc::new(table),
            access,
            info,
            manifest: std::sync::OnceLock::new(),
            source,
            location: location.to_string(),
            progress: Arc::new(Mutex::new(None)),
            last_report: Arc::new(Mutex::new(None)),
            files: Arc::new(local::ShardFiles::from_env()),
            recycled: crossbeam_channel::bounded(opts.prefetch_batches.max(1) + 2),
            opts,
        })
    }

    /// Replaces how local shard files are read (tests: mapped or `pread`).
    #[cfg(test)]
    pub(crate) fn set_shard_files(&mut self, files: local::ShardFiles) {
        self.files = Arc::new(files);
    }

    pub fn options(&self) -> &LoaderOptions {
        &self.opts
    }
    pub fn location(&self) -> &str {
        &self.location
    }
    /// `dataset.json`, when the root has one.
    pub fn info(&self) -> Option<&DatasetInfo> {
        self.info.as_ref()
    }
    /// The whole manifest (every column), read on the first call: the
    /// loader itself keeps only the columns it needs.
    pub fn manifest(&self) -> Result<&Manifest> {
        if let Some(m) = self.manifest.get() {
            return Ok(m);
        }
        let manifest = match &self.source {
            ManifestSource::Local(path) => Manifest::open(path)?,
            ManifestSource::Remote { store, rel } => read_manifest(store, rel)?,
        };
        let _ = self.manifest.set(manifest);
        Ok(self.manifest.get().expect("set just above"))
    }
    /// The store the manifest's shard paths resolve against (the dataset root).
    pub fn root_store(&self) -> &Store {
        &self.store
    }
    /// How samples are read (never `Auto`).
    pub fn access(&self) -> Access {
        self.access
    }
    /// Samples in the manifest.
    pub fn len(&self) -> usize {
        self.table.len()
    }
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }
    /// `(height, width)` of every image.
    pub fn image_size(&self) -> (u32, u32) {
        (self.table.height, self.table.width)
    }
    pub fn dtype(&self) -> PixelDtype {
        self.table.dtype
    }
    /// Names of the label columns, the order of [`Batch::labels`].
    pub fn label_names(&self) -> &[String] {
        &self.table.label_names
    }
    /// Key of a manifest row.
    pub fn key(&self, row: usize) -> &str {
        self.table.key(row)
    }

    fn consumers(&self) -> (u64, u64) {
        (self.opts.world * self.opts.workers, self.opts.rank * self.opts.workers + self.opts.worker)
    }

    fn plan_id(&self) -> u64 {
        plan::mix(&[
            self.table.len() as u64,
            self.opts.shuffle as u64,
            self.opts.shuffle_buffer as u64,
            self.access as u64,
            self.opts.remainder as u64,
        ])
    }

    /// The plan of an epoch for this consumer.
    pub fn plan(&self, epoch: u64) -> plan::Plan {
        let (consumers, consumer) = self.consumers();
        plan::Plan::new(
            &self.table.locs,
            &plan::PlanParams {
                seed: self.opts.seed,
                epoch,
                consumers,
                consumer,
                shuffle: self.opts.shuffle,
                shuffle_buffer: self.opts.shuffle_buffer,
                access: self.access,
                remainder: self.opts.remainder,
            },
        )
    }

    /// Samples this consumer delivers per epoch (when none is corrupt).
    pub fn samples_per_epoch(&self) -> u64 {
        let (w, _) = self.consumers();
        let n = self.len() as u64;
        match self.opts.remainder {
            Remainder::Drop => n / w,
            Remainder::Pad => n.div_ceil(w),
        }
    }

    /// Batches per epoch (the last may be short), equal on every consumer.
    pub fn batches_per_epoch(&self) -> u64 {
        self.samples_per_epoch().div_ceil(self.opts.batch_size as u64)
    }

    /// The state at the start of an epoch.
    pub fn start_state(&self, epoch: u64) -> LoaderState {
        LoaderState {
            seed: self.opts.seed,
            epoch,
            world: self.opts.world,
            rank: self.opts.rank,
            workers: self.opts.workers,
            worker: self.opts.worker,
            batch_size: self.opts.batch_size as u64,
            slot: 0,
            batches: 0,
            delivered: 0,
            skipped: 0,
            plan_id: self.plan_id(),
        }
    }

    /// Streams epoch `epoch` from its beginning.
    pub fn epoch(&self, epoch: u64) -> EpochIter {
        self.start(self.start_state(epoch))
    }

    /// Continues an epoch from a state taken from a [`Batch`] or
    /// [`Loader::state`]: the first batch is the one that would have come next.
    pub fn resume(&self, state: LoaderState) -> Result<EpochIter> {
        let expected = LoaderState {
            epoch: state.epoch,
            slot: state.slot,
            batches: state.batches,
            delivered: state.delivered,
            skipped: state.skipped,
            ..self.start_state(state.epoch)
        };
        if expected != state {
            return Err(LoaderError::Resume(format!(
                "the state was taken with other settings or data ({state:?}); this loader has {expected:?}"
            )));
        }
        Ok(self.start(state))
    }

    fn start(&self, state: LoaderState) -> EpochIter {
        let plan = Arc::new(self.plan(state.epoch));
        let fetchers = match self.access {
            Access::Ranges => self.opts.prefetch.max(1) * 4,
            _ => self.opts.prefetch.max(1),
        };
        let settings = pipeline::RunSettings {
            batch_size: self.opts.batch_size,
            decode_threads: self.opts.decode_threads.max(1),
            prefetch_shards: fetchers,
            prefetch_batches: self.opts.prefetch_batches.max(1),
            verify_hashes: self.opts.verify_hashes,
            fields: self.opts.fields.clone(),
            shuffle_slots: if self.access == Access::Shards && self.opts.shuffle {
                self.opts.shuffle_buffer
            } else {
                0
            },
        };
        *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(state);
        let running = pipeline::start(
            self.table.clone(),
            self.store.clone(),
            self.files.clone(),
            self.recycled.clone(),
            plan,
            settings,
            state,
        );
        EpochIter {
            running: Some(running),
            progress: self.progress.clone(),
            last_report: self.last_report.clone(),
            report: None,
        }
    }

    /// The resume point after the last batch delivered by the current (or
    /// last) epoch iterator.
    pub fn state(&self) -> Option<LoaderState> {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The report of the last epoch iterator that finished or was dropped.
    pub fn last_report(&self) -> Option<EpochReport> {
        self.last_report.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The batches of one epoch, in order. Ends after the last batch, or after
/// yielding one error (a shard that could not be read).
pub struct EpochIter {
    running: Option<pipeline::Running>,
    progress: Arc<Mutex<Option<LoaderState>>>,
    last_report: Arc<Mutex<Option<EpochReport>>>,
    report: Option<EpochReport>,
}

impl EpochIter {
    /// The resume point after the last batch this iterator delivered.
    pub fn state(&self) -> Option<LoaderState> {
        *self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epoch's report, once the iterator has ended.
    pub fn report(&self) -> Option<&EpochReport> {
        self.report.as_ref()
    }

    /// Hands a batch back once its pixels have been consumed (e.g. copied
    /// to the GPU), so that its buffers are reused for a later batch instead
    /// of being allocated (and page-faulted) again. Optional.
    pub fn recycle(&self, batch: Batch) {
        if let Some(r) = &self.running {
            let _ = r.recycle.try_send(batch);
        }
    }

    /// Bytes fetched so far by this run.
    pub fn bytes_read(&self) -> u64 {
        self.running.as_ref().map_or_else(|| self.report.as_ref().map_or(0, |r| r.bytes_read), |r| r.read_bytes())
    }

    fn end(&mut self) {
        if let Some(running) = self.running.take() {
            let report = running.report.lock().unwrap_or_else(|p| p.into_inner()).clone();
            drop(running);
            if let Some(r) = &report {
                *self.last_report.lock().unwrap_or_else(|p| p.into_inner()) = Some(r.clone());
            }
            self.report = report;
        }
    }
}

impl Iterator for EpochIter {
    type Item = Result<Batch>;
    fn next(&mut self) -> Option<Result<Batch>> {
        let running = self.running.as_ref()?;
        match running.rx.recv() {
            Ok(Ok(batch)) => {
                *self.progress.lock().unwrap_or_else(|p| p.into_inner()) = Some(batch.state);
                Some(Ok(batch))
            }
            Ok(Err(e)) => {
                self.end();
                Some(Err(e))
            }
            Err(_) => {
                self.end();
                None
            }
        }
    }
}

impl Drop for EpochIter {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::Image;
    use crate::writer::{DatasetWriter, FinishInfo};

    fn noisy(size: u32, seed: u64) -> Image {
        crate::image::xorshift_noise(size, size, seed | 1)
    }

    /// Every delivered byte, key, label and skip of two epochs.
    fn epochs(root: &Path, files: local::ShardFiles, access: Access, verify: bool) -> Vec<String> {
        let opts = LoaderOptions {
            seed: 3,
            batch_size: 5,
            shuffle_buffer: 8,
            access,
            verify_hashes: verify,
            fields: vec!["target".into()],
            decode_threads: 2,
            ..LoaderOptions::default()
        };
        let mut loader = Loader::open(root.to_str().unwrap(), opts).unwrap();
        loader.set_shard_files(files);
        let mut out = Vec::new();
        for epoch in 0..2 {
            let mut it = loader.epoch(epoch);
            while let Some(batch) = it.next() {
                let b = batch.unwrap();
                out.push(format!(
                    "{:?} {:?} {:?} {:?} {}",
                    b.keys,
                    b.labels,
                    b.pixels.as_u16().unwrap(),
                    b.extras[0].1.as_u16().unwrap(),
                    b.pixels.len()
                ));
                it.recycle(b);
            }
            let report = it.report().unwrap();
            assert!(report.accounted(), "{report:?}");
            out.push(format!("{:?}", report.skipped_samples));
        }
        out
    }

    #[test]
    fn mapped_and_pread_shards_deliver_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("ds");
        let opts = crate::demo::demo_options(PixelDtype::Uint16, 7, true);
        let mut writer = DatasetWriter::create(&root, opts).unwrap();
        for i in 0..24u64 {
            let mut s = crate::demo::demo_sample(i, 48, PixelDtype::Uint16, true);
            s.image = match i % 2 {
                // Noise: stored as raw blocks; a smooth ramp: compressed.
                1 => noisy(48, i + 1),
                _ => Image::from_u16(48, 48, &(0..48 * 48).map(|p| (p / 7 + i as u32) as u16).collect::<Vec<_>>()),
            };
            writer.write(&s).unwrap();
        }
        let counts = writer.frame_counts();
        assert!(counts.raw > 0 && counts.compressed > 0, "{counts:?}");
        writer.finish(FinishInfo::default()).unwrap();
        // Damage: a compressed frame's magic (5: decode fails) and a raw
        // frame's block header (9: the raw fast path refuses it, decoding fails too).
        let ds = crate::Dataset::open(&root).unwrap();
        let rows = ds.manifest.rows();
        let damage = |row: usize, at: u64, with: &[u8]| {
            let path = root.join(&rows[row].shard);
            let mut bytes = std::fs::read(&path).unwrap();
            bytes[at as usize..at as usize + with.len()].copy_from_slice(with);
            std::fs::write(&path, bytes).unwrap();
        };
        damage(4, rows[4].offset, b"junk");
        let frame = std::fs::read(root.join(&rows[9].shard)).unwrap();
        let (_, first_block) =
            crate::image::raw_frame_header(&frame[rows[9].offset as usize..]).expect("9 is a raw frame");
        damage(9, rows[9].offset + first_block as u64, &[0xff, 0xff, 0xff]);
        for access in [Access::Shards, Access::Ranges] {
            for verify in [false, true] {
                let mapped = epochs(&root, local::ShardFiles::new(true, 1 << 30), access, verify);
                let read = epochs(&root, local::ShardFiles::new(false, 0), access, verify);
                assert_eq!(mapped, read, "{access:?} verify={verify}");
                // A budget too small to keep any mapping maps per read run.
                assert_eq!(mapped, epochs(&root, local::ShardFiles::new(true, 1), access, verify));
                let skipped = mapped.last().unwrap();
                for r in [4usize, 9] {
                    assert!(skipped.contains(&rows[r].key), "{skipped}");
                }
                assert_eq!(skipped.matches("SkippedSample").count(), 2, "{skipped}");
            }
        }
    }
}
