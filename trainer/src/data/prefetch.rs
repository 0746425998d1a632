//! The prefetch stage between the loader and the training step: a thread
//! that owns an epoch's iterator, takes each next batch, wraps it as a
//! tensor and starts its transfer to the device ([`data::wrap`]: pinned
//! memory and a non-blocking copy on CUDA), and hands it over through a
//! bounded channel, so that loading and the host-to-device copy of batch
//! `i + 1` overlap the step on batch `i`.
//!
//! The order is the loader's: batches arrive exactly as the epoch iterator
//! yields them (one producer, one FIFO channel). Consumed batches come back
//! through [`Prefetcher::recycle`] and are returned to the loader's buffer
//! pools by the thread.
//!
//! On CUDA the copy is queued on the device's current stream, which the
//! training thread shares (PyTorch's default stream), so the step's kernels
//! are ordered after it without an explicit synchronisation.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::thread::JoinHandle;

use chess_shards::loader::{Batch, EpochIter, EpochReport, LoaderState};
use tch::Device;

use crate::data::{self, RawBatch};
use crate::Result;

/// One batch ready for the step.
pub struct Fetched {
    pub raw: RawBatch,
    /// Loader position after this batch (for checkpoints).
    pub state: LoaderState,
    /// Index of the batch within its epoch.
    pub index: u64,
}

/// A running prefetch thread for one epoch.
pub struct Prefetcher {
    rx: Option<Receiver<Result<Fetched>>>,
    recycle: Sender<Batch>,
    thread: Option<JoinHandle<Option<EpochReport>>>,
}

fn produce(
    mut it: EpochIter,
    device: Device,
    tx: SyncSender<Result<Fetched>>,
    recycled: Receiver<Batch>,
) -> Option<EpochReport> {
    loop {
        while let Ok(b) = recycled.try_recv() {
            it.recycle(b);
        }
        let next = match it.next() {
            None => break,
            Some(Err(e)) => {
                let _ = tx.send(Err(e.into()));
                break;
            }
            Some(Ok(batch)) => {
                let (state, index) = (batch.state, batch.index);
                let raw = data::wrap(batch, device);
                Ok(Fetched { raw, state, index })
            }
        };
        if tx.send(next).is_err() {
            break; // the consumer stopped early
        }
    }
    it.report().cloned()
}

impl Prefetcher {
    /// Starts prefetching `it` for `device`, keeping up to `depth` batches
    /// ready (at least 1) besides the one being prepared.
    pub fn start(it: EpochIter, device: Device, depth: usize) -> Prefetcher {
        let (tx, rx) = mpsc::sync_channel(depth.max(1));
        let (recycle, recycled) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("chess-prefetch".into())
            .spawn(move || produce(it, device, tx, recycled))
            .expect("spawning the prefetch thread");
        Prefetcher { rx: Some(rx), recycle, thread: Some(thread) }
    }

    /// The next batch (blocks until it is ready); `None` at the epoch's end.
    pub fn next_batch(&mut self) -> Result<Option<Fetched>> {
        match self.rx.as_ref().and_then(|rx| rx.recv().ok()) {
            None => Ok(None),
            Some(r) => r.map(Some),
        }
    }

    /// Hands a consumed batch back for buffer reuse (its device tensor is dropped).
    pub fn recycle(&self, raw: RawBatch) {
        if let Some(b) = raw.into_batch() {
            let _ = self.recycle.send(b);
        }
    }

    /// Stops the thread (dropping batches not taken) and returns the epoch's
    /// report when the iterator had reached its end.
    pub fn finish(mut self) -> Option<EpochReport> {
        self.stop()
    }

    fn stop(&mut self) -> Option<EpochReport> {
        // Dropping the receiver unblocks a producer waiting to send.
        self.rx.take();
        self.thread.take().and_then(|t| t.join().ok()).flatten()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.stop();
    }
}
