//! The writer's side of a DICOM import: which source became which sample,
//! duplicates (the same SOPInstanceUID from another file, or the same
//! pixels) turned into rejections, the state an interrupted run's journal
//! restores, and the final tally for the summary and `rejected.parquet`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chess_shards::{EncodedSample, ShardError};

use super::worker::Outcome;
use super::Summary;
use crate::journal::Entry;
use crate::labels::Labels;
use crate::reject::Reason;

/// Final state of a source.
#[derive(Debug, Clone)]
pub(super) enum Done {
    Sample { label_row: Option<usize>, masked: bool },
    Reject { reason: String, message: String },
}

/// Writer-side bookkeeping.
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) done: HashMap<String, Done>,
    /// Keys in the dataset, with the source that produced them.
    pub(super) owner: HashMap<String, String>,
    pub(super) written: HashSet<String>,
    pub(super) by_hash: HashMap<String, String>,
    /// Sources per lenient-read note code, over the done sources.
    pub(super) notes: BTreeMap<String, u64>,
}

impl Ledger {
    /// Rebuilds the state of an interrupted run from its journal and the
    /// keys of its complete shards.
    pub(super) fn restore(entries: Vec<Entry>, complete: HashSet<String>) -> Ledger {
        let mut last: HashMap<String, Entry> = HashMap::new();
        for e in entries {
            last.insert(e.source().to_string(), e);
        }
        let mut l = Ledger { written: complete, ..Default::default() };
        let mut dups = Vec::new();
        for (src, e) in last {
            match e {
                Entry::Sample { k, h, l: row, b, n, .. } if l.written.contains(&k) && !l.owner.contains_key(&k) => {
                    l.owner.insert(k.clone(), src.clone());
                    l.by_hash.insert(h, k.clone());
                    l.done.insert(src, Done::Sample { label_row: row, masked: b });
                    l.count_notes(&n);
                }
                Entry::Reject { r, m, n, .. } => {
                    l.done.insert(src, Done::Reject { reason: r, message: m });
                    l.count_notes(&n);
                }
                Entry::Duplicate { r, k, m, n, .. } => dups.push((src, r, k, m, n)),
                _ => {} // its shard was lost: redo
            }
        }
        for (src, r, k, m, n) in dups {
            if l.owner.contains_key(&k) {
                l.done.insert(src, Done::Reject { reason: r, message: m });
                l.count_notes(&n);
            }
        }
        l
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
        let (key, hash, label_row, masked, notes, encoded) = match outcome {
            Outcome::Reject(r, n) => {
                self.count_notes(&n);
                let e = Entry::Reject { s: source.clone(), r: r.reason.code().into(), m: r.message.clone(), n };
                self.done.insert(source, Done::Reject { reason: r.reason.code().into(), message: r.message });
                return Ok(e);
            }
            Outcome::Sample { key, hash, label_row, masked, notes, encoded } => {
                (key, hash, label_row, masked, notes, encoded)
            }
        };
        let duplicate = |ledger: &mut Ledger, reason: Reason, k: String, m: String, n: Vec<String>| {
            let r = reason.code().to_string();
            ledger.done.insert(source.clone(), Done::Reject { reason: r.clone(), message: m.clone() });
            ledger.count_notes(&n);
            Entry::Duplicate { s: source.clone(), r, k, m, n }
        };
        if self.written.contains(&key) {
            if let Some(o) = self.owner.get(&key).filter(|o| **o != source) {
                let m = format!("same SOPInstanceUID as {o}");
                return Ok(duplicate(self, Reason::DuplicateSopInstance, key, m, notes));
            }
            // Otherwise written by an earlier run whose journal line was lost.
        } else if let Some(k) = self.by_hash.get(&hash) {
            let m = format!("same pixels as {}", self.owner.get(k).map(String::as_str).unwrap_or("an earlier file"));
            let k = k.clone();
            return Ok(duplicate(self, Reason::DuplicatePixels, k, m, notes));
        } else {
            write(*encoded)?;
            self.written.insert(key.clone());
        }
        self.owner.insert(key.clone(), source.clone());
        self.by_hash.insert(hash.clone(), key.clone());
        self.done.insert(source.clone(), Done::Sample { label_row, masked });
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
        let mut sources: Vec<&String> = self.done.keys().collect();
        sources.sort();
        let mut used_rows = HashSet::new();
        let mut without_labels = 0u64;
        for src in sources {
            summary.files += 1;
            match &self.done[src] {
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
                Done::Reject { reason, message } => {
                    *summary.rejected.entry(reason.clone()).or_default() += 1;
                    rejected_rows.push((src.as_str(), reason.as_str(), message.as_str()));
                }
            }
        }
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
