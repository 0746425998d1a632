//! The run journal: `<out>/private/journal.jsonl`, one line per finished
//! source file, appended as results arrive.
//!
//! It is what makes `kill -9` safe to re-run: a source counts as done only
//! when its journal line says so *and* (for samples) its key is in a shard
//! that [`chess_shards::DatasetWriter::resume`] reports complete. Anything
//! else is processed again; because sample keys are derived from the
//! SOPInstanceUID, redoing a file can never produce a second copy of a
//! sample. A torn last line (killed mid-write) is ignored. The journal names
//! source paths, so it lives under `private/`.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What happened to one source file. `n` (every kind): the codes of how
/// leniently it was read (`no_file_meta`, `encoding_fallback:…`, see
/// [`crate::dicom::read::Note::code`]); never a value from the file, and
/// left out when the file was well formed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "o")]
pub enum Entry {
    /// Became sample `k` (pixel hash `h`, label row `l`; `b`: burned-in
    /// text or rules regions blanked).
    #[serde(rename = "sample")]
    Sample {
        s: String,
        k: String,
        h: String,
        l: Option<usize>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        b: bool,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        n: Vec<String>,
    },
    /// Rejected with reason code `r`.
    #[serde(rename = "reject")]
    Reject {
        s: String,
        r: String,
        m: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        n: Vec<String>,
    },
    /// A duplicate (reason `r`) of sample `k`.
    #[serde(rename = "dup")]
    Duplicate {
        s: String,
        r: String,
        k: String,
        m: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        n: Vec<String>,
    },
}

impl Entry {
    pub fn source(&self) -> &str {
        match self {
            Entry::Sample { s, .. } | Entry::Reject { s, .. } | Entry::Duplicate { s, .. } => s,
        }
    }

    /// The lenient-read note codes.
    pub fn notes(&self) -> &[String] {
        match self {
            Entry::Sample { n, .. } | Entry::Reject { n, .. } | Entry::Duplicate { n, .. } => n,
        }
    }
}

/// An open journal.
pub struct Journal {
    path: PathBuf,
    file: File,
}

impl Journal {
    /// Opens (creating) the journal and returns the entries already in it.
    pub fn open(path: &Path) -> std::io::Result<(Journal, Vec<Entry>)> {
        let mut entries = Vec::new();
        Self::read_each(path, |_, e| entries.push(e))?;
        Ok((Self::append_to(path)?, entries))
    }

    /// Streams the entries of the journal at `path` (none if it does not
    /// exist) to `f` with their line number (counting every line, also the
    /// torn or garbled ones skipped), holding one line at a time; returns
    /// how many entries there were.
    pub fn read_each(path: &Path, mut f: impl FnMut(usize, Entry)) -> std::io::Result<usize> {
        for_each_line(path, |n, line| match serde_json::from_slice::<Line<'_>>(line).ok().and_then(Line::into_entry) {
            Some(e) => {
                f(n, e);
                true
            }
            None => false,
        })
    }

    /// Streams only the source of each line of a known kind, with its line
    /// number as [`Journal::read_each`] gives it, borrowed from the line: the
    /// cheap first pass of a resume. It checks less than `read_each`: a line
    /// it reads may still be skipped there as garbled (its source is then redone).
    pub fn read_sources(path: &Path, mut f: impl FnMut(usize, &str)) -> std::io::Result<usize> {
        for_each_line(path, |n, line| match serde_json::from_slice::<SourceOnly<'_>>(line) {
            Ok(SourceOnly { o, s }) if KINDS.contains(&o.as_ref()) => {
                f(n, &s);
                true
            }
            _ => false,
        })
    }

    /// Opens (creating) the journal for appending, without reading it.
    pub fn append_to(path: &Path) -> std::io::Result<Journal> {
        let mut file = crate::private::append_file(path)?;
        // Make sure a torn last line does not glue onto the next entry.
        if file.metadata()?.len() > 0 {
            file.write_all(b"\n")?;
        }
        Ok(Journal { path: path.to_path_buf(), file })
    }

    /// Appends an entry (one `write` call, so a kill leaves at most one torn line).
    pub fn append(&mut self, e: &Entry) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(e).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }

    pub fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The `o` tags of [`Entry`].
const KINDS: [&str; 3] = ["sample", "reject", "dup"];

/// Calls `f` with each line of the file at `path` (none if it does not
/// exist) and its line number; `f` says whether it accepted the line, and
/// the accepted ones are counted. A torn or garbled line is not accepted:
/// its source is redone. One line buffer, reused.
fn for_each_line(path: &Path, mut f: impl FnMut(usize, &[u8]) -> bool) -> std::io::Result<usize> {
    let mut accepted = 0;
    if !path.exists() {
        return Ok(0);
    }
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut line = Vec::with_capacity(512);
    for number in 0.. {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if !text.is_empty() && f(number, text) {
            accepted += 1;
        }
    }
    Ok(accepted)
}

/// A journal line with only its kind and source, borrowed where it has no
/// escapes (serde skips the other fields without building them).
#[derive(Deserialize)]
struct SourceOnly<'a> {
    #[serde(borrow)]
    o: Cow<'a, str>,
    #[serde(borrow)]
    s: Cow<'a, str>,
}

/// A journal line as flat fields: parsed without the buffering serde needs
/// for an internally tagged enum, then checked into an [`Entry`].
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    o: Cow<'a, str>,
    s: String,
    k: Option<String>,
    h: Option<String>,
    l: Option<usize>,
    #[serde(default)]
    b: bool,
    r: Option<String>,
    m: Option<String>,
    #[serde(default)]
    n: Vec<String>,
}

impl Line<'_> {
    /// The entry, or `None` when a field its kind needs is missing.
    fn into_entry(self) -> Option<Entry> {
        let Line { o, s, k, h, l, b, r, m, n } = self;
        Some(match o.as_ref() {
            "sample" => Entry::Sample { s, k: k?, h: h?, l, b, n },
            "reject" => Entry::Reject { s, r: r?, m: m?, n },
            "dup" => Entry::Duplicate { s, r: r?, k: k?, m: m?, n },
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[test]
    fn round_trips_and_survives_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let a = Entry::Sample { s: "a".into(), k: "k1".into(), h: "h".into(), l: Some(3), b: true, n: Vec::new() };
        let n = vec!["no_file_meta".to_string()];
        let b = Entry::Reject { s: "b".into(), r: "modality".into(), m: "x".into(), n };
        {
            let (mut j, old) = Journal::open(&p).unwrap();
            assert!(old.is_empty());
            j.append(&a).unwrap();
            j.append(&b).unwrap();
        }
        // Simulate a kill in the middle of a write.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(br#"{"o":"sample","s":"c","k":"#).unwrap();
        drop(f);
        let (mut j, old) = Journal::open(&p).unwrap();
        assert_eq!(old, vec![a.clone(), b.clone()]);
        let m = String::new();
        let c = Entry::Duplicate { s: "c".into(), r: "duplicate_pixels".into(), k: "k1".into(), m, n: Vec::new() };
        j.append(&c).unwrap();
        drop(j);
        let (_, old) = Journal::open(&p).unwrap();
        assert_eq!(old, vec![a, b, c]);
        // Well-formed files' lines carry no `n`; lines written before it existed still read.
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.matches(r#""n":["no_file_meta"]"#).count(), 1, "{text}");
        let old: Entry = serde_json::from_str(r#"{"o":"reject","s":"d","r":"not_dicom","m":""}"#).unwrap();
        assert!(old.notes().is_empty());
    }

    #[test]
    fn the_flat_reader_reads_what_serde_writes_and_skips_lines_missing_a_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let entries = vec![
            // Escapes in a source make the borrowed parse own its text.
            Entry::Sample { s: "a \"q\"\\b\u{e9}".into(), k: "k".into(), h: "h".into(), l: None, b: false, n: vec![] },
            Entry::Duplicate {
                s: "c".into(),
                r: "duplicate_pixels".into(),
                k: "k".into(),
                m: "m".into(),
                n: vec!["x".into()],
            },
        ];
        let (mut j, _) = Journal::open(&p).unwrap();
        j.append(&entries[0]).unwrap();
        drop(j);
        // A line of no known kind and a sample without its key: garbled, skipped.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"o\":\"other\",\"s\":\"z\"}\n{\"o\":\"sample\",\"s\":\"y\",\"h\":\"h\"}\n").unwrap();
        drop(f);
        let mut j = Journal::append_to(&p).unwrap();
        j.append(&entries[1]).unwrap();
        let (mut read, mut sources) = (Vec::new(), Vec::new());
        assert_eq!(Journal::read_each(&p, |n, e| read.push((n, e))).unwrap(), 2);
        assert_eq!(Journal::read_sources(&p, |n, s| sources.push((n, s.to_string()))).unwrap(), 3);
        // Line numbers count every line: the skipped ones and the empty one `append_to` adds.
        assert_eq!(read, vec![(0, entries[0].clone()), (4, entries[1].clone())]);
        let a = entries[0].source().to_string();
        assert_eq!(sources, vec![(0, a), (2, "y".to_string()), (4, "c".to_string())]);
        // The serde enum itself reads the same lines the same way.
        let text = std::fs::read_to_string(&p).unwrap();
        let by_serde: Vec<Entry> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
        assert_eq!(by_serde, entries);
    }
}
