//! Panics inside codecs, caught without a word on stderr.
//!
//! The pixel decoders (dicom-rs's RLE, OpenJPEG/CharLS glue, libjpeg-turbo's
//! wrapper) run on hostile bytes; a panic in one of them must become a
//! `decode_error` reject, not a message on the terminal. [`catch`] runs a
//! closure under `catch_unwind` with a process-wide panic hook (installed
//! once, wrapping whatever hook was there) that stays silent while the
//! current thread is inside [`catch`] — or, for the codecs' own rayon tasks,
//! while any thread of a rayon pool is. Every other panic is reported by the
//! previous hook as before.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}
/// Quiet sections open on any thread (for panics on rayon helper threads).
static OPEN: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

fn install() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let here = DEPTH.with(|d| d.get()) > 0;
            let pool_task = rayon::current_thread_index().is_some() && OPEN.load(Ordering::Relaxed) > 0;
            if !(here || pool_task) {
                previous(info);
            }
        }));
    });
}

/// Runs `f`; a panic becomes `Err` with its message.
pub fn catch<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    install();
    DEPTH.with(|d| d.set(d.get() + 1));
    OPEN.fetch_add(1, Ordering::Relaxed);
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    OPEN.fetch_sub(1, Ordering::Relaxed);
    DEPTH.with(|d| d.set(d.get() - 1));
    r.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic without a message".into())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_is_an_error_with_its_message() {
        let r: Result<(), String> = super::catch(|| panic!("index out of bounds: the len is 4 but the index is 4"));
        assert_eq!(r.unwrap_err(), "index out of bounds: the len is 4 but the index is 4");
        assert_eq!(super::catch(|| 7).unwrap(), 7);
    }
}
