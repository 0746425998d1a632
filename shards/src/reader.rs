//! Reading shards: streaming iteration of samples from any `Read`, and
//! random access to one sample from its manifest row.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chess_schemas::{layout, SampleMeta};

use crate::error::{Result, ShardError};
use crate::image::{Image, NpyZstDecoder};
use crate::manifest::ManifestRow;
use crate::tar::{Member, TarStream};

/// The raw members of one sample, as stored.
#[derive(Debug, Clone)]
pub struct RawSample {
    pub key: String,
    /// `(suffix, member)`: the suffix is the member name after the key's dot,
    /// e.g. `npy.zst`, `json`, `target.npy.zst`.
    pub members: Vec<(String, Member)>,
}

impl RawSample {
    pub fn member(&self, suffix: &str) -> Option<&Member> {
        self.members.iter().find(|(s, _)| s == suffix).map(|(_, m)| m)
    }

    /// Offset of the sample's first header within its shard.
    pub fn header_offset(&self) -> u64 {
        self.members.first().map_or(0, |(_, m)| m.header_offset)
    }

    /// Bytes from the first header to the end of the last member's padding.
    pub fn span(&self) -> u64 {
        self.members.last().map_or(0, |(_, m)| m.end_offset()) - self.header_offset()
    }
}

/// A sample with its arrays decoded.
#[derive(Debug, Clone)]
pub struct DecodedSample {
    pub key: String,
    pub image: Image,
    pub extras: Vec<(String, Image)>,
    pub meta: Option<SampleMeta>,
}

/// Splits a member name into WebDataset key and suffix.
pub fn split_member_name(name: &str) -> (&str, &str) {
    let base = name.rsplit('/').next().unwrap_or(name);
    // WebDataset keeps directories in the key; our keys have none, but a
    // foreign shard may, so the key is everything before the basename's first dot.
    let prefix_len = name.len() - base.len();
    match base.find('.') {
        Some(dot) => (&name[..prefix_len + dot], &base[dot + 1..]),
        None => (name, ""),
    }
}

/// Iterates the samples of a shard stream: consecutive members with the same key.
pub struct ShardReader<R> {
    shard: String,
    tar: TarStream<R>,
    pending: Option<Member>,
    failed: bool,
}

impl<R: Read> ShardReader<R> {
    /// `shard` names the stream in errors.
    pub fn new(src: R, shard: impl Into<String>) -> Self {
        ShardReader { shard: shard.into(), tar: TarStream::new(src), pending: None, failed: false }
    }

    /// A reader over a byte range starting at `offset` of the shard.
    pub fn starting_at(src: R, shard: impl Into<String>, offset: u64) -> Self {
        ShardReader { shard: shard.into(), tar: TarStream::starting_at(src, offset), pending: None, failed: false }
    }

    pub fn shard(&self) -> &str {
        &self.shard
    }

    /// Reads member data into buffers from `source` ([`TarStream::set_buffers`]).
    pub fn with_buffers(mut self, source: crate::tar::BufferSource) -> Self {
        self.tar.set_buffers(source);
        self
    }

    fn next_member(&mut self) -> Result<Option<Member>> {
        if let Some(m) = self.pending.take() {
            return Ok(Some(m));
        }
        self.tar.next_member().map_err(|cause| ShardError::Tar { shard: self.shard.clone(), cause })
    }

    /// The next sample, or `None` at the end of the shard.
    pub fn next_sample(&mut self) -> Result<Option<RawSample>> {
        let Some(first) = self.next_member()? else { return Ok(None) };
        let (key, suffix) = split_member_name(&first.name);
        let key = key.to_string();
        let mut sample = RawSample { key: key.clone(), members: vec![(suffix.to_string(), first)] };
        while let Some(member) = self.next_member()? {
            let (k, s) = split_member_name(&member.name);
            if k != key {
                self.pending = Some(member);
                break;
            }
            if sample.members.iter().any(|(existing, _)| existing == s) {
                return Err(ShardError::Member {
                    shard: self.shard.clone(),
                    member: member.name.clone(),
                    reason: "appears twice in one sample".into(),
                });
            }
            sample.members.push((s.to_string(), member));
        }
        Ok(Some(sample))
    }
}

impl<R: Read> Iterator for ShardReader<R> {
    type Item = Result<RawSample>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_sample() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Decodes every array of a raw sample and parses its JSON.
pub fn decode_sample(raw: &RawSample, shard: &str, decoder: &mut NpyZstDecoder) -> Result<DecodedSample> {
    let member_name = |suffix: &str| format!("{}.{suffix}", raw.key);
    let decode = |decoder: &mut NpyZstDecoder, suffix: &str, member: &Member| {
        decoder.decode(&member.data).map_err(|e| ShardError::Member {
            shard: shard.to_string(),
            member: member_name(suffix),
            reason: e.to_string(),
        })
    };
    let main = raw.member(layout::IMAGE_SUFFIX).ok_or_else(|| ShardError::Member {
        shard: shard.to_string(),
        member: member_name(layout::IMAGE_SUFFIX),
        reason: "missing: every sample needs its image".into(),
    })?;
    let image = decode(decoder, layout::IMAGE_SUFFIX, main)?;
    let mut extras = Vec::new();
    for (suffix, member) in &raw.members {
        if let Some(field) = suffix.strip_suffix(".npy.zst") {
            extras.push((field.to_string(), decode(decoder, suffix, member)?));
        }
    }
    let meta = match raw.member(layout::JSON_SUFFIX) {
        Some(m) => Some(serde_json::from_slice::<SampleMeta>(&m.data).map_err(|e| ShardError::Member {
            shard: shard.to_string(),
            member: member_name(layout::JSON_SUFFIX),
            reason: format!("invalid JSON: {e}"),
        })?),
        None => None,
    };
    Ok(DecodedSample { key: raw.key.clone(), image, extras, meta })
}

/// Reads `len` bytes at `offset` of a file; errors name the file.
pub fn read_range(path: &Path, offset: u64, len: u64) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(ShardError::read(path))?;
    let file_len = file.metadata().map_err(ShardError::read(path))?.len();
    if offset.checked_add(len).is_none_or(|end| end > file_len) {
        return Err(ShardError::Read {
            path: path.to_path_buf(),
            cause: std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("range {offset}+{len} is past the end of the file ({file_len} bytes)"),
            ),
        });
    }
    file.seek(SeekFrom::Start(offset)).map_err(ShardError::read(path))?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf).map_err(ShardError::read(path))?;
    Ok(buf)
}

/// Reads and decodes the image of one manifest row from its shard file
/// (one byte-range read).
pub fn read_row_image(shard_path: &Path, row: &ManifestRow, decoder: &mut NpyZstDecoder) -> Result<Image> {
    let bytes = read_range(shard_path, row.offset, row.size)?;
    decoder.decode(&bytes).map_err(|e| ShardError::Member {
        shard: row.shard.clone(),
        member: format!("{}.{}", row.key, layout::IMAGE_SUFFIX),
        reason: e.to_string(),
    })
}

/// Reads all members of one manifest row (one byte-range read) and decodes them.
pub fn read_row_sample(shard_path: &Path, row: &ManifestRow, decoder: &mut NpyZstDecoder) -> Result<DecodedSample> {
    let bytes = read_range(shard_path, row.sample_offset, row.sample_size)?;
    decode_row_bytes(&bytes, row, decoder)
}

/// Decodes one manifest row's sample from its byte range (`row.sample_size` bytes read at `row.sample_offset`,
/// locally or from object storage), checking that the range holds that row's key.
pub fn decode_row_bytes(bytes: &[u8], row: &ManifestRow, decoder: &mut NpyZstDecoder) -> Result<DecodedSample> {
    let mut reader = ShardReader::starting_at(bytes, row.shard.clone(), row.sample_offset);
    let raw = reader.next_sample()?.ok_or_else(|| ShardError::Member {
        shard: row.shard.clone(),
        member: row.key.clone(),
        reason: format!("no sample at byte {}", row.sample_offset),
    })?;
    if raw.key != row.key {
        return Err(ShardError::Member {
            shard: row.shard.clone(),
            member: row.key.clone(),
            reason: format!("byte {} holds sample {}, not {}", row.sample_offset, raw.key, row.key),
        });
    }
    decode_sample(&raw, &row.shard, decoder)
}
