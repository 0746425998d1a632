//! The threads of one epoch and the bounded channels between them.
//!
//! ```text
//! fetch/parse × prefetch ──jobs (bounded)──► decode × threads ──┐
//!        │  (corrupt, missing, fatal)                            ├─outcomes (bounded)─► assemble ──batches (bounded)─► consumer
//!        └───────────────────────────────────────────────────────┘
//! ```
//!
//! - **fetch/parse**: `prefetch` threads take the plan's segments in read
//!   order and walk each one's tar members, matching samples to the plan by
//!   key. Local shards are walked in place ([`super::local`]), memory-mapped
//!   (mappings kept across epochs, [`super::local::ShardFiles`]) or with
//!   positioned reads (`CHESS_LOADER_MMAP=0`, or where mapping fails): a
//!   member of raw zstd blocks is only located, and goes straight to the
//!   assembler. Object storage (and foreign tar
//!   records) is read as one byte range through the streaming reader. A
//!   damaged tar stream costs the sample it damages: parsing restarts at the
//!   next planned sample's offset. A sample the shard lacks is reported
//!   missing.
//! - **decode**: members held as bytes (object storage, compressed frames;
//!   in a mapped shard, read in place) and hash checks: zstd + `.npy` into a
//!   pooled buffer (raw blocks in a
//!   member need no decoding), shape/dtype checks and, when asked, the pixel
//!   hash; failures are reported, not fatal.
//! - **assemble**: walks the plan's delivery order, holding what arrived
//!   early in a map (for local raw blocks, only their file offsets), gives
//!   each delivered sample its slot, and when a batch is complete copies
//!   every sample once into its slot of the batch buffer — from the page
//!   cache (a `memcpy` out of the mapping, or `pread` into the slot) or from
//!   the decoded buffer — split among `decode_threads` threads (this one
//!   and scoped helpers, each a contiguous run of slots). Batch buffers the
//!   consumer recycles are filled again without being allocated.
//!
//! Back-pressure and memory: every channel is bounded, and a parser may
//! hand over read position `p` only when the assembler's progress lets the
//! window reach `p` (`prefix_max` of the delivery order a few batches
//! ahead); threads block on the channel or a condition variable, never spin.
//! Decoded samples held at any time are therefore at most the shuffle
//! buffer plus `prefetch_batches` batches (the one being gathered included)
//! plus the channel capacities.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use chess_schemas::layout;
use crossbeam_channel::{bounded, Receiver, Sender};

use super::batch::{Batch, EpochReport, LoaderState, Pixels, SkippedSample};
use super::local::{FileMember, FilePixels, LocalSample, Located, ShardFiles, WalkError, Walker};
use super::plan::Plan;
use super::store::{Counters, RangeReader, Store};
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

/// A needed array as the fetch stage hands it on.
enum Source {
    /// The `.npy.zst` member's bytes (object storage, or a frame the
    /// in-place path does not take): the decoder finds raw blocks in it or
    /// decompresses it.
    Member(Vec<u8>),
    /// Raw blocks of a local shard: nothing read yet.
    InFile(FilePixels),
    /// Any other member of a mapped local shard: decoded in place.
    Mapped(FileMember),
}

/// An array ready to be copied into its batch slot.
enum Ready {
    /// Pixel bytes in a buffer (decompressed, or the raw blocks of a member read whole).
    Buf(Npy),
    /// Pixel bytes still in the shard file: read straight into the slot.
    InFile(FilePixels),
}

impl Ready {
    fn len(&self) -> usize {
        match self {
            Ready::Buf(npy) => npy.pixel_len(),
            Ready::InFile(f) => f.len(),
        }
    }
}

/// A sample ready for the assembler: the image, then the requested extras.
struct Decoded {
    image: Ready,
    extras: Vec<Ready>,
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
    key: String,
    /// The image first, then the requested fields in order.
    sources: Vec<Source>,
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
    /// Member suffixes of the arrays delivered: the image, then the fields.
    suffixes: Vec<String>,
    /// Local shard files, mapped and kept across epochs.
    files: Arc<ShardFiles>,
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
    files: Arc<ShardFiles>,
    recycle: (Sender<Batch>, Receiver<Batch>),
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
    let (recycle_tx, recycle_rx) = recycle;
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
        suffixes: std::iter::once(layout::IMAGE_SUFFIX.to_string())
            .chain(settings.fields.iter().map(|f| format!("{f}.npy.zst")))
            .collect(),
        files,
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

/// What walks a run of a segment: the streaming tar reader over a range
/// read (object storage, or a local part with members the in-place walker
/// leaves to it), or the in-place walker of a local shard.
enum Parser {
    Stream { reader: ShardReader<RangeReader>, failure: Option<Arc<Mutex<Option<LoaderError>>>> },
    Local(Walker),
}

/// One sample as a parser found it.
enum Parsed {
    Raw(RawSample),
    Local(LocalSample),
}

impl Parsed {
    fn key(&self) -> &str {
        match self {
            Parsed::Raw(r) => &r.key,
            Parsed::Local(l) => &l.key,
        }
    }
}

/// Why a parser stopped.
enum ParseError {
    /// Damage at a known place (the sample holding it is lost).
    Damage(ShardError),
    /// Reading failed for good.
    Fatal(LoaderError),
    /// Continue with the streaming reader from this offset.
    Foreign(u64),
}

impl Parser {
    fn open(shared: &Shared, index: u32, shard: &str, start: u64, end: u64) -> Result<Parser, LoaderError> {
        match &shared.store {
            Store::Local(root) => {
                let path = Store::local_path(root, shard)?;
                let file = shared
                    .files
                    .open(index, &path)
                    .map_err(|e| LoaderError::Fetch { object: path.display().to_string(), reason: e.to_string() })?;
                Ok(Parser::Local(Walker::new(file, shard.to_string(), start, end, shared.counters.clone())))
            }
            Store::Remote { .. } => Self::stream(shared, shard, start, end),
        }
    }

    fn stream(shared: &Shared, shard: &str, start: u64, end: u64) -> Result<Parser, LoaderError> {
        let reader = shared.store.open_range(shard, start, end, shared.counters.clone())?;
        let failure = reader.failure_handle();
        let pool = shared.pool.clone();
        let reader = ShardReader::starting_at(reader, shard.to_string(), start).with_buffers(Box::new(move |size| {
            // Pooled buffers for image-sized members; small ones (JSON) are allocated.
            if size >= POOLED_MEMBER_BYTES {
                pool.take()
            } else {
                Vec::new()
            }
        }));
        Ok(Parser::Stream { reader, failure })
    }

    fn next(&mut self, shared: &Shared, shard: &str) -> Result<Option<Parsed>, ParseError> {
        match self {
            Parser::Stream { reader, failure } => match reader.next_sample() {
                Ok(raw) => Ok(raw.map(Parsed::Raw)),
                Err(ShardError::Tar { cause: TarError::Io(io), .. }) => Err(ParseError::Fatal(
                    failure.as_ref().and_then(|f| f.lock().unwrap_or_else(|p| p.into_inner()).take()).unwrap_or_else(
                        || LoaderError::Fetch { object: shared.store.name(shard), reason: io.to_string() },
                    ),
                )),
                Err(e) => Err(ParseError::Damage(e)),
            },
            Parser::Local(walker) => match walker.next_sample() {
                Ok(sample) => Ok(sample.map(Parsed::Local)),
                Err(WalkError::Shard(e)) => Err(ParseError::Damage(e)),
                Err(WalkError::Io(e)) => Err(ParseError::Fatal(LoaderError::Fetch {
                    object: shared.store.name(shard),
                    reason: e.to_string(),
                })),
                Err(WalkError::Foreign { sample_start }) => Err(ParseError::Foreign(sample_start)),
            },
        }
    }

    /// The arrays the run needs of a planned sample (image, then the
    /// requested fields), or why the sample is corrupt.
    fn sources(&self, shared: &Shared, parsed: Parsed) -> Result<Result<Vec<Source>, String>, LoaderError> {
        let mut out = Vec::with_capacity(shared.suffixes.len());
        match parsed {
            Parsed::Raw(mut raw) => {
                for suffix in &shared.suffixes {
                    let Some((_, member)) = raw.members.iter_mut().find(|(s, _)| s == suffix) else {
                        return Ok(Err(format!("corrupt: member {}.{suffix} missing", raw.key)));
                    };
                    out.push(Source::Member(std::mem::take(&mut member.data)));
                }
                for (_, m) in raw.members {
                    if m.data.capacity() as u64 >= POOLED_MEMBER_BYTES {
                        shared.pool.give(m.data);
                    }
                }
            }
            Parsed::Local(sample) => {
                let Parser::Local(walker) = self else { unreachable!("local samples come from the walker") };
                for suffix in &shared.suffixes {
                    let Some((_, span)) = sample.members.iter().find(|(s, _)| s == suffix) else {
                        return Ok(Err(format!("corrupt: member {}.{suffix} missing", sample.key)));
                    };
                    let located = walker.locate(span, || shared.pool.take()).map_err(|e| LoaderError::Fetch {
                        object: walker.file_name().to_string(),
                        reason: e.to_string(),
                    })?;
                    out.push(match located {
                        Located::InFile(pixels) => Source::InFile(pixels),
                        Located::Member(member) => Source::Mapped(member),
                        Located::Bytes(bytes) => Source::Member(bytes),
                    });
                }
            }
        }
        Ok(Ok(out))
    }
}

/// Reads one segment, handing every planned (and not yet delivered) sample
/// over exactly once: as a decode job, as ready (raw blocks of a local
/// shard, nothing to decode or check beyond the headers), or as skipped
/// with a reason.
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
        let mut parser = Parser::open(shared, segment.shard, shard, start, end).map_err(SegmentEnd::Fatal)?;
        let mut at = first; // the planned sample expected next in the stream
        loop {
            if shared.window.cancelled() {
                return Err(SegmentEnd::Stopped);
            }
            match parser.next(shared, shard) {
                Ok(Some(parsed)) => {
                    let Some(&j) = index.get(parsed.key()).filter(|&&j| j >= at && j < to) else {
                        tracing::debug!(shard = %shard, key = %parsed.key(), "sample not in the plan here; ignored");
                        continue;
                    };
                    for k in at..j {
                        if !is_done(k) {
                            skip(k, format!("missing: not found in {shard} at byte {}", loc(k).sample_offset))?;
                        }
                    }
                    if !is_done(j) {
                        let s = samples[j];
                        let key = parsed.key().to_string();
                        let sources = parser.sources(shared, parsed).map_err(SegmentEnd::Fatal)?;
                        if !shared.window.wait_for(s.pos) {
                            return Err(SegmentEnd::Stopped);
                        }
                        hand_over(
                            shared,
                            jobs,
                            msgs,
                            Job { pos: s.pos, row: s.row, key, sources: Vec::new() },
                            sources,
                        )?;
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
                Err(ParseError::Fatal(err)) => return Err(SegmentEnd::Fatal(err)),
                Err(ParseError::Foreign(offset)) => {
                    parser = Parser::stream(shared, shard, offset, end).map_err(SegmentEnd::Fatal)?;
                }
                Err(ParseError::Damage(e)) => {
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

/// Sends a planned sample on: straight to the assembler when every array is
/// raw blocks in a local file and no hash is checked (the header checks are
/// all there is to do), otherwise to a decode thread.
fn hand_over(
    shared: &Shared,
    jobs: &Sender<Job>,
    msgs: &Sender<Msg>,
    mut job: Job,
    sources: Result<Vec<Source>, String>,
) -> Result<(), SegmentEnd> {
    let sources = match sources {
        Ok(s) => s,
        Err(reason) => return msgs.send(Msg::Skipped { pos: job.pos, reason }).map_err(|_| SegmentEnd::Stopped),
    };
    let in_place = !shared.settings.verify_hashes && sources.iter().all(|s| matches!(s, Source::InFile(_)));
    if !in_place {
        job.sources = sources;
        return jobs.send(job).map_err(|_| SegmentEnd::Stopped);
    }
    let mut ready = Vec::with_capacity(sources.len());
    for (source, suffix) in sources.into_iter().zip(&shared.suffixes) {
        let Source::InFile(pixels) = source else { unreachable!("checked above") };
        if let Err(reason) = check_header(&shared.table, &job.key, suffix, &pixels.header) {
            return msgs.send(Msg::Skipped { pos: job.pos, reason }).map_err(|_| SegmentEnd::Stopped);
        }
        ready.push(Ready::InFile(pixels));
    }
    let msg = Msg::Decoded { pos: job.pos, sample: decoded(ready) };
    msgs.send(msg).map_err(|_| SegmentEnd::Stopped)
}

/// The image (first) and extras as one sample.
fn decoded(mut ready: Vec<Ready>) -> Decoded {
    let bytes = ready.iter().map(|r| r.len() as u64).sum();
    let image = ready.remove(0);
    Decoded { image, extras: ready, bytes }
}

fn check_header(table: &Table, key: &str, suffix: &str, h: &crate::npy::NpyHeader) -> Result<(), String> {
    if h.dtype != table.dtype || h.height != table.height || h.width != table.width {
        return Err(format!(
            "corrupt: {key}.{suffix} is {}x{} {}, the dataset is {}x{} {}",
            h.height, h.width, h.dtype, table.height, table.width, table.dtype
        ));
    }
    Ok(())
}

fn decode_worker(shared: &Shared, jobs: &Receiver<Job>, msgs: &Sender<Msg>) {
    let mut decoder = SampleDecoder::new();
    for job in jobs {
        let pos = job.pos;
        let msg = match decode(shared, &mut decoder, job) {
            Ok(sample) => Msg::Decoded { pos, sample },
            Err(reason) => Msg::Skipped { pos, reason },
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

fn decode(shared: &Shared, decoder: &mut SampleDecoder, job: Job) -> Result<Decoded, String> {
    let mut ready = Vec::with_capacity(job.sources.len());
    for (source, suffix) in job.sources.into_iter().zip(&shared.suffixes) {
        match prepare(shared, decoder, &job.key, suffix, job.row, source) {
            Ok(r) => ready.push(r),
            Err(e) => {
                ready.into_iter().for_each(|r| shared.pool.give_ready(r));
                return Err(e);
            }
        }
    }
    Ok(decoded(ready))
}

/// One array: raw blocks stay where they are, a compressed frame is
/// decompressed into a pooled buffer; then the header and, when asked, the
/// pixel hash are checked.
fn prepare(
    shared: &Shared,
    decoder: &mut SampleDecoder,
    key: &str,
    suffix: &str,
    row: usize,
    source: Source,
) -> Result<Ready, String> {
    let table = &shared.table;
    let verify = suffix == layout::IMAGE_SUFFIX && shared.settings.verify_hashes;
    let (ready, header) = match source {
        Source::InFile(pixels) if !verify => {
            let h = pixels.header;
            (Ready::InFile(pixels), Ok(h))
        }
        Source::InFile(pixels) => {
            // The hash is checked before delivery: read into a buffer first.
            let mut buf = shared.pool.take();
            buf.clear();
            buf.resize(pixels.len(), 0);
            if let Err(e) = pixels.read_into(&mut buf) {
                shared.pool.give(buf);
                return Err(format!("corrupt: {key}.{suffix}: reading {}: {e}", pixels.file.name));
            }
            let len = buf.len();
            (Ready::Buf(Npy { buf, ranges: vec![(0, len)] }), Ok(pixels.header))
        }
        Source::Mapped(member) => {
            let mut buf = shared.pool.take();
            let h = match member.bytes() {
                Some(bytes) => decoder.decode_into(bytes, &mut buf),
                None => Err(format!("reading {}: not mapped", member.file.name)),
            };
            let len = buf.len();
            let ranges = match &h {
                Ok(h) => vec![(h.data_offset, len)],
                Err(_) => Vec::new(),
            };
            (Ready::Buf(Npy { buf, ranges }), h)
        }
        Source::Member(data) => match raw_npy_ranges(&data) {
            // Raw blocks: the member's own buffer travels on; nothing is decoded.
            Some((h, ranges)) => (Ready::Buf(Npy { buf: data, ranges }), Ok(h)),
            None => {
                let mut buf = shared.pool.take();
                let h = decoder.decode_into(&data, &mut buf);
                shared.pool.give(data);
                let len = buf.len();
                let ranges = match &h {
                    Ok(h) => vec![(h.data_offset, len)],
                    Err(_) => Vec::new(),
                };
                (Ready::Buf(Npy { buf, ranges }), h)
            }
        },
    };
    let checked = header.map_err(|e| format!("corrupt: {key}.{suffix}: {e}")).and_then(|h| {
        check_header(table, key, suffix, &h)?;
        if let (true, Ready::Buf(npy)) = (verify, &ready) {
            let mut hasher = blake3::Hasher::new();
            npy.pixels().for_each(|p| {
                hasher.update(p);
            });
            if hasher.finalize().as_bytes() != &table.hashes[row] {
                return Err(format!("corrupt: {key}: pixel hash differs from the manifest"));
            }
        }
        Ok(())
    });
    match checked {
        Ok(()) => Ok(ready),
        Err(e) => {
            shared.pool.give_ready(ready);
            Err(e)
        }
    }
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
    fn give_ready(&self, ready: Ready) {
        if let Ready::Buf(npy) = ready {
            self.give(npy.buf);
        }
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
    let per_bytes = pixels_per * table.dtype.bytes_per_pixel();
    // Every batch buffer holds `b` slots while it is filled (a recycled one
    // keeps its memory: nothing is allocated or zeroed again) and is cut to
    // the samples it got when it is sent.
    let new_batch = |index: u64, state: LoaderState| {
        let mut batch = match shared.recycled.try_recv() {
            Ok(mut b)
                if b.height == table.height
                    && b.width == table.width
                    && b.pixels.dtype() == table.dtype
                    && b.extras.len() == shared.settings.fields.len() =>
            {
                b.epoch = start.epoch;
                b.index = index;
                b.keys.clear();
                b.rows.clear();
                b.padded.clear();
                b.labels.clear();
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
                pixels: Pixels::zeroed(table.dtype, b * pixels_per),
                extras: shared
                    .settings
                    .fields
                    .iter()
                    .map(|f| (f.clone(), Pixels::zeroed(table.dtype, b * pixels_per)))
                    .collect(),
                labels: Vec::with_capacity(b),
                state,
            },
        };
        batch.state = state;
        batch.pixels.resize(b * pixels_per);
        for (_, p) in &mut batch.extras {
            p.resize(b * pixels_per);
        }
        batch
    };
    // Made when its first sample is ready (not when the previous one is
    // sent), so that the consumer has had time to hand a buffer back.
    let mut batch: Option<Batch> = None;
    // The samples of the batch being gathered, in slot order: copied into
    // the batch buffer when it is complete, by `decode_threads` threads.
    let mut pending: Vec<Decoded> = Vec::with_capacity(b);
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
        // Sizes were checked against the headers; a mismatch here is damage, not a panic.
        let outcome = outcome.and_then(|sample| {
            if sample.image.len() == per_bytes && sample.extras.iter().all(|e| e.len() == per_bytes) {
                Ok(sample)
            } else {
                shared.pool.give_ready(sample.image);
                sample.extras.into_iter().for_each(|r| shared.pool.give_ready(r));
                Err(format!("corrupt: {}: pixel bytes do not match the dataset's image size", table.key(row)))
            }
        });
        match outcome {
            Ok(sample) => {
                report.bytes_delivered += sample.bytes;
                pending.push(sample);
                let batch = batch.get_or_insert_with(|| new_batch(state.batches, state));
                batch.keys.push(table.key(row).to_string());
                batch.rows.push(row);
                batch.padded.push(plan.padded[pos]);
                batch.labels.push(table.labels(row));
                report.delivered += 1;
                report.padded += plan.padded[pos] as u64;
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
        let gathered = batch.as_ref().map_or(0, Batch::len);
        if gathered == b || (t + 1 == n && gathered > 0) {
            let mut full = batch.take().expect("a batch with samples");
            let filled = fill_batch(&mut full, &pending, pixels_per, shared.settings.decode_threads);
            for sample in pending.drain(..) {
                shared.pool.give_ready(sample.image);
                sample.extras.into_iter().for_each(|r| shared.pool.give_ready(r));
            }
            if let Err(err) = filled {
                finish(&mut report, false);
                let _ = out.send(Err(err));
                return;
            }
            state.batches += 1;
            state.delivered = report.delivered;
            state.skipped = report.skipped;
            report.batches = state.batches;
            full.state = state;
            let n = full.len() * pixels_per;
            full.pixels.resize(n);
            for (_, p) in &mut full.extras {
                p.resize(n);
            }
            if out.send(Ok(full)).is_err() {
                finish(&mut report, false);
                return;
            }
        }
    }
    finish(&mut report, true);
}

/// Copies the gathered samples into their slots of the batch buffers
/// (image, then extras), split among up to `threads` threads (this one
/// included) when there is more than one sample to copy.
fn fill_batch(batch: &mut Batch, samples: &[Decoded], pixels_per: usize, threads: usize) -> Result<(), LoaderError> {
    let n = samples.len();
    if n == 0 {
        return Ok(());
    }
    let mut copies: Vec<(&mut [u8], &Ready)> = Vec::with_capacity(n * (1 + batch.extras.len()));
    let slot_bytes = batch.pixels.bytes_mut(0, n * pixels_per).len() / n;
    for (dst, s) in batch.pixels.bytes_mut(0, n * pixels_per).chunks_mut(slot_bytes).zip(samples) {
        copies.push((dst, &s.image));
    }
    for (k, (_, extra)) in batch.extras.iter_mut().enumerate() {
        for (dst, s) in extra.bytes_mut(0, n * pixels_per).chunks_mut(slot_bytes).zip(samples) {
            copies.push((dst, &s.extras[k]));
        }
    }
    let threads = threads.clamp(1, copies.len());
    let result = if threads == 1 {
        copies.into_iter().try_for_each(|(dst, src)| copy_into(dst, src))
    } else {
        // Contiguous runs of slots per thread: each writes its own part of the buffer.
        let per = copies.len().div_ceil(threads);
        let mut parts: Vec<Vec<(&mut [u8], &Ready)>> = Vec::with_capacity(threads);
        let mut it = copies.into_iter();
        loop {
            let part: Vec<_> = it.by_ref().take(per).collect();
            if part.is_empty() {
                break;
            }
            parts.push(part);
        }
        let mine = parts.remove(0);
        std::thread::scope(|scope| {
            let helpers: Vec<_> = parts
                .into_iter()
                .map(|part| scope.spawn(move || part.into_iter().try_for_each(|(dst, src)| copy_into(dst, src))))
                .collect();
            let here = mine.into_iter().try_for_each(|(dst, src)| copy_into(dst, src));
            helpers.into_iter().fold(here, |acc, h| {
                let r = h.join().unwrap_or_else(|_| {
                    Err(LoaderError::Fetch { object: "batch".into(), reason: "a copy thread panicked".into() })
                });
                acc.and(r)
            })
        })
    };
    batch.pixels.le_to_native(0, n * pixels_per);
    for (_, extra) in &mut batch.extras {
        extra.le_to_native(0, n * pixels_per);
    }
    result
}

/// Copies one array into its slot: from the decoded buffer, or straight
/// out of the shard file (mapping or `pread`: the one copy of a raw-block
/// member).
fn copy_into(bytes: &mut [u8], src: &Ready) -> Result<(), LoaderError> {
    match src {
        Ready::Buf(npy) => {
            let mut at = 0;
            for piece in npy.pixels() {
                bytes[at..at + piece.len()].copy_from_slice(piece);
                at += piece.len();
            }
            Ok(())
        }
        Ready::InFile(pixels) => pixels
            .read_into(bytes)
            .map_err(|e| LoaderError::Fetch { object: pixels.file.name.clone(), reason: e.to_string() }),
    }
}
