//! The workers' side of a DICOM import: one item (a file or an archive
//! member) to an [`Outcome`]: read, parse, select, decode, pixel pipeline,
//! de-identify, label lookup, encode the sample's tar members. Nothing here
//! writes; the writer thread does ([`super::ledger`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chess_shards::{encode_sample, EncodedSample, LabelValue, Sample, WriterOptions};

use super::Timing;
use crate::deid::{self, Key};
use crate::dicom::{self, Header};
use crate::discover::Item;
use crate::frontend;
use crate::labels::Labels;
use crate::pipeline::{self, PipelineOptions, PixelSemantics};
use crate::reject::{Reason, Reject};
use crate::select::Selection;

/// Worker time per stage, summed over threads (nanoseconds).
#[derive(Default)]
pub(super) struct Clocks {
    pub(super) read: AtomicU64,
    pub(super) decode: AtomicU64,
    pub(super) pipeline: AtomicU64,
    pub(super) encode: AtomicU64,
}

fn tick(c: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    c.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
    now
}

/// What a worker made of one item.
pub(super) enum Outcome {
    Sample { key: String, hash: String, label_row: Option<usize>, encoded: Box<EncodedSample> },
    Reject(Reject),
}

/// Read-only context shared by the workers.
pub(super) struct Ctx {
    pub(super) key: Key,
    pub(super) selection: Selection,
    pub(super) pipeline: PipelineOptions,
    pub(super) labels: Option<Labels>,
    pub(super) keep_shifted_dates: bool,
    pub(super) writer_opts: WriterOptions,
    pub(super) clocks: Clocks,
}

/// Processes one item: everything short of writing it.
pub(super) fn process(ctx: &Ctx, item: Item) -> Outcome {
    let t = Instant::now();
    let bytes = match item.payload.read() {
        Ok(b) => b,
        Err((code, message)) => {
            let reason = Reason::from_code(code).unwrap_or(Reason::ReadError);
            return Outcome::Reject(Reject::new(reason, message));
        }
    };
    let t = tick(&ctx.clocks.read, t);
    match process_bytes(ctx, &bytes, t) {
        Ok(o) => o,
        Err(r) => Outcome::Reject(r),
    }
}

fn process_bytes(ctx: &Ctx, bytes: &[u8], t: Instant) -> Result<Outcome, Reject> {
    let obj = dicom::parse(bytes)?;
    let h = Header::from_object(&obj);
    ctx.selection.check(&h)?;
    if h.sop_instance_uid.is_empty() {
        return Err(Reject::new(Reason::MissingSopInstanceUid, "no SOPInstanceUID"));
    }
    let stored = dicom::decode(&obj, &h)?;
    drop(obj);
    let t = tick(&ctx.clocks.decode, t);
    let sem = PixelSemantics {
        monochrome1: h.photometric == "MONOCHROME1",
        rescale_slope: h.rescale_slope,
        rescale_intercept: h.rescale_intercept,
        modality_lut: h.modality_lut.as_ref(),
    };
    let out = pipeline::run(&stored.values, stored.rows, stored.columns, &sem, &ctx.pipeline);
    drop(stored);
    let image = frontend::to_image(&out.pixels, out.size, ctx.pipeline.bit_depth);
    let t = tick(&ctx.clocks.pipeline, t);
    let hash = chess_shards::pixel_hash(&image);
    let d = deid::deidentify(&ctx.key, &h);
    let (label_row, mut labels) = match &ctx.labels {
        None => (None, Vec::new()),
        Some(l) => match l.lookup(&h) {
            Some((row, values)) => (Some(row), values),
            None => (None, l.nulls()),
        },
    };
    if ctx.keep_shifted_dates {
        labels.push(d.shifted_study_date.clone().map(LabelValue::Str).unwrap_or(LabelValue::Null));
    }
    let key = d.key.clone();
    let sample = Sample {
        key: key.clone(),
        image,
        extras: Vec::new(),
        fields: frontend::dicom_fields(d, out.clip_value, labels),
    };
    let encoded = encode_sample(&sample, &ctx.writer_opts)
        .map_err(|e| Reject::new(Reason::DecodeError, format!("could not encode the sample: {e}")))?;
    tick(&ctx.clocks.encode, t);
    Ok(Outcome::Sample { key, hash, label_row, encoded: Box::new(encoded) })
}

impl Clocks {
    /// The summed stage times, with the run's wall time.
    pub(super) fn timing(&self, wall: Duration) -> Timing {
        let d = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        Timing {
            wall,
            read: d(&self.read),
            decode: d(&self.decode),
            pipeline: d(&self.pipeline),
            encode: d(&self.encode),
        }
    }
}
