//! Local shards read in place: the tar headers of a byte range are walked
//! with positioned reads (`pread`), and the pixels of a `.npy.zst` member
//! stored as raw zstd blocks are located in the file rather than read, so
//! that the assembler copies them once, from the page cache straight into
//! the batch slot ([`FilePixels`]). A member compressed for real is read
//! whole (one copy into a pooled buffer) for a decode thread.
//!
//! Errors are those of the streaming reader over the same bytes
//! ([`crate::tar::TarError`] with offsets, a member twice in one sample), so
//! that the pipeline loses exactly the same samples on damage. Members this
//! walker does not handle (GNU long names, pax records, directories: never
//! written by this crate) end the walk with [`WalkError::Foreign`], and the
//! pipeline reads that part with the streaming reader instead.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::store::Counters;

use crate::error::ShardError;
use crate::image::{raw_block_header, raw_frame_header};
use crate::npy::{self, NpyHeader};
use crate::reader::split_member_name;
use crate::tar::{padded, parse_header_block, TarError, BLOCK};

/// Bytes read at the start of a member to find its frame and `.npy` headers.
const PREFIX: u64 = 4096;

/// An open shard file and its length (what bounds every range read of it).
pub(crate) struct LocalFile {
    pub file: File,
    pub len: u64,
    /// The path, for messages.
    pub name: String,
}

impl LocalFile {
    pub fn open(path: &std::path::Path) -> std::io::Result<LocalFile> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(LocalFile { file, len, name: path.display().to_string() })
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
            self.file.file.read_exact_at(&mut out[at..at + len], offset)?;
            at += len;
        }
        Ok(())
    }
}

/// A needed member, located or read.
pub(crate) enum Located {
    /// Raw blocks: copied from the file when the batch is assembled.
    InFile(FilePixels),
    /// The whole member (compressed blocks, or a frame the fast path does
    /// not take), for the decoder.
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
        let mut block = [0u8; 512];
        self.file.file.read_exact_at(&mut block, header_offset).map_err(WalkError::Io)?;
        let Some(h) = parse_header_block(&block, header_offset).map_err(|e| self.tar_err(e))? else {
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
        let file = &self.file.file;
        let mut head = [0u8; PREFIX as usize];
        let prefix = &mut head[..m.size.min(PREFIX) as usize];
        file.read_exact_at(prefix, m.data_offset)?;
        if let Some(pixels) = self.raw_pieces(m, prefix)? {
            return Ok(Located::InFile(pixels));
        }
        let mut buf = take();
        buf.clear();
        buf.resize(m.size as usize, 0); // bounded: the walker checked the bytes exist
        file.read_exact_at(&mut buf, m.data_offset)?;
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
                None => self.file.file.read_exact_at(&mut h, m.data_offset + at)?,
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
        let mut x = seed | 1;
        let px: Vec<u16> = (0..h * w)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u16
            })
            .collect();
        Image::from_u16(h, w, &px)
    }

    fn shard(dir: &std::path::Path, members: &[(&str, Vec<u8>)]) -> Arc<LocalFile> {
        let mut bytes = Vec::new();
        for (name, data) in members {
            write_member(&mut bytes, name, data).unwrap();
        }
        write_end(&mut bytes).unwrap();
        let path = dir.join("s.tar");
        std::fs::write(&path, &bytes).unwrap();
        Arc::new(LocalFile::open(&path).unwrap())
    }

    #[test]
    fn raw_blocks_are_located_and_compressed_members_read() {
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
        let Located::Bytes(bytes) = walker.locate(&b.members[0].1, Vec::new).unwrap() else {
            panic!("a compressed member is read whole")
        };
        assert_eq!(bytes, compressed);
        assert!(walker.next_sample().ok().flatten().is_none());
        // Every member's header and padded data were counted, the end marker not.
        assert_eq!(counters.read_bytes.load(Ordering::Relaxed), file.len - 1024);
    }

    #[test]
    fn damage_and_foreign_members_end_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let (raw, _) = encode_npy_zst_policy(&noisy(64, 64, 3), 3, 0.10).unwrap();
        let file = shard(dir.path(), &[("a.npy.zst", raw.clone()), ("a.npy.zst", raw.clone())]);
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
        let file = Arc::new(LocalFile::open(&path).unwrap());
        let mut walker = Walker::new(file.clone(), "s".into(), 0, file.len, Arc::new(Counters::default()));
        assert!(matches!(walker.next_sample(), Err(WalkError::Foreign { sample_start: 0 })));
        let mut walker = Walker::new(file.clone(), "s".into(), second, file.len, Arc::new(Counters::default()));
        assert!(matches!(walker.next_sample(), Err(WalkError::Foreign { sample_start }) if sample_start == second));
    }
}
