//! What the loader delivers: [`Batch`] (one contiguous `[B, H, W]` pixel
//! buffer plus keys, manifest rows and label values), the resume point
//! [`LoaderState`], and the per-epoch [`EpochReport`].

use crate::manifest::LabelValue;

/// Pixels of a batch or a sample, C order, native integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pixels {
    U8(Vec<u8>),
    U16(Vec<u16>),
}

impl Pixels {
    /// Number of pixels.
    pub fn len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::U16(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held.
    pub fn byte_len(&self) -> usize {
        match self {
            Pixels::U8(v) => v.len(),
            Pixels::U16(v) => v.len() * 2,
        }
    }

    pub fn as_u16(&self) -> Option<&[u16]> {
        match self {
            Pixels::U16(v) => Some(v),
            Pixels::U8(_) => None,
        }
    }

    pub fn as_u8(&self) -> Option<&[u8]> {
        match self {
            Pixels::U8(v) => Some(v),
            Pixels::U16(_) => None,
        }
    }

    pub fn dtype(&self) -> chess_schemas::PixelDtype {
        match self {
            Pixels::U8(_) => chess_schemas::PixelDtype::Uint8,
            Pixels::U16(_) => chess_schemas::PixelDtype::Uint16,
        }
    }

    /// `n` zero pixels from zeroed memory (pages are mapped when first written).
    pub(crate) fn zeroed(dtype: chess_schemas::PixelDtype, n: usize) -> Pixels {
        match dtype {
            chess_schemas::PixelDtype::Uint8 => Pixels::U8(vec![0; n]),
            chess_schemas::PixelDtype::Uint16 => Pixels::U16(vec![0; n]),
        }
    }

    /// Sets the length to `n` pixels (new ones zero; capacity is kept when
    /// shrinking, so a recycled buffer is not allocated again).
    pub(crate) fn resize(&mut self, n: usize) {
        match self {
            Pixels::U8(v) => v.resize(n, 0),
            Pixels::U16(v) => v.resize(n, 0),
        }
    }

    /// The bytes of pixels `from..from + n`, to be filled with little-endian
    /// pixel bytes (then [`Pixels::le_to_native`]).
    pub(crate) fn bytes_mut(&mut self, from: usize, n: usize) -> &mut [u8] {
        match self {
            Pixels::U8(v) => &mut v[from..from + n],
            Pixels::U16(v) => bytemuck::cast_slice_mut(&mut v[from..from + n]),
        }
    }

    /// Turns pixels `from..from + n`, filled with little-endian bytes, into
    /// native integers (nothing to do on little-endian machines).
    pub(crate) fn le_to_native(&mut self, from: usize, n: usize) {
        if let Pixels::U16(v) = self {
            if cfg!(target_endian = "big") {
                v[from..from + n].iter_mut().for_each(|p| *p = u16::from_le(*p));
            }
        }
    }
}

/// A batch: `len()` samples of `height × width`, in delivery order.
#[derive(Debug, Clone)]
pub struct Batch {
    pub epoch: u64,
    /// Index of this batch within this consumer's epoch.
    pub index: u64,
    pub keys: Vec<String>,
    /// Manifest row of each sample.
    pub rows: Vec<usize>,
    /// Whether a sample is a repetition added by `Remainder::Pad`.
    pub padded: Vec<bool>,
    pub height: u32,
    pub width: u32,
    /// `[len, height, width]`, contiguous: a tensor can wrap it without a copy.
    pub pixels: Pixels,
    /// Requested extra arrays (`target`, `mask`), each `[len, height, width]`.
    pub extras: Vec<(String, Pixels)>,
    /// Label values per sample, in [`super::Loader::label_names`] order.
    pub labels: Vec<Vec<LabelValue>>,
    /// Where to resume to get the batch after this one.
    pub state: LoaderState,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// `[len, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.len(), self.height as usize, self.width as usize]
    }

    /// Labels as a dense row-major `[len, labels]` matrix; null and
    /// non-numeric values are NaN.
    pub fn labels_f32(&self) -> Vec<f32> {
        self.labels
            .iter()
            .flat_map(|row| {
                row.iter().map(|v| match v {
                    LabelValue::Bool(b) => *b as u8 as f32,
                    LabelValue::Int(i) => *i as f32,
                    LabelValue::Float(f) => *f as f32,
                    LabelValue::Null | LabelValue::Str(_) => f32::NAN,
                })
            })
            .collect()
    }
}

/// A resume point: everything needed to continue an epoch exactly where a
/// consumer left it. A few numbers; serialise it with the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LoaderState {
    pub seed: u64,
    pub epoch: u64,
    pub world: u64,
    pub rank: u64,
    pub workers: u64,
    pub worker: u64,
    pub batch_size: u64,
    /// Delivery slots of the epoch already consumed (delivered or skipped).
    pub slot: u64,
    /// Batches delivered so far this epoch.
    pub batches: u64,
    /// Samples delivered so far this epoch.
    pub delivered: u64,
    /// Samples skipped (corrupt or missing) so far this epoch.
    pub skipped: u64,
    /// Fingerprint of the plan's other inputs (samples, shuffle, access,
    /// remainder): resuming with different ones is refused.
    pub plan_id: u64,
}

/// A sample that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SkippedSample {
    pub key: String,
    pub shard: String,
    pub reason: String,
}

/// What one consumer's epoch delivered.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EpochReport {
    pub epoch: u64,
    pub rank: u64,
    pub world: u64,
    /// Samples this consumer was to deliver (including `Remainder::Pad` repeats).
    pub expected: u64,
    pub delivered: u64,
    /// Delivered repetitions added by `Remainder::Pad`.
    pub padded: u64,
    /// Samples of the whole epoch left out by `Remainder::Drop` (all consumers).
    pub dropped_remainder: u64,
    /// Corrupt or missing samples: count over the epoch (including before a resume).
    pub skipped: u64,
    /// The skipped samples seen by this run, with reasons.
    pub skipped_samples: Vec<SkippedSample>,
    pub batches: u64,
    /// Bytes fetched by this run (compressed, as stored).
    pub bytes_read: u64,
    /// Decoded pixel bytes delivered by this run.
    pub bytes_delivered: u64,
    /// Object-store bodies that failed and were re-requested from the byte
    /// already read (this run).
    pub resumed_reads: u64,
    pub seconds: f64,
    /// Whether the epoch ran to its end (false when stopped early or failed).
    pub complete: bool,
}

impl EpochReport {
    /// Every expected sample was delivered or reported as skipped.
    pub fn accounted(&self) -> bool {
        self.complete && self.delivered + self.skipped == self.expected
    }
}
