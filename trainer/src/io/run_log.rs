//! A run's log: one `metrics.jsonl` line per record and, next to it, a
//! TensorBoard event file ([`crate::io::tensorboard`]) holding every number
//! of that line as a scalar under the field's name, at the record's step
//! (the field named by `step_key`: `step` for pretraining, `epoch` for the
//! per-epoch commands). So TensorBoard's curves and `metrics.jsonl` hold the
//! same values (TensorBoard's as f32). Booleans, strings and nulls (NaN
//! is written as null by serde_json) are not scalars.
//!
//! A fresh run empties `metrics.jsonl` and removes the directory's earlier
//! event files (TensorBoard would merge them with the new one). A resumed
//! run keeps both: its `metrics.jsonl` was cut after the checkpoint's step
//! `s`, and its new event file starts with TensorBoard's restart marker at
//! `s + 1` ([`crate::io::tensorboard`]), so the reader's series are cut at
//! the same place and hold each step once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::io::tensorboard::{event_files, EventWriter};
use crate::{write_err, Result, TrainError};

/// How a run directory's log starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// A new run: `metrics.jsonl` emptied, earlier event files removed.
    Fresh,
    /// A run resumed after `step`: `metrics.jsonl` (already holding the
    /// lines up to `step`) appended to, TensorBoard's steps > `step` dropped.
    Resume { step: i64 },
}

/// `metrics.jsonl` and the event file of one run directory.
pub struct RunLog {
    path: PathBuf,
    jsonl: File,
    events: EventWriter,
    step_key: &'static str,
}

impl RunLog {
    /// Starts `dir/metrics.jsonl` and a new event file in `dir` as `start` says.
    pub fn open(dir: &Path, step_key: &'static str, start: Start) -> Result<RunLog> {
        let path = dir.join("metrics.jsonl");
        let (jsonl, purge_from) = match start {
            Start::Fresh => {
                for f in event_files(dir)? {
                    std::fs::remove_file(&f).map_err(write_err(&f))?;
                }
                (File::create(&path), None)
            }
            Start::Resume { step } => (OpenOptions::new().append(true).create(true).open(&path), Some(step + 1)),
        };
        let jsonl = jsonl.map_err(write_err(&path))?;
        Ok(RunLog { path, jsonl, events: EventWriter::create(dir, purge_from)?, step_key })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Line {
        step: u64,
        loss: f64,
    }

    #[test]
    fn fresh_removes_earlier_event_files_and_resume_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("events.out.tfevents.1.other-writer"), b"").unwrap();
        std::fs::write(d.join("notes.txt"), b"kept").unwrap();
        let mut log = RunLog::open(d, "step", Start::Fresh).unwrap();
        log.record(&Line { step: 1, loss: 0.5 }).unwrap();
        log.record(&Line { step: 2, loss: 0.25 }).unwrap();
        let first = log.events().path().to_path_buf();
        drop(log);
        assert_eq!(event_files(d).unwrap(), vec![first.clone()]);
        assert!(d.join("notes.txt").exists(), "only event files are removed");
        let mut log = RunLog::open(d, "step", Start::Resume { step: 1 }).unwrap();
        log.record(&Line { step: 3, loss: 0.125 }).unwrap();
        let second = log.events().path().to_path_buf();
        drop(log);
        assert_eq!(event_files(d).unwrap(), vec![first, second]);
        let lines = std::fs::read_to_string(d.join("metrics.jsonl")).unwrap();
        assert_eq!(lines.lines().count(), 3, "resume appends: {lines}");
        RunLog::open(d, "step", Start::Fresh).unwrap();
        assert_eq!(event_files(d).unwrap().len(), 1);
        assert_eq!(std::fs::read_to_string(d.join("metrics.jsonl")).unwrap(), "");
    }
}
