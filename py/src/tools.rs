//! The manifest tools users script, as `chess-shards` runs them:
//! `fractions` (per-fraction training manifests), `balance` (class-balanced
//! manifests) and `subset` (rows by key and/or `--where` expression). Each
//! writes manifests with the same library calls as the command, so the
//! files are the same, and returns what the command prints.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chess_shards::dataset::DatasetFiles;
use chess_shards::{balance as bal, fractions as frac, ops, Dataset};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::error::{to_py, usage};

fn open(py: Python<'_>, dataset: PathBuf) -> PyResult<Dataset> {
    py.detach(move || Dataset::open(&dataset)).map_err(to_py)
}

/// Writes per-fraction training manifests (`train-f<F>-r<RR>.parquet`,
/// `valid.parquet`, `test.parquet`, `summary.csv`, `fractions.json`) into
/// `out`, like `chess-shards fractions`; returns one dict per manifest
/// (`name`, `path`, `images`, `groups`, `positives`: label → (positives, non-null)).
#[pyfunction]
#[pyo3(signature = (
    dataset, out, *, fractions=vec![0.01, 0.1, 0.5, 1.0], repeats=10, seed=0, group_by="patient", views="frontal",
    labels=None, uncertain="ones", test_fraction=None, valid_fraction=None
))]
#[allow(clippy::too_many_arguments)]
pub fn fractions<'py>(
    py: Python<'py>,
    dataset: PathBuf,
    out: PathBuf,
    fractions: Vec<f64>,
    repeats: u32,
    seed: u64,
    group_by: &str,
    views: &str,
    labels: Option<Vec<String>>,
    uncertain: &str,
    test_fraction: Option<f64>,
    valid_fraction: Option<f64>,
) -> PyResult<Bound<'py, PyList>> {
    let group_by = match group_by {
        "patient" => frac::GroupBy::Patient,
        "study" => frac::GroupBy::Study,
        "image" => frac::GroupBy::Image,
        other => return Err(usage(format!("group_by must be patient, study or image, not `{other}`"))),
    };
    let views = match views {
        "frontal" => frac::Views::Frontal,
        "all" => frac::Views::All,
        other => return Err(usage(format!("views must be frontal or all, not `{other}`"))),
    };
    let uncertain = match uncertain {
        "ones" => frac::Uncertain::Ones,
        "zeros" => frac::Uncertain::Zeros,
        "ignore" => frac::Uncertain::Ignore,
        other => return Err(usage(format!("uncertain must be ones, zeros or ignore, not `{other}`"))),
    };
    let labels = labels.unwrap_or_else(|| frac::COMPETITION_LABELS.iter().map(|s| s.to_string()).collect());
    let opts = frac::FractionOptions {
        fractions,
        repeats,
        seed,
        group_by,
        views,
        labels: labels.clone(),
        uncertain,
        test_fraction,
        valid_fraction,
    };
    // The file path of `chess-shards fractions`: only the columns it needs in memory, the same files out.
    let summaries = py
        .detach(|| DatasetFiles::open(&dataset).and_then(|files| frac::build_files(&files, &opts, &out)))
        .map_err(to_py)?;
    let list = PyList::empty(py);
    for s in summaries {
        let d = PyDict::new(py);
        d.set_item("name", &s.name)?;
        d.set_item("path", s.path.to_string_lossy().to_string())?;
        d.set_item("images", s.images)?;
        d.set_item("groups", s.groups)?;
        let pos = PyDict::new(py);
        for (label, p) in labels.iter().zip(&s.positives) {
            pos.set_item(label, *p)?;
        }
        d.set_item("positives", pos)?;
        list.append(d)?;
    }
    Ok(list)
}

/// Writes a class-balanced manifest to `out`, like `chess-shards balance`:
/// `mode` is `"full"`, `"undersample"` (`per_class` images per class, the
/// smallest class by default) or `"counts"` (`counts`: class → images, or
/// `"normal=336,nodule=560"`). Returns `{"classes": [{class, available,
/// selected, repeated}], "unlabelled": rows without a class}`.
#[pyfunction]
#[pyo3(signature = (dataset, out, *, column, mode="full", per_class=None, counts=None, seed=0))]
#[allow(clippy::too_many_arguments)]
pub fn balance<'py>(
    py: Python<'py>,
    dataset: PathBuf,
    out: PathBuf,
    column: String,
    mode: &str,
    per_class: Option<usize>,
    counts: Option<&Bound<'py, PyAny>>,
    seed: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let mode = match mode {
        "full" => bal::BalanceMode::Full,
        "undersample" => bal::BalanceMode::Undersample(per_class),
        "counts" => {
            let counts = counts.ok_or_else(|| usage("mode=\"counts\" needs counts={class: images, ...}"))?;
            let map: BTreeMap<String, usize> = match counts.extract::<String>() {
                Ok(text) => bal::parse_counts(&text).map_err(to_py)?,
                Err(_) => counts.extract()?,
            };
            bal::BalanceMode::Counts(map)
        }
        other => return Err(usage(format!("mode must be full, undersample or counts, not `{other}`"))),
    };
    let ds = open(py, dataset)?;
    let (reports, unlabelled) = py.detach(|| bal::balance(&ds, &column, &mode, seed, &out)).map_err(to_py)?;
    let classes = PyList::empty(py);
    for r in reports {
        let d = PyDict::new(py);
        d.set_item("class", r.class)?;
        d.set_item("available", r.available)?;
        d.set_item("selected", r.selected)?;
        d.set_item("repeated", r.repeated)?;
        classes.append(d)?;
    }
    let result = PyDict::new(py);
    result.set_item("classes", classes)?;
    result.set_item("unlabelled", unlabelled)?;
    Ok(result)
}

/// Writes the rows of `dataset` whose key is in `keys` and that match
/// `where` (each optional; the `chess-shards subset --where` syntax) as a
/// manifest at `out` that records the dataset root, like `chess-shards
/// subset`. Every key must exist. Returns the number of rows written.
#[pyfunction]
#[pyo3(signature = (dataset, out, *, keys=None, r#where=None))]
pub fn subset(
    py: Python<'_>,
    dataset: PathBuf,
    out: PathBuf,
    keys: Option<Vec<String>>,
    r#where: Option<String>,
) -> PyResult<usize> {
    let ds = open(py, dataset)?;
    py.detach(|| {
        let batch = ops::subset(&ds, keys.as_deref(), r#where.as_deref())?;
        let n = batch.num_rows();
        ops::write_subset(&ds, batch, &out)?;
        Ok::<_, chess_shards::ShardError>(n)
    })
    .map_err(to_py)
}
