//! The workers' side of a DICOM import: one item (a file or an archive
//! member) to an [`Outcome`]: read, parse, select, decode, pixel pipeline,
//! de-identify, label lookup, encode the sample's tar members. Nothing here
//! writes; the writer thread does ([`super::ledger`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chess_shards::{encode_sample, EncodedSample, LabelValue, Sample, WriterOptions};

use super::Timing;
use crate::burned_in::{self, sheet::Tile, Device, Policy};
use crate::deid::{self, Key};
use crate::dicom::{self, Header};
use crate::discover::Item;
use crate::frontend;
use crate::labels::Labels;
use crate::pipeline::{self, PipelineOptions, PixelSemantics};
use crate::reject::{Reason, Reject};
use crate::select::Selection;
use dicom_dictionary_std::tags;

/// Worker time per stage, summed over threads (nanoseconds).
#[derive(Default)]
pub(super) struct Clocks {
    pub(super) read: AtomicU64,
    pub(super) decode: AtomicU64,
    pub(super) burned_in: AtomicU64,
    pub(super) pipeline: AtomicU64,
    pub(super) encode: AtomicU64,
}

fn tick(c: &AtomicU64, since: Instant) -> Instant {
    let now = Instant::now();
    c.fetch_add((now - since).as_nanos() as u64, Ordering::Relaxed);
    now
}

/// What a worker made of one item; `notes` are the codes of how leniently
/// the file was read ([`dicom::read::Note::code`]), for the journal.
pub(super) enum Outcome {
    Sample {
        key: String,
        hash: String,
        label_row: Option<usize>,
        masked: bool,
        notes: Vec<String>,
        encoded: Box<EncodedSample>,
    },
    Reject(Reject, Vec<String>),
}

/// Read-only context shared by the workers.
pub(super) struct Ctx {
    pub(super) key: Key,
    pub(super) selection: Selection,
    pub(super) pipeline: PipelineOptions,
    pub(super) labels: Option<Labels>,
    pub(super) dates: deid::Dates,
    pub(super) writer_opts: WriterOptions,
    pub(super) burned_in: burned_in::Options,
    pub(super) clocks: Clocks,
    pub(super) decode: dicom::DecodeOptions,
}

/// Processes one item: everything short of writing it. With it, the
/// contact-sheet tile of an image rejected or masked for burned-in text.
pub(super) fn process(ctx: &Ctx, item: Item) -> (Outcome, Option<Tile>) {
    let t = Instant::now();
    let bytes = match item.payload.read() {
        Ok(b) => b,
        Err((code, message)) => {
            let reason = Reason::from_code(code).unwrap_or(Reason::ReadError);
            return (Outcome::Reject(Reject::new(reason, message), Vec::new()), None);
        }
    };
    let t = tick(&ctx.clocks.read, t);
    let mut tile = None;
    let mut notes = Vec::new();
    let outcome = match process_bytes(ctx, &bytes, t, &mut tile, &mut notes) {
        Ok(o) => o,
        Err(r) => Outcome::Reject(r, notes),
    };
    (outcome, tile)
}

fn process_bytes(
    ctx: &Ctx,
    bytes: &[u8],
    t: Instant,
    tile: &mut Option<Tile>,
    notes: &mut Vec<String>,
) -> Result<Outcome, Reject> {
    let read = dicom::read::read(bytes)?;
    *notes = read.codes();
    let obj = read.obj;
    let h = Header::from_object(&obj);
    ctx.selection.check(&h)?;
    if h.sop_instance_uid.is_empty() {
        return Err(Reject::new(Reason::MissingSopInstanceUid, "no SOPInstanceUID"));
    }
    let text_of = |tag| {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok().map(|s| s.trim().to_string()))
            .unwrap_or_default()
    };
    let (manufacturer, model) = (text_of(tags::MANUFACTURER), text_of(tags::MANUFACTURER_MODEL_NAME));
    let mut stored = dicom::decode_with(&obj, &h, ctx.decode)?;
    drop(obj);
    let t = tick(&ctx.clocks.decode, t);
    let sem = PixelSemantics {
        monochrome1: h.photometric == "MONOCHROME1",
        rescale_slope: h.rescale_slope,
        rescale_intercept: h.rescale_intercept,
        modality_lut: h.modality_lut.as_ref(),
    };
    let device = Device { manufacturer: &manufacturer, model: &model };
    let (masked, source_units) = burned_in_text(ctx, &h, &mut stored, &device, &sem, tile)?;
    let t = tick(&ctx.clocks.burned_in, t);
    let out = pipeline::run_on_modality(source_units, stored.rows, stored.columns, &sem, &ctx.pipeline);
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
    if ctx.dates != deid::Dates::None {
        labels.push(ctx.dates.keep(d.shifted_study_date.as_deref()).map(LabelValue::Str).unwrap_or(LabelValue::Null));
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
    let notes = std::mem::take(notes);
    Ok(Outcome::Sample { key, hash, label_row, masked, notes, encoded: Box::new(encoded) })
}

/// The burned-in step on the stored values: rules regions blanked, text
/// lines rejected, blanked or kept by the policy. Returns whether pixels
/// were blanked, and the image in source units (the pipeline's step 2,
/// done row by row while the scan's first pass holds each row in cache).
fn burned_in_text(
    ctx: &Ctx,
    h: &Header,
    stored: &mut dicom::Stored,
    device: &Device<'_>,
    sem: &PixelSemantics<'_>,
    tile: &mut Option<Tile>,
) -> Result<(bool, Vec<f32>), Reject> {
    let (rows, cols) = (stored.rows as usize, stored.columns as usize);
    let opts = &ctx.burned_in;
    let mut units = vec![0f32; stored.values.len()];
    let found = burned_in::scan_visiting(&stored.values, rows, cols, device, opts, &mut |y, row| {
        pipeline::modality_into(row, sem, &mut units[y * cols..(y + 1) * cols])
    });
    // Values past the image (none from the decoders) are still converted.
    let image = (rows * cols).min(stored.values.len());
    pipeline::modality_into(&stored.values[image..], sem, &mut units[image..]);
    if found.text.is_empty() && found.ruled.is_empty() {
        return Ok((false, units));
    }
    let mono1 = h.photometric == "MONOCHROME1";
    let text = if opts.policy == Policy::Keep { &[][..] } else { &found.text[..] };
    let reject = opts.policy == Policy::Reject && !text.is_empty();
    *tile = Some(Tile::of(&stored.values, rows, cols, mono1, text, &found.ruled, reject));
    if reject {
        return Err(Reject::new(
            Reason::BurnedInText,
            format!("{} line(s) of text in the pixels (see burned-in.png)", text.len()),
        ));
    }
    // Blank with what displays as black.
    let (lo, hi) = stored.values.iter().fold((i32::MAX, i32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let fill = if mono1 { hi } else { lo };
    burned_in::blank(&mut stored.values, cols, &found.ruled, fill);
    burned_in::blank(&mut stored.values, cols, text, fill);
    // The blanked rows again in source units.
    for r in found.ruled.iter().chain(text) {
        for y in r.y..r.y + r.h {
            let row = y * cols..(y + 1) * cols;
            pipeline::modality_into(&stored.values[row.clone()], sem, &mut units[row]);
        }
    }
    Ok((true, units))
}

impl Clocks {
    /// The summed stage times, with the run's wall time.
    pub(super) fn timing(&self, wall: Duration) -> Timing {
        let d = |c: &AtomicU64| Duration::from_nanos(c.load(Ordering::Relaxed));
        Timing {
            wall,
            read: d(&self.read),
            decode: d(&self.decode),
            burned_in: d(&self.burned_in),
            pipeline: d(&self.pipeline),
            encode: d(&self.encode),
        }
    }
}
