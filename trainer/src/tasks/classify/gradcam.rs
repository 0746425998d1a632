//! Grad-CAM (Selvaraju et al.) for a fine-tuned classifier: the gradient of
//! a class's logit with respect to a layer's activations (layer4 by default), averaged over
//! space, weights those activations; their ReLU'd sum, upsampled to the
//! image, is the heat map. Written as overlay PNGs (grey image, heat in a
//! blue→red colour ramp) with every output's score printed above the image.

use std::path::{Path, PathBuf};

use chess_shards::plot::Canvas;
use tch::{Device, Kind, Tensor};

use crate::tasks::classify::classifier::Classifier;
use crate::tasks::classify::config::Task;
use crate::tasks::classify::eval::argmax;
use crate::tasks::classify::predict::{unit_from_dataset, unit_from_file};
use crate::{data, write_err, Result, TrainError};

/// What to explain.
#[derive(Debug, Clone)]
pub enum GradcamInput {
    /// A DICOM or PNG file (key: its name without extension).
    File(PathBuf),
    /// A sample of a dataset (directory or manifest) by key.
    Key { dataset: PathBuf, key: String },
}

/// One heat map written.
#[derive(Debug, Clone)]
pub struct CamResult {
    pub key: String,
    pub class: String,
    /// The class's probability (sigmoid or softmax).
    pub score: f64,
    /// The heat map's maximum, in pixels of the (displayed) image: (x, y).
    pub peak: (usize, usize),
    /// `[H, W]` heat map in [0, 1], row-major, at the displayed size.
    pub heat: Vec<f32>,
    pub width: usize,
    pub height: usize,
    pub png: PathBuf,
}

/// Largest side of the overlay image.
const MAX_SIDE: i64 = 512;

/// Heat maps of `input` for `class` (default: every label of a multi-label
/// model, the predicted class of a multi-class one), written into `out_dir`.
pub fn gradcam(
    ckpt: &Path,
    input: &GradcamInput,
    class: Option<&str>,
    layer: usize,
    out_dir: &Path,
    device: Device,
) -> Result<Vec<CamResult>> {
    if !(1..=4).contains(&layer) {
        return Err(TrainError::Settings(format!("layer {layer}: Grad-CAM takes layer1 … layer4")));
    }
    let model = Classifier::load(ckpt, device)?;
    explain(&model, input, class, layer, out_dir)
}

/// [`gradcam`] with a classifier already loaded (many images, one model).
pub fn explain(
    model: &Classifier,
    input: &GradcamInput,
    class: Option<&str>,
    layer: usize,
    out_dir: &Path,
) -> Result<Vec<CamResult>> {
    if !(1..=4).contains(&layer) {
        return Err(TrainError::Settings(format!("layer {layer}: Grad-CAM takes layer1 … layer4")));
    }
    let device = model.vs.device();
    let card = &model.card;
    let (unit, key) = match input {
        GradcamInput::File(f) => {
            (unit_from_file(f)?, f.file_stem().map_or_else(|| "image".into(), |s| s.to_string_lossy().into_owned()))
        }
        GradcamInput::Key { dataset, key } => (unit_from_dataset(dataset, key)?, key.clone()),
    };
    // The displayed image: the input, scaled down to at most MAX_SIDE.
    let (h0, w0) = (unit.size()[2], unit.size()[3]);
    let scale = (MAX_SIDE as f64 / h0.max(w0) as f64).min(1.0);
    let (h, w) = (((h0 as f64 * scale).round() as i64).max(1), ((w0 as f64 * scale).round() as i64).max(1));
    let shown = if (h, w) == (h0, w0) {
        unit.shallow_clone()
    } else {
        unit.internal_upsample_bilinear2d_aa([h, w], false, None, None)
    };

    let probs: Vec<f32> = Vec::try_from(model.scores(&unit.to_device(device)).to_device(Device::Cpu).flatten(0, -1))?;
    let classes: Vec<usize> = match class {
        Some(c) => vec![card.outputs.iter().position(|o| o == c).ok_or_else(|| {
            TrainError::Settings(format!(
                "class `{c}` is not an output of the model (outputs: {})",
                card.outputs.join(", ")
            ))
        })?],
        None => match card.task {
            Task::Multilabel => (0..card.outputs.len()).collect(),
            Task::Multiclass => vec![argmax(&probs)],
        },
    };
    std::fs::create_dir_all(out_dir).map_err(write_err(out_dir))?;
    let mut results = Vec::new();
    let grey: Vec<f32> = Vec::try_from(shown.to_kind(Kind::Float).flatten(0, -1))?;
    for c in classes {
        let heat = heat_map(model, &unit, c, layer, (h, w))?;
        let peak_i = heat.iter().enumerate().fold(0, |b, (i, v)| if *v > heat[b] { i } else { b });
        let png = out_dir.join(format!("{key}_{}.png", safe(&card.outputs[c])));
        draw(&png, &grey, &heat, w as usize, h as usize, &card.outputs, &probs, c)?;
        results.push(CamResult {
            key: key.clone(),
            class: card.outputs[c].clone(),
            score: probs[c] as f64,
            peak: (peak_i % w as usize, peak_i / w as usize),
            heat,
            width: w as usize,
            height: h as usize,
            png,
        });
    }
    Ok(results)
}

/// The Grad-CAM map of output `c` for the unit image `unit` (`[1, 1, H, W]`
/// in [0, 1], prepared as the model's card says), upsampled (bilinear) to
/// `(h, w)` and scaled to [0, 1]; row-major.
pub fn heat_map(model: &Classifier, unit: &Tensor, c: usize, layer: usize, (h, w): (i64, i64)) -> Result<Vec<f32>> {
    let card = &model.card;
    let x = data::normalise(&data::resize(&unit.to_device(model.vs.device()), card.size), card.mean, card.std);
    let heat = cam(model, &x, c, layer)?;
    let up =
        heat.view([1, 1, heat.size()[0], heat.size()[1]]).upsample_bilinear2d([h, w], false, None, None).view([h, w]);
    let max = up.max().double_value(&[]);
    let up = if max > 0.0 { up / max } else { up };
    Ok(Vec::try_from(up.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1))?)
}

/// The overlay's colour of a pixel: grey `g` with heat `v` (both in [0, 1])
/// blended in, more where hotter (blue → cyan → yellow → red).
pub fn overlay(g: f32, v: f32) -> [u8; 3] {
    let g = g.clamp(0.0, 1.0);
    let a = 0.55 * v;
    let r = ramp(v);
    let px = |k: usize| ((g * (1.0 - a) + r[k] * a) * 255.0).round() as u8;
    [px(0), px(1), px(2)]
}

/// The Grad-CAM map `[h, w]` (the grid of `layer{layer}`, ReLU'd, unscaled) of output `c` for the batch of one `x`.
pub fn cam(model: &Classifier, x: &Tensor, c: usize, layer: usize) -> Result<Tensor> {
    let net = &model.net;
    let activation = net.layers_t(&net.stem_t(x, false), 0, layer, false);
    let rest = net.layers_t(&activation, layer, 4, false);
    let logits = net.head(rest.adaptive_avg_pool2d([1, 1]).flatten(1, -1));
    let score = logits.get(0).get(c as i64);
    let grads = Tensor::f_run_backward(&[&score], &[&activation], false, false)?;
    let g = &grads[0];
    let weights = g.mean_dim([2i64, 3].as_slice(), true, Kind::Float);
    let map = (weights * &activation).sum_dim_intlist([1i64].as_slice(), false, Kind::Float).relu();
    Ok(map.get(0).detach())
}

/// A file-name-safe version of a class name.
fn safe(name: &str) -> String {
    name.chars().map(|ch| if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' { ch } else { '_' }).collect()
}

/// Blue → cyan → yellow → red for v in [0, 1].
fn ramp(v: f32) -> [f32; 3] {
    let v = v.clamp(0.0, 1.0);
    let stops = [[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]];
    let t = v * 3.0;
    let i = (t.floor() as usize).min(2);
    let f = t - i as f32;
    let (a, b) = (stops[i], stops[i + 1]);
    [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f]
}

/// The overlay: scores above, grey image with heat blended in (more where hotter).
#[allow(clippy::too_many_arguments)]
fn draw(
    png: &Path,
    grey: &[f32],
    heat: &[f32],
    w: usize,
    h: usize,
    outputs: &[String],
    probs: &[f32],
    c: usize,
) -> Result<()> {
    let line = 16.0f32;
    let band = (line * outputs.len() as f32 + 10.0).ceil() as u32;
    let width = (w as u32).max(260);
    let mut canvas = Canvas::new(width, h as u32 + band);
    canvas.fill_rect(0, 0, width as i64, band as i64, [25, 25, 25]);
    for (i, (o, p)) in outputs.iter().zip(probs).enumerate() {
        let colour = if i == c { [255, 210, 60] } else { [230, 230, 230] };
        let mark = if i == c { "> " } else { "  " };
        canvas.text(6.0, 5.0 + line * i as f32, 13.0, 0.0, &format!("{mark}{o}: {p:.3}"), colour);
    }
    for y in 0..h {
        for x in 0..w {
            let yy = y as i64 + band as i64;
            canvas.fill_rect(x as i64, yy, x as i64 + 1, yy + 1, overlay(grey[y * w + x], heat[y * w + x]));
        }
    }
    canvas.save_png(png).map_err(|e| TrainError::Output { path: png.to_path_buf(), msg: e.to_string() })
}
