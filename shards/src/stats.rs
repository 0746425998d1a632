//! `stats`: counts by view, sex, age band, modality and split, and pixel
//! statistics from an exact value histogram, with a PNG chart.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::Dataset;
use crate::error::{Result, ShardError};
use crate::image::NpyZstDecoder;
use crate::plot::{save_panels, Panel};

/// Pixel statistics over the images read.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PixelStats {
    pub images: u64,
    pub pixels: u64,
    pub min: u32,
    pub max: u32,
    pub mean: f64,
    pub std: f64,
    /// (percentile, value) pairs.
    pub percentiles: Vec<(f64, u32)>,
}

/// Everything `stats` reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DatasetStats {
    pub samples: u64,
    pub patients: u64,
    pub by_view: BTreeMap<String, u64>,
    pub by_sex: BTreeMap<String, u64>,
    pub by_age_band: BTreeMap<String, u64>,
    pub by_modality: BTreeMap<String, u64>,
    pub by_split: BTreeMap<String, u64>,
    pub by_size: BTreeMap<String, u64>,
    pub pixels: PixelStats,
    /// Exact histogram of pixel values (65536 bins for uint16, 256 for uint8).
    #[serde(skip)]
    pub histogram: Vec<u64>,
}

const UNKNOWN: &str = "unknown";

/// One shard's share of the pixel statistics.
struct ShardPixels {
    hist: Vec<u64>,
    sum: f64,
    sum_sq: f64,
    images: u64,
}

/// `0-9`, `10-19`, ..., `90+`, or `unknown`.
pub fn age_band(age: Option<f32>) -> String {
    match age {
        Some(a) if a.is_finite() && a >= 0.0 => {
            let decade = ((a / 10.0).floor() as u32).min(9) * 10;
            if decade == 90 {
                "90+".into()
            } else {
                format!("{decade}-{}", decade + 9)
            }
        }
        _ => UNKNOWN.into(),
    }
}

/// Percentile (0..=100) from a histogram, nearest-rank.
pub fn histogram_percentile(hist: &[u64], total: u64, p: f64) -> u32 {
    if total == 0 {
        return 0;
    }
    let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (v, &c) in hist.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return v as u32;
        }
    }
    (hist.len() - 1) as u32
}

/// Computes statistics. Pixel statistics read every `pixel_stride`-th
/// sample (1 = all); `progress` gets the number of images read so far.
pub fn compute(ds: &Dataset, pixel_stride: usize, progress: &(dyn Fn(u64) + Sync)) -> Result<DatasetStats> {
    let rows = ds.manifest.rows();
    let mut s = DatasetStats { samples: rows.len() as u64, ..DatasetStats::default() };
    let mut patients = std::collections::HashSet::new();
    let bump =
        |m: &mut BTreeMap<String, u64>, k: Option<&str>| *m.entry(k.unwrap_or(UNKNOWN).to_string()).or_default() += 1;
    for r in &rows {
        bump(&mut s.by_view, r.view_position.as_deref());
        bump(&mut s.by_sex, r.sex.as_deref());
        bump(&mut s.by_modality, r.modality.as_deref());
        *s.by_age_band.entry(age_band(r.age_years)).or_default() += 1;
        if ds.manifest.columns.has_split {
            bump(&mut s.by_split, r.split.as_deref());
        }
        *s.by_size.entry(format!("{}x{} {}", r.height, r.width, r.dtype)).or_default() += 1;
        if let Some(p) = &r.patient_id {
            patients.insert(p.clone());
        }
    }
    s.patients = patients.len() as u64;

    // Group the selected rows by shard; read each shard's rows with positioned reads.
    let stride = pixel_stride.max(1);
    let mut by_shard: BTreeMap<&str, Vec<&crate::ManifestRow>> = BTreeMap::new();
    for r in rows.iter().step_by(stride) {
        by_shard.entry(r.shard.as_str()).or_default().push(r);
    }
    let counter = AtomicU64::new(0);
    let partials: Vec<Result<ShardPixels>> = by_shard
        .par_iter()
        .map(|(shard, rows)| {
            let path = ds.shard_path(shard)?;
            let file = File::open(&path).map_err(ShardError::read(&path))?;
            let mut decoder = NpyZstDecoder::new();
            let mut hist = vec![0u64; 65536];
            let (mut sum, mut sum_sq, mut images) = (0f64, 0f64, 0u64);
            let mut buf = Vec::new();
            for row in rows {
                buf.resize(row.size as usize, 0);
                file.read_exact_at(&mut buf, row.offset).map_err(ShardError::read(&path))?;
                let image = decoder.decode(&buf).map_err(|e| ShardError::Member {
                    shard: row.shard.clone(),
                    member: format!("{}.npy.zst", row.key),
                    reason: e.to_string(),
                })?;
                let mut local = 0f64;
                let mut local_sq = 0f64;
                for i in 0..image.pixel_count() {
                    let v = image.get(i);
                    hist[v as usize] += 1;
                    local += v as f64;
                    local_sq += (v as f64) * (v as f64);
                }
                sum += local;
                sum_sq += local_sq;
                images += 1;
                progress(counter.fetch_add(1, Ordering::Relaxed) + 1);
            }
            Ok(ShardPixels { hist, sum, sum_sq, images })
        })
        .collect();
    let mut hist = vec![0u64; 65536];
    let (mut sum, mut sum_sq) = (0f64, 0f64);
    for part in partials {
        let part = part?;
        for (t, v) in hist.iter_mut().zip(part.hist) {
            *t += v;
        }
        sum += part.sum;
        sum_sq += part.sum_sq;
        s.pixels.images += part.images;
    }
    let dtype_max = match ds.info.as_ref().map(|i| i.pixel_dtype) {
        Some(chess_schemas::PixelDtype::Uint8) => 255,
        _ if hist[256..].iter().all(|&c| c == 0) && rows.iter().all(|r| r.dtype == "uint8") => 255,
        _ => 65535,
    };
    hist.truncate(dtype_max + 1);
    let total: u64 = hist.iter().sum();
    s.pixels.pixels = total;
    if total > 0 {
        s.pixels.min = hist.iter().position(|&c| c > 0).unwrap_or(0) as u32;
        s.pixels.max = hist.iter().rposition(|&c| c > 0).unwrap_or(0) as u32;
        s.pixels.mean = sum / total as f64;
        s.pixels.std = (sum_sq / total as f64 - s.pixels.mean.powi(2)).max(0.0).sqrt();
        s.pixels.percentiles = [1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0]
            .iter()
            .map(|&p| (p, histogram_percentile(&hist, total, p)))
            .collect();
    }
    s.histogram = hist;
    Ok(s)
}

impl DatasetStats {
    /// Writes a PNG: pixel-value histogram, then counts by view and by age band.
    pub fn save_png(&self, path: &Path) -> Result<()> {
        let bins = 128usize;
        let width = self.histogram.len().div_ceil(bins).max(1);
        let display: Vec<f64> = self.histogram.chunks(width).map(|c| c.iter().sum::<u64>() as f64).collect();
        let max_value = self.histogram.len().saturating_sub(1) as f64;
        let age_order: Vec<String> = (0..9)
            .map(|d| format!("{}-{}", d * 10, d * 10 + 9))
            .chain(["90+".to_string(), UNKNOWN.to_string()])
            .collect();
        let ages: Vec<(String, f64)> =
            age_order.iter().filter_map(|b| self.by_age_band.get(b).map(|&c| (b.clone(), c as f64))).collect();
        save_panels(
            path,
            &[
                Panel::histogram(
                    &format!("Pixel values ({} images, {} pixels)", self.pixels.images, self.pixels.pixels),
                    "stored value",
                    display,
                    (0.0, max_value),
                ),
                Panel::bars(
                    "Images by view position",
                    "view",
                    self.by_view.keys().cloned().collect(),
                    self.by_view.values().map(|&c| c as f64).collect(),
                ),
                Panel::bars(
                    "Images by age band",
                    "age (years)",
                    ages.iter().map(|a| a.0.clone()).collect(),
                    ages.iter().map(|a| a.1).collect(),
                ),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_and_percentiles() {
        assert_eq!(age_band(Some(0.5)), "0-9");
        assert_eq!(age_band(Some(45.0)), "40-49");
        assert_eq!(age_band(Some(103.0)), "90+");
        assert_eq!(age_band(None), "unknown");
        assert_eq!(age_band(Some(f32::NAN)), "unknown");
        let hist = vec![1, 0, 2, 1]; // values 0, 2, 2, 3
        assert_eq!(histogram_percentile(&hist, 4, 50.0), 2);
        assert_eq!(histogram_percentile(&hist, 4, 1.0), 0);
        assert_eq!(histogram_percentile(&hist, 4, 100.0), 3);
    }
}
