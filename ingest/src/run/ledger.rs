//! The writer's side of a DICOM import: which source became which sample,
//! duplicates (the same SOPInstanceUID from another file, or the same
//! pixels) turned into rejections, the state an interrupted run's journal
//! restores, and the final tally for the summary and `rejected.parquet`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use chess_shards::{key_fingerprint, EncodedSample, FingerprintMap, FingerprintSet, ShardError, WrittenKeys};

use super::worker::Outcome;
use super::Summary;
use crate::journal::{Entry, Journal};
use crate::labels::Labels;
use crate::reject::Reason;

/// A 128-bit fingerprint (BLAKE3, [`key_fingerprint`]) of a source path,
/// key or pixel hash. The indexes hold these rather than the strings, so
/// each costs a fixed number of bytes per input whatever the paths' length;
/// keys fingerprint as the writer's do, so the complete shards'
/// [`WrittenKeys`] are used as they come.
type Fp = u128;

fn fp(text: &str) -> Fp {
    key_fingerprint(text)
}

/// Final state of a source.
#[derive(Debug, Clone, Copy)]
pub(super) enum Done {
    Sample {
        label_row: Option<u32>,
        masked: bool,
    },
    /// Index into [`Ledger::rejects`].
    Reject(u32),
}

/// The sources and keys of the samples, by sample number: one string
/// arena (`<source><key>`) and the end offsets, for the messages and
/// journal lines that name another sample.
#[derive(Default)]
struct Samples {
    text: String,
    /// Per sample: end of its source, end of its key in `text`.
    ends: Vec<(u64, u64)>,
}

impl Samples {
    fn push(&mut self, source: &str, key: &str) -> u32 {
        self.text.push_str(source);
        let source_end = self.text.len() as u64;
        self.text.push_str(key);
        self.ends.push((source_end, self.text.len() as u64));
        (self.ends.len() - 1) as u32
    }
    fn start(&self, i: u32) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i as usize - 1].1 as usize
        }
    }
    fn source(&self, i: u32) -> &str {
        &self.text[self.start(i)..self.ends[i as usize].0 as usize]
    }
    fn key(&self, i: u32) -> &str {
        let (s, k) = self.ends[i as usize];
        &self.text[s as usize..k as usize]
    }
}

/// A rejected source: (source, reason code, message).
type Rejection = (String, String, String);

/// Sources already accounted for, which a resumed run skips.
pub(super) struct Skip(FingerprintSet);

impl Skip {
    pub(super) fn contains(&self, source: &str) -> bool {
        self.0.contains(&fp(source))
    }
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// Writer-side bookkeeping, in fixed-width fingerprints plus each sample's
/// source and key once: per sample the four indexes' entries (`done` 32,
/// `owner` 32, `by_hash` 32, `written` 16 bytes before the hash tables'
/// slack), 16 bytes of offsets, and its source path and key
/// (`scripts/bench/journal.sh` measures the total).
#[derive(Default)]
pub(super) struct Ledger {
    /// By source fingerprint.
    done: FingerprintMap<Done>,
    rejects: Vec<Rejection>,
    samples: Samples,
    /// Keys in the dataset with the sample that produced them.
    owner: FingerprintMap<u32>,
    /// Keys in the dataset (also those of complete shards whose journal line was lost).
    written: FingerprintSet,
    /// Pixel hash fingerprint to sample.
    by_hash: FingerprintMap<u32>,
    /// Sources per lenient-read note code, over the done sources.
    notes: BTreeMap<String, u64>,
}

impl Ledger {
    /// Rebuilds the state of an interrupted run from its journal and the
    /// keys of its complete shards. The journal is read twice, streamed: the
    /// first pass finds each source's last line (a source redone after a
    /// crash has several), the second applies those lines in journal order.
    pub(super) fn restore(journal: &Path, complete: WrittenKeys) -> std::io::Result<(Ledger, usize)> {
        let mut l = Ledger { written: complete.into_fingerprints(), ..Default::default() };
        let mut last: FingerprintMap<u32> = FingerprintMap::default();
        Journal::read_sources(journal, |n, source| {
            last.insert(fp(source), n as u32);
        })?;
        // Every source has one final state: size the indexes once.
        l.done.reserve(last.len());
        l.owner.reserve(l.written.len());
        l.by_hash.reserve(l.written.len());
        let mut dups = Vec::new();
        let lines = Journal::read_each(journal, |n, e| {
            let source_fp = fp(e.source());
            if last.get(&source_fp) != Some(&(n as u32)) {
                return;
            }
            match e {
                Entry::Sample { s, k, h, l: row, b, n } => {
                    let key_fp = fp(&k);
                    if l.written.contains(&key_fp) && !l.owner.contains_key(&key_fp) {
                        let i = l.samples.push(&s, &k);
                        l.owner.insert(key_fp, i);
                        l.by_hash.insert(fp(&h), i);
                        l.done.insert(source_fp, Done::Sample { label_row: row.map(|r| r as u32), masked: b });
                        l.count_notes(&n);
                    }
                    // Otherwise its shard was lost: redo.
                }
                Entry::Reject { s, r, m, n } => {
                    l.reject(source_fp, s, r, m);
                    l.count_notes(&n);
                }
                Entry::Duplicate { s, r, k, m, n } => dups.push((source_fp, s, r, fp(&k), m, n)),
            }
        })?;
        drop(last);
        for (source_fp, s, r, key_fp, m, n) in dups {
            if l.owner.contains_key(&key_fp) {
                l.reject(source_fp, s, r, m);
                l.count_notes(&n);
            }
        }
        Ok((l, lines))
    }

    fn reject(&mut self, source_fp: Fp, source: String, reason: String, message: String) {
        match self.done.get(&source_fp) {
            Some(Done::Reject(i)) => self.rejects[*i as usize] = (source, reason, message),
            _ => {
                self.rejects.push((source, reason, message));
                self.done.insert(source_fp, Done::Reject((self.rejects.len() - 1) as u32));
            }
        }
    }

    /// The sources a resumed run skips.
    pub(super) fn skip(&self) -> Skip {
        Skip(self.done.keys().copied().collect())
    }

    /// Records what became of `source`: a sample is written through `write`
    /// unless it duplicates one already written (the same key from another
    /// source, or the same pixels). Returns the journal entry; on a write
    /// error nothing is recorded.
    pub(super) fn record(
        &mut self,
        source: String,
        outcome: Outcome,
        write: impl FnOnce(EncodedSample) -> Result<(), ShardError>,
    ) -> Result<Entry, ShardError> {
        let source_fp = fp(&source);
        let (key, hash, label_row, masked, notes, encoded) = match outcome {
            Outcome::Reject(r, n) => {
                self.count_notes(&n);
                let e = Entry::Reject { s: source.clone(), r: r.reason.code().into(), m: r.message.clone(), n };
                self.reject(source_fp, source, r.reason.code().into(), r.message);
                return Ok(e);
            }
            Outcome::Sample { key, hash, label_row, masked, notes, encoded } => {
                (key, hash, label_row, masked, notes, encoded)
            }
        };
        let duplicate = |ledger: &mut Ledger, reason: Reason, k: String, m: String, n: Vec<String>| {
            let r = reason.code().to_string();
            ledger.reject(source_fp, source.clone(), r.clone(), m.clone());
            ledger.count_notes(&n);
            Entry::Duplicate { s: source.clone(), r, k, m, n }
        };
        let (key_fp, hash_fp) = (fp(&key), fp(&hash));
        if self.written.contains(&key_fp) {
            if let Some(o) = self.owner.get(&key_fp).map(|&i| self.samples.source(i)).filter(|o| *o != source.as_str())
            {
                let m = format!("same SOPInstanceUID as {o}");
                return Ok(duplicate(self, Reason::DuplicateSopInstance, key, m, notes));
            }
            // Otherwise written by an earlier run whose journal line was lost.
        } else if let Some(&i) = self.by_hash.get(&hash_fp) {
            let m = format!("same pixels as {}", self.samples.source(i));
            let k = self.samples.key(i).to_string();
            return Ok(duplicate(self, Reason::DuplicatePixels, k, m, notes));
        } else {
            write(*encoded)?;
            self.written.insert(key_fp);
        }
        if !self.owner.contains_key(&key_fp) {
            let i = self.samples.push(&source, &key);
            self.owner.insert(key_fp, i);
            self.by_hash.insert(hash_fp, i);
        }
        self.done.insert(source_fp, Done::Sample { label_row: label_row.map(|r| r as u32), masked });
        self.count_notes(&notes);
        Ok(Entry::Sample { s: source, k: key, h: hash, l: label_row, b: masked, n: notes })
    }

    fn count_notes(&mut self, codes: &[String]) {
        for c in codes {
            *self.notes.entry(c.clone()).or_default() += 1;
        }
    }

    /// (samples, rejections) so far, for the running counts.
    pub(super) fn counts(&self) -> (u64, u64) {
        let samples = self.done.values().filter(|d| matches!(d, Done::Sample { .. })).count() as u64;
        (samples, self.done.len() as u64 - samples)
    }

    /// Fills `summary`'s counts (and the label join's, with `labels`) and
    /// returns the rejected sources as (source, reason, message), sorted.
    pub(super) fn tally<'a>(
        &'a self,
        summary: &mut Summary,
        labels: Option<&Labels>,
    ) -> Vec<(&'a str, &'a str, &'a str)> {
        let mut rejected_rows = Vec::new();
        let mut used_rows = HashSet::new();
        let mut without_labels = 0u64;
        for done in self.done.values() {
            summary.files += 1;
            match done {
                Done::Sample { label_row, masked } => {
                    summary.samples += 1;
                    summary.masked += u64::from(*masked);
                    match label_row {
                        Some(r) => {
                            used_rows.insert(*r);
                        }
                        None => without_labels += 1,
                    }
                }
                Done::Reject(i) => {
                    let (source, reason, message) = &self.rejects[*i as usize];
                    *summary.rejected.entry(reason.clone()).or_default() += 1;
                    rejected_rows.push((source.as_str(), reason.as_str(), message.as_str()));
                }
            }
        }
        rejected_rows.sort_unstable();
        summary.read_notes = self.notes.clone();
        if let Some(l) = labels {
            summary.label_rows = Some(l.len() as u64);
            summary.label_rows_unmatched = Some((l.len() - used_rows.len()) as u64);
            summary.images_without_labels = Some(without_labels);
            summary.label_rows_duplicate_keys = Some(l.duplicate_rows as u64);
        }
        rejected_rows
    }
}

/// What [`restore_from_journal`] rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Lines read from the journal.
    pub entries: usize,
    pub samples: u64,
    pub rejected: u64,
}

/// The state a resumed run rebuilds before its first new file (the journal
/// read, [`Ledger::restore`] against the complete shards' keys, the set of
/// sources to skip), as [`super::run`] does; for the journal benchmark
/// (`ingest/examples/journal_resume.rs`).
pub fn restore_from_journal(journal: &Path, complete: WrittenKeys) -> std::io::Result<Restored> {
    let (ledger, entries) = Ledger::restore(journal, complete)?;
    let skip = ledger.skip();
    let (samples, rejected) = ledger.counts();
    debug_assert_eq!(skip.len() as u64, samples + rejected);
    Ok(Restored { entries, samples, rejected })
}
