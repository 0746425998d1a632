//! Read-only memory maps of local shard files: the one place of the loader
//! that needs `unsafe` (`mmap`, `munmap`, and handing out slices of the
//! mapping).
//!
//! Why: copying a sample out of a mapping whose page-table entries are
//! already there is a plain `memcpy` out of the page cache, about twice as
//! fast per CPU-second as `pread` of the same bytes (measured on this
//! project's machines: see `BENCHMARKS.md`, the loader table), and the
//! loader keeps a shard's mapping for the loader's lifetime
//! ([`super::local::ShardFiles`]) so that later epochs fault nothing in.
//!
//! Safety argument, and what it asks of the user: a slice of a shared file
//! mapping stays valid memory while the mapping exists (we never unmap
//! while a [`Mapping`] is alive: `munmap` is in `Drop`), and the bytes
//! cannot be changed by us (`PROT_READ`). Two things outside the process can
//! still happen: another process writing the file in place changes bytes
//! under a `&[u8]` (the loader only copies them and checks the copy, so
//! that costs corrupt data, not memory safety in practice), and a file
//! truncated below a mapped page makes an access to that page raise
//! `SIGBUS`. Shards are immutable once written (the writer stages them and
//! renames them into place, and never rewrites one); the loader maps only
//! the length the file had when it was opened and bounds every read by it,
//! so a shard truncated *before* it is opened is read as truncated (its
//! samples reported, not a crash). Truncating a shard while a loader has
//! it open is not supported; set `CHESS_LOADER_MMAP=0` to read with
//! `pread` instead (e.g. on network filesystems where other hosts rewrite
//! files).
#![allow(unsafe_code)]

use std::fs::File;
use std::os::fd::AsRawFd;

/// A read-only shared mapping of the first `len` bytes of a file.
pub(crate) struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is read-only memory owned by this value; sharing
// `&[u8]` views of it between threads is as safe as sharing any `&[u8]`.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file` (its length when opened). `None` when the
    /// file is empty or the filesystem does not support mapping (the
    /// caller reads with `pread` then).
    pub fn new(file: &File, len: u64) -> Option<Mapping> {
        let len = usize::try_from(len).ok().filter(|&l| l > 0)?;
        // SAFETY: a fresh mapping chosen by the kernel (no fixed address), of
        // a file descriptor we own; failure is reported as MAP_FAILED.
        let ptr =
            unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, file.as_raw_fd(), 0) };
        if ptr == libc::MAP_FAILED {
            return None;
        }
        Some(Mapping { ptr, len })
    }

    /// The mapped bytes.
    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `ptr..ptr + len` is mapped readable until `self` drops; see
        // the module's note on files changed under the mapping.
        unsafe { std::slice::from_raw_parts(self.ptr as *const u8, self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; no slice of it outlives
        // `self` (they borrow it).
        unsafe {
            libc::munmap(self.ptr, self.len);
        }
    }
}

/// Bytes of physical memory (`sysconf`), or 8 GiB when unknown.
pub(crate) fn physical_memory() -> u64 {
    // SAFETY: sysconf only reads system settings.
    let (pages, size) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    if pages > 0 && size > 0 {
        pages as u64 * size as u64
    } else {
        8 << 30
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_the_length_given_and_refuses_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let file = File::open(&path).unwrap();
        let m = Mapping::new(&file, 10).unwrap();
        assert_eq!(m.bytes(), b"0123456789");
        let m = Mapping::new(&file, 4).unwrap();
        assert_eq!(m.bytes(), b"0123");
        std::fs::write(dir.path().join("e"), b"").unwrap();
        assert!(Mapping::new(&File::open(dir.path().join("e")).unwrap(), 0).is_none());
    }
}
