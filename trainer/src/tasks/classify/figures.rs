//! The paper's figures and tables from a sweep's finished runs:
//!
//! - [`table_png`]: the summary table (Table 2 for multi-class, Table 3 for
//!   multi-label) as a PNG — setting, init, repeats, mean ± SD, p-values
//!   against the best init, the best row marked (the CSV is `summary.csv`);
//! - [`gradcam_panel`]: Fig. 3 — one test image, then its Grad-CAM overlay
//!   under each init's classifier (the run of the richest setting, repeat 0)
//!   with every output's score below it, the explained class marked.
//!
//! Fig. 2 (mean ± SD against the label fraction, one line per init, error
//! bars) is `summary.png`, drawn by [`crate::tasks::classify::sweep`].

use std::path::Path;

use chess_shards::plot::Canvas;
use tch::{Device, Kind};

use crate::tasks::classify::classifier::Classifier;
use crate::tasks::classify::config::Task;
use crate::tasks::classify::gradcam::{heat_map, overlay};
use crate::tasks::classify::predict::unit_from_dataset;
use crate::{Result, TrainError};

const INK: [u8; 3] = [30, 30, 30];
const BEST: [u8; 3] = [232, 240, 250];

fn save(c: &Canvas, png: &Path) -> Result<()> {
    c.save_png(png).map_err(|e| TrainError::Output { path: png.to_path_buf(), msg: e.to_string() })
}

/// One table row: its cells and whether it is the setting's best init.
pub struct TableRow {
    pub cells: Vec<String>,
    pub best: bool,
}

/// Draws `header` and `rows` as a table (columns as wide as their widest cell).
pub fn table_png(png: &Path, title: &str, header: &[String], rows: &[TableRow]) -> Result<()> {
    let (size, pad, line) = (13.0f32, 12.0f32, 24.0f32);
    let width_of = |s: &str| chess_shards::plot::text::extent(size, s).0;
    let cols = header.len();
    let mut widths: Vec<f32> = header.iter().map(|h| width_of(h)).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(&r.cells) {
            *w = w.max(width_of(c));
        }
    }
    let total_w = widths.iter().map(|w| w + 2.0 * pad).sum::<f32>().max(width_of(title) + 2.0 * pad);
    let h = 40.0 + line * (rows.len() + 1) as f32 + 10.0;
    let mut c = Canvas::new(total_w.ceil() as u32, h.ceil() as u32);
    c.text(pad, 10.0, 15.0, 0.0, title, INK);
    let y0 = 40.0f32;
    let draw_row = |c: &mut Canvas, y: f32, cells: &[String]| {
        let mut x = 0.0f32;
        for (i, cell) in cells.iter().enumerate().take(cols) {
            c.text(x + pad, y + 5.0, size, 0.0, cell, INK);
            x += widths[i] + 2.0 * pad;
        }
    };
    draw_row(&mut c, y0, header);
    c.fill_rect(0, (y0 + line) as i64 - 2, total_w as i64, (y0 + line) as i64 - 1, INK);
    for (k, r) in rows.iter().enumerate() {
        let y = y0 + line * (k + 1) as f32;
        if r.best {
            c.fill_rect(0, y as i64, total_w as i64, (y + line) as i64 - 1, BEST);
        }
        draw_row(&mut c, y, &r.cells);
    }
    save(&c, png)
}

/// One init's classifier for the Grad-CAM panel.
pub struct PanelModel<'a> {
    pub init: &'a str,
    pub run: &'a Path,
}

/// Fig. 3: the test image `key` of `dataset`, then one overlay per model
/// (the class explained: the label with the highest mean score over the
/// models for multi-label, the predicted class of the first model for
/// multi-class), each with all outputs' scores below it. Returns the class.
pub fn gradcam_panel(png: &Path, dataset: &Path, key: &str, models: &[PanelModel<'_>]) -> Result<String> {
    const SIDE: i64 = 256;
    let unit = unit_from_dataset(dataset, key)?;
    let loaded: Vec<Classifier> = models.iter().map(|m| Classifier::load(m.run, Device::Cpu)).collect::<Result<_>>()?;
    let Some(first) = loaded.first() else {
        return Err(TrainError::Internal("a Grad-CAM panel needs at least one model".into()));
    };
    let outputs = first.card.outputs.clone();
    let scores: Vec<Vec<f32>> = loaded
        .iter()
        .map(|m| Vec::<f32>::try_from(m.scores(&unit).flatten(0, -1)).map_err(TrainError::from))
        .collect::<Result<_>>()?;
    let class = match first.card.task {
        Task::Multiclass => argmax(&scores[0]),
        Task::Multilabel => {
            let mean: Vec<f32> =
                (0..outputs.len()).map(|i| scores.iter().map(|s| s[i]).sum::<f32>() / scores.len() as f32).collect();
            argmax(&mean)
        }
    };
    let shown = unit.internal_upsample_bilinear2d_aa([SIDE, SIDE], false, None, None);
    let grey: Vec<f32> = Vec::try_from(shown.to_kind(Kind::Float).flatten(0, -1))?;
    let (gap, title_h, line) = (12i64, 30i64, 16i64);
    let band = line * outputs.len() as i64 + 8;
    let cols = models.len() as i64 + 1;
    let (w, h) = (cols * SIDE + (cols + 1) * gap, title_h + 20 + SIDE + band + gap);
    let mut c = Canvas::new(w as u32, h as u32);
    c.text(gap as f32, 8.0, 15.0, 0.0, &format!("Grad-CAM of `{}` on test image {key}", outputs[class]), INK);
    let top = title_h + 20;
    let blit = |c: &mut Canvas, x0: i64, heat: Option<&[f32]>| {
        for y in 0..SIDE {
            for x in 0..SIDE {
                let i = (y * SIDE + x) as usize;
                let px = match heat {
                    Some(h) => overlay(grey[i], h[i]),
                    None => [(grey[i].clamp(0.0, 1.0) * 255.0).round() as u8; 3],
                };
                c.fill_rect(x0 + x, top + y, x0 + x + 1, top + y + 1, px);
            }
        }
    };
    c.text((gap + SIDE / 2) as f32, title_h as f32, 13.0, 0.5, "image", INK);
    blit(&mut c, gap, None);
    for (k, (m, model)) in models.iter().zip(&loaded).enumerate() {
        let x0 = gap + (k as i64 + 1) * (SIDE + gap);
        let heat = heat_map(model, &unit, class, 4, (SIDE, SIDE))?;
        c.text((x0 + SIDE / 2) as f32, title_h as f32, 13.0, 0.5, m.init, INK);
        blit(&mut c, x0, Some(heat.as_slice()));
        for (i, (o, p)) in outputs.iter().zip(&scores[k]).enumerate() {
            let colour = if i == class { [200, 0, 0] } else { INK };
            let y = top + SIDE + 6 + line * i as i64;
            c.text(x0 as f32, y as f32, 12.0, 0.0, &format!("{o}: {p:.3}"), colour);
        }
    }
    save(&c, png)?;
    Ok(outputs[class].clone())
}

fn argmax(v: &[f32]) -> usize {
    v.iter().enumerate().fold(0, |b, (i, x)| if *x > v[b] { i } else { b })
}
