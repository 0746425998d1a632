//! Batch pixel buffers shared with NumPy without a copy, and handed back to
//! their loader when the array dies.
//!
//! A batch's `Vec` moves into a [`BatchBuffer`] (a Python object) that is
//! the NumPy array's base. A fresh 32 MB batch buffer costs its allocation
//! and a page fault per 4 KiB page on first write — about four times the
//! copy into it — so when the array (and any tensor made from it) is gone,
//! the buffer goes to the loader's [`Recycler`], and the loader hands it to
//! the Rust pipeline (`EpochIter::recycle`) for a later batch.
//!
//! Unsafe: the one `borrow_from_array` in [`view`] (an array over memory
//! owned by its base object), with its safety argument beside it.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chess_shards::loader::Pixels;
use numpy::ndarray::ArrayViewMut3;
use numpy::{Element, PyArray3};
use pyo3::prelude::*;

/// Free batch buffers of one loader, by field (`image`, `target`, …).
pub struct Recycler {
    free: Mutex<HashMap<String, Vec<Pixels>>>,
    /// Buffers kept per field; more are freed.
    cap: usize,
}

impl Recycler {
    pub fn new(cap: usize) -> Recycler {
        Recycler { free: Mutex::new(HashMap::new()), cap }
    }

    fn give(&self, field: &str, px: Pixels) {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let list = free.entry(field.to_string()).or_default();
        if list.len() < self.cap {
            list.push(px);
        }
    }

    /// One free buffer for `image` and for each of `extras`, or none.
    pub fn take_set(&self, extras: &[String]) -> Option<(Pixels, Vec<(String, Pixels)>)> {
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        let ready = |f: &str| free.get(f).is_some_and(|l| !l.is_empty());
        if !ready("image") || !extras.iter().all(|f| ready(f)) {
            return None;
        }
        let mut pop = |f: &str| free.get_mut(f).and_then(|l| l.pop()).expect("checked above");
        let image = pop("image");
        let extras = extras.iter().map(|f| (f.clone(), pop(f))).collect();
        Some((image, extras))
    }
}

/// The owner of a NumPy array's pixels: the Rust `Vec` of a batch (or
/// sample). Python sees it as the array's `base`.
#[pyclass(module = "chess_shards._chess_shards", name = "BatchBuffer", frozen)]
pub struct BatchBuffer {
    /// Taken out only by `Drop`; NumPy writes through the pointer it was given.
    pixels: Mutex<Option<Pixels>>,
    /// Start of the pixel bytes (what the array's data pointer is).
    address: usize,
    recycle: Option<(Arc<Recycler>, String)>,
}

impl BatchBuffer {
    /// Moves `px` into a new `BatchBuffer` and returns a C-contiguous
    /// array of `shape` over it (`shape`'s product must be `px.len()`).
    pub fn into_array<'py>(
        py: Python<'py>,
        mut px: Pixels,
        shape: [usize; 3],
        recycle: Option<(&Arc<Recycler>, &str)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let recycle = recycle.map(|(r, f)| (r.clone(), f.to_string()));
        match &mut px {
            Pixels::U16(v) => {
                let ptr = v.as_mut_ptr();
                let owner =
                    Bound::new(py, BatchBuffer { address: ptr as usize, pixels: Mutex::new(Some(px)), recycle })?;
                Ok(view(ptr, shape, owner).into_any())
            }
            Pixels::U8(v) => {
                let ptr = v.as_mut_ptr();
                let owner =
                    Bound::new(py, BatchBuffer { address: ptr as usize, pixels: Mutex::new(Some(px)), recycle })?;
                Ok(view(ptr, shape, owner).into_any())
            }
        }
    }
}

/// An array over `ptr` whose base is `owner`, which keeps the memory alive.
fn view<'py, T: Element>(ptr: *mut T, shape: [usize; 3], owner: Bound<'py, BatchBuffer>) -> Bound<'py, PyArray3<T>> {
    // SAFETY: `ptr` is the start of a Vec of exactly shape[0]*shape[1]*shape[2]
    // elements (checked by the caller) owned by `owner`, which is never
    // reallocated and is freed only when `owner` (the array's base) dies.
    unsafe {
        let a = ArrayViewMut3::from_shape_ptr((shape[0], shape[1], shape[2]), ptr);
        PyArray3::borrow_from_array(&a, owner.into_any())
    }
}

#[pymethods]
impl BatchBuffer {
    /// Address of the first pixel: equal to the array's data pointer (no copy was made).
    #[getter]
    fn address(&self) -> usize {
        self.address
    }

    /// Bytes held.
    fn __len__(&self) -> usize {
        self.pixels.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(0, Pixels::byte_len)
    }
}

impl Drop for BatchBuffer {
    fn drop(&mut self) {
        let px = self.pixels.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        if let (Some(px), Some((recycler, field))) = (px, &self.recycle) {
            recycler.give(field, px);
        }
    }
}
