//! `chess_shards.Dataset`: a dataset directory, a manifest, or an object
//! storage URL opened for random access — its length, keys, `dataset.json`,
//! the manifest (written out for pyarrow), and one sample by one byte-range
//! read of its span (`sample_offset`, `sample_size`).

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chess_schemas::DatasetInfo;
use chess_shards::image::NpyZstDecoder;
use chess_shards::loader::store::Counters;
use chess_shards::loader::{is_url, LoaderError, LoaderOptions, Store};
use chess_shards::reader::{decode_row_bytes, DecodedSample};
use chess_shards::{Manifest, ManifestRow};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert;
use crate::error::{to_py, usage};

/// A dataset opened for random access.
#[pyclass(module = "chess_shards._chess_shards", name = "Dataset", frozen)]
pub struct Dataset {
    location: String,
    store: Store,
    manifest: Manifest,
    info: Option<DatasetInfo>,
}

/// Object-store settings from a Python dict (`object_store`'s key names).
pub fn storage_pairs(storage: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(d) = storage else { return Ok(Vec::new()) };
    if d.is_none() {
        return Ok(Vec::new());
    }
    let items: Vec<(String, Bound<'_, PyAny>)> =
        d.call_method0("items")?.try_iter()?.map(|i| i?.extract()).collect::<PyResult<_>>()?;
    items.into_iter().map(|(k, v)| Ok((k, v.str()?.to_string()))).collect()
}

impl Dataset {
    fn open(location: &str, root: Option<String>, storage: Vec<(String, String)>) -> Result<Dataset, LoaderError> {
        if !is_url(location) && root.is_none() {
            // Local: shards' own Dataset (mixed image sizes allowed).
            let ds = chess_shards::Dataset::open(Path::new(location))?;
            let store = Store::Local(ds.root.clone());
            return Ok(Dataset { location: location.to_string(), store, manifest: ds.manifest, info: ds.info });
        }
        // A URL (or a root override): the loader reads the manifest and dataset.json from the store.
        let opts = LoaderOptions { shuffle: false, batch_size: 1, root, storage, ..LoaderOptions::default() };
        let loader = chess_shards::Loader::open(location, opts)?;
        Ok(Dataset {
            location: location.to_string(),
            store: loader.root_store().clone(),
            manifest: loader.manifest()?.clone(),
            info: loader.info().cloned(),
        })
    }

    fn row_index(&self, which: &Bound<'_, PyAny>) -> PyResult<usize> {
        let n = self.manifest.len();
        if let Ok(i) = which.extract::<i64>() {
            let j = if i < 0 { i + n as i64 } else { i };
            if j < 0 || j >= n as i64 {
                return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                    "sample {i} out of range: {} has {n} samples",
                    self.location
                )));
            }
            return Ok(j as usize);
        }
        let key: String = which.extract()?;
        let view = self.manifest.view();
        (0..n).find(|&i| view.key(i) == key).ok_or_else(|| {
            pyo3::exceptions::PyKeyError::new_err(format!("no sample with key `{key}` in {}", self.location))
        })
    }
}

/// Reads and decodes one sample's span from the store.
fn read_sample(store: &Store, row: &ManifestRow) -> Result<DecodedSample, LoaderError> {
    let end = row.sample_offset + row.sample_size;
    let mut reader = store.open_range(&row.shard, row.sample_offset, end, Arc::new(Counters::default()))?;
    let failure = reader.failure_handle();
    // At most the manifest's span (a few MB), and never more than it says.
    let mut bytes = Vec::new();
    if let Err(e) = (&mut reader).take(row.sample_size).read_to_end(&mut bytes) {
        if let Some(err) = failure.and_then(|f| f.lock().unwrap_or_else(|p| p.into_inner()).take()) {
            return Err(err);
        }
        return Err(LoaderError::Fetch { object: store.name(&row.shard), reason: e.to_string() });
    }
    Ok(decode_row_bytes(&bytes, row, &mut NpyZstDecoder::new())?)
}

#[pymethods]
impl Dataset {
    /// Opens a dataset directory, a manifest (`.parquet`), or a URL
    /// (`s3://bucket/prefix`, `gs://…`, `az://…`, `http(s)://…`).
    /// `storage`: object-store settings overriding the environment
    /// (`endpoint`, `allow_http`, `access_key_id`, `secret_access_key`, `region`).
    /// `root`: dataset root for a manifest, overriding the one recorded in it.
    #[new]
    #[pyo3(signature = (path_or_url, *, storage=None, root=None))]
    fn new(
        py: Python<'_>,
        path_or_url: &Bound<'_, PyAny>,
        storage: Option<&Bound<'_, PyAny>>,
        root: Option<String>,
    ) -> PyResult<Dataset> {
        let location: String = path_or_url.str()?.to_string();
        let storage = storage_pairs(storage)?;
        py.detach(move || Dataset::open(&location, root, storage)).map_err(to_py)
    }

    fn __len__(&self) -> usize {
        self.manifest.len()
    }

    fn __repr__(&self) -> String {
        format!("chess_shards.Dataset({:?}, {} samples)", self.location, self.manifest.len())
    }

    /// Where the dataset was opened from.
    #[getter]
    fn location(&self) -> &str {
        &self.location
    }

    /// The dataset root the shard paths are relative to.
    #[getter]
    fn root(&self) -> String {
        self.store.describe()
    }

    /// `dataset.json` as a dict (None for a manifest whose root has none).
    #[getter]
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.info {
            Some(info) => convert::serde(py, info),
            None => Ok(py.None().into_bound(py)),
        }
    }

    /// The sample keys in manifest order.
    fn keys(&self) -> Vec<String> {
        let view = self.manifest.view();
        (0..self.manifest.len()).map(|i| view.key(i).to_string()).collect()
    }

    /// Names of the label columns.
    #[getter]
    fn label_names(&self) -> Vec<String> {
        self.manifest.columns.labels.iter().map(|l| l.name.clone()).collect()
    }

    /// Writes the manifest as Parquet to `path` (the Python side reads it with pyarrow).
    fn write_manifest(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.manifest.write(&path, self.manifest.dataset_root.as_deref())).map_err(to_py)
    }

    /// `(image, metadata)` of sample `which` (a row index or a key), by one
    /// byte-range read; `field` (`"target"`, `"mask"`) returns that extra
    /// array instead of the image. The metadata is the sample's `<key>.json`.
    #[pyo3(signature = (which, *, field=None))]
    fn sample<'py>(
        &self,
        py: Python<'py>,
        which: &Bound<'py, PyAny>,
        field: Option<String>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let i = self.row_index(which)?;
        let row = self.manifest.view().row(i);
        let store = self.store.clone();
        let row_for_read = row.clone();
        let sample = py.detach(move || read_sample(&store, &row_for_read)).map_err(to_py)?;
        let image = match field {
            None => sample.image,
            Some(f) => sample.extras.into_iter().find(|(name, _)| *name == f).map(|(_, img)| img).ok_or_else(|| {
                usage(format!(
                    "sample `{}` has no `{f}` array (it has: {})",
                    row.key,
                    row.extra_field_names().join(", ")
                ))
            })?,
        };
        let meta = convert::serde(py, &row.sample_meta(&self.manifest.columns.labels))?;
        PyTuple::new(py, [convert::image(py, &image)?, meta])
    }
}
