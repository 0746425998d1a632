//! `private/burned-in.png`: a contact sheet of the images that were
//! rejected or masked for burned-in text, for a person to review — each a
//! tile of at most [`TILE`]×[`TILE`] pixels with the detected lines outlined
//! (red: rejected, yellow: masked, blue: blanked by the rules file), in walk
//! order; `private/burned-in.json` names the source of each tile. It shows
//! the text itself, so it is private (mode 0600) and never uploaded.

use std::path::Path;

use super::Rect;

/// Longest side of a tile.
pub const TILE: usize = 192;
/// Tiles per row.
pub const COLUMNS: usize = 8;
/// Most tiles on one sheet (the rest are counted in the JSON).
pub const MAX_TILES: usize = 256;

/// One image, reduced.
#[derive(Debug, Clone)]
pub struct Tile {
    pub w: usize,
    pub h: usize,
    /// RGB.
    pub rgb: Vec<u8>,
    pub rejected: bool,
    /// Lines found, rules regions, in source pixels.
    pub text: Vec<Rect>,
    pub ruled: Vec<Rect>,
}

impl Tile {
    /// A tile of a `rows × cols` image of stored values (brighter is higher
    /// unless `monochrome1`), with `text` and `ruled` outlined.
    pub fn of(
        values: &[i32],
        rows: usize,
        cols: usize,
        monochrome1: bool,
        text: &[Rect],
        ruled: &[Rect],
        rejected: bool,
    ) -> Tile {
        let f = rows.max(cols).div_ceil(TILE).max(1);
        let (w, h) = (cols.div_ceil(f), rows.div_ceil(f));
        let (lo, hi) = values.iter().fold((i32::MAX, i32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
        let range = (hi as f64 - lo as f64).max(1.0);
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let v = values[(y * f).min(rows - 1) * cols + (x * f).min(cols - 1)];
                let mut g = ((v as f64 - lo as f64) / range * 255.0) as u8;
                if monochrome1 {
                    g = 255 - g;
                }
                rgb[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[g, g, g]);
            }
        }
        let mut t = Tile { w, h, rgb, rejected, text: text.to_vec(), ruled: ruled.to_vec() };
        let colour = if rejected { [255, 0, 0] } else { [255, 220, 0] };
        for r in text {
            t.outline(r, f, colour);
        }
        for r in ruled {
            t.outline(r, f, [0, 128, 255]);
        }
        t
    }

    fn outline(&mut self, r: &Rect, f: usize, c: [u8; 3]) {
        let (x0, y0) = ((r.x / f).min(self.w - 1), (r.y / f).min(self.h - 1));
        let (x1, y1) = (((r.x + r.w) / f).min(self.w - 1), ((r.y + r.h) / f).min(self.h - 1));
        let mut put = |x: usize, y: usize| self.rgb[(y * self.w + x) * 3..(y * self.w + x) * 3 + 3].copy_from_slice(&c);
        for x in x0..=x1 {
            put(x, y0);
            put(x, y1);
        }
        for y in y0..=y1 {
            put(x0, y);
            put(x1, y);
        }
    }
}

/// The tiles of a run, in walk order.
#[derive(Debug, Default)]
pub struct Sheet {
    tiles: Vec<(String, Tile)>,
    /// Images beyond [`MAX_TILES`].
    pub left_out: u64,
}

impl Sheet {
    pub fn add(&mut self, source: String, tile: Tile) {
        if self.tiles.len() < MAX_TILES {
            self.tiles.push((source, tile));
        } else {
            self.left_out += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty() && self.left_out == 0
    }

    /// Writes `burned-in.png` and `burned-in.json` into `private` (0600).
    pub fn write(&self, private: &Path) -> std::io::Result<()> {
        let n = self.tiles.len().max(1);
        let cols = n.min(COLUMNS);
        let rows = n.div_ceil(COLUMNS);
        let gap = 4;
        let (w, h) = (cols * (TILE + gap) + gap, rows * (TILE + gap) + gap);
        let mut rgb = vec![40u8; w * h * 3];
        for (i, (_, t)) in self.tiles.iter().enumerate() {
            let (ox, oy) = (gap + (i % COLUMNS) * (TILE + gap), gap + (i / COLUMNS) * (TILE + gap));
            for y in 0..t.h {
                let dst = ((oy + y) * w + ox) * 3;
                rgb[dst..dst + t.w * 3].copy_from_slice(&t.rgb[y * t.w * 3..(y + 1) * t.w * 3]);
            }
        }
        let file = crate::private::create_file(&private.join("burned-in.png"))?;
        let mut enc = png::Encoder::new(std::io::BufWriter::new(file), w as u32, h as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(std::io::Error::other)?;
        wr.write_image_data(&rgb).map_err(std::io::Error::other)?;
        wr.finish().map_err(std::io::Error::other)?;
        let list: Vec<serde_json::Value> = self
            .tiles
            .iter()
            .enumerate()
            .map(|(i, (s, t))| {
                serde_json::json!({
                    "tile": i, "source_path": s, "action": if t.rejected { "rejected" } else { "masked" },
                    "text_regions": t.text, "rules_regions": t.ruled,
                })
            })
            .collect();
        let doc = serde_json::json!({"tiles": list, "left_out": self.left_out, "tile_columns": COLUMNS});
        crate::private::write(&private.join("burned-in.json"), &serde_json::to_vec_pretty(&doc).expect("serialisable"))
    }
}
