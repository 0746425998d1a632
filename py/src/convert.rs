//! Rust values → Python objects: pixel buffers as NumPy arrays that keep
//! the Rust allocation (no copy), label values, JSON values (metadata,
//! `dataset.json`), loader states and epoch reports as dicts.

use chess_schemas::PixelDtype;
use chess_shards::image::Image;
use chess_shards::loader::{EpochReport, LoaderState, Pixels};
use chess_shards::LabelValue;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::buffer::{BatchBuffer, Recycler};
use crate::error::usage;

/// `[n, h, w]` pixels as a NumPy array whose base is a [`BatchBuffer`]
/// holding the Rust `Vec`: nothing is copied. With `recycle`, the buffer
/// goes back to that loader when the array dies.
pub fn pixels<'py>(
    py: Python<'py>,
    px: Pixels,
    n: usize,
    h: usize,
    w: usize,
    recycle: Option<(&std::sync::Arc<Recycler>, &str)>,
) -> PyResult<Bound<'py, PyAny>> {
    if px.len() != n * h * w {
        return Err(usage(format!("a batch of {n}x{h}x{w} pixels holds {} values", px.len())));
    }
    BatchBuffer::into_array(py, px, [n, h, w], recycle)
}

/// One decoded image as a `[h, w]` array of its dtype.
pub fn image<'py>(py: Python<'py>, img: &Image) -> PyResult<Bound<'py, PyAny>> {
    let (h, w) = (img.height as usize, img.width as usize);
    let px = match img.dtype {
        PixelDtype::Uint16 => Pixels::U16(img.to_u16()),
        PixelDtype::Uint8 => Pixels::U8(img.data.clone()),
    };
    let arr = pixels(py, px, 1, h, w, None)?;
    arr.call_method1("reshape", ((h, w),))
}

pub fn label<'py>(py: Python<'py>, v: &LabelValue) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        LabelValue::Null => py.None().into_bound(py),
        LabelValue::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        LabelValue::Int(i) => i.into_pyobject(py)?.into_any(),
        LabelValue::Float(f) => f.into_pyobject(py)?.into_any(),
        LabelValue::Str(s) => s.into_pyobject(py)?.into_any(),
    })
}

/// A JSON value as the Python value `json.loads` would give.
pub fn json<'py>(py: Python<'py>, v: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match v {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => u.into_pyobject(py)?.into_any(),
            (_, Some(i), _) => i.into_pyobject(py)?.into_any(),
            (_, _, f) => f.unwrap_or(f64::NAN).into_pyobject(py)?.into_any(),
        },
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            PyList::new(py, items.iter().map(|x| json(py, x)).collect::<PyResult<Vec<_>>>()?)?.into_any()
        }
        Value::Object(map) => {
            let d = PyDict::new(py);
            for (k, x) in map {
                d.set_item(k, json(py, x)?)?;
            }
            d.into_any()
        }
    })
}

/// Any serialisable value through JSON.
pub fn serde<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    json(py, &serde_json::to_value(v).map_err(|e| usage(e.to_string()))?)
}

/// The loader state as a dict of ints (what `state_dict()` returns).
pub fn state<'py>(py: Python<'py>, s: &LoaderState) -> PyResult<Bound<'py, PyAny>> {
    serde(py, s)
}

/// A dict from `state_dict()` back to a state; a missing or mistyped entry is a `ValueError`.
pub fn state_from(d: &Bound<'_, PyAny>) -> PyResult<LoaderState> {
    let json_mod = d.py().import("json")?;
    let text: String = json_mod.call_method1("dumps", (d,))?.extract()?;
    serde_json::from_str(&text).map_err(|e| usage(format!("not a chess_shards loader state: {e}")))
}

/// The epoch report: expected / delivered / skipped (with the skipped samples), bytes, seconds.
pub fn report<'py>(py: Python<'py>, r: &EpochReport) -> PyResult<Bound<'py, PyAny>> {
    let d = serde(py, r)?;
    d.set_item("accounted", r.accounted())?;
    Ok(d)
}
