//! The threads of one epoch and the bounded channels between them.
//!
//! ```text
//! fetch/parse × prefetch ──jobs (bounded)──► decode × threads ──┐
//!        │  (corrupt, missing, fatal)                            ├─outcomes (bounded)─► assemble ──batches (bounded)─► consumer
//!        └───────────────────────────────────────────────────────┘
//! ```
//!
//! - **fetch/parse**: `prefetch` threads take the plan's segments in read
//!   order, open each as one byte range and walk its tar members, matching
//!   samples to the plan by key. A damaged tar stream costs the sample it
//!   damages: parsing restarts at the next planned sample's offset (one more
//!   range request). A sample the shard lacks is reported missing.
//! - **decode**: zstd + `.npy` into native integers, shape/dtype checks and,
//!   when asked, the pixel hash; failures are reported, not fatal.
//! - **assemble**: walks the plan's delivery order, holding what arrived
//!   early in a map, and fills batches.
//!
//! Back-pressure and memory: every channel is bounded, and a parser may
//! hand over read position `p` only when the assembler's progress lets the
//! window reach `p` (`prefix_max` of the delivery order a few batches
//! ahead); threads block on the channel or a condition variable, never spin.
//! Decoded samples held at any time are therefore at most the shuffle
//! buffer plus `prefetch_batches` batches plus the channel capacities.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use chess_schemas::layout;
use crossbeam_channel::{bounded, Receiver, Sender};

use super::batch::{Batch, EpochReport, LoaderState, Pixels, SkippedSample};
use super::plan::Plan;
use super::store::{Counters, Store};
use super::{LoaderError, Table};
use crate::error::ShardError;
use crate::image::{NpyZstDecoder, MAX_DECODED_BYTES};
use crate::reader::{RawSample, ShardReader};
use crate::tar::TarError;

/// Members at least this large are read into pooled buffers.
const POOLED_MEMBER_BYTES: u64 = 64 << 10;

/// Settings of one epoch run.
#[derive(Debug, Clone)]
pub(crate) struct RunSettings {
    pub batch_size: usize,
    pub decode_threads: usize,
    pub prefetch_shards: usize,
    pub prefetch_batches: usize,
    pub verify_hashes: bool,
    pub fields: Vec<String>,
    /// Shuffle-buffer slots (bounds the samples held).
    pub shuffle_slots: usize,
}

/// A decoded sample.
struct Decoded {
    image: Npy,
    extras: Vec<Npy>,
    bytes: u64,
}

enum Msg {
    Decoded { pos: usize, sample: Decoded },
    Skipped { pos: usize, reason: String },
    Fatal(LoaderError),
}

struct Job {
    pos: usize,
    row: usize,
    raw: RawSample,
}

/// How far ahead parsers may read.
struct Window {
    state: Mutex<(usize, bool)>, // (horizon: positions < horizon may be handed over, cancelled)
    cv: Condvar,
}

impl Window {
    fn wait_for(&self, pos: usize) -> bool {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !g.1 && pos >= g.0 {
            g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
        }
        !g.1
    }
    fn advance(&self, horizon: usize) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if horizon > g.0 {
            g.0 = horizon;
            self.cv.notify_all();
        }
    }
    fn cancel(&self) {
        let mut g = self.state.lock().unwrap_or_else(|p| p.into_inner());
        g.1 = true;
        self.cv.notify_all();
    }
    fn cancelled(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1
    }
}

struct Shared {
    table: Arc<Table>,
    store: Store,
    plan: Arc<Plan>,
    settings: RunSettings,
    /// Read positions already delivered before a resume: not read again.
    done: Vec<bool>,
    window: Window,
    next_segment: AtomicUsize,
    counters: Arc<Counters>,
    pool: Pool,
    /// Batches the consumer handed back ([`super::EpochIter::recycle`]).
    recycled: Receiver<Batch>,
}

/// A running epoch: the receiving end of its batches, plus what is needed to
/// stop it.
pub(crate) struct Running {
    pub rx: Receiver<Result<Batch, LoaderError>>,
    pub recycle: Sender<Batch>,
    shared: Arc<Shared>,
    pub report: Arc<Mutex<Option<EpochReport>>>,
}

impl Running {
    pub fn read_bytes(&self) -> u64 {
        self.shared.counters.read_bytes.load(Ordering::Relaxed)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shared.window.cancel();
    }
}

/// Starts the threads of an epoch from `start` (slot 0 for a fresh epoch).
pub(crate) fn start(
    table: Arc<Table>,
    store: Store,
    plan: Arc<Plan>,
    settings: RunSettings,
    start: LoaderState,
) -> Running {
    let n = plan.len();
    let first_slot = (start.slot as usize).min(n);
    let mut done = vec![false; n];
    for &pos in &plan.order[..first_slot] {
        done[pos] = true;
    }
    let lookahead = settings.batch_size.max(1) * settings.prefetch_batches.max(1);
    let (recycle_tx, recycle_rx) = bounded::<Batch>(settings.prefetch_batches.max(1) + 1);
    let horizon = if n == 0 { 0 } else { plan.prefix_max[(first_slot + lookahead).min(n - 1)] + 1 };
    let shared = Arc::new(Shared {
        table,
        store,
        plan,
        settings: settings.clone(),
        done,
        window: Window { state: Mutex::new((horizon, false)), cv: Condvar::new() },
        next_segment: AtomicUsize::new(0),
        counters: Arc::new(Counters::default()),
        pool: Pool::new(lookahead + settings.shuffle_slots + 4 * settings.decode_threads.max(1) + 64),
        recycled: recycle_rx,
    });
    let cap = settings.batch_size.max(16);
    let (job_tx, job_rx) = bounded::<Job>(cap);
    let (msg_tx, msg_rx) = bounded::<Msg>(cap);
    let (batch_tx, batch_rx) = bounded::<Result<Batch, LoaderError>>(settings.prefetch_batches.max(1));
    let report = Arc::new(Mutex::new(None));

    for i in 0..settings.prefetch_shards.max(1) {
        let (shared, job_tx, msg_tx) = (shared.clone(), job_tx.clone(), msg_tx.clone());
        spawn(format!("chess-fetch-{i}"), move || fetch_worker(&shared, &job_tx, &msg_tx));
    }
    for i in 0..settings.decode_threads.max(1) {
        let (shared, job_rx, msg_tx) = (shared.clone(), job_rx.clone(), msg_tx.clone());
        spawn(format!("chess-decode-{i}"), move || decode_worker(&shared, &job_rx, &msg_tx));
    }
    drop((job_tx, job_rx, msg_tx));
    {
        let (shared, report) = (shared.clone(), report.clone());
        spawn("chess-assemble".into(), move || {
            assemble(&shared, start, first_slot, lookahead, &msg_rx, &batch_tx, &report)
        });
    }
    Running { rx: batch_rx, recycle: recycle_tx, shared, report }
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new().name(name).spawn(f).expect("spawning a loader thread");
}

fn fetch_worker(shared: &Shared, jobs: &Sender<Job>, msgs: &Sender<Msg>) {
    loop {
        let i = shared.next_segment.fetch_add(1, Ordering::Relaxed);
        let Some(segment) = shared.plan.segments.get(i) else { return };
        if let Err(e) = read_segment(shared, segment, jobs, msgs) {
            match e {
                SegmentEnd::Stopped => return,
                SegmentEnd::Fatal(err) => {
                    let _ = msgs.send(Msg::Fatal(err));
                    shared.window.cancel();
                    return;
                }
            }
        }
    }
}

enum SegmentEnd {
    /// The epoch was cancelled or a channel closed.
    Stopped,
    Fatal(LoaderError),
}

/// Reads one segment, handing every planned (and not yet delivered) sample
/// over exactly once: as a decode job, or as skipped with a reason.
///
/// The segment is read as runs of planned samples, each one byte range;
/// the first run is the whole segment. When the tar stream is damaged, the
/// sample holding the damaged byte is lost and the rest is read again as
/// two runs: the samples before it (not yet handed over; the parser reads
/// one member ahead) and those after it.
fn read_segment(
    shared: &Shared,
    segment: &super::plan::Segment,
    jobs: &Sender<Job>,
    msgs: &Sender<Msg>,
) -> Result<(), SegmentEnd> {
    let table = &shared.table;
    let shard = &table.shards[segment.shard as usize];
    let samples = &segment.samples;
    let loc = |i: usize| table.locs[samples[i].row];
    let index: HashMap<&str, usize> = samples.iter().enumerate().map(|(i, s)| (table.key(s.row), i)).collect();
    let is_done = |i: usize| shared.done[samples[i].pos];
    let skip = |i: usize, reason: String| -> Result<(), SegmentEnd> {
        let s = samples[i];
        if !shared.window.wait_for(s.pos) {
            return Err(SegmentEnd::Stopped);
        }
        msgs.send(Msg::Skipped { pos: s.pos, reason }).map_err(|_| SegmentEnd::Stopped)
    };
    // Runs `[from, to)` of sample indices, in order.
    let mut runs: std::collections::VecDeque<(usize, usize)> = std::collections::VecDeque::new();
    runs.push_back((0, samples.len()));
    while let Some((from, to)) = runs.pop_front() {
        let Some(first) = (from..to).find(|&i| !is_done(i)) else { continue };
        let start = loc(first).sample_offset;
        let end = loc(to - 1).sample_offset + loc(to - 1).sample_size;
        let reader = shared.store.open_range(shard, start, end, shared.counters.clone()).map_err(SegmentEnd::Fatal)?;
        let failure = reader.failure_handle();
        let pool = shared.pool.clone();
        let mut parser = ShardReader::starting_at(reader, shard.clone(), start).with_buffers(Box::new(move |size| {
            // Pooled buffers for image-sized members; small ones (JSON) are allocated.
            if size >= POOLED_MEMBER_BYTES {
                pool.take()
            } else {
                Vec::new()
            }
        }));
        let mut at = first; // the planned sample expected next in the stream
        loop {
            if shared.window.cancelled() {
                return Err(SegmentEnd::Stopped);
            }
            match parser.next_sample() {
                Ok(Some(raw)) => {
                    let Some(&j) = index.get(raw.key.as_str()).filter(|&&j| j >= at && j < to) else {
                        tracing::debug!(shard = %shard, key = %raw.key, "sample not in the plan here; ignored");
                        continue;
                    };
                    for k in at..j {
                        if !is_done(k) {
                            skip(k, format!("missing: not found in {shard} at byte {}", loc(k).sample_offset))?;
                        }
                    }
                    if !is_done(j) {
                        let s = samples[j];
                        if !shared.window.wait_for(s.pos) {
                            return Err(SegmentEnd::Stopped);
                        }
                        jobs.send(Job { pos: s.pos, row: s.row, raw }).map_err(|_| SegmentEnd::Stopped)?;
                    }
                    at = j + 1;
                    if !(at..to).any(|i| !is_done(i)) {
                        break;
                    }
                }
                Ok(None) => {
                    for k in at..to {
                        if !is_done(k) {
                            skip(k, format!("missing: {shard} ends before it"))?;
                        }
                    }
                    break;
                }
                Err(ShardError::Tar { cause: TarError::Io(io), .. }) => {
                    let err = failure
                        .as_ref()
                        .and_then(|f| f.lock().unwrap_or_else(|p| p.into_inner()).take())
                        .unwrap_or_else(|| LoaderError::Fetch {
                            object: shared.store.name(shard),
                            reason: io.to_string(),
                        });
                    return Err(SegmentEnd::Fatal(err));
                }
                Err(e) => {
                    // Damage at a known byte: the planned sample holding it is
                    // lost; without an offset, the next expected one is.
                    let offset = match &e {
                        ShardError::Tar {
                            cause: TarError::BadHeader { offset, .. } | TarError::Truncated { offset, .. },
                            ..
                        } => Some(*offset),
                        _ => None,
                    };
                    let lost = offset
                        .and_then(|o| {
                            (at..to)
                                .find(|&i| o >= loc(i).sample_offset && o < loc(i).sample_offset + loc(i).sample_size)
                        })
                        .unwrap_or(at);
                    if !is_done(lost) {
                        skip(lost, format!("corrupt: {e}"))?;
                    }
                    if lost + 1 < to {
                        runs.push_front((lost + 1, to));
                    }
                    if at < lost {
                        runs.push_front((at, lost));
                    }
                    break;
                }
            }
        }
    }
    Ok(())
}

fn decode_worker(shared: &Shared, jobs: &Receiver<Job>, msgs: &Sender<Msg>) {
    let mut decoder = SampleDecoder::new();
    for mut job in jobs {
        let msg = match decode(shared, &mut decoder, &mut job) {
            Ok(sample) => Msg::Decoded { pos: job.pos, sample },
            Err(reason) => Msg::Skipped { pos: job.pos, reason },
        };
        if msgs.send(msg).is_err() {
            return;
        }
    }
}

/// A zstd context and a scratch buffer: decoding allocates nothing in the
/// steady state (fresh 512 KiB buffers cost page faults that show up as a
/// large share of the time). The scratch, holding the whole `.npy`, is what
/// travels to the assembler, which converts its little-endian pixels
/// straight into the batch; the assembler hands it back through the pool.
struct SampleDecoder {
    ctx: zstd::bulk::Decompressor<'static>,
    fallback: NpyZstDecoder,
}

impl SampleDecoder {
    fn new() -> Self {
        SampleDecoder {
            ctx: zstd::bulk::Decompressor::new().expect("zstd context allocation"),
            fallback: NpyZstDecoder::new(),
        }
    }

    /// Decodes a `.npy.zst` member into `npy` (the whole `.npy` file).
    fn decode_into(&mut self, compressed: &[u8], npy: &mut Vec<u8>) -> Result<crate::npy::NpyHeader, String> {
        npy.clear();
        match zstd::zstd_safe::get_frame_content_size(compressed) {
            Ok(Some(size)) if size <= MAX_DECODED_BYTES => {
                npy.reserve(size as usize);
                self.ctx.decompress_to_buffer(compressed, npy).map_err(|e| format!("zstd: {e}"))?;
                if npy.len() as u64 != size {
                    return Err(format!("zstd: frame announced {size} bytes, produced {}", npy.len()));
                }
            }
            _ => {
                // No content size in the frame (or too large): the bounded streaming path.
                let image = self.fallback.decode(compressed).map_err(|e| e.to_string())?;
                crate::npy::write_header(npy, image.dtype, image.height, image.width);
                npy.extend_from_slice(&image.data);
            }
        }
        crate::npy::parse(npy).map_err(|e| e.to_string())
    }
}

/// One decoded array: a buffer and the byte ranges of its pixels in it, in
/// order — one range of a decompressed `.npy`, or, for a frame of raw
/// blocks, the blocks' payloads inside the member as read (no decode copy:
/// the assembler copies them straight into the batch).
struct Npy {
    buf: Vec<u8>,
    ranges: Vec<(usize, usize)>,
}

impl Npy {
    fn pixels(&self) -> impl Iterator<Item = &[u8]> {
        self.ranges.iter().map(|&(from, to)| &self.buf[from..to])
    }
    fn pixel_len(&self) -> usize {
        self.ranges.iter().map(|(from, to)| to - from).sum()
    }
}

/// The pixel ranges of a member that is one zstd frame of raw blocks
/// holding a `.npy`, with its header; `None` when it is not such a frame
/// (then it is decoded) or the `.npy` header is not inside the first block.
fn raw_npy_ranges(member: &[u8]) -> Option<(crate::npy::NpyHeader, Vec<(usize, usize)>)> {
    let base = member.as_ptr() as usize;
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let content = crate::image::raw_frame_visit(member, |b| {
        let from = b.as_ptr() as usize - base;
        blocks.push((from, from + b.len()));
    })?;
    if blocks.iter().map(|(a, b)| (b - a) as u64).sum::<u64>() != content {
        return None;
    }
    let &(first_from, first_to) = blocks.first()?;
    let header = crate::npy::parse_header(&member[first_from..first_to]).ok()?;
    if header.data_offset > first_to - first_from || content - header.data_offset as u64 != header.data_len() {
        return None;
    }
    blocks[0].0 += header.data_offset;
    blocks.retain(|(a, b)| b > a);
    // Pixels are converted piece by piece: no pixel may straddle two blocks.
    let item = header.dtype.bytes_per_pixel();
    if blocks.iter().any(|(a, b)| (b - a) % item != 0) {
        return None;
    }
    Some((header, blocks))
}

fn decode(shared: &Shared, decoder: &mut SampleDecoder, job: &mut Job) -> Result<Decoded, String> {
    let table = &shared.table;
    let key = job.raw.key.clone();
    let mut one = |suffix: &str| -> Result<Npy, String> {
        let member = job
            .raw
            .members
            .iter_mut()
            .find(|(s, _)| s == suffix)
            .map(|(_, m)| m)
            .ok_or_else(|| format!("corrupt: member {key}.{suffix} missing"))?;
        let (npy, header) = match raw_npy_ranges(&member.data) {
            // Raw blocks: the member's own buffer travels on; nothing is decoded.
            Some((h, ranges)) => (Npy { buf: std::mem::take(&mut member.data), ranges }, Ok(h)),
            None => {
                let mut buf = shared.pool.take();
                let h = decoder.decode_into(&member.data, &mut buf);
                shared.pool.give(std::mem::take(&mut member.data));
                let len = buf.len();
                let ranges = match &h {
                    Ok(h) => vec![(h.data_offset, len)],
                    Err(_) => Vec::new(),
                };
                (Npy { buf, ranges }, h)
            }
        };
        let checked = match header {
            Err(e) => Err(format!("corrupt: {key}.{suffix}: {e}")),
            Ok(h) if h.dtype != table.dtype || h.height != table.height || h.width != table.width => Err(format!(
                "corrupt: {key}.{suffix} is {}x{} {}, the dataset is {}x{} {}",
                h.height, h.width, h.dtype, table.height, table.width, table.dtype
            )),
            Ok(_) => {
                if suffix == layout::IMAGE_SUFFIX && shared.settings.verify_hashes {
                    let mut hasher = blake3::Hasher::new();
                    npy.pixels().for_each(|p| {
                        hasher.update(p);
                    });
                    if hasher.finalize().as_bytes() != &table.hashes[job.row] {
                        Err(format!("corrupt: {key}: pixel hash differs from the manifest"))
                    } else {
                        Ok(())
                    }
                } else {
                    Ok(())
                }
            }
        };
        match checked {
            Ok(()) => Ok(npy),
            Err(e) => {
                shared.pool.give(npy.buf);
                Err(e)
            }
        }
    };
    let image = one(layout::IMAGE_SUFFIX)?;
    let mut bytes = image.pixel_len() as u64;
    let mut extras = Vec::with_capacity(shared.settings.fields.len());
    for field in &shared.settings.fields {
        match one(&format!("{field}.npy.zst")) {
            Ok(npy) => {
                bytes += npy.pixel_len() as u64;
                extras.push(npy);
            }
            Err(e) => {
                shared.pool.give(image.buf);
                extras.into_iter().for_each(|n: Npy| shared.pool.give(n.buf));
                return Err(e);
            }
        }
    }
    Ok(Decoded { image, extras, bytes })
}

/// Buffers handed back by the assembler for the readers and decoders to reuse.
#[derive(Clone)]
pub(crate) struct Pool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
}

impl Pool {
    fn new(cap: usize) -> Pool {
        let (tx, rx) = bounded(cap.max(1));
        Pool { tx, rx }
    }
    fn take(&self) -> Vec<u8> {
        self.rx.try_recv().unwrap_or_default()
    }
    fn give(&self, buf: Vec<u8>) {
        let _ = self.tx.try_send(buf);
    }
}

#[allow(clippy::too_many_arguments)]
fn assemble(
    shared: &Shared,
    start: LoaderState,
    first_slot: usize,
    lookahead: usize,
    msgs: &Receiver<Msg>,
    out: &Sender<Result<Batch, LoaderError>>,
    report_slot: &Mutex<Option<EpochReport>>,
) {
    let began = Instant::now();
    let plan = &shared.plan;
    let table = &shared.table;
    let n = plan.len();
    let b = shared.settings.batch_size.max(1);
    let pixels_per = table.height as usize * table.width as usize;
    let mut held: HashMap<usize, Result<Decoded, String>> = HashMap::new();
    let mut state = start;
    state.slot = first_slot as u64;
    let mut report = EpochReport {
        epoch: start.epoch,
        rank: start.rank,
        world: start.world,
        expected: n as u64,
        delivered: start.delivered,
        padded: 0,
        dropped_remainder: plan.dropped,
        skipped: start.skipped,
        skipped_samples: Vec::new(),
        batches: start.batches,
        bytes_read: 0,
        bytes_delivered: 0,
        resumed_reads: 0,
        seconds: 0.0,
        complete: false,
    };
    let new_batch = |index: u64, state: LoaderState| match shared.recycled.try_recv() {
        Ok(mut b)
            if b.height == table.height && b.width == table.width && b.extras.len() == shared.settings.fields.len() =>
        {
            b.epoch = start.epoch;
            b.index = index;
            b.keys.clear();
            b.rows.clear();
            b.padded.clear();
            b.labels.clear();
            b.pixels.clear();
            for (_, p) in &mut b.extras {
                p.clear();
            }
            b.state = state;
            b
        }
        _ => Batch {
            epoch: start.epoch,
            index,
            keys: Vec::with_capacity(b),
            rows: Vec::with_capacity(b),
            padded: Vec::with_capacity(b),
            height: table.height,
            width: table.width,
            pixels: Pixels::with_capacity_like(table.dtype, b * pixels_per),
            extras: shared
                .settings
                .fields
                .iter()
                .map(|f| (f.clone(), Pixels::with_capacity_like(table.dtype, b * pixels_per)))
                .collect(),
            labels: Vec::with_capacity(b),
            state,
        },
    };
    let mut batch = new_batch(state.batches, state);
    let finish = |report: &mut EpochReport, complete: bool| {
        report.complete = complete;
        report.seconds = began.elapsed().as_secs_f64();
        report.bytes_read = shared.counters.read_bytes.load(Ordering::Relaxed);
        report.resumed_reads = shared.counters.resumed.load(Ordering::Relaxed);
        *report_slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(report.clone());
    };
    for t in first_slot..n {
        let pos = plan.order[t];
        let outcome = loop {
            if let Some(o) = held.remove(&pos) {
                break o;
            }
            match msgs.recv() {
                Ok(Msg::Decoded { pos: p, sample }) => {
                    held.insert(p, Ok(sample));
                }
                Ok(Msg::Skipped { pos: p, reason }) => {
                    held.insert(p, Err(reason));
                }
                Ok(Msg::Fatal(err)) => {
                    finish(&mut report, false);
                    let _ = out.send(Err(err));
                    return;
                }
                Err(_) => {
                    // Every producer is gone without handing this position over:
                    // only possible when the epoch was cancelled.
                    finish(&mut report, false);
                    return;
                }
            }
        };
        let row = plan.rows[pos];
        match outcome {
            Ok(sample) => {
                batch.keys.push(table.key(row).to_string());
                batch.rows.push(row);
                batch.padded.push(plan.padded[pos]);
                sample.image.pixels().for_each(|p| batch.pixels.extend_le(p));
                for ((_, dst), src) in batch.extras.iter_mut().zip(&sample.extras) {
                    src.pixels().for_each(|p| dst.extend_le(p));
                }
                shared.pool.give(sample.image.buf);
                sample.extras.into_iter().for_each(|n| shared.pool.give(n.buf));
                batch.labels.push(table.labels(row));
                report.delivered += 1;
                report.padded += plan.padded[pos] as u64;
                report.bytes_delivered += sample.bytes;
            }
            Err(reason) => {
                tracing::warn!(key = %table.key(row), shard = %table.shards[table.locs[row].shard as usize], %reason, "sample skipped");
                report.skipped += 1;
                report.skipped_samples.push(SkippedSample {
                    key: table.key(row).to_string(),
                    shard: table.shards[table.locs[row].shard as usize].clone(),
                    reason,
                });
            }
        }
        state.slot = t as u64 + 1;
        if n > 0 {
            shared.window.advance(plan.prefix_max[(t + 1 + lookahead).min(n - 1)] + 1);
        }
        if batch.len() == b || (t + 1 == n && !batch.is_empty()) {
            state.batches += 1;
            state.delivered = report.delivered;
            state.skipped = report.skipped;
            report.batches = state.batches;
            let mut full = std::mem::replace(&mut batch, new_batch(state.batches, state));
            full.state = state;
            if out.send(Ok(full)).is_err() {
                finish(&mut report, false);
                return;
            }
        }
    }
    finish(&mut report, true);
}
