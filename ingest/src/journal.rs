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
    /// exist) to `f` with their number, holding one line at a time; returns
    /// how many there were.
    pub fn read_each(path: &Path, mut f: impl FnMut(usize, Entry)) -> std::io::Result<usize> {
        let mut n = 0;
        if path.exists() {
            for line in BufReader::new(File::open(path)?).split(b'\n') {
                let line = line?;
                // A torn or garbled line is skipped: its source is redone.
                if let Ok(e) = serde_json::from_slice::<Entry>(&line) {
                    f(n, e);
                    n += 1;
                }
            }
        }
        Ok(n)
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
}
