//! The burned-in detector alone on the bench set that
//! `scripts/bench/burned_in.py --dir DIR` builds (its `truth.json`, `clean/`
//! and `text/`): detection per part, false positives, and where the time of
//! a clean image goes, stage by stage (no ingest around it). For tuning and
//! profiling; the figures reported are the bench script's, through
//! `chess-ingest`.
//!
//! `cargo run --release -p chess-ingest --example burned_in_eval -- DIR [--repeat N] [--misses] [--reads] [--only SUBSTRING]`
//!
//! `--misses` lists the planted lines not found, with the regions and lines
//! over them; `--reads` lists the clean images that cost OCR reads, with
//! the candidate lines (box, size, glyphs, direction) that were read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chess_ingest::burned_in::{self, coarse, detect, Device, Options, Rect};
use chess_ingest::dicom::{self, Header};
use chess_ingest::pipeline;

fn overlaps(a: &Rect, b: (usize, usize, usize, usize)) -> bool {
    let (bx, by, bw, bh) = b;
    a.x < bx + bw && bx < a.x + a.w && a.y < by + bh && by < a.y + a.h
}

#[derive(Default)]
struct Part {
    text: usize,
    hit: usize,
    clean: usize,
    clean_fp: usize,
    markers: usize,
    marker_fp: usize,
    // clean images: summed stage times, and the whole scan
    range: Duration,
    candidates: Duration,
    fine: Duration,
    scan: Duration,
    clean_read: usize,
    /// parse + decode + pixel pipeline of the clean images (best of the repeats)
    ingest: Duration,
    clean_regions: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(args.get(1).expect("usage: burned_in_eval DIR"));
    let repeat: usize = args.iter().position(|a| a == "--repeat").map(|i| args[i + 1].parse().unwrap()).unwrap_or(1);
    let only = args.iter().position(|a| a == "--only").map(|i| args[i + 1].clone());
    let misses = args.iter().any(|a| a == "--misses");
    let reads = args.iter().any(|a| a == "--reads");
    // One CSV row per candidate line: part, kind, over the planted line,
    // size, glyphs, vertical, sharpness, file, grown box.
    let features = args.iter().any(|a| a == "--features");
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).expect("truth.json")).unwrap();
    let opts = Options::default();
    let mut parts: BTreeMap<String, Part> = BTreeMap::new();
    let mut by_cap: BTreeMap<(String, u64), (usize, usize)> = BTreeMap::new();
    let mut report = Vec::new();
    for (file, v) in truth["truth"].as_object().unwrap() {
        if only.as_ref().is_some_and(|o| !file.contains(o.as_str())) {
            continue;
        }
        let (part, kind, desc) = (v[0].as_str().unwrap(), v[1].as_str().unwrap(), v[3].as_str().unwrap());
        let path = dir.join(if kind == "clean" { "clean" } else { "text" }).join(file);
        let bytes = std::fs::read(&path).unwrap();
        let mut ingest = Duration::MAX;
        let mut stored = None;
        for _ in 0..if kind == "clean" { repeat } else { 1 } {
            let t = Instant::now();
            let obj = dicom::parse(&bytes).unwrap();
            let h = Header::from_object(&obj);
            let s = dicom::decode(&obj, &h).unwrap();
            let sem = pipeline::PixelSemantics {
                monochrome1: h.photometric == "MONOCHROME1",
                rescale_slope: h.rescale_slope,
                rescale_intercept: h.rescale_intercept,
                modality_lut: h.modality_lut.as_ref(),
            };
            std::hint::black_box(pipeline::run(&s.values, s.rows, s.columns, &sem, &Default::default()));
            ingest = ingest.min(t.elapsed());
            stored = Some(s);
        }
        let stored = stored.unwrap();
        let (rows, cols) = (stored.rows as usize, stored.columns as usize);
        let values = &stored.values[..rows * cols];
        let p = parts.entry(part.to_string()).or_default();
        let mut found = None;
        let mut best = [Duration::MAX; 4];
        for _ in 0..repeat {
            let t = Instant::now();
            let range = detect::robust_range(values);
            let t1 = Instant::now();
            let regions = coarse::candidates(values, rows, cols, range, &mut |_, _| {});
            let t2 = Instant::now();
            let n: usize = regions.iter().map(|r| detect::lines_in(values, rows, cols, r, range).len()).sum();
            let t3 = Instant::now();
            std::hint::black_box(n);
            let f = burned_in::scan(values, rows, cols, &Device::default(), &opts);
            let t4 = Instant::now();
            for (b, d) in best.iter_mut().zip([t1 - t, t2 - t1, t3 - t2, t4 - t3]) {
                *b = (*b).min(d);
            }
            found = Some(f);
        }
        let f = found.unwrap();
        let flagged = !f.text.is_empty();
        if features {
            // The first pass's candidates: part, kind, over the planted line, size, sharpness, file, grown box.
            for (r, size) in coarse::candidate_lines(values, rows, cols, detect::robust_range(values), &mut |_, _| {}) {
                let planted = v[2].as_array().map(|b| {
                    let b: Vec<usize> = (0..4).map(|i| b[i].as_u64().unwrap() as usize).collect();
                    overlaps(&r, (b[0], b[1], b[2], b[3]))
                });
                let g = r.grown(size / 3 + 1, cols, rows);
                let sharp = burned_in::contrast::sharpness(values, cols, g);
                println!(
                    "coarse,{part},{kind},{},{size},{sharp:.3},{file},{},{},{},{}",
                    planted.unwrap_or(false),
                    g.x,
                    g.y,
                    g.w,
                    g.h
                );
            }
            for l in detect::text_lines(values, rows, cols) {
                let planted = v[2].as_array().map(|r| {
                    let b: Vec<usize> = (0..4).map(|i| r[i].as_u64().unwrap() as usize).collect();
                    overlaps(&l.rect, (b[0], b[1], b[2], b[3]))
                });
                let g = l.rect.grown(l.size / 3 + 1, cols, rows);
                println!(
                    "feature,{part},{kind},{},{},{},{},{:.3},{file},{},{},{},{}",
                    planted.unwrap_or(false),
                    l.size,
                    l.glyphs,
                    l.vertical,
                    burned_in::contrast::sharpness(values, cols, g),
                    g.x,
                    g.y,
                    g.w,
                    g.h
                );
            }
        }
        match kind {
            "clean" => {
                p.clean += 1;
                p.clean_fp += usize::from(flagged);
                p.range += best[0];
                p.candidates += best[1];
                p.fine += best[2];
                p.scan += best[3];
                p.clean_read += f.read;
                p.ingest += ingest;
                p.clean_regions += f.regions;
                if flagged {
                    report.push(format!("clean flagged: {desc} {:?}", f.text));
                }
                if reads && f.read > 0 {
                    let lines: Vec<_> = detect::text_lines(values, rows, cols)
                        .into_iter()
                        .map(|l| (l.rect, l.size, l.glyphs, l.vertical))
                        .collect();
                    report.push(format!("clean read {} times: {file} ({desc}); lines {lines:?}", f.read));
                }
            }
            "marker" => {
                p.markers += 1;
                p.marker_fp += usize::from(flagged);
                if flagged {
                    report.push(format!("marker flagged: {desc} {:?}", f.text));
                }
            }
            _ => {
                let r = &v[2];
                let b = (0..4).map(|i| r[i].as_u64().unwrap() as usize).collect::<Vec<_>>();
                let hit = f.text.iter().any(|t| overlaps(t, (b[0], b[1], b[2], b[3])));
                p.text += 1;
                p.hit += usize::from(hit);
                let cap = desc.split(" cap ").nth(1).and_then(|s| s.split(' ').next()).unwrap().parse().unwrap();
                let e = by_cap.entry((part.to_string(), cap)).or_default();
                e.0 += 1;
                e.1 += usize::from(hit);
                if !hit && misses {
                    let planted = (b[0], b[1], b[2], b[3]);
                    let range = detect::robust_range(values);
                    let regions: Vec<_> = coarse::candidates(values, rows, cols, range, &mut |_, _| {})
                        .into_iter()
                        .filter(|r| overlaps(&r.rect, planted))
                        .collect();
                    let lines: Vec<_> = regions
                        .iter()
                        .flat_map(|r| detect::lines_in(values, rows, cols, r, range))
                        .filter(|l| overlaps(&l.rect, planted))
                        .map(|l| (l.rect, l.size, l.glyphs, l.vertical))
                        .collect();
                    report.push(format!(
                        "missed: {desc} at {b:?}; regions over it {regions:?}; lines over it {lines:?}; read {}",
                        f.read
                    ));
                }
            }
        }
    }
    for (name, p) in &parts {
        println!(
            "[{name}] detected {}/{} = {:.1} %; clean flagged {}/{}; markers flagged {}/{}",
            p.hit,
            p.text,
            100.0 * p.hit as f64 / p.text.max(1) as f64,
            p.clean_fp,
            p.clean,
            p.marker_fp,
            p.markers
        );
        let ms = |d: Duration| d.as_secs_f64() * 1000.0 / p.clean.max(1) as f64;
        println!(
            "[{name}] clean image, ms (best of {repeat}): parse + decode + pipeline {:.2}; scan: range {:.2}, first pass {:.2}, fine pass {:.2}; whole scan {:.2} (+{:.0} %); regions {:.1}, OCR reads {}",
            ms(p.ingest),
            ms(p.range),
            ms(p.candidates),
            ms(p.fine),
            ms(p.scan),
            100.0 * p.scan.as_secs_f64() / p.ingest.as_secs_f64().max(1e-9),
            p.clean_regions as f64 / p.clean.max(1) as f64,
            p.clean_read
        );
    }
    for ((part, cap), (n, hit)) in &by_cap {
        println!("[{part}] cap {cap}: {hit}/{n}");
    }
    for r in report {
        println!("  {r}");
    }
}
