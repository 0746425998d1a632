//! Discovery: turns the command-line inputs into a stream of candidate files.
//!
//! Directories are walked with `walkdir` in file-name order (deterministic).
//! Every regular file becomes exactly one [`Item`] unless it is an archive:
//! `.zip`, `.tar`, `.tar.gz`/`.tgz` archives (recognised by content, not by
//! extension) are read in place and each of their regular members becomes
//! an item whose source is `archive!/member`. Nested archives are not opened;
//! they are items like any other file and end up rejected as non-DICOM.
//!
//! Whether an item is DICOM is decided later, by content ([`dicom_offset`]),
//! so every file found here is accounted for by the caller: either as a sample
//! or as a rejection.
//!
//! Memory: plain files are read by the worker that processes them, archive
//! members are read one at a time while the archive is walked, so at most one
//! member per call of the visitor is in memory here.

use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::{Path, PathBuf};

/// Files and archive members larger than this are rejected unread.
pub const MAX_FILE_BYTES: u64 = 2 << 30;

/// One candidate input file.
#[derive(Debug)]
pub struct Item {
    /// Where it came from: a file path, or `archive!/member` for members.
    /// Private: this can name patients (folder names) and never reaches
    /// shareable outputs.
    pub source: String,
    /// The top-level file on disk (the archive for members): the unit of
    /// partitioning.
    pub file: PathBuf,
    pub payload: Payload,
}

/// How to get an item's bytes.
#[derive(Debug)]
pub enum Payload {
    /// A plain file; read it when processing.
    Path(PathBuf),
    /// An archive member, already read.
    Bytes(Vec<u8>),
    /// Could not be read (I/O error, too large, corrupt archive member).
    Unreadable { reason: &'static str, message: String },
}

impl Payload {
    /// The bytes of the item, reading a plain file now.
    pub fn read(self) -> Result<Vec<u8>, (&'static str, String)> {
        match self {
            Payload::Bytes(b) => Ok(b),
            Payload::Unreadable { reason, message } => Err((reason, message)),
            Payload::Path(p) => {
                let meta = std::fs::metadata(&p).map_err(|e| ("read_error", e.to_string()))?;
                if meta.len() > MAX_FILE_BYTES {
                    return Err(("too_large", format!("{} bytes", meta.len())));
                }
                std::fs::read(&p).map_err(|e| ("read_error", e.to_string()))
            }
        }
    }
}

/// Kind of container, recognised from the first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
}

/// Recognises an archive by its magic bytes. A gzip stream counts as a
/// tar.gz only if its decompressed start is a tar header.
pub fn archive_kind(path: &Path) -> std::io::Result<Option<ArchiveKind>> {
    let mut f = File::open(path)?;
    let mut head = [0u8; 512];
    let n = read_up_to(&mut f, &mut head)?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Some(ArchiveKind::Zip));
    }
    if is_tar_header(head) {
        return Ok(Some(ArchiveKind::Tar));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        f.rewind()?;
        let mut gz = flate2::read::GzDecoder::new(BufReader::new(f));
        let mut inner = [0u8; 512];
        let n = read_up_to(&mut gz, &mut inner).unwrap_or(0);
        if is_tar_header(&inner[..n]) {
            return Ok(Some(ArchiveKind::TarGz));
        }
    }
    Ok(None)
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A ustar/GNU tar header: "ustar" magic at 257 and a valid checksum.
fn is_tar_header(h: &[u8]) -> bool {
    if h.len() < 512 || &h[257..262] != b"ustar" {
        return false;
    }
    let field = &h[148..156];
    let text: String = field.iter().take_while(|&&b| b != 0 && b != b' ').map(|&b| b as char).collect();
    let Ok(stored) = u32::from_str_radix(text.trim(), 8) else { return false };
    let sum: u32 = h[..512].iter().enumerate().map(|(i, &b)| if (148..156).contains(&i) { 32 } else { b as u32 }).sum();
    sum == stored
}

/// Where the DICOM stream starts: after a 128-byte preamble (`DICM` at 128)
/// or at 0 when the file begins with `DICM` (no preamble). `None`: not DICOM
/// Part 10.
pub fn dicom_offset(bytes: &[u8]) -> Option<usize> {
    if bytes.len() >= 132 && &bytes[128..132] == b"DICM" {
        Some(128)
    } else if bytes.len() >= 4 && &bytes[..4] == b"DICM" {
        Some(0)
    } else {
        None
    }
}

/// Errors that stop discovery itself (an input that does not exist).
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("input '{}' does not exist", .0.display())]
    Missing(PathBuf),
}

impl chess_cli::Classify for DiscoverError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        match self {
            DiscoverError::Missing(_) => chess_cli::ExitClass::Input,
        }
    }
}

/// Checks that every input exists before any work starts.
pub fn check_inputs(inputs: &[PathBuf]) -> Result<(), DiscoverError> {
    for i in inputs {
        if std::fs::symlink_metadata(i).is_err() {
            return Err(DiscoverError::Missing(i.clone()));
        }
    }
    Ok(())
}

/// The top-level files under the inputs, in a deterministic order. Walk
/// errors (unreadable directories) are returned as items with
/// [`Payload::Unreadable`] so that they are accounted for.
pub fn walk_files(inputs: &[PathBuf]) -> impl Iterator<Item = Result<PathBuf, Item>> + '_ {
    inputs.iter().flat_map(|input| {
        walkdir::WalkDir::new(input).follow_links(true).sort_by_file_name().into_iter().filter_map(|e| match e {
            Ok(e) if e.file_type().is_file() => Some(Ok(e.into_path())),
            Ok(_) => None,
            Err(err) => {
                let path = err.path().map(Path::to_path_buf).unwrap_or_default();
                Some(Err(Item {
                    source: path.display().to_string(),
                    file: path.clone(),
                    payload: Payload::Unreadable { reason: "read_error", message: err.to_string() },
                }))
            }
        })
    })
}

/// Expands one top-level file into items: itself, or its members when it is
/// an archive. Calls `visit` for each; stops early if `visit` returns false.
pub fn expand_file(path: &Path, visit: &mut dyn FnMut(Item) -> bool) {
    let source = path.display().to_string();
    let unreadable = |reason: &'static str, message: String| Item {
        source: source.clone(),
        file: path.to_path_buf(),
        payload: Payload::Unreadable { reason, message },
    };
    let kind = match archive_kind(path) {
        Ok(k) => k,
        Err(e) => {
            visit(unreadable("read_error", e.to_string()));
            return;
        }
    };
    let result = match kind {
        None => {
            visit(Item {
                source: source.clone(),
                file: path.to_path_buf(),
                payload: Payload::Path(path.to_path_buf()),
            });
            return;
        }
        Some(ArchiveKind::Zip) => expand_zip(path, visit),
        Some(ArchiveKind::Tar) => match File::open(path) {
            Ok(f) => expand_tar(path, BufReader::new(f), visit),
            Err(e) => Err(e.to_string()),
        },
        Some(ArchiveKind::TarGz) => match File::open(path) {
            Ok(f) => expand_tar(path, flate2::read::GzDecoder::new(BufReader::new(f)), visit),
            Err(e) => Err(e.to_string()),
        },
    };
    if let Err(message) = result {
        // The archive broke part-way: what was read is accounted for; the
        // archive itself gets a row for the rest.
        visit(unreadable("archive_error", message));
    }
}

fn member_item(path: &Path, name: &str, payload: Payload) -> Item {
    Item { source: format!("{}!/{}", path.display(), name), file: path.to_path_buf(), payload }
}

fn expand_zip(path: &Path, visit: &mut dyn FnMut(Item) -> bool) -> Result<(), String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let mut zip = zip::ZipArchive::new(BufReader::new(f)).map_err(|e| e.to_string())?;
    for i in 0..zip.len() {
        let item = match zip.by_index(i) {
            Err(e) => member_item(
                path,
                &format!("#{i}"),
                Payload::Unreadable { reason: "archive_error", message: e.to_string() },
            ),
            Ok(entry) => {
                if entry.is_dir() {
                    continue;
                }
                let name = entry.name().to_string();
                let payload = read_member(entry.size(), entry);
                member_item(path, &name, payload)
            }
        };
        if !visit(item) {
            break;
        }
    }
    Ok(())
}

fn read_member(size: u64, r: impl Read) -> Payload {
    if size > MAX_FILE_BYTES {
        return Payload::Unreadable { reason: "too_large", message: format!("{size} bytes") };
    }
    let mut buf = Vec::with_capacity(size.min(64 << 20) as usize);
    match r.take(MAX_FILE_BYTES + 1).read_to_end(&mut buf) {
        Ok(_) if buf.len() as u64 > MAX_FILE_BYTES => {
            Payload::Unreadable { reason: "too_large", message: "member larger than its header says".into() }
        }
        Ok(_) => Payload::Bytes(buf),
        Err(e) => Payload::Unreadable { reason: "archive_error", message: e.to_string() },
    }
}

fn expand_tar(path: &Path, r: impl Read, visit: &mut dyn FnMut(Item) -> bool) -> Result<(), String> {
    let mut ar = tar::Archive::new(r);
    let entries = ar.entries().map_err(|e| e.to_string())?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map(|p| p.display().to_string()).unwrap_or_else(|_| "<bad name>".into());
        let size = entry.header().size().unwrap_or(0);
        let payload = read_member(size, entry);
        let broken = matches!(payload, Payload::Unreadable { reason: "archive_error", .. });
        if !visit(member_item(path, &name, payload)) || broken {
            if broken {
                return Err("tar stream ended inside a member".into());
            }
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn collect(dir: &Path) -> Vec<(String, Option<Vec<u8>>)> {
        let mut out = vec![];
        for f in walk_files(&[dir.to_path_buf()]) {
            let f = f.map_err(|i| i.source).unwrap();
            expand_file(&f, &mut |item| {
                let rel = item.source.replace(&dir.display().to_string(), "");
                out.push((rel, item.payload.read().ok()));
                true
            });
        }
        out
    }

    #[test]
    fn walks_plain_zip_tar_and_targz() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("a")).unwrap();
        std::fs::write(root.join("a/one.dcm"), b"one").unwrap();
        // zip
        let mut zw = zip::ZipWriter::new(File::create(root.join("b.zip")).unwrap());
        zw.start_file("x/two", zip::write::SimpleFileOptions::default()).unwrap();
        zw.write_all(b"two").unwrap();
        zw.add_directory("x/empty", zip::write::SimpleFileOptions::default()).unwrap();
        zw.finish().unwrap();
        // tar
        let mut tb = tar::Builder::new(File::create(root.join("c.tar")).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_cksum();
        tb.append_data(&mut h, "three", &b"three"[..]).unwrap();
        tb.finish().unwrap();
        drop(tb);
        // tar.gz with an unhelpful extension
        let gz = flate2::write::GzEncoder::new(File::create(root.join("d.bin")).unwrap(), flate2::Compression::fast());
        let mut tb = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_cksum();
        tb.append_data(&mut h, "four", &b"four"[..]).unwrap();
        tb.into_inner().unwrap().finish().unwrap();

        let got = collect(root);
        let names: Vec<&str> = got.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["/a/one.dcm", "/b.zip!/x/two", "/c.tar!/three", "/d.bin!/four"]);
        assert_eq!(got[1].1.as_deref(), Some(&b"two"[..]));
        assert_eq!(got[3].1.as_deref(), Some(&b"four"[..]));
    }

    #[test]
    fn corrupt_archive_is_accounted_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.zip");
        std::fs::write(&p, b"PK\x03\x04 this is not really a zip").unwrap();
        let got = collect(dir.path());
        assert_eq!(got.len(), 1);
        assert!(got[0].1.is_none());
    }

    #[test]
    fn dicom_is_recognised_with_and_without_preamble() {
        let mut with = vec![0u8; 128];
        with.extend_from_slice(b"DICM....");
        assert_eq!(dicom_offset(&with), Some(128));
        assert_eq!(dicom_offset(b"DICM\x02\x00"), Some(0));
        assert_eq!(dicom_offset(b"hello world"), None);
    }

    #[test]
    fn missing_input_is_an_error() {
        assert!(check_inputs(&[PathBuf::from("/definitely/not/here")]).is_err());
    }
}
