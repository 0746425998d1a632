//! Synthetic chest-radiograph phantoms for demos, tests and benchmarks.
//!
//! Each phantom is deterministic in its seed: a body outline, two lungs,
//! mediastinum and heart, spine, ribs and clavicles, plus quantum-like noise,
//! with a higher value brighter as in the dataset convention. They are not
//! real radiographs; the demo archive of real ones comes from ingest.

use chess_schemas::{LabelColumn, LabelType, PixelDtype};

use crate::image::Image;
use crate::manifest::LabelValue;
use crate::rng::SplitMix64;
use crate::writer::{Sample, SampleFields, WriterOptions};

fn ellipse(x: f64, y: f64, cx: f64, cy: f64, rx: f64, ry: f64) -> f64 {
    // 1 inside, soft edge of ~2% of the radius.
    let d = ((x - cx) / rx).powi(2) + ((y - cy) / ry).powi(2);
    ((1.0 - d) / 0.08).clamp(0.0, 1.0)
}

/// Parameters drawn from a phantom's seed.
#[derive(Debug, Clone, Copy)]
pub struct PhantomParams {
    pub lung_w: f64,
    pub lung_h: f64,
    /// Heart radius; above [`CARDIOMEGALY_HEART`] the demo labels Cardiomegaly.
    pub heart: f64,
    pub tilt: f64,
    pub rib_phase: f64,
}

/// Heart radius above which a demo phantom is labelled Cardiomegaly.
pub const CARDIOMEGALY_HEART: f64 = 0.135;

impl PhantomParams {
    pub fn from_seed(seed: u64) -> PhantomParams {
        let mut rng = SplitMix64::seeded(seed);
        PhantomParams {
            lung_w: rng.range(0.16, 0.21),
            lung_h: rng.range(0.28, 0.34),
            heart: rng.range(0.10, 0.15),
            tilt: rng.range(-0.03, 0.03),
            rib_phase: rng.range(0.0, 1.0),
        }
    }
}

/// A phantom of `size`×`size` pixels in [0, 1] (higher is brighter).
pub fn phantom_unit(seed: u64, size: u32) -> Vec<f32> {
    phantom_unit_with(seed, size, true)
}

/// A phantom with or without bones (ribs, clavicles, spine): the pair is a
/// toy bone-suppression example.
pub fn phantom_unit_with(seed: u64, size: u32, bones: bool) -> Vec<f32> {
    let PhantomParams { lung_w, lung_h, heart, tilt, rib_phase } = PhantomParams::from_seed(seed);
    let mut rng = SplitMix64::seeded(seed.wrapping_add(1));
    let bone = if bones { 1.0 } else { 0.0 };
    let n = size as usize;
    let mut out = vec![0f32; n * n];
    for j in 0..n {
        let y = (j as f64 + 0.5) / n as f64;
        for i in 0..n {
            let x = (i as f64 + 0.5) / n as f64 + tilt * (y - 0.5);
            let body = ellipse(x, y, 0.5, 0.55, 0.46, 0.55);
            let lungs =
                ellipse(x, y, 0.5 - 0.2, 0.46, lung_w, lung_h).max(ellipse(x, y, 0.5 + 0.2, 0.46, lung_w, lung_h));
            let heart_blob = ellipse(x, y, 0.54, 0.62, heart * 1.3, heart);
            let spine = (1.0 - ((x - 0.5).abs() / 0.045)).clamp(0.0, 1.0);
            let ribs = if lungs > 0.0 {
                let phase = (y * 14.0 + (x - 0.5).abs() * 3.0 + rib_phase) * std::f64::consts::TAU;
                (phase.sin() * 0.5 + 0.5).powi(6) * 0.25
            } else {
                0.0
            };
            let clavicle = (1.0 - ((y - 0.17 - 0.3 * (x - 0.5).abs()).abs() / 0.012)).clamp(0.0, 1.0)
                * ((x - 0.5).abs() < 0.32) as u8 as f64;
            let v = 0.08 + 0.45 * body - 0.32 * lungs * (1.0 - heart_blob)
                + 0.22 * heart_blob * body
                + bone * (0.3 * spine * body + ribs + 0.3 * clavicle);
            out[j * n + i] = v.clamp(0.0, 1.0) as f32;
        }
    }
    // Noise: Gaussian-ish (sum of uniforms), a few percent.
    for v in out.iter_mut() {
        let g = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 0.03;
        *v = (*v as f64 + g).clamp(0.0, 1.0) as f32;
    }
    out
}

/// A phantom as an image of the given pixel type, using the full range.
pub fn phantom(seed: u64, size: u32, dtype: PixelDtype) -> Image {
    unit_to_image(&phantom_unit(seed, size), size, dtype)
}

fn unit_to_image(unit: &[f32], size: u32, dtype: PixelDtype) -> Image {
    match dtype {
        PixelDtype::Uint16 => {
            let px: Vec<u16> = unit.iter().map(|&v| (v as f64 * 65535.0).round() as u16).collect();
            Image::from_u16(size, size, &px)
        }
        PixelDtype::Uint8 => Image::from_u8(size, size, unit.iter().map(|&v| (v * 255.0).round() as u8).collect()),
    }
}

/// Writer options matching [`demo_sample`]: a `split` column, a
/// `Cardiomegaly` label (1, 0, -1 uncertain, null blank) and, when paired,
/// a `target` array (the same phantom without bones).
pub fn demo_options(dtype: PixelDtype, shard_samples: u64, paired: bool) -> WriterOptions {
    WriterOptions {
        shard_name: "demo".into(),
        max_shard_samples: shard_samples,
        dtype,
        with_split: true,
        labels: vec![LabelColumn { name: "Cardiomegaly".into(), label_type: LabelType::Float32 }],
        extra_fields: if paired { vec!["target".into()] } else { Vec::new() },
        ..WriterOptions::default()
    }
}

/// A demo sample: phantom plus made-up, non-identifying metadata.
pub fn demo_sample(index: u64, size: u32, dtype: PixelDtype, paired: bool) -> Sample {
    let mut rng = SplitMix64::seeded(index.wrapping_mul(7919));
    let views = ["PA", "PA", "PA", "AP", "AP", "LL"];
    let view = views[(rng.next_u64() % views.len() as u64) as usize];
    Sample {
        key: format!("demo{index:06}"),
        image: phantom(index, size, dtype),
        extras: if paired {
            vec![("target".to_string(), unit_to_image(&phantom_unit_with(index, size, false), size, dtype))]
        } else {
            Vec::new()
        },
        fields: SampleFields {
            patient_id: Some(format!("demo-patient-{:04}", index / 3)),
            study_id: Some(format!("demo-study-{:05}", index / 2)),
            series_id: Some(format!("demo-series-{index:06}")),
            view_position: Some(view.into()),
            sex: Some(if rng.unit() < 0.5 { "F" } else { "M" }.into()),
            age_years: Some(rng.range(18.0, 90.0).round() as f32),
            modality: Some("SYNTH".into()),
            clip_value: Some(1.0),
            split: Some(["train", "train", "train", "valid", "test"][((index / 3) % 5) as usize].into()),
            labels: vec![match (index % 7, PhantomParams::from_seed(index).heart > CARDIOMEGALY_HEART) {
                (0, _) => LabelValue::Null,
                (1, _) => LabelValue::Float(-1.0),
                (_, large) => LabelValue::Float(if large { 1.0 } else { 0.0 }),
            }],
            ..SampleFields::default()
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phantoms_are_deterministic_and_varied() {
        let a = phantom(1, 64, PixelDtype::Uint16);
        assert_eq!(a, phantom(1, 64, PixelDtype::Uint16));
        assert_ne!(a, phantom(2, 64, PixelDtype::Uint16));
        let px = a.to_u16();
        let (min, max) = (px.iter().min().unwrap(), px.iter().max().unwrap());
        assert!(*max > 40000 && *min < 10000, "uses the range: {min}..{max}");
    }
}
