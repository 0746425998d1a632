//! The order of a DICOM dataset: a function of the inputs and the key, never
//! of thread timing or of the source paths' order.
//!
//! Two steps, both on the writer thread:
//!
//! 1. [`InOrder`]: outcomes reach the ledger in walk order (sequence
//!    numbers given by the producer, a reorder buffer here), so "the first
//!    of two duplicates" is the first in walk order whatever `--threads`.
//!    The producer holds one of `window` tokens per item in flight, so the
//!    buffer never holds more than `window` outcomes.
//! 2. [`ShardOrder`]: the samples of one shard are held until the shard is
//!    full (by the writer's own rule: `max_shard_samples`, or
//!    `max_shard_bytes`), then written sorted by their key — the keyed
//!    pseudonym of the SOPInstanceUID — so the order inside a shard says
//!    nothing about folder names, MRNs or dates. Memory: one shard's
//!    encoded samples (at most `max_shard_bytes`).
//!
//! Which samples share a shard still follows the walk (contiguous runs of
//! it, `max_shard_samples` at a time); within a shard nothing does.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender};

use chess_shards::{DatasetWriter, EncodedSample, ShardError};

/// Sequence-numbered outcomes back into walk order.
pub(super) struct InOrder<T> {
    next: u64,
    pending: BTreeMap<u64, T>,
    tokens: SyncSender<()>,
}

/// The producer's side of the window: take a token before sending an item.
pub(super) struct Window(Receiver<()>);

impl Window {
    /// Waits for room; `false` when the writer is gone.
    pub(super) fn acquire(&self) -> bool {
        self.0.recv().is_ok()
    }
}

/// A window of `size` items in flight between the producer and the writer.
pub(super) fn window<T>(size: usize) -> (Window, InOrder<T>) {
    let (tx, rx) = std::sync::mpsc::sync_channel(size.max(1));
    for _ in 0..size.max(1) {
        tx.send(()).expect("the channel has room for every token");
    }
    (Window(rx), InOrder { next: 0, pending: BTreeMap::new(), tokens: tx })
}

impl<T> InOrder<T> {
    /// Takes outcome `seq`; calls `f` on every outcome now due, in order
    /// (and gives its token back).
    pub(super) fn push(&mut self, seq: u64, value: T, mut f: impl FnMut(T)) {
        self.pending.insert(seq, value);
        while let Some(v) = self.pending.remove(&self.next) {
            self.next += 1;
            f(v);
            let _ = self.tokens.send(());
        }
    }

    /// Outcomes received but not yet due (0 at the end of a run).
    pub(super) fn waiting(&self) -> usize {
        self.pending.len()
    }
}

/// One shard's samples, written sorted by key when the shard is full.
pub(super) struct ShardOrder {
    held: Vec<EncodedSample>,
    bytes: u64,
    max_samples: u64,
    max_bytes: u64,
}

impl ShardOrder {
    pub(super) fn new(writer: &DatasetWriter) -> ShardOrder {
        let o = writer.options();
        ShardOrder { held: Vec::new(), bytes: 0, max_samples: o.max_shard_samples, max_bytes: o.max_shard_bytes }
    }

    /// Holds `sample`; when it would not fit the shard being filled (the
    /// writer's rule), that shard is written first.
    pub(super) fn push(&mut self, sample: EncodedSample, writer: &mut DatasetWriter) -> Result<(), ShardError> {
        let span = sample.span();
        let full = self.held.len() as u64 >= self.max_samples
            || (!self.held.is_empty() && self.bytes + span + 1024 > self.max_bytes);
        if full {
            self.flush(writer)?;
        }
        self.bytes += span;
        self.held.push(sample);
        Ok(())
    }

    /// Writes the held samples sorted by key. Any order of them fits one
    /// shard: the writer's check for each is at most `bytes + 1024`, which
    /// the last one passed in arrival order.
    pub(super) fn flush(&mut self, writer: &mut DatasetWriter) -> Result<(), ShardError> {
        let mut held = std::mem::take(&mut self.held);
        self.bytes = 0;
        held.sort_by(|a, b| a.key().cmp(b.key()));
        for s in held {
            writer.write_encoded(s)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_come_out_in_sequence_and_tokens_come_back() {
        let (win, mut order) = window::<u64>(3);
        for _ in 0..3 {
            assert!(win.acquire());
        }
        let mut seen = Vec::new();
        order.push(2, 2, |v| seen.push(v));
        order.push(1, 1, |v| seen.push(v));
        assert!(seen.is_empty());
        assert_eq!(order.waiting(), 2);
        order.push(0, 0, |v| seen.push(v));
        assert_eq!(seen, vec![0, 1, 2]);
        assert_eq!(order.waiting(), 0);
        // Three tokens are back.
        for _ in 0..3 {
            assert!(win.acquire());
        }
    }
}
