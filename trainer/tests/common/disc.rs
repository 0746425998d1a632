//! The learnable synthetic task of the downstream tests: noisy 64² images,
//! some with a bright disc (or, for a third class, a bright square).

use std::path::Path;

use chess_schemas::{LabelColumn, LabelType, PixelDtype};
use chess_shards::rng::SplitMix64 as Rng;
use chess_shards::{DatasetWriter, FinishInfo, Image, LabelValue, Sample, SampleFields, WriterOptions};

/// A noisy 64² image; shape 1 adds a bright disc (radius 5–8) somewhere,
/// shape 2 a bright square. Returns the pixels and the shape's centre.
pub fn image(rng: &mut Rng, size: u32, shape: u8) -> (Vec<u8>, (f64, f64)) {
    let s = size as f64;
    let (cx, cy, r) = (rng.range(12.0, s - 12.0), rng.range(12.0, s - 12.0), rng.range(5.0, 8.0));
    let tilt = rng.range(-0.5, 0.5);
    let mut px = Vec::with_capacity((size * size) as usize);
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f64, y as f64);
            let mut v = 70.0 + 30.0 * tilt * (fx / s - 0.5) + rng.range(-25.0, 25.0);
            let inside = match shape {
                1 => (fx - cx).powi(2) + (fy - cy).powi(2) <= r * r,
                2 => (fx - cx).abs() <= r && (fy - cy).abs() <= r,
                _ => false,
            };
            if inside {
                v += 110.0;
            }
            px.push(v.clamp(0.0, 255.0) as u8);
        }
    }
    (px, (cx, cy))
}

/// How [`dataset`] labels its samples.
pub struct Spec<'a> {
    /// The 0/1 disc column's name (`target_Disc`, or `Disc` for raw labels).
    pub label: &'a str,
    /// Number of shapes cycled through (2: none/disc, 3: adds square).
    pub classes: u8,
    /// Splits assigned by patient in turn (empty: no split column).
    pub splits: &'a [&'a str],
}

/// A dataset of `n` images: `<label>` (1/0), `shape` (none/disc/square), one patient each.
pub fn dataset(dir: &Path, n: u64, seed: u64, spec: &Spec<'_>) {
    let opts = WriterOptions {
        shard_name: "disc".into(),
        dtype: PixelDtype::Uint8,
        with_split: !spec.splits.is_empty(),
        labels: vec![
            LabelColumn { name: spec.label.into(), label_type: LabelType::Float32 },
            LabelColumn { name: "shape".into(), label_type: LabelType::Utf8 },
        ],
        ..WriterOptions::default()
    };
    let mut w = DatasetWriter::create(dir, opts).unwrap();
    let mut rng = Rng::seeded(seed);
    for i in 0..n {
        let shape = (i % spec.classes as u64) as u8;
        let (px, _) = image(&mut rng, 64, shape);
        let name = ["none", "disc", "square"][shape as usize];
        w.write(&Sample {
            key: format!("s{seed}x{i:05}"),
            image: Image::from_u8(64, 64, px),
            extras: Vec::new(),
            fields: SampleFields {
                patient_id: Some(format!("p{i}")),
                split: (!spec.splits.is_empty())
                    .then(|| spec.splits[(i / spec.classes as u64) as usize % spec.splits.len()].to_string()),
                labels: vec![LabelValue::Float((shape == 1) as u8 as f64), LabelValue::Str(name.into())],
                ..SampleFields::default()
            },
        })
        .unwrap();
    }
    w.finish(FinishInfo {
        tool_version: "test".into(),
        deid_method: "synthetic".into(),
        provenance: Default::default(),
    })
    .unwrap();
}

/// [`dataset`] with `target_Disc` and no split column.
pub fn disc_dataset(dir: &Path, n: u64, seed: u64, classes: u8) {
    dataset(dir, n, seed, &Spec { label: "target_Disc", classes, splits: &[] });
}

/// The samples [`dataset`] writes for (`n`, `seed`, `classes`): key, shape and the shape's centre (x, y).
pub fn layout(n: u64, seed: u64, classes: u8) -> Vec<(String, u8, (f64, f64))> {
    let mut rng = Rng::seeded(seed);
    (0..n)
        .map(|i| {
            let shape = (i % classes as u64) as u8;
            let (_, centre) = image(&mut rng, 64, shape);
            (format!("s{seed}x{i:05}"), shape, centre)
        })
        .collect()
}
