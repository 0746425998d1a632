//! glibc's allocator settings for the `chess-ingest` binary. Every image
//! allocates a few buffers of its full size (stored values, the float copy,
//! decoded segments: ~14 MB each for a 1955×1841 CR). By default glibc
//! serves those with fresh `mmap`s and gives them back on `free`, so each
//! image pays its page faults and page clearing again (a quarter of the
//! time of a native-syntax ingest, by `perf`). Raising the mmap threshold
//! to glibc's maximum (32 MiB on 64-bit) and the trim threshold keeps the
//! freed pages in the worker's arena for the next image. Peak RSS is
//! unchanged (what is kept is what the previous image used); blocks larger
//! than 32 MiB still come from `mmap`.
#![allow(unsafe_code)]

/// Applies the settings; call before any thread starts.
pub fn keep_freed_image_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, and runs before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
    }
}
