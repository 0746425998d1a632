//! The module's global allocator: large allocations (batch buffers, tens of
//! MB) are mapped on their own, 2 MiB aligned, and advised for transparent
//! huge pages; everything else goes to the system allocator.
//!
//! Why: a fresh 32 MiB batch buffer mapped in 4 KiB pages costs 8,192 page
//! faults on its first fill — about five times the copy into it (this
//! machine: 27 ms against 5 ms, `gcc -O2` micro-measurement) — and the
//! loader allocates fresh buffers at every epoch start and in every
//! `DataLoader` worker (a process that lives one epoch). In 2 MiB pages the
//! same buffer costs 16 faults (7 ms). Where the kernel gives no huge pages
//! (`/sys/kernel/mm/transparent_hugepage/enabled` is `never`) the advice is
//! ignored and the mapping behaves like the system allocator's own `mmap`
//! of a large block. `CHESS_SHARDS_HUGEPAGES=0` turns the advice off
//! ([`set_hugepages`], read once when the module is imported).
//!
//! Unsafe: the `GlobalAlloc` implementation (raw `mmap`/`munmap`/`mremap`),
//! with its invariants beside it.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

/// Allocations of at least this many bytes are mapped on their own.
const LARGE: usize = 4 << 20;
/// Huge page size (x86-64, aarch64 with 4 KiB base pages).
const HUGE: usize = 2 << 20;
const PAGE: usize = 4096;

static HUGEPAGES: AtomicBool = AtomicBool::new(true);

/// Whether large allocations are advised for transparent huge pages.
pub fn set_hugepages(on: bool) {
    HUGEPAGES.store(on, Ordering::Relaxed);
}

pub struct Allocator;

fn mapped(layout: &Layout) -> bool {
    layout.size() >= LARGE && layout.align() <= HUGE
}

fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Maps `size` bytes (rounded up to pages), 2 MiB aligned, zero-filled.
/// Null on failure.
fn map(size: usize) -> *mut u8 {
    let len = round_up(size, PAGE);
    let Some(span) = len.checked_add(HUGE) else { return std::ptr::null_mut() };
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let base = base as usize;
    let start = round_up(base, HUGE);
    let (head, tail) = (start - base, span - (start - base) - len);
    // SAFETY: the head and tail are parts of the mapping just made, outside
    // `start..start + len`, which nobody else knows of.
    unsafe {
        if head > 0 {
            libc::munmap(base as *mut libc::c_void, head);
        }
        if tail > 0 {
            libc::munmap((start + len) as *mut libc::c_void, tail);
        }
        if HUGEPAGES.load(Ordering::Relaxed) {
            // Advice only: an error (no THP support) leaves 4 KiB pages.
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
    start as *mut u8
}

// SAFETY (for the impl): a block of `size >= LARGE` bytes is always a
// mapping of exactly `round_up(size, PAGE)` bytes starting at the returned
// pointer (from `map` or `mremap`), and `GlobalAlloc` hands back the same
// layout size on `dealloc`/`realloc`, so which kind of block a pointer is
// follows from its layout alone; smaller blocks are the system allocator's.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            map(layout.size())
        } else {
            // SAFETY: forwarded as given.
            unsafe { System.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(&layout) {
            // Fresh anonymous pages are zero.
            map(layout.size())
        } else {
            // SAFETY: forwarded as given.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(&layout) {
            // SAFETY: `ptr` is a mapping of this length (see above).
            unsafe {
                libc::munmap(ptr as *mut libc::c_void, round_up(layout.size(), PAGE));
            }
        } else {
            // SAFETY: forwarded as given.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract: `new_size` > 0, and
        // the layout with `new_size` is valid (it rounds to no overflow).
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(&layout), mapped(&new)) {
            (false, false) => unsafe { System.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: `ptr` is a mapping of the old length; the kernel
                // moves its pages (no copy) and the result is a mapping of
                // the new length, as `dealloc` expects.
                let (old_len, new_len) = (round_up(layout.size(), PAGE), round_up(new_size, PAGE));
                if old_len == new_len {
                    return ptr;
                }
                let moved = unsafe { libc::mremap(ptr as *mut libc::c_void, old_len, new_len, libc::MREMAP_MAYMOVE) };
                if moved == libc::MAP_FAILED {
                    std::ptr::null_mut()
                } else {
                    moved as *mut u8
                }
            }
            _ => {
                // Across the threshold: a new block of the other kind and a copy.
                // SAFETY: `new` is a valid layout; the copy covers what both
                // blocks hold; the old block is freed with its own layout.
                unsafe {
                    let fresh = self.alloc(new);
                    if !fresh.is_null() {
                        std::ptr::copy_nonoverlapping(ptr, fresh, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                    fresh
                }
            }
        }
    }
}
