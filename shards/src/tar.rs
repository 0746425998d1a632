//! Minimal POSIX tar: ustar member writing and a streaming member reader.
//!
//! The writer emits plain ustar headers (mode 0644, uid/gid 0, mtime 0, no
//! owner names, checksum as six octal digits, NUL, space) so shards are
//! byte-for-byte reproducible. The reader walks any `Read` without seeking,
//! tracks each member's data offset, understands GNU long names and pax
//! `path`/`size` records written by other tools, and skips directories and
//! links. Sizes from headers never drive an allocation beyond the bytes
//! actually present.
//!
//! Why not the `tar` crate (considered for issue 13):
//! - **Offsets.** A manifest row's `offset`/`size` is the exact byte range of
//!   its `.npy.zst` data; the writer computes it as the shard's length so far
//!   plus one header block, which holds only because a name that does not fit
//!   ustar's 100 bytes is refused ([`TarError::NameTooLong`]). `tar::Builder`
//!   reports no positions and turns a long name into an extra GNU `L` member,
//!   silently moving the data.
//! - **Same bytes as before.** `tar::Header::set_cksum` writes the checksum as
//!   seven digits and a NUL, not the traditional six digits, NUL, space used
//!   here; every shard, and every published dataset's shard bytes, would
//!   change for no gain.
//! - **Range reads.** The loader starts a [`TarStream`] at an arbitrary member
//!   offset of the archive ([`TarStream::starting_at`]) and needs absolute
//!   offsets in its errors; `tar::Archive` counts from the start of its reader.
//! - **Typed errors.** Callers classify [`TarError::BadHeader`] and
//!   [`TarError::Truncated`] (with the member and its offset) as invalid input;
//!   `tar` reports everything as `io::Error` with a message.
//!
//! What remains is ~250 lines covering ustar, GNU long names and pax, fuzzed by
//! `tests/format.rs` (random flips, insertions and cuts end in errors, never
//! panics or hangs).

use std::io::{self, Read, Write};

pub const BLOCK: u64 = 512;

/// Rounds up to the next tar block.
pub fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

/// Bytes a member of `len` data bytes takes in the archive (header + padded data).
pub fn member_span(len: u64) -> u64 {
    BLOCK + padded(len)
}

/// What is wrong with a tar stream.
#[derive(Debug, thiserror::Error)]
pub enum TarError {
    #[error("I/O error: {0}")]
    Io(io::Error),
    #[error("bad tar header at byte {offset}: {reason}")]
    BadHeader { offset: u64, reason: String },
    #[error("member `{name}` is truncated: header at byte {offset} announces {size} bytes")]
    Truncated { name: String, offset: u64, size: u64 },
    #[error("member name `{0}` is too long for ustar")]
    NameTooLong(String),
}

// By hand rather than `#[from]`, which would also make the error its
// `source()` and print it twice in a `{:#}` chain.
impl From<io::Error> for TarError {
    fn from(e: io::Error) -> Self {
        TarError::Io(e)
    }
}

fn octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

/// Builds a ustar header for a regular file.
pub fn header(name: &str, size: u64) -> Result<[u8; 512], TarError> {
    let mut h = [0u8; 512];
    let bytes = name.as_bytes();
    if bytes.len() > 100 {
        return Err(TarError::NameTooLong(name.to_string()));
    }
    h[..bytes.len()].copy_from_slice(bytes);
    octal(&mut h[100..108], 0o644);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    if size >= 8u64.pow(11) {
        // base-256 for members of 8 GiB and more
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    } else {
        octal(&mut h[124..136], size);
    }
    octal(&mut h[136..148], 0);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    Ok(h)
}

/// Writes one member (header, data, padding); returns the bytes written.
pub fn write_member<W: Write>(out: &mut W, name: &str, data: &[u8]) -> Result<u64, TarError> {
    out.write_all(&header(name, data.len() as u64)?)?;
    out.write_all(data)?;
    let pad = padded(data.len() as u64) - data.len() as u64;
    out.write_all(&[0u8; 512][..pad as usize])?;
    Ok(member_span(data.len() as u64))
}

/// Two zero blocks end an archive.
pub fn write_end<W: Write>(out: &mut W) -> io::Result<()> {
    out.write_all(&[0u8; 1024])
}

/// A regular-file member read from a stream.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Offset of the member's (first) header within the stream; for a GNU long
    /// name or pax record, that record's header.
    pub header_offset: u64,
    /// Offset of the data within the stream.
    pub data_offset: u64,
    pub data: Vec<u8>,
}

impl Member {
    /// Offset just past this member's padded data.
    pub fn end_offset(&self) -> u64 {
        self.data_offset + padded(self.data.len() as u64)
    }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        // base-256
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let text: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let text = std::str::from_utf8(&text).ok()?.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn cstr(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// One tar header block, checked and decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderBlock {
    /// The name (with the ustar prefix), before any GNU long name or pax path.
    pub name: String,
    /// The size field (a pax `size` record may override it).
    pub size: u64,
    pub typeflag: u8,
}

impl HeaderBlock {
    /// A regular file whose data follows (`0`, NUL or `7`).
    pub fn is_regular(&self) -> bool {
        matches!(self.typeflag, b'0' | 0 | b'7')
    }
}

/// Checks and decodes the header block found at `offset`; `None` for an
/// all-zero block (the end-of-archive marker).
pub fn parse_header_block(block: &[u8; 512], offset: u64) -> Result<Option<HeaderBlock>, TarError> {
    if block.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let stored: u64 = parse_octal(&block[148..156])
        .ok_or_else(|| TarError::BadHeader { offset, reason: "unreadable checksum".into() })?;
    let mut check = *block;
    check[148..156].fill(b' ');
    let sum: u64 = check.iter().map(|&b| b as u64).sum();
    let signed: i64 = check.iter().map(|&b| b as i8 as i64).sum();
    if stored != sum && stored as i64 != signed {
        return Err(TarError::BadHeader { offset, reason: "checksum mismatch".into() });
    }
    let size = parse_octal(&block[124..136])
        .ok_or_else(|| TarError::BadHeader { offset, reason: "unreadable size".into() })?;
    let mut name = cstr(&block[..100]);
    if &block[257..262] == b"ustar" {
        let prefix = cstr(&block[345..500]);
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    Ok(Some(HeaderBlock { name, size, typeflag: block[156] }))
}

/// Reads up to `len` bytes into `buf` (cleared first): allocation grows with
/// the bytes that arrive, never with what a header claims.
fn read_exact_bounded_into<R: Read>(src: &mut R, len: u64, mut buf: Vec<u8>) -> io::Result<Vec<u8>> {
    buf.clear();
    buf.reserve(len.min(16 << 20) as usize);
    src.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

fn read_exact_bounded<R: Read>(src: &mut R, len: u64) -> io::Result<Vec<u8>> {
    read_exact_bounded_into(src, len, Vec::new())
}

/// Where member data buffers come from (e.g. a pool of recycled ones), given
/// the member's size from its header (a hint only: the buffer grows as data
/// arrives).
pub type BufferSource = Box<dyn FnMut(u64) -> Vec<u8> + Send>;

/// Iterates the regular-file members of a tar stream, in order.
pub struct TarStream<R> {
    src: R,
    pos: u64,
    done: bool,
    buffers: Option<BufferSource>,
}

impl<R: Read> TarStream<R> {
    pub fn new(src: R) -> Self {
        Self::starting_at(src, 0)
    }

    /// A stream whose first byte is at `offset` of the archive (for byte-range reads).
    pub fn starting_at(src: R, offset: u64) -> Self {
        TarStream { src, pos: offset, done: false, buffers: None }
    }

    /// Member data is read into buffers from `source` (reused ones skip the
    /// allocation and page faults of a fresh buffer per member).
    pub fn set_buffers(&mut self, source: BufferSource) {
        self.buffers = Some(source);
    }

    /// Current offset within the archive.
    pub fn position(&self) -> u64 {
        self.pos
    }

    fn read_block(&mut self, block: &mut [u8; 512]) -> Result<bool, TarError> {
        let mut filled = 0;
        while filled < 512 {
            let n = self.src.read(&mut block[filled..])?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(false);
        }
        if filled < 512 {
            return Err(TarError::BadHeader { offset: self.pos, reason: "archive ends inside a header".into() });
        }
        self.pos += 512;
        Ok(true)
    }

    fn skip(&mut self, len: u64) -> Result<(), TarError> {
        let copied = io::copy(&mut (&mut self.src).take(len), &mut io::sink())?;
        self.pos += copied;
        if copied < len {
            return Err(TarError::Truncated { name: String::new(), offset: self.pos, size: len });
        }
        Ok(())
    }

    /// The next regular-file member, or `None` at the end of the archive.
    pub fn next_member(&mut self) -> Result<Option<Member>, TarError> {
        if self.done {
            return Ok(None);
        }
        let mut long_name: Option<String> = None;
        let mut pax_size: Option<u64> = None;
        let mut first_header: Option<u64> = None;
        let mut block = [0u8; 512];
        loop {
            let header_offset = self.pos;
            if !self.read_block(&mut block)? {
                self.done = true;
                return Ok(None);
            }
            let Some(parsed) = parse_header_block(&block, header_offset)? else {
                // End-of-archive marker (one or two zero blocks).
                self.done = true;
                return Ok(None);
            };
            let size = pax_size.take().unwrap_or(parsed.size);
            let typeflag = parsed.typeflag;
            let name = parsed.name;
            first_header.get_or_insert(header_offset);
            match typeflag {
                b'0' | 0 | b'7' => {
                    let name = long_name.take().unwrap_or(name);
                    let data_offset = self.pos;
                    let buf = self.buffers.as_mut().map(|f| f(size)).unwrap_or_default();
                    let data = read_exact_bounded_into(&mut self.src, size, buf)?;
                    self.pos += data.len() as u64;
                    if (data.len() as u64) < size {
                        return Err(TarError::Truncated { name, offset: header_offset, size });
                    }
                    let pad = padded(size) - size;
                    if pad > 0 {
                        self.skip(pad).map_err(|_| TarError::Truncated {
                            name: name.clone(),
                            offset: header_offset,
                            size,
                        })?;
                    }
                    return Ok(Some(Member {
                        name,
                        header_offset: first_header.unwrap_or(header_offset),
                        data_offset,
                        data,
                    }));
                }
                b'L' => {
                    // GNU long name: data is the name of the next member.
                    let data = read_exact_bounded(&mut self.src, size.min(64 * 1024))?;
                    self.pos += data.len() as u64;
                    if size > 64 * 1024 || (data.len() as u64) < size {
                        return Err(TarError::BadHeader { offset: header_offset, reason: "bad GNU long name".into() });
                    }
                    self.skip(padded(size) - size)?;
                    long_name = Some(cstr(&data));
                }
                b'x' => {
                    let data = read_exact_bounded(&mut self.src, size.min(1 << 20))?;
                    self.pos += data.len() as u64;
                    if size > 1 << 20 || (data.len() as u64) < size {
                        return Err(TarError::BadHeader { offset: header_offset, reason: "bad pax header".into() });
                    }
                    self.skip(padded(size) - size)?;
                    for (key, value) in parse_pax(&data) {
                        match key.as_str() {
                            "path" => long_name = Some(value),
                            "size" => pax_size = value.parse().ok(),
                            _ => {}
                        }
                    }
                }
                _ => {
                    // Directories, links, global pax headers, ...: skip their data.
                    self.skip(padded(size))?;
                    first_header = None;
                    long_name = None;
                }
            }
        }
    }
}

fn parse_pax(mut data: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let Some(space) = data.iter().position(|&b| b == b' ') else { break };
        let Some(len) = std::str::from_utf8(&data[..space]).ok().and_then(|s| s.parse::<usize>().ok()) else { break };
        if len <= space + 1 || len > data.len() {
            break;
        }
        let record = &data[space + 1..len];
        let record = record.strip_suffix(b"\n").unwrap_or(record);
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&record[..eq]).into_owned(),
                String::from_utf8_lossy(&record[eq + 1..]).into_owned(),
            ));
        }
        data = &data[len..];
    }
    out
}

impl<R: Read> Iterator for TarStream<R> {
    type Item = Result<Member, TarError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_member() {
            Ok(Some(m)) => Some(Ok(m)),
            Ok(None) => None,
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_reads_back_with_offsets() {
        let mut buf = Vec::new();
        write_member(&mut buf, "a.npy.zst", b"hello").unwrap();
        write_member(&mut buf, "a.json", &[1u8; 600]).unwrap();
        write_end(&mut buf).unwrap();
        let members: Vec<Member> = TarStream::new(&buf[..]).collect::<Result<_, _>>().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].name, "a.npy.zst");
        assert_eq!(&buf[members[0].data_offset as usize..][..5], b"hello");
        assert_eq!(members[1].header_offset, 1024);
        assert_eq!(members[1].data_offset, 1536);
        assert_eq!(members[1].end_offset(), 1536 + 1024);
    }

    #[test]
    fn truncation_and_garbage_are_errors_not_panics() {
        let mut buf = Vec::new();
        write_member(&mut buf, "a.json", &[1u8; 600]).unwrap();
        for cut in [100, 512, 700, 1024] {
            let result: Result<Vec<Member>, _> = TarStream::new(&buf[..cut]).collect();
            assert!(result.is_err(), "cut at {cut}");
        }
        let mut bad = buf.clone();
        bad[0] ^= 0xff;
        assert!(matches!(TarStream::new(&bad[..]).next(), Some(Err(TarError::BadHeader { .. }))));
        let mut huge = header("x", 1 << 40).unwrap().to_vec();
        huge.extend_from_slice(&[0u8; 100]);
        assert!(matches!(TarStream::new(&huge[..]).next(), Some(Err(TarError::Truncated { .. }))));
    }
}
