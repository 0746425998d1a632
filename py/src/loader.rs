//! `chess_shards.Loader`: the Rust streaming loader as a Python iterator of
//! batches. Each batch's pixels are a NumPy `[B, H, W]` array that owns the
//! Rust buffer (moved, not copied); the GIL is released while the loader's
//! threads fetch, decode and assemble; `state_dict()` / `load_state_dict()`
//! carry the resume point, so the batch after a resume is the one that would
//! have come; `report()` gives delivered / skipped / expected.

use std::sync::{Arc, Mutex};

use chess_shards::loader::{Access, Batch, EpochIter, EpochReport, LoaderError, LoaderOptions, LoaderState, Remainder};
use numpy::PyArray;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::buffer::Recycler;
use crate::convert;
use crate::dataset::storage_pairs;
use crate::error::{to_py, usage};

/// Where the loader stands between calls.
#[derive(Default)]
struct Run {
    epoch: u64,
    /// A state given to `load_state_dict`, used by the next epoch started.
    pending: Option<LoaderState>,
    /// The running epoch; taken out while a `__next__` waits on it.
    iter: Option<EpochIter>,
    /// A `__next__` is waiting (without the GIL) on `iter`.
    busy: bool,
    /// The epoch run ended: `__next__` stops until `iter()`, `set_epoch()` or `load_state_dict()`.
    exhausted: bool,
    /// The resume point after the last batch delivered.
    last: Option<LoaderState>,
    report: Option<EpochReport>,
}

/// The streaming loader.
#[pyclass(module = "chess_shards._chess_shards", name = "Loader", frozen)]
pub struct Loader {
    inner: Arc<chess_shards::Loader>,
    run: Mutex<Run>,
    /// Batch buffers whose arrays died, for the pipeline to fill again.
    recycler: Arc<Recycler>,
    /// Batches handed back to the pipeline so far.
    recycled: std::sync::atomic::AtomicU64,
}

fn parse<T: std::str::FromStr<Err = String>>(text: &str) -> PyResult<T> {
    text.parse().map_err(usage)
}

impl Loader {
    fn lock(&self) -> std::sync::MutexGuard<'_, Run> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends the current epoch run; its report (how far it got) is kept.
    fn stop(&self, run: &mut Run) {
        if let Some(it) = run.iter.take() {
            drop(it);
            run.report = self.inner.last_report();
        }
    }

    fn start(&self, run: &mut Run) -> Result<(), LoaderError> {
        self.stop(run);
        let it = match run.pending.take() {
            Some(state) => self.inner.resume(state)?,
            None => self.inner.epoch(run.epoch),
        };
        run.last = None;
        run.exhausted = false;
        run.iter = Some(it);
        Ok(())
    }

    /// Hands the buffers of batches whose arrays died to the pipeline, which
    /// fills them instead of allocating (and page-faulting) new ones.
    fn feed(&self, it: &EpochIter) {
        let (h, w) = self.inner.image_size();
        while let Some((pixels, extras)) = self.recycler.take_set(&self.inner.options().fields) {
            it.recycle(Batch {
                epoch: 0,
                index: 0,
                keys: Vec::new(),
                rows: Vec::new(),
                padded: Vec::new(),
                height: h,
                width: w,
                pixels,
                extras,
                labels: Vec::new(),
                state: self.inner.start_state(0),
            });
            self.recycled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn batch_dict<'py>(&self, py: Python<'py>, b: Batch) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let (n, h, w) = (b.len(), b.height as usize, b.width as usize);
        let labels = PyDict::new(py);
        for (j, name) in self.inner.label_names().iter().enumerate() {
            let values = b.labels.iter().map(|row| convert::label(py, &row[j])).collect::<PyResult<Vec<_>>>()?;
            labels.set_item(name, PyList::new(py, values)?)?;
        }
        let label_count = self.inner.label_names().len();
        let matrix = numpy::ndarray::Array2::from_shape_vec((n, label_count), b.labels_f32())
            .map_err(|e| usage(format!("label matrix: {e}")))?;
        d.set_item("image", convert::pixels(py, b.pixels, n, h, w, Some((&self.recycler, "image")))?)?;
        for (name, px) in b.extras {
            let array = convert::pixels(py, px, n, h, w, Some((&self.recycler, &name)))?;
            d.set_item(name, array)?;
        }
        d.set_item("keys", PyList::new(py, &b.keys)?)?;
        d.set_item("rows", PyArray::from_vec(py, b.rows.iter().map(|&r| r as i64).collect::<Vec<i64>>()))?;
        d.set_item("padded", PyArray::from_vec(py, b.padded))?;
        d.set_item("labels", labels)?;
        d.set_item("label_array", PyArray::from_owned_array(py, matrix))?;
        d.set_item("epoch", b.epoch)?;
        d.set_item("index", b.index)?;
        // Per batch, so that a DataLoader's main process knows each worker's position.
        d.set_item("state", convert::state(py, &b.state)?)?;
        Ok(d)
    }
}

#[pymethods]
impl Loader {
    /// Opens `source` (a dataset directory, a manifest, or a URL) for streaming.
    #[new]
    #[pyo3(signature = (
        source, *, seed=0, epoch=0, rank=0, world=1, workers=1, worker=0, batch_size=64, shuffle=true,
        shuffle_buffer=512, remainder="drop", access="auto", threads=None, prefetch=4, prefetch_batches=2,
        fields=None, verify_hashes=false, root=None, storage=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        source: &Bound<'_, PyAny>,
        seed: u64,
        epoch: u64,
        rank: u64,
        world: u64,
        workers: u64,
        worker: u64,
        batch_size: usize,
        shuffle: bool,
        shuffle_buffer: usize,
        remainder: &str,
        access: &str,
        threads: Option<usize>,
        prefetch: usize,
        prefetch_batches: usize,
        fields: Option<Vec<String>>,
        verify_hashes: bool,
        root: Option<String>,
        storage: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Loader> {
        let location: String = source.str()?.to_string();
        let defaults = LoaderOptions::default();
        let opts = LoaderOptions {
            seed,
            rank,
            world,
            worker,
            workers,
            batch_size,
            remainder: parse::<Remainder>(remainder)?,
            shuffle,
            shuffle_buffer,
            access: parse::<Access>(access)?,
            decode_threads: threads.unwrap_or(defaults.decode_threads),
            prefetch,
            prefetch_batches,
            verify_hashes,
            // "image" is always delivered; the others are extra arrays.
            fields: fields.unwrap_or_default().into_iter().filter(|f| f != "image").collect(),
            root,
            retry: defaults.retry,
            storage: storage_pairs(storage)?,
        };
        let inner = py.detach(move || chess_shards::Loader::open(&location, opts)).map_err(to_py)?;
        // Buffers come back one per batch taken and are handed on at the next: a few suffice.
        let recycler = Arc::new(Recycler::new(prefetch_batches.max(1)));
        Ok(Loader {
            inner: Arc::new(inner),
            run: Mutex::new(Run { epoch, ..Run::default() }),
            recycler,
            recycled: 0.into(),
        })
    }

    /// Batches per epoch for this consumer (equal on every consumer).
    fn __len__(&self) -> usize {
        self.inner.batches_per_epoch() as usize
    }

    fn __repr__(&self) -> String {
        let o = self.inner.options();
        format!(
            "chess_shards.Loader({:?}, {} samples, rank {}/{}, worker {}/{}, batch {})",
            self.inner.location(),
            self.inner.len(),
            o.rank,
            o.world,
            o.worker,
            o.workers,
            o.batch_size
        )
    }

    /// Starts the current epoch (from the state given to `load_state_dict`,
    /// if any) and returns the loader, which iterates its batches.
    fn __iter__(slf: Bound<'_, Self>) -> PyResult<Bound<'_, Self>> {
        {
            let this = slf.get();
            let mut run = this.lock();
            if run.busy {
                return Err(PyRuntimeError::new_err("the loader is being iterated by another thread"));
            }
            this.start(&mut run).map_err(to_py)?;
        }
        Ok(slf)
    }

    /// The next batch: a dict with `image` (`[B, H, W]` uint16/uint8, the
    /// Rust buffer), the requested extra arrays, `keys`, `rows`, `padded`,
    /// `labels` (name → list), `label_array` (`[B, L]` float32, NaN for
    /// null), `epoch`, `index` and `state` (what `state_dict()` returns after it).
    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let mut it = {
            let mut run = self.lock();
            if run.busy {
                return Err(PyRuntimeError::new_err("the loader is being iterated by another thread"));
            }
            if run.iter.is_none() {
                if run.exhausted {
                    return Ok(None);
                }
                self.start(&mut run).map_err(to_py)?;
            }
            run.busy = true;
            run.iter.take().expect("started")
        };
        self.feed(&it);
        let (it_back, item) = py.detach(move || {
            let item = it.next();
            (it, item)
        });
        it = it_back;
        let mut run = self.lock();
        run.busy = false;
        match item {
            Some(Ok(batch)) => {
                run.last = Some(batch.state);
                run.iter = Some(it);
                drop(run);
                Ok(Some(self.batch_dict(py, batch)?))
            }
            Some(Err(e)) => {
                run.exhausted = true;
                run.report = it.report().cloned().or_else(|| self.inner.last_report());
                Err(to_py(e))
            }
            None => {
                run.exhausted = true;
                run.report = it.report().cloned().or_else(|| self.inner.last_report());
                if run.last.is_none() {
                    run.last = it.state();
                }
                Ok(None)
            }
        }
    }

    /// Selects the epoch the next iteration streams (like
    /// `DistributedSampler.set_epoch`); forgets a loaded state.
    fn set_epoch(&self, epoch: u64) {
        let mut run = self.lock();
        self.stop(&mut run);
        run.epoch = epoch;
        run.pending = None;
        run.last = None;
        run.exhausted = false;
    }

    /// The epoch the next iteration streams.
    #[getter]
    fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// The resume point after the last batch delivered (the start of the
    /// current epoch before any): a dict of ints to save with a checkpoint.
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let run = self.lock();
        let state = run.last.or(run.pending).unwrap_or_else(|| self.inner.start_state(run.epoch));
        convert::state(py, &state)
    }

    /// Makes the next iteration continue from `state` (from `state_dict()`):
    /// its first batch is the one that would have come next. A state taken
    /// with other settings or data is refused when the iteration starts.
    fn load_state_dict(&self, state: &Bound<'_, PyAny>) -> PyResult<()> {
        let state = convert::state_from(state)?;
        let mut run = self.lock();
        self.stop(&mut run);
        run.epoch = state.epoch;
        run.pending = Some(state);
        run.last = None;
        run.exhausted = false;
        Ok(())
    }

    /// The report of the last epoch run that ended (ran out, failed, or was
    /// stopped by `set_epoch` / a new iteration): `expected`, `delivered`,
    /// `skipped` with `skipped_samples` (key, shard, reason), `padded`,
    /// `dropped_remainder`, bytes, seconds, `complete`, `accounted`. None before.
    fn report<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let run = self.lock();
        match &run.report {
            Some(r) => convert::report(py, r),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// Samples in the manifest.
    #[getter]
    fn num_samples(&self) -> usize {
        self.inner.len()
    }

    /// Samples this consumer delivers per epoch (when none is corrupt).
    #[getter]
    fn samples_per_epoch(&self) -> u64 {
        self.inner.samples_per_epoch()
    }

    /// `(height, width)` of every image.
    #[getter]
    fn image_size(&self) -> (u32, u32) {
        self.inner.image_size()
    }

    /// `"uint16"` or `"uint8"`.
    #[getter]
    fn dtype(&self) -> String {
        self.inner.dtype().to_string()
    }

    /// Batch buffers handed back to the pipeline to be filled again (their arrays
    /// had died) instead of allocated anew: the count so far.
    #[getter]
    fn recycled(&self) -> u64 {
        self.recycled.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Names of the label columns (the keys of a batch's `labels`, the columns of `label_array`).
    #[getter]
    fn label_names(&self) -> Vec<String> {
        self.inner.label_names().to_vec()
    }
}
