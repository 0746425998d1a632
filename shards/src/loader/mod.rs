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
pub mod pipeline;
pub mod plan;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow_array::ArrayRef;
use arrow_array::{Array, StringArray, UInt32Array, UInt64Array};
use chess_schemas::{col, layout, DatasetInfo, PixelDtype};

pub use batch::{Batch, EpochReport, LoaderState, Pixels, SkippedSample};
pub use plan::{Access, Remainder};
pub use store::{is_url, Retry, Store};

use crate::manifest::{label_value, LabelValue, Manifest};
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

/// The manifest columns the loader needs, compact, shared by its threads.
pub(crate) struct Table {
    pub keys: Vec<String>,
    pub shards: Vec<String>,
    pub locs: Vec<plan::RowLoc>,
    pub hashes: Vec<String>,
    pub height: u32,
    pub width: u32,
    pub dtype: PixelDtype,
    pub label_names: Vec<String>,
    label_arrays: Vec<ArrayRef>,
}

impl Table {
    fn new(manifest: &Manifest, with_hashes: bool) -> Result<Table> {
        let b = &manifest.batch;
        let bad = |what: &str| {
            LoaderError::Location(format!("{}: column `{what}` has an unexpected type", manifest.path.display()))
        };
        let strings = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
                .ok_or_else(|| bad(name))
        };
        let u64s = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>().cloned())
                .ok_or_else(|| bad(name))
        };
        let u32s = |name: &str| {
            b.column_by_name(name)
                .and_then(|c| c.as_any().downcast_ref::<UInt32Array>().cloned())
                .ok_or_else(|| bad(name))
        };
        let (key, shard, off, size) =
            (strings(col::KEY)?, strings(col::SHARD)?, u64s(col::SAMPLE_OFFSET)?, u64s(col::SAMPLE_SIZE)?);
        let (height, width, dtype, hash) =
            (u32s(col::HEIGHT)?, u32s(col::WIDTH)?, strings(col::DTYPE)?, strings(col::PIXEL_HASH)?);
        let n = b.num_rows();
        if n == 0 {
            return Err(LoaderError::Location(format!("{}: the manifest has no rows", manifest.path.display())));
        }
        let mut shards: Vec<String> = Vec::new();
        let mut shard_index = std::collections::HashMap::<String, u32>::new();
        let mut locs = Vec::with_capacity(n);
        for i in 0..n {
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
        }
        let (h, w, d) = (height.value(0), width.value(0), dtype.value(0));
        if let Some(i) = (0..n).find(|&i| height.value(i) != h || width.value(i) != w || dtype.value(i) != d) {
            return Err(LoaderError::Location(format!(
                "{}: the loader needs one image size and dtype, but row {} ({}) is {}x{} {} and row 0 is {h}x{w} {d} \
                 (select one size with `chess-shards subset --where`)",
                manifest.path.display(),
                i,
                key.value(i),
                height.value(i),
                width.value(i),
                dtype.value(i)
            )));
        }
        let dtype: PixelDtype = d.parse().map_err(LoaderError::Location)?;
        Ok(Table {
            keys: (0..n).map(|i| key.value(i).to_string()).collect(),
            shards,
            locs,
            hashes: if with_hashes { (0..n).map(|i| hash.value(i).to_string()).collect() } else { Vec::new() },
            height: h,
            width: w,
            dtype,
            label_names: manifest.columns.labels.iter().map(|l| l.name.clone()).collect(),
            label_arrays: manifest
                .columns
                .labels
                .iter()
                .map(|l| b.column_by_name(&l.name).cloned().ok_or_else(|| bad(&l.name)))
                .collect::<Result<_>>()?,
        })
    }

    pub(crate) fn labels(&self, row: usize) -> Vec<LabelValue> {
        self.label_arrays.iter().map(|a| label_value(a, row)).collect()
    }
}

/// A dataset opened for streaming.
pub struct Loader {
    opts: LoaderOptions,
    store: Store,
    table: Arc<Table>,
    access: Access,
    info: Option<DatasetInfo>,
    manifest: Arc<Manifest>,
    location: String,
    progress: Arc<Mutex<Option<LoaderState>>>,
    last_report: Arc<Mutex<Option<EpochReport>>>,
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

/// Reads a manifest from a store into memory.
fn read_manifest(store: &Store, rel: &str) -> Result<Manifest> {
    match store {
        Store::Local(root) => Ok(Manifest::open(&Store::local_path(root, rel)?)?),
        Store::Remote { .. } => {
            let bytes = store.read_all(rel)?;
            let tmp = std::env::temp_dir().join(format!(
                "chess-loader-{}-{}.parquet",
                std::process::id(),
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
            ));
            std::fs::write(&tmp, &bytes).map_err(|cause| LoaderError::Write { path: tmp.clone(), cause })?;
            let manifest = Manifest::open(&tmp);
            let _ = std::fs::remove_file(&tmp);
            let mut manifest = manifest?;
            manifest.path = PathBuf::from(store.name(rel));
            Ok(manifest)
        }
    }
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
        let (store, manifest, info, auto) = if is_manifest {
            let (parent, file) = split_parent(location);
            let holder = Store::open(&parent, opts.retry, &opts.storage, &mut get_rt)?;
            let manifest = read_manifest(&holder, &file)?;
            let recorded = manifest.dataset_root.clone().filter(|r| is_url(r) || !is_url(location));
            let root = opts.root.clone().or(recorded).unwrap_or(parent);
            let store = Store::open(&root, opts.retry, &opts.storage, &mut get_rt)?;
            let info = read_info(&store).unwrap_or(None);
            (store, manifest, info, Access::Ranges)
        } else {
            let store = Store::open(location, opts.retry, &opts.storage, &mut get_rt)?;
            let info = read_info(&store)?.ok_or_else(|| {
                LoaderError::Location(format!(
                    "{}: no dataset.json (not a dataset root)",
                    store.name(layout::DATASET_JSON)
                ))
            })?;
            let manifest = read_manifest(&store, layout::MANIFEST)?;
            if manifest.len() as u64 != info.sample_count {
                return Err(LoaderError::Location(format!(
                    "{}: has {} rows, dataset.json says {} samples",
                    manifest.path.display(),
                    manifest.len(),
                    info.sample_count
                )));
            }
            (store, manifest, Some(info), Access::Shards)
        };
        for field in &opts.fields {
            if !manifest.view().row(0).extra_field_names().contains(&field.as_str()) {
                return Err(LoaderError::Settings(format!("the samples have no extra array `{field}`")));
            }
        }
        let table = Table::new(&manifest, opts.verify_hashes)?;
        let access = if opts.access == Access::Auto { auto } else { opts.access };
        tracing::info!(location, samples = table.keys.len(), shards = table.shards.len(), ?access, "loader opened");
        Ok(Loader {
            opts,
            store,
            table: Arc::new(table),
            access,
            info,
            manifest: Arc::new(manifest),
            location: location.to_string(),
            progress: Arc::new(Mutex::new(None)),
            last_report: Arc::new(Mutex::new(None)),
        })
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
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }
    /// How samples are read (never `Auto`).
    pub fn access(&self) -> Access {
        self.access
    }
    /// Samples in the manifest.
    pub fn len(&self) -> usize {
        self.table.keys.len()
    }
    pub fn is_empty(&self) -> bool {
        self.table.keys.is_empty()
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
        &self.table.keys[row]
    }

    fn consumers(&self) -> (u64, u64) {
        (self.opts.world * self.opts.workers, self.opts.rank * self.opts.workers + self.opts.worker)
    }

    fn plan_id(&self) -> u64 {
        plan::mix(&[
            self.table.keys.len() as u64,
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
        let running = pipeline::start(self.table.clone(), self.store.clone(), plan, settings, state);
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
