//! Local shards read in place: the tar headers of a byte range are walked
//! out of a memory map of the shard file ([`ShardFiles`] keeps each mapping
//! for the loader's lifetime, so later epochs copy without page faults) or
//! with positioned reads (`pread`: `CHESS_LOADER_MMAP=0`, or a file that
//! cannot be mapped), and the pixels of a `.npy.zst` member stored as raw
//! zstd blocks are located in the file rather than read, so that they are
//! copied once, from the page cache straight into the batch slot
//! ([`FilePixels`]). A member compressed for real is decoded in place out
//! of the mapping ([`FileMember`]), or read whole (one copy into a pooled
//! buffer) for a decode thread when the file is read with `pread`.
//!
//! Every read is bounded by the file's length when it was opened: a shard
//! truncated before that reads as truncated (its samples reported), never
//! as a fault. Shards must not be truncated while a loader has them open
//! (see [`super::mapped`]).
//!
//! Errors are those of the streaming reader over the same bytes
//! ([`crate::tar::TarError`] with offsets, a member twice in one sample), so
//! that the pipeline loses exactly the same samples on damage. Members this
//! walker does not handle (GNU long names, pax records, directories: never
//! written by this crate) end the walk with [`WalkError::Foreign`], and the
//! pipeline reads that part with the streaming reader instead.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::mapped::Mapping;
use super::store::Counters;

use crate::error::ShardError;
use crate::image::{raw_block_header, raw_frame_header};
use crate::npy::{self, NpyHeader};
use crate::reader::split_member_name;
use crate::tar::{padded, parse_header_block, TarError, BLOCK};

/// Bytes read at the start of a member to find its frame and `.npy` headers.
const PREFIX: u64 = 4096;

/// An open shard file and its length when opened (what bounds every read
/// of it): mapped into memory ([`Mapping`]: reads are copies out of the
/// mapping, the file descriptor closed), or read with `pread`.
pub(crate) struct LocalFile {
    bytes: FileBytes,
    pub len: u64,
    /// The path, for messages.
    pub name: String,
}

enum FileBytes {
    Mapped(Mapping),
    Read(File),
}

impl LocalFile {
    /// Opens a shard file, mapped when `map` is set and the filesystem
    /// allows it (otherwise read with `pread`).
    pub fn open(path: &std::path::Path, map: bool) -> std::io::Result<LocalFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        let bytes = match map.then(|| Mapping::new(&file, len)).flatten() {
            Some(m) => FileBytes::Mapped(m),
            None => FileBytes::Read(file),
        };
        Ok(LocalFile { bytes, len, name: path.display().to_string() })
    }

    /// Whether reads are copies out of a mapping.
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, FileBytes::Mapped(_))
    }

    /// Bytes `offset..offset + len` in place, when mapped (`None` when read
    /// with `pread`, or out of the file's bounds).
    pub fn mapped(&self, offset: u64, len: usize) -> Option<&[u8]> {
        match &self.bytes {
            FileBytes::Mapped(m) => {
                let from = usize::try_from(offset).ok()?;
                m.bytes().get(from..from.checked_add(len)?)
            }
            FileBytes::Read(_) => None,
        }
    }

    /// Fills `out` with the bytes at `offset`: a copy out of the mapping,
    /// or one `pread`. Bytes past the length the file had when opened are
    /// an `UnexpectedEof` error either way.
    pub fn read_at(&self, out: &mut [u8], offset: u64) -> std::io::Result<()> {
        match &self.bytes {
            FileBytes::Mapped(_) => {
                let src = self.mapped(offset, out.len()).ok_or_else(|| {
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end of the shard file")
                })?;
                out.copy_from_slice(src);
                Ok(())
            }
            FileBytes::Read(file) => {
                if offset.checked_add(out.len() as u64).is_none_or(|end| end > self.len) {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "read past the end of the shard file",
                    ));
                }
                file.read_exact_at(out, offset)
            }
        }
    }
}

/// The local shard files of one loader, shared by its epochs. Mapped files
/// stay mapped (and so their page-table entries in place: a later epoch
/// copies without a page fault) until the mapped bytes would pass a budget
/// (half the machine's memory, at most [`MAX_MAPPED_FILES`] files); then
/// the least recently used are let go (unmapped when the last sample read
/// from them has been copied). Files read with `pread` are opened per read
/// run, as before (no descriptors held between runs).
pub(crate) struct ShardFiles {
    map: bool,
    budget: u64,
    open: Mutex<MappedSet>,
}

/// Mappings kept at most (the kernel's default `vm.max_map_count` is 65,530).
pub(crate) const MAX_MAPPED_FILES: usize = 4096;

#[derive(Default)]
struct MappedSet {
    files: HashMap<u32, (Arc<LocalFile>, u64)>,
    bytes: u64,
    tick: u64,
}

impl ShardFiles {
    /// `map`: map local shards (else `pread` only); `budget`: mapped bytes kept.
    pub fn new(map: bool, budget: u64) -> ShardFiles {
        ShardFiles { map, budget, open: Mutex::new(MappedSet::default()) }
    }

    /// Mapping unless `CHESS_LOADER_MMAP=0`, with half the physical memory as budget.
    pub fn from_env() -> ShardFiles {
        let map = std::env::var("CHESS_LOADER_MMAP").map_or(true, |v| v != "0");
        ShardFiles::new(map, crate::loader::mapped::physical_memory() / 2)
    }

    /// Shard `index` (at `path`), mapped once and kept, or opened for `pread`.
    pub fn open(&self, index: u32, path: &std::path::Path) -> std::io::Result<Arc<LocalFile>> {
        if !self.map {
            return Ok(Arc::new(LocalFile::open(path, false)?));
        }
        let mut set = self.open.lock().unwrap_or_else(|p| p.into_inner());
        set.tick += 1;
        let tick = set.tick;
        if let Some((file, used)) = set.files.get_mut(&index) {
            *used = tick;
            return Ok(file.clone());
        }
        let file = Arc::new(LocalFile::open(path, true)?);
        if !file.is_mapped() {
            return Ok(file);
        }
        while !set.files.is_empty() && (set.bytes + file.len > self.budget || set.files.len() >= MAX_MAPPED_FILES) {
            let oldest = set.files.iter().min_by_key(|(_, (_, used))| *used).map(|(&k, _)| k).expect("not empty");
            if let Some((gone, _)) = set.files.remove(&oldest) {
                set.bytes -= gone.len;
            }
        }
        if file.len <= self.budget {
            set.bytes += file.len;
            set.files.insert(index, (file.clone(), tick));
        }
        Ok(file)
    }

    /// Files kept mapped now, and their bytes.
    #[cfg(test)]
    pub fn kept(&self) -> (usize, u64) {
        let set = self.open.lock().unwrap_or_else(|p| p.into_inner());
        (set.files.len(), set.bytes)
    }
}

/// A member's place in the shard (its data not read).
#[derive(Debug, Clone)]
pub(crate) struct MemberSpan {
    pub name: String,
    pub header_offset: u64,
    pub data_offset: u64,
    pub size: u64,
}

/// The members of one sample, headers only.
#[derive(Debug)]
pub(crate) struct LocalSample {
    pub key: String,
    pub members: Vec<(String, MemberSpan)>,
}

/// Where an array's pixels lie in a shard file: the payloads of its raw
/// blocks, the `.npy` header left out. Concatenated, they are the array's
/// little-endian pixel bytes; none splits a pixel.
#[derive(Clone)]
pub(crate) struct FilePixels {
    pub file: Arc<LocalFile>,
    pub header: NpyHeader,
    /// `(file offset, length)`.
    pub pieces: Vec<(u64, usize)>,
}

impl FilePixels {
    pub fn len(&self) -> usize {
        self.pieces.iter().map(|p| p.1).sum()
    }

    /// Reads the pixels into `out` (exactly [`FilePixels::len`] bytes).
    pub fn read_into(&self, out: &mut [u8]) -> std::io::Result<()> {
        let mut at = 0;
        for &(offset, len) in &self.pieces {
            self.file.read_at(&mut out[at..at + len], offset)?;
            at += len;
        }
        Ok(())
    }
}

/// A whole member in a mapped shard file (for the decoder, which reads it
/// in place).
#[derive(Clone)]
pub(crate) struct FileMember {
    pub file: Arc<LocalFile>,
    pub offset: u64,
    pub len: usize,
}

impl FileMember {
    /// The member's bytes in the mapping (`None` only if the file is not
    /// mapped, which [`Walker::locate`] never hands out).
    pub fn bytes(&self) -> Option<&[u8]> {
        self.file.mapped(self.offset, self.len)
    }
}

/// A needed member, located or read.
pub(crate) enum Located {
    /// Raw blocks: copied from the file when the batch is assembled.
    InFile(FilePixels),
    /// A member the fast path does not take (compressed blocks, or a frame
    /// it does not handle) in a mapped file, for the decoder.
    Member(FileMember),
    /// The same read whole (files read with `pread`).
    Bytes(Vec<u8>),
}

/// Why a walk stopped without a sample.
pub(crate) enum WalkError {
    /// Damage, with the same error the streaming reader gives.
    Shard(ShardError),
    /// A member kind this walker leaves to the streaming reader, in the
    /// sample whose first header is at `sample_start`.
    Foreign { sample_start: u64 },
    /// Reading the file failed.
    Io(std::io::Error),
}

/// Walks the samples of bytes `pos..end` of a shard file.
pub(crate) struct Walker {
    file: Arc<LocalFile>,
    shard: String,
    pos: u64,
    /// `end`, or the file's end if that comes first.
    end: u64,
    pending: Option<MemberSpan>,
    done: bool,
    counters: Arc<Counters>,
}

impl Walker {
    pub fn new(file: Arc<LocalFile>, shard: String, start: u64, end: u64, counters: Arc<Counters>) -> Walker {
        let end = end.min(file.len);
        Walker { file, shard, pos: start, end, pending: None, done: false, counters }
    }

    /// The shard file's path, for messages.
    pub fn file_name(&self) -> &str {
        &self.file.name
    }

    fn tar_err(&self, cause: TarError) -> WalkError {
        WalkError::Shard(ShardError::Tar { shard: self.shard.clone(), cause })
    }

    /// The next regular member, as `TarStream::next_member` would find it.
    fn next_member(&mut self) -> Result<Option<MemberSpan>, WalkError> {
        if let Some(m) = self.pending.take() {
            return Ok(Some(m));
        }
        if self.done || self.pos >= self.end {
            self.done = true;
            return Ok(None);
        }
        let header_offset = self.pos;
        if header_offset + BLOCK > self.end {
            return Err(self.tar_err(TarError::BadHeader {
                offset: header_offset,
                reason: "archive ends inside a header".into(),
            }));
        }
        let mut copy = [0u8; 512];
        let block: &[u8; 512] = match self.file.mapped(header_offset, 512).and_then(|b| b.try_into().ok()) {
            Some(b) => b,
            None => {
                self.file.read_at(&mut copy, header_offset).map_err(WalkError::Io)?;
                &copy
            }
        };
        let Some(h) = parse_header_block(block, header_offset).map_err(|e| self.tar_err(e))? else {
            self.done = true;
            return Ok(None);
        };
        if !h.is_regular() {
            return Err(WalkError::Foreign { sample_start: header_offset });
        }
        let data_offset = header_offset + BLOCK;
        if data_offset + padded(h.size) > self.end {
            return Err(self.tar_err(TarError::Truncated { name: h.name, offset: header_offset, size: h.size }));
        }
        self.pos = data_offset + padded(h.size);
        // Counted as walked, like the bytes a streaming read consumes.
        self.counters.read_bytes.fetch_add(self.pos - header_offset, Ordering::Relaxed);
        Ok(Some(MemberSpan { name: h.name, header_offset, data_offset, size: h.size }))
    }

    /// The next sample: consecutive members with one key.
    pub fn next_sample(&mut self) -> Result<Option<LocalSample>, WalkError> {
        let first = match self.next_member() {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => return Err(e),
        };
        let start = first.header_offset;
        let foreign = |e: WalkError| match e {
            WalkError::Foreign { .. } => WalkError::Foreign { sample_start: start },
            other => other,
        };
        let (key, suffix) = split_member_name(&first.name);
        let key = key.to_string();
        let mut sample = LocalSample { key: key.clone(), members: vec![(suffix.to_string(), first.clone())] };
        while let Some(member) = self.next_member().map_err(foreign)? {
            let (k, s) = split_member_name(&member.name);
            if k != key {
                self.pending = Some(member);
                break;
            }
            if sample.members.iter().any(|(existing, _)| existing == s) {
                return Err(WalkError::Shard(ShardError::Member {
                    shard: self.shard.clone(),
                    member: member.name.clone(),
                    reason: "appears twice in one sample".into(),
                }));
            }
            sample.members.push((s.to_string(), member));
        }
        Ok(Some(sample))
    }

    /// Locates a `.npy.zst` member's pixels, or reads it whole (into a
    /// buffer from `take`) when it is not a frame of raw blocks holding a
    /// `.npy` with its header in the first block.
    pub fn locate(&self, m: &MemberSpan, take: impl FnOnce() -> Vec<u8>) -> std::io::Result<Located> {
        let file = &self.file;
        let mut head = [0u8; PREFIX as usize];
        let n = m.size.min(PREFIX) as usize;
        let prefix: &[u8] = match file.mapped(m.data_offset, n) {
            Some(p) => p,
            None => {
                file.read_at(&mut head[..n], m.data_offset)?;
                &head[..n]
            }
        };
        if let Some(pixels) = self.raw_pieces(m, prefix)? {
            return Ok(Located::InFile(pixels));
        }
        if file.is_mapped() {
            // Decoded straight out of the mapping: no copy of the member.
            return Ok(Located::Member(FileMember { file: file.clone(), offset: m.data_offset, len: m.size as usize }));
        }
        let mut buf = take();
        buf.clear();
        buf.resize(m.size as usize, 0); // bounded: the walker checked the bytes exist
        file.read_at(&mut buf, m.data_offset)?;
        Ok(Located::Bytes(buf))
    }

    fn raw_pieces(&self, m: &MemberSpan, prefix: &[u8]) -> std::io::Result<Option<FilePixels>> {
        let Some((content, first_block)) = raw_frame_header(prefix) else { return Ok(None) };
        let mut at = first_block as u64;
        let mut pieces: Vec<(u64, usize)> = Vec::new();
        let mut total = 0u64;
        loop {
            if at + 3 > m.size {
                return Ok(None);
            }
            let mut h = [0u8; 3];
            match prefix.get(at as usize..at as usize + 3) {
                Some(bytes) => h.copy_from_slice(bytes),
                None => self.file.read_at(&mut h, m.data_offset + at)?,
            }
            let Some((last, size)) = raw_block_header(&h) else { return Ok(None) };
            at += 3;
            if at + size as u64 > m.size {
                return Ok(None);
            }
            pieces.push((m.data_offset + at, size));
            at += size as u64;
            total += size as u64;
            if last {
                break;
            }
        }
        if at != m.size || total != content {
            return Ok(None);
        }
        // The `.npy` header must lie inside the first block, in the prefix.
        let Some(&(first_at, first_len)) = pieces.first() else { return Ok(None) };
        let from = (first_at - m.data_offset) as usize;
        let Some(head) = prefix.get(from..(from + first_len).min(prefix.len())) else { return Ok(None) };
        let Ok(header) = npy::parse_header(head) else { return Ok(None) };
        if header.data_offset > first_len || content - header.data_offset as u64 != header.data_len() {
            return Ok(None);
        }
        pieces[0].0 += header.data_offset as u64;
        pieces[0].1 -= header.data_offset;
        pieces.retain(|p| p.1 > 0);
        let item = header.dtype.bytes_per_pixel();
        if pieces.iter().any(|p| p.1 % item != 0) {
            return Ok(None);
        }
        Ok(Some(FilePixels { file: self.file.clone(), header, pieces }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{encode_npy_zst, encode_npy_zst_policy, FrameKind, Image};
    use crate::tar::{write_end, write_member};

    fn noisy(h: u32, w: u32, seed: u64) -> Image {
        crate::image::xorshift_noise(h, w, seed | 1)
    }

    fn shard(dir: &std::path::Path, members: &[(&str, Vec<u8>)], map: bool) -> Arc<LocalFile> {
        let mut bytes = Vec::new();
        for (name, data) in members {
            write_member(&mut bytes, name, data).unwrap();
        }
        write_end(&mut bytes).unwrap();
        let path = dir.join("s.tar");
        std::fs::write(&path, &bytes).unwrap();
        let file = Arc::new(LocalFile::open(&path, map).unwrap());
        assert_eq!(file.is_mapped(), map);
        file
    }

    #[test]
    fn raw_blocks_are_located_and_compressed_members_read() {
        for map in [false, true] {
            raw_blocks_located(map);
        }
    }

    fn raw_blocks_located(map: bool) {
        let dir = tempfile::tempdir().unwrap();
        // 300x300 u16: 180,000 bytes, two raw blocks (the first holds the .npy header).
        let big = noisy(300, 300, 7);
        let (raw, kind) = encode_npy_zst_policy(&big, 3, 0.10).unwrap();
        assert_eq!(kind, FrameKind::Raw);
        let flat = Image::from_u16(8, 8, &[5u16; 64]);
        let compressed = encode_npy_zst(&flat, 3).unwrap();
        let file = shard(
            dir.path(),
            &[
                ("a.npy.zst", raw),
                ("a.json", b"{}".to_vec()),
                ("b.npy.zst", compressed.clone()),
                ("b.json", b"{}".to_vec()),
            ],
            map,
        );
        let counters = Arc::new(Counters::default());
        let mut walker = Walker::new(file.clone(), "s.tar".into(), 0, file.len, counters.clone());
        let a = walker.next_sample().ok().flatten().unwrap();
        assert_eq!(a.key, "a");
        assert_eq!(a.members.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["npy.zst", "json"]);
        let Located::InFile(pixels) = walker.locate(&a.members[0].1, Vec::new).unwrap() else {
            panic!("a raw-block member is located, not read")
        };
        assert_eq!((pixels.header.height, pixels.header.width), (300, 300));
        assert_eq!(pixels.pieces.len(), 2);
        let mut out = vec![0u8; pixels.len()];
        pixels.read_into(&mut out).unwrap();
        assert_eq!(out, big.data);
        let b = walker.next_sample().ok().flatten().unwrap();
        assert_eq!(b.key, "b");
        match walker.locate(&b.members[0].1, Vec::new).unwrap() {
            Located::Bytes(bytes) if !map => assert_eq!(bytes, compressed),
            Located::Member(member) if map => assert_eq!(member.bytes().unwrap(), &compressed[..]),
            _ => panic!("a compressed member is read whole (pread) or left in the mapping"),
        }
        assert!(walker.next_sample().ok().flatten().is_none());
        // Every member's header and padded data were counted, the end marker not.
        assert_eq!(counters.read_bytes.load(Ordering::Relaxed), file.len - 1024);
    }

    #[test]
    fn damage_and_foreign_members_end_the_walk() {
        for map in [false, true] {
            damage_and_foreign(map);
        }
    }

    fn damage_and_foreign(map: bool) {
        let dir = tempfile::tempdir().unwrap();
        let (raw, _) = encode_npy_zst_policy(&noisy(64, 64, 3), 3, 0.10).unwrap();
        let file = shard(dir.path(), &[("a.npy.zst", raw.clone()), ("a.npy.zst", raw.clone())], map);
        let mut walker = Walker::new(file.clone(), "s".into(), 0, file.len, Arc::new(Counters::default()));
        assert!(matches!(walker.next_sample(), Err(WalkError::Shard(ShardError::Member { .. }))));
        // A range ending inside a member: truncated at that member's header.
        let mut walker = Walker::new(file.clone(), "s".into(), 0, 700, Arc::new(Counters::default()));
        assert!(matches!(
            walker.next_sample(),
            Err(WalkError::Shard(ShardError::Tar { cause: TarError::Truncated { offset: 0, .. }, .. }))
        ));
        // A pax record (another writer's): left to the streaming reader from the sample's start.
        let mut bytes = Vec::new();
        write_member(&mut bytes, "a.npy.zst", &raw).unwrap();
        let second = bytes.len() as u64;
        let mut pax = crate::tar::header("PaxHeader/b", 0).unwrap();
        pax[156] = b'x';
        pax[148..156].fill(b' ');
        let sum: u64 = pax.iter().map(|&b| b as u64).sum();
        pax[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        bytes.extend_from_slice(&pax);
        write_member(&mut bytes, "b.npy.zst", &raw).unwrap();
        let path = dir.path().join("pax.tar");
        std::fs::write(&path, &bytes).unwrap();
        let file = Arc::new(LocalFile::open(&path, map).unwrap());
        let mut walker = Walker::new(file.clone(), "s".into(), 0, file.len, Arc::new(Counters::default()));
        assert!(matches!(walker.next_sample(), Err(WalkError::Foreign { sample_start: 0 })));
        let mut walker = Walker::new(file.clone(), "s".into(), second, file.len, Arc::new(Counters::default()));
        assert!(matches!(walker.next_sample(), Err(WalkError::Foreign { sample_start }) if sample_start == second));
    }

    #[test]
    fn a_shard_truncated_before_it_is_opened_reads_as_truncated() {
        for map in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let big = noisy(300, 300, 9);
            let (raw, _) = encode_npy_zst_policy(&big, 3, 0.10).unwrap();
            let full = shard(dir.path(), &[("a.npy.zst", raw.clone()), ("b.npy.zst", raw.clone())], map);
            let full_len = full.len;
            drop(full);
            // Cut inside b's data: what a reader of the manifest still plans to read.
            let path = dir.path().join("s.tar");
            let cut = full_len - 1024 - 50_000;
            std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
            let file = Arc::new(LocalFile::open(&path, map).unwrap());
            assert_eq!(file.len, cut);
            // The walk stops at b's header (the sample the cut damages), as
            // the streaming reader does; a's own range still reads whole.
            let b_at = 512 + padded(raw.len() as u64);
            let mut walker = Walker::new(file.clone(), "s".into(), 0, full_len, Arc::new(Counters::default()));
            assert!(matches!(
                walker.next_sample(),
                Err(WalkError::Shard(ShardError::Tar { cause: TarError::Truncated { offset, .. }, .. })) if offset == b_at
            ));
            let mut walker = Walker::new(file.clone(), "s".into(), 0, b_at, Arc::new(Counters::default()));
            let a = walker.next_sample().ok().flatten().unwrap();
            let Located::InFile(pixels) = walker.locate(&a.members[0].1, Vec::new).unwrap() else { panic!("raw") };
            let mut out = vec![0u8; pixels.len()];
            pixels.read_into(&mut out).unwrap();
            assert_eq!(out, big.data);
            // Reads past the length at open fail (never touch an unmapped page).
            let mut byte = [0u8; 1];
            assert_eq!(file.read_at(&mut byte, cut).unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
            assert!(file.mapped(cut - 1, 2).is_none());
        }
    }

    #[test]
    fn shard_files_keep_mappings_within_a_budget() {
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for i in 0..3 {
            let p = dir.path().join(format!("{i}.tar"));
            std::fs::write(&p, vec![i as u8; 1000]).unwrap();
            paths.push(p);
        }
        let files = ShardFiles::new(true, 2500);
        let a = files.open(0, &paths[0]).unwrap();
        assert!(a.is_mapped());
        assert!(Arc::ptr_eq(&a, &files.open(0, &paths[0]).unwrap()), "kept, not mapped again");
        files.open(1, &paths[1]).unwrap();
        assert_eq!(files.kept(), (2, 2000));
        // A third would pass the budget: the least recently used (0) is let go,
        // while the sample holding it keeps its mapping readable.
        files.open(1, &paths[1]).unwrap();
        let c = files.open(2, &paths[2]).unwrap();
        assert_eq!(files.kept(), (2, 2000));
        assert!(!Arc::ptr_eq(&a, &files.open(0, &paths[0]).unwrap()));
        assert_eq!(a.mapped(0, 1000).unwrap(), &[0u8; 1000][..]);
        assert_eq!(c.mapped(999, 1).unwrap(), &[2u8]);
        let plain = ShardFiles::new(false, 1 << 30);
        assert!(!plain.open(0, &paths[0]).unwrap().is_mapped());
        assert_eq!(plain.kept(), (0, 0));
    }
}
