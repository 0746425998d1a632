//! `chess-train sweep PLAN.toml`: the paper's downstream protocol in one
//! command — every init (scratch, ImageNet, one or more checkpoints) ×
//! every setting (CheXpert fractions, or class-imbalance manifests) × every
//! repeat, each a [`crate::tasks::classify::run`] in `<out>/runs/<setting>/<init>/rNN`.
//!
//! Resumable: a run whose `summary.json` exists is not run again. The
//! summary compares inits within each setting, as the paper's tables do:
//! - multi-label (Table 3): mean ± SD over repeats of the test mean AUC, and
//!   the paired t-test (pairs: repeats) of each init against the best one;
//! - multi-class (Table 2): mean ± SD of test accuracy, the paired t-test
//!   when there are repeats, and the Stuart–Maxwell test of each init's
//!   test predictions against the best init's (repeat 0, same images).
//!
//! Writes `summary.csv`, `summary.md` and `table.png` (the table, Table 2 or
//! 3), `summary.png` (Fig. 2: mean ± SD per setting — the label fraction in
//! % for fraction settings — one line per init, error bars) and
//! `gradcam.png` (Fig. 3: a test image's Grad-CAM under each init's model;
//! [`crate::tasks::classify::figures`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::io::atomic::write_bytes_atomic;
use crate::io::csv::csv_cell;
use crate::metrics::stats;
use crate::tasks::classify::config::{FinetuneConfig, Task};
use crate::tasks::classify::figures;
use crate::tasks::classify::run::{self as finetune, FtProgress, Manifests};
use crate::{read_err, write_err, Result, TrainError};

/// One starting point.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    /// Column/table name (`scratch`, `imagenet`, `chess`).
    pub name: String,
    /// As `finetune --init`: `scratch`, `imagenet=W.safetensors`, or a path.
    pub init: String,
}

/// One training setting given explicitly (e.g. an imbalance manifest).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SettingSpec {
    pub name: String,
    /// Training manifest, or one per repeat (`train-…-r00.parquet`, …).
    #[serde(default)]
    pub train: Option<String>,
    #[serde(default)]
    pub train_repeats: Vec<String>,
}

/// `PLAN.toml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Folder of the runs and the summary (relative paths: to the plan's folder).
    pub out: String,
    pub valid: String,
    pub test: String,
    /// The output of `chess-shards fractions`: `train-f<F>-r<RR>.parquet` per fraction and repeat.
    #[serde(default)]
    pub fractions_dir: Option<String>,
    #[serde(default)]
    pub fractions: Vec<f64>,
    /// Repeats per setting (fraction 1 and single-manifest settings: runs
    /// with different seeds on the same manifest).
    #[serde(default = "one")]
    pub repeats: u32,
    /// Explicit settings (used instead of, or besides, fractions).
    #[serde(default)]
    pub settings: Vec<SettingSpec>,
    pub inits: Vec<InitSpec>,
    /// A finetune TOML used as the base of every run (relative to the plan).
    #[serde(default)]
    pub config: Option<String>,
    /// Finetune settings inline (same sections as finetune's TOML; over `config`).
    #[serde(default)]
    pub finetune: Option<toml::Table>,
}

fn one() -> u32 {
    1
}

/// A run of the sweep.
#[derive(Debug, Clone)]
pub struct RunSpec {
    pub setting: String,
    pub init: InitSpec,
    pub repeat: u32,
    pub train: String,
    pub dir: PathBuf,
}

/// The plan, resolved against its folder.
#[derive(Debug, Clone)]
pub struct Sweep {
    pub out: PathBuf,
    pub base: FinetuneConfig,
    pub valid: String,
    pub test: String,
    pub settings: Vec<String>,
    pub inits: Vec<InitSpec>,
    pub runs: Vec<RunSpec>,
}

fn resolve(dir: &Path, p: &str) -> String {
    if chess_shards::loader::is_url(p) || Path::new(p).is_absolute() {
        p.to_string()
    } else {
        dir.join(p).to_string_lossy().into_owned()
    }
}

/// Reads and resolves a plan; checks every manifest it names exists.
pub fn load(plan_path: &Path) -> Result<Sweep> {
    let bad = |msg: String| TrainError::Config { path: plan_path.to_path_buf(), msg };
    let text = std::fs::read_to_string(plan_path).map_err(|e| bad(e.to_string()))?;
    let plan: Plan = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let dir = plan_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut base = match &plan.config {
        Some(c) => FinetuneConfig::from_file(Path::new(&resolve(&dir, c)))?,
        None => FinetuneConfig::default(),
    };
    if let Some(t) = &plan.finetune {
        // Inline settings over the base: merge the TOML tables section by section.
        let mut merged: toml::Table = toml::from_str(&base.to_toml()).map_err(|e| bad(e.to_string()))?;
        for (section, v) in t {
            match (merged.get_mut(section), v) {
                (Some(toml::Value::Table(m)), toml::Value::Table(o)) => m.extend(o.clone()),
                _ => {
                    merged.insert(section.clone(), v.clone());
                }
            }
        }
        base = toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| bad(format!("[finetune]: {e}")))?;
    }
    if plan.inits.is_empty() {
        return Err(bad("no [[inits]]".into()));
    }
    let mut names = std::collections::HashSet::new();
    for i in &plan.inits {
        if !names.insert(i.name.clone()) || i.name.contains(['/', '\\']) || i.name.is_empty() {
            return Err(bad(format!("init name `{}` is empty, repeated or holds a slash", i.name)));
        }
        let mut c = base.clone();
        c.model.init = resolve_init(&dir, &i.init);
        c.validate().map_err(|e| bad(format!("init `{}`: {e}", i.name)))?;
    }
    let inits: Vec<InitSpec> =
        plan.inits.iter().map(|i| InitSpec { name: i.name.clone(), init: resolve_init(&dir, &i.init) }).collect();
    if plan.repeats == 0 {
        return Err(bad("repeats must be at least 1".into()));
    }
    // (setting name, train manifest per repeat)
    let mut settings: Vec<(String, Vec<String>)> = Vec::new();
    if !plan.fractions.is_empty() {
        let fd = plan.fractions_dir.as_ref().ok_or_else(|| bad("`fractions` needs `fractions_dir`".into()))?;
        for &f in &plan.fractions {
            let name = chess_shards::fractions::fraction_name(f);
            let reps = if f >= 1.0 { 1 } else { plan.repeats };
            let mut trains: Vec<String> =
                (0..reps).map(|r| resolve(&dir, &format!("{fd}/train-f{name}-r{r:02}.parquet"))).collect();
            if f >= 1.0 {
                // One manifest, `repeats` seeds.
                trains = vec![trains[0].clone(); plan.repeats as usize];
            }
            settings.push((format!("f{name}"), trains));
        }
    }
    for s in &plan.settings {
        let trains = match (&s.train, s.train_repeats.is_empty()) {
            (Some(t), true) => vec![resolve(&dir, t); plan.repeats as usize],
            (None, false) => s.train_repeats.iter().map(|t| resolve(&dir, t)).collect(),
            _ => return Err(bad(format!("setting `{}` needs exactly one of `train` and `train_repeats`", s.name))),
        };
        settings.push((s.name.clone(), trains));
    }
    if settings.is_empty() {
        return Err(bad("no settings: give `fractions` (with `fractions_dir`) or [[settings]]".into()));
    }
    let (valid, test) = (resolve(&dir, &plan.valid), resolve(&dir, &plan.test));
    for m in settings.iter().flat_map(|(_, t)| t.iter()).chain([&valid, &test]) {
        if !chess_shards::loader::is_url(m) && !Path::new(m).exists() {
            return Err(bad(format!("manifest {m} does not exist")));
        }
    }
    let out = PathBuf::from(resolve(&dir, &plan.out));
    let mut runs = Vec::new();
    for (setting, trains) in &settings {
        for init in &inits {
            for (r, train) in trains.iter().enumerate() {
                runs.push(RunSpec {
                    setting: setting.clone(),
                    init: init.clone(),
                    repeat: r as u32,
                    train: train.clone(),
                    dir: out.join("runs").join(setting).join(&init.name).join(format!("r{r:02}")),
                });
            }
        }
    }
    Ok(Sweep { out, base, valid, test, settings: settings.into_iter().map(|(n, _)| n).collect(), inits, runs })
}

/// Paths in `init` are relative to the plan's folder (`scratch` stays).
fn resolve_init(dir: &Path, init: &str) -> String {
    match init {
        "scratch" | "imagenet" => init.to_string(),
        _ => match init.strip_prefix("imagenet=") {
            Some(p) => format!("imagenet={}", resolve(dir, p)),
            None => resolve(dir, init),
        },
    }
}

/// Whether a run has finished (its `summary.json` exists).
pub fn finished(run: &RunSpec) -> bool {
    run.dir.join("summary.json").is_file()
}

/// Progress of a sweep: which run, and inside it the finetune progress.
#[derive(Debug, Clone)]
pub struct SweepProgress<'a> {
    pub run_index: usize,
    pub runs: usize,
    pub run: &'a RunSpec,
    pub skipped: bool,
    pub inner: Option<&'a FtProgress>,
}

/// One row of the summary: a setting × init.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub setting: String,
    pub init: String,
    pub n: usize,
    /// Mean AUC (multi-label) or accuracy (multi-class), over repeats.
    pub mean: f64,
    pub sd: f64,
    pub best: bool,
    /// Paired t-test against the best init of the setting (NaN for the best itself or too few repeats).
    pub t_test_p: f64,
    /// Multi-class: Stuart–Maxwell test against the best init (repeat 0).
    pub stuart_maxwell_p: f64,
}

/// Runs what is not finished yet, then summarises everything.
pub fn run(sweep: &Sweep, mut progress: impl FnMut(&SweepProgress<'_>)) -> Result<Vec<Row>> {
    std::fs::create_dir_all(&sweep.out).map_err(write_err(&sweep.out))?;
    let plan_copy = sweep.out.join("finetune.toml");
    std::fs::write(&plan_copy, sweep.base.to_toml()).map_err(write_err(&plan_copy))?;
    for (i, r) in sweep.runs.iter().enumerate() {
        if finished(r) {
            progress(&SweepProgress { run_index: i, runs: sweep.runs.len(), run: r, skipped: true, inner: None });
            continue;
        }
        let mut cfg = sweep.base.clone();
        cfg.model.init = r.init.init.clone();
        cfg.run.seed = sweep.base.run.seed + r.repeat as u64;
        let m = Manifests { train: r.train.clone(), valid: sweep.valid.clone(), test: Some(sweep.test.clone()) };
        finetune::finetune(&m, &r.dir, &cfg, |p| {
            progress(&SweepProgress { run_index: i, runs: sweep.runs.len(), run: r, skipped: false, inner: Some(p) })
        })?;
    }
    summarise(sweep)
}

/// The test predictions of a finished multi-class run: key → class index.
fn class_predictions(run: &Path, outputs: &[String]) -> Result<HashMap<String, usize>> {
    let p = run.join("predictions.csv");
    let text = std::fs::read_to_string(&p).map_err(read_err(&p))?;
    let index: HashMap<&str, usize> = outputs.iter().enumerate().map(|(i, o)| (o.as_str(), i)).collect();
    let mut out = HashMap::new();
    for line in text.lines().skip(1) {
        // key, target, predicted, …: keys hold no commas; class names may be quoted.
        let mut f = line.splitn(3, ',');
        let key = f.next().unwrap_or_default();
        let _target = f.next();
        let rest = f.next().unwrap_or_default();
        let predicted = if let Some(q) = rest.strip_prefix('"') {
            q.split('"').next().unwrap_or_default()
        } else {
            rest.split(',').next().unwrap_or_default()
        };
        let c = index
            .get(predicted)
            .ok_or_else(|| TrainError::Input { path: p.clone(), msg: format!("unknown class `{predicted}`") })?;
        out.insert(key.to_string(), *c);
    }
    Ok(out)
}

/// Reads every finished run and writes `summary.csv`, `summary.md`, `summary.png`.
pub fn summarise(sweep: &Sweep) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut task = None;
    for setting in &sweep.settings {
        // init → (repeat → metric), and the run summaries.
        let mut per_init: Vec<(String, HashMap<u32, f64>)> = Vec::new();
        let mut outputs: Vec<String> = Vec::new();
        for init in &sweep.inits {
            let mut m = HashMap::new();
            for r in sweep.runs.iter().filter(|r| &r.setting == setting && r.init.name == init.name && finished(r)) {
                let s = finetune::read_summary(&r.dir)?;
                task = Some(s.task);
                outputs = s.outputs.clone();
                if let Some(v) = s.test.as_ref().map(|t| t.metric()).filter(|v| v.is_finite()) {
                    m.insert(r.repeat, v);
                }
            }
            per_init.push((init.name.clone(), m));
        }
        let stats_of = |m: &HashMap<u32, f64>| {
            let mut v: Vec<(u32, f64)> = m.iter().map(|(k, v)| (*k, *v)).collect();
            v.sort_by_key(|x| x.0);
            let values: Vec<f64> = v.iter().map(|x| x.1).collect();
            stats::mean_sd(&values).ok()
        };
        let best = per_init
            .iter()
            .filter_map(|(n, m)| stats_of(m).map(|s| (n.clone(), s.mean)))
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(n, _)| n);
        let best_map = best
            .as_ref()
            .and_then(|b| per_init.iter().find(|(n, _)| n == b))
            .map(|(_, m)| m.clone())
            .unwrap_or_default();
        for (name, m) in &per_init {
            let Some(ms) = stats_of(m) else { continue };
            let is_best = best.as_deref() == Some(name.as_str());
            // Pairs: repeats both inits finished.
            let mut keys: Vec<u32> = m.keys().filter(|k| best_map.contains_key(k)).copied().collect();
            keys.sort();
            let a: Vec<f64> = keys.iter().map(|k| m[k]).collect();
            let b: Vec<f64> = keys.iter().map(|k| best_map[k]).collect();
            let t_test_p = if is_best || keys.len() < 2 {
                f64::NAN
            } else {
                stats::paired_t_test(&a, &b).map_or(f64::NAN, |t| t.p)
            };
            let mut stuart_maxwell_p = f64::NAN;
            if task == Some(Task::Multiclass) && !is_best {
                let dir_of = |init: &str| {
                    sweep
                        .runs
                        .iter()
                        .find(|r| &r.setting == setting && r.init.name == init && r.repeat == 0 && finished(r))
                        .map(|r| r.dir.clone())
                };
                if let (Some(d_a), Some(d_b)) = (dir_of(name), best.as_deref().and_then(dir_of)) {
                    let (pa, pb) = (class_predictions(&d_a, &outputs)?, class_predictions(&d_b, &outputs)?);
                    let mut ks: Vec<&String> = pa.keys().filter(|k| pb.contains_key(*k)).collect();
                    ks.sort();
                    let ya: Vec<usize> = ks.iter().map(|k| pa[*k]).collect();
                    let yb: Vec<usize> = ks.iter().map(|k| pb[*k]).collect();
                    stuart_maxwell_p = stats::stuart_maxwell(&ya, &yb, outputs.len()).map_or(f64::NAN, |s| s.p);
                }
            }
            rows.push(Row {
                setting: setting.clone(),
                init: name.clone(),
                n: ms.n,
                mean: ms.mean,
                sd: ms.sd,
                best: is_best,
                t_test_p,
                stuart_maxwell_p,
            });
        }
    }
    let metric = match task {
        Some(Task::Multiclass) => "accuracy",
        _ => "mean AUC",
    };
    write_summary(&sweep.out, &rows, metric)?;
    if let Err(e) = gradcam_figure(sweep) {
        tracing::warn!("no gradcam.png: {e}");
    }
    Ok(rows)
}

/// Fig. 3 from the last setting (for fractions: the largest), repeat 0 of
/// each init, on the first test image that the first init's run scored.
fn gradcam_figure(sweep: &Sweep) -> Result<()> {
    let Some(setting) = sweep.settings.last() else { return Ok(()) };
    let runs: Vec<&RunSpec> = sweep
        .inits
        .iter()
        .filter_map(|i| {
            sweep.runs.iter().find(|r| &r.setting == setting && r.init.name == i.name && r.repeat == 0 && finished(r))
        })
        .collect();
    let Some(first) = runs.first() else { return Ok(()) };
    let p = first.dir.join("predictions.csv");
    let text = std::fs::read_to_string(&p).map_err(read_err(&p))?;
    let Some(key) = text.lines().nth(1).and_then(|l| l.split(',').next()) else { return Ok(()) };
    let models: Vec<figures::PanelModel<'_>> =
        runs.iter().map(|r| figures::PanelModel { init: &r.init.name, run: &r.dir }).collect();
    let png = sweep.out.join("gradcam.png");
    let class = figures::gradcam_panel(&png, Path::new(&sweep.test), key, &models)?;
    tracing::info!(key, class = %class, "{}", png.display());
    Ok(())
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        String::new()
    } else {
        format!("{v}")
    }
}

fn write_summary(out: &Path, rows: &[Row], metric: &str) -> Result<()> {
    let mut csv = String::from("setting,init,n,mean,sd,best,t_test_p,stuart_maxwell_p\n");
    let mut md = format!("| setting | init | n | {metric} (mean ± SD) | p (paired t vs best) | p (Stuart–Maxwell vs best) |\n|---|---|---|---|---|---|\n");
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            csv_cell(&r.setting),
            csv_cell(&r.init),
            r.n,
            fmt(r.mean),
            fmt(r.sd),
            r.best,
            fmt(r.t_test_p),
            fmt(r.stuart_maxwell_p)
        ));
        let p = |v: f64| if v.is_nan() { "–".to_string() } else { format!("{v:.4}") };
        md.push_str(&format!(
            "| {} | {}{} | {} | {:.4} ± {} | {} | {} |\n",
            r.setting,
            r.init,
            if r.best { " (best)" } else { "" },
            r.n,
            r.mean,
            if r.sd.is_nan() { "–".into() } else { format!("{:.4}", r.sd) },
            p(r.t_test_p),
            p(r.stuart_maxwell_p)
        ));
    }
    write_bytes_atomic(&out.join("summary.csv"), csv.as_bytes())?;
    write_bytes_atomic(&out.join("summary.md"), md.as_bytes())?;
    let header: Vec<String> = vec![
        "setting".into(),
        "init".into(),
        "n".into(),
        format!("{metric} (mean ± SD)"),
        "p (paired t vs best)".into(),
        "p (Stuart–Maxwell vs best)".into(),
    ];
    let p = |v: f64| if v.is_nan() { "–".to_string() } else { format!("{v:.4}") };
    let table: Vec<figures::TableRow> = rows
        .iter()
        .map(|r| figures::TableRow {
            cells: vec![
                setting_label(&r.setting),
                format!("{}{}", r.init, if r.best { " (best)" } else { "" }),
                r.n.to_string(),
                format!("{:.4} ± {}", r.mean, if r.sd.is_nan() { "–".into() } else { format!("{:.4}", r.sd) }),
                p(r.t_test_p),
                p(r.stuart_maxwell_p),
            ],
            best: r.best,
        })
        .collect();
    let title = if metric == "accuracy" { "Table 2: test accuracy" } else { "Table 3: test mean AUC" };
    figures::table_png(&out.join("table.png"), title, &header, &table)?;
    plot(&out.join("summary.png"), rows, metric)
}

/// A setting as the figures label it: `f0.01` → `1%`, other names as they are.
fn setting_label(setting: &str) -> String {
    match setting.strip_prefix('f').and_then(|f| f.parse::<f64>().ok()).filter(|f| *f > 0.0 && *f <= 1.0) {
        Some(f) => format!("{}%", (f * 1000.0).round() / 10.0),
        None => setting.to_string(),
    }
}

/// Mean ± SD per setting (x) and init (one colour each), like the paper's Fig. 2.
/// At least three ticks inside `[lo, hi]`, the largest round step (1, 2 or
/// 5 × 10^k) apart that still gives three (a step of a quarter of the range
/// can leave one tick when the range is just over 2 × 10^k).
fn round_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let ticks = |step: f64| -> Vec<f64> {
        let first = (lo / step).ceil() as i64;
        (first..).map(|k| k as f64 * step).take_while(|t| *t <= hi + step * 1e-9).collect()
    };
    let k0 = (hi - lo).log10().floor() as i32;
    let steps: Vec<f64> = (k0 - 2..=k0 + 1).rev().flat_map(|k| [5.0, 2.0, 1.0].map(|m| m * 10f64.powi(k))).collect();
    steps.iter().map(|&s| ticks(s)).find(|t| t.len() >= 3).unwrap_or_else(|| ticks(steps[steps.len() - 1]))
}

fn plot(png: &Path, rows: &[Row], metric: &str) -> Result<()> {
    use chess_shards::plot::{Canvas, TickFormat};
    const COLOURS: [[u8; 3]; 6] =
        [[52, 101, 164], [204, 0, 0], [78, 154, 6], [245, 121, 0], [117, 80, 123], [193, 125, 17]];
    let mut settings: Vec<&str> = Vec::new();
    let mut inits: Vec<&str> = Vec::new();
    for r in rows {
        if !settings.contains(&r.setting.as_str()) {
            settings.push(&r.setting);
        }
        if !inits.contains(&r.init.as_str()) {
            inits.push(&r.init);
        }
    }
    let (w, h) = (220 + 140 * settings.len().max(1) as u32, 420u32);
    let (x0, x1, y0, y1) = (70.0f64, w as f64 - 150.0, 40.0f64, h as f64 - 60.0);
    let lo = rows.iter().map(|r| r.mean - if r.sd.is_finite() { r.sd } else { 0.0 }).fold(f64::INFINITY, f64::min);
    let hi = rows.iter().map(|r| r.mean + if r.sd.is_finite() { r.sd } else { 0.0 }).fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)) } else { (0.0, 1.0) };
    let ypix = |v: f64| y1 - (v - lo) / (hi - lo) * (y1 - y0);
    let xpix = |i: usize| x0 + (i as f64 + 0.5) * (x1 - x0) / settings.len().max(1) as f64;
    let mut c = Canvas::new(w, h);
    let black = [30, 30, 30];
    c.text(w as f32 / 2.0, 8.0, 16.0, 0.5, &format!("test {metric}: mean ± SD over repeats"), black);
    // Round ticks (1, 2 or 5 × 10^k apart), labelled with as many decimals as keep them distinct.
    let ticks = round_ticks(lo, hi);
    let tick_format = TickFormat::for_ticks(&ticks);
    for &v in &ticks {
        let y = ypix(v);
        c.fill_rect(x0 as i64, y as i64, x1 as i64, y as i64 + 1, [225, 225, 225]);
        c.text(x0 as f32 - 6.0, y as f32 - 7.0, 12.0, 1.0, &tick_format.format(v), black);
    }
    c.fill_rect(x0 as i64, y0 as i64, x0 as i64 + 1, y1 as i64, black);
    c.fill_rect(x0 as i64, y1 as i64, x1 as i64, y1 as i64 + 1, black);
    for (i, s) in settings.iter().enumerate() {
        c.text(xpix(i) as f32, y1 as f32 + 8.0, 13.0, 0.5, &setting_label(s), black);
    }
    let fractions = settings.iter().all(|s| setting_label(s) != *s);
    c.text(
        ((x0 + x1) / 2.0) as f32,
        y1 as f32 + 30.0,
        13.0,
        0.5,
        if fractions { "label fraction" } else { "setting" },
        black,
    );
    let line = |c: &mut Canvas, (ax, ay): (f64, f64), (bx, by): (f64, f64), col: [u8; 3]| {
        let n = ((bx - ax).abs().max((by - ay).abs())).ceil().max(1.0) as usize;
        for t in 0..=n {
            let f = t as f64 / n as f64;
            let (x, y) = (ax + (bx - ax) * f, ay + (by - ay) * f);
            c.fill_rect(x as i64 - 1, y as i64 - 1, x as i64 + 1, y as i64 + 1, col);
        }
    };
    for (j, init) in inits.iter().enumerate() {
        let col = COLOURS[j % COLOURS.len()];
        let off = (j as f64 - (inits.len() as f64 - 1.0) / 2.0) * 6.0;
        let mut prev: Option<(f64, f64)> = None;
        for (i, s) in settings.iter().enumerate() {
            let Some(r) = rows.iter().find(|r| r.setting == *s && r.init == *init) else { continue };
            let (x, y) = (xpix(i) + off, ypix(r.mean));
            if r.sd.is_finite() {
                // The error bar: ± SD, with caps.
                let (lo, hi) = (ypix(r.mean - r.sd), ypix(r.mean + r.sd));
                line(&mut c, (x, lo), (x, hi), col);
                line(&mut c, (x - 5.0, lo), (x + 5.0, lo), col);
                line(&mut c, (x - 5.0, hi), (x + 5.0, hi), col);
            }
            c.fill_rect(x as i64 - 4, y as i64 - 4, x as i64 + 4, y as i64 + 4, col);
            if let Some(p) = prev {
                line(&mut c, p, (x, y), col);
            }
            prev = Some((x, y));
        }
        let ly = y0 + 10.0 + 22.0 * j as f64;
        c.fill_rect(x1 as i64 + 20, ly as i64, x1 as i64 + 34, ly as i64 + 14, col);
        c.text(x1 as f32 + 40.0, ly as f32, 13.0, 0.0, init, black);
    }
    c.save_png(png).map_err(|e| TrainError::Output { path: png.to_path_buf(), msg: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_ticks_are_round_and_labelled_distinctly() {
        let ticks = round_ticks(0.7963, 0.8312);
        let format = chess_shards::plot::TickFormat::for_ticks(&ticks);
        let labels: Vec<String> = ticks.iter().map(|t| format.format(*t)).collect();
        assert_eq!(labels, ["0.80", "0.81", "0.82", "0.83"]);
        assert_eq!(round_ticks(0.0, 1.0), [0.0, 0.5, 1.0]);
        // A range just over 0.8: four ticks 0.2 apart, not the single 0.5 of a step ≥ range / 4.
        let t = round_ticks(0.1, 0.95);
        assert_eq!(t.len(), 4);
        assert!((t[0] - 0.2).abs() < 1e-12 && (t[3] - 0.8).abs() < 1e-12, "{t:?}");
    }

    #[test]
    fn fraction_settings_are_labelled_in_percent() {
        assert_eq!(setting_label("f0.01"), "1%");
        assert_eq!(setting_label("f0.5"), "50%");
        assert_eq!(setting_label("f1"), "100%");
        assert_eq!(setting_label("f0.125"), "12.5%");
        assert_eq!(setting_label("modified"), "modified");
        assert_eq!(setting_label("f2"), "f2");
    }

    #[test]
    fn inits_resolve_against_the_plan_folder() {
        let d = Path::new("/plans");
        assert_eq!(resolve_init(d, "scratch"), "scratch");
        assert_eq!(resolve_init(d, "imagenet=w.safetensors"), "imagenet=/plans/w.safetensors");
        assert_eq!(resolve_init(d, "/abs/c.safetensors"), "/abs/c.safetensors");
    }
}
