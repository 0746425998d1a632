//! Reading a candidate line with Tesseract (Debian's `libtesseract` 5 with
//! the `eng` model, through the `tesseract-plumbing` binding; feature
//! `ocr`). One engine per worker thread, started on the first line it
//! reads; Tesseract's own messages go to /dev/null, not to stderr.
//! Debian's Tesseract parallelises a read with OpenMP; the ingest already
//! runs a worker per core, so each worker's reads use its own thread only
//! (OpenMP's idle threads would spin on the cores the other workers need).
#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::CString;

use tesseract_plumbing::tesseract_sys::{TessPageSegMode_PSM_SINGLE_LINE, TessPageSegMode_PSM_SINGLE_WORD};
use tesseract_plumbing::TessBaseApi;

thread_local! {
    static ENGINE: RefCell<Option<Option<TessBaseApi>>> = const { RefCell::new(None) };
}

#[link(name = "gomp")]
extern "C" {
    fn omp_set_max_active_levels(levels: std::ffi::c_int);
}

fn start() -> Option<TessBaseApi> {
    // No active parallel level: every OpenMP region (Tesseract's
    // `num_threads` clauses included) runs on the thread that enters it, as
    // OMP_THREAD_LIMIT=1 would, which is read too early to be set here.
    // SAFETY: sets an OpenMP control variable; no memory is involved.
    unsafe { omp_set_max_active_levels(0) };
    let mut api = TessBaseApi::create();
    let eng = CString::new("eng").ok()?;
    if api.init_2(None, Some(&eng)).is_err() {
        tracing::warn!("Tesseract could not start with its `eng` model (tesseract-ocr-eng); burned-in text lines are judged without OCR");
        return None;
    }
    let set = |api: &mut TessBaseApi, k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (CString::new(k), CString::new(v)) {
            let _ = api.set_variable(&k, &v);
        }
    };
    set(&mut api, "debug_file", "/dev/null");
    Some(api)
}

/// How Tesseract segments the crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One line of words: the usual read.
    Line,
    /// One word: Tesseract reads some all-capitals words it misreads as a
    /// line right this way (`ERECT`, read as a line `EREGE`).
    Word,
}

/// Reads one line of dark text on a light background (`w × h`, 8-bit):
/// the text and Tesseract's mean confidence (0..=100). `None` when
/// Tesseract is not available.
pub fn read_line(gray: &[u8], w: usize, h: usize) -> Option<(String, i32)> {
    read(gray, w, h, Layout::Line)
}

/// [`read_line`] with the crop segmented as `layout`.
pub fn read(gray: &[u8], w: usize, h: usize, layout: Layout) -> Option<(String, i32)> {
    ENGINE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let api = slot.get_or_insert_with(start).as_mut()?;
        api.set_page_seg_mode(match layout {
            Layout::Line => TessPageSegMode_PSM_SINGLE_LINE,
            Layout::Word => TessPageSegMode_PSM_SINGLE_WORD,
        });
        api.set_image(gray, w as i32, h as i32, 1, w as i32).ok()?;
        api.set_source_resolution(300);
        let text = api.get_utf8_text().ok()?;
        let s = text.as_ref().to_string_lossy().trim().to_string();
        Some((s, api.mean_text_conf()))
    })
}

/// Whether OCR is built in and its model loads.
pub fn available() -> bool {
    read_line(&[255u8; 64 * 32], 64, 32).is_some()
}
