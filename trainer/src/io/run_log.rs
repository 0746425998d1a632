//! A run's log: one `metrics.jsonl` line per record and, next to it, a
//! TensorBoard event file ([`crate::io::tensorboard`]) holding every number
//! of that line as a scalar under the field's name, at the record's step
//! (the field named by `step_key`: `step` for pretraining, `epoch` for the
//! per-epoch commands). So TensorBoard's curves and `metrics.jsonl` hold the
//! same values (TensorBoard's as f32). Booleans, strings and nulls (NaN
//! is written as null by serde_json) are not scalars.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::io::tensorboard::EventWriter;
use crate::{write_err, Result, TrainError};

/// `metrics.jsonl` and the event file of one run directory.
pub struct RunLog {
    path: PathBuf,
    jsonl: File,
    events: EventWriter,
    step_key: &'static str,
}

impl RunLog {
    /// Starts `dir/metrics.jsonl` empty (or, with `append`, after its
    /// existing lines: a resumed run) and a new event file in `dir`.
    pub fn open(dir: &Path, step_key: &'static str, append: bool) -> Result<RunLog> {
        let path = dir.join("metrics.jsonl");
        let jsonl = if append { OpenOptions::new().append(true).create(true).open(&path) } else { File::create(&path) }
            .map_err(write_err(&path))?;
        Ok(RunLog { path, jsonl, events: EventWriter::create(dir)?, step_key })
    }

    /// The path of `metrics.jsonl`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The event file.
    pub fn events(&mut self) -> &mut EventWriter {
        &mut self.events
    }

    /// Appends `rec` (a struct) as one line and its numbers as scalars.
    pub fn record<T: Serialize>(&mut self, rec: &T) -> Result<()> {
        let value = serde_json::to_value(rec).map_err(|e| TrainError::Internal(format!("metrics: {e}")))?;
        let line = serde_json::to_string(&value).map_err(|e| TrainError::Internal(format!("metrics: {e}")))?;
        writeln!(self.jsonl, "{line}").and_then(|_| self.jsonl.flush()).map_err(write_err(&self.path))?;
        let Some(obj) = value.as_object() else { return Ok(()) };
        let step = obj.get(self.step_key).and_then(|v| v.as_i64()).unwrap_or(0);
        let scalars: Vec<(&str, f64)> = obj
            .iter()
            .filter(|(k, _)| k.as_str() != self.step_key)
            .filter_map(|(k, v)| v.as_f64().filter(|_| v.is_number()).map(|x| (k.as_str(), x)))
            .collect();
        self.events.scalars(step, &scalars)
    }

    /// A PNG image in the event file under `tag` at `step`.
    pub fn image(&mut self, tag: &str, step: i64, width: u32, height: u32, channels: u32, png: &[u8]) -> Result<()> {
        self.events.image(tag, step, width, height, channels, png)
    }
}
