//! TensorBoard event files (`events.out.tfevents.*`), written by hand: the
//! TFRecord framing and the few protobuf messages a scalar or an image needs.
//!
//! Why not a crate: the one on crates.io (`tensorboard-rs` 0.5.9, last
//! released 2022) pulls protobuf 2 (end of life), image 0.23 and a 765 kB
//! generated `tensorboard-proto`; what we need is ~100 lines, below, and is
//! tested against Python's `tensorboard` reader (`EventAccumulator`).
//!
//! A file is a sequence of records, each
//!
//! ```text
//! u64 LE   length of data
//! u32 LE   masked CRC32C of those 8 length bytes
//! [u8]     data: one serialized `tensorflow.Event`
//! u32 LE   masked CRC32C of data
//! ```
//!
//! where masked(c) = rotr(c, 15) + 0xa282ead8 (mod 2³²) and
//! CRC32C is the Castagnoli CRC (reflected polynomial 0x82f63b78). The first
//! record is `Event{wall_time, file_version: "brain.Event:2"}`; every other
//! one `Event{wall_time, step, summary}` with the fields (proto3, tags)
//!
//! ```text
//! Event          1 wall_time double · 2 step int64 · 3 file_version string · 5 summary Summary
//!                · 7 session_log SessionLog
//! SessionLog     1 status enum (START = 1)
//! Summary        1 value repeated Value
//! Summary.Value  1 tag string · 2 simple_value float · 4 image Image
//! Summary.Image  1 height int32 · 2 width int32 · 3 colorspace int32 · 4 encoded_image_string bytes (PNG)
//! ```
//!
//! Scalars are `float` (f32) in the format: a reader sees each value
//! rounded to the nearest f32.
//!
//! A resumed run writes a new file in the same directory. TensorBoard reads
//! a directory's files in name order as one stream, so the new name sorts
//! after the old ones (a sequence number after the seconds), and the file
//! starts with `Event{step: s, session_log: START}`: on that marker the
//! reader drops what it holds at steps ≥ s (a crashed run's steps past its
//! last checkpoint), as PyTorch's `SummaryWriter(purge_step=s)` does.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{write_err, Result};

/// CRC32C (Castagnoli), bitwise-table form.
pub fn crc32c(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0x82f6_3b78 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// TFRecord's masked CRC.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc32c(data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// One TFRecord: length, its masked CRC, data, its masked CRC.
pub fn record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(data.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    out
}

// --- protobuf wire format: varints, tags, length-delimited fields ---------

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire: u8) {
    varint(out, ((field as u64) << 3) | wire as u64);
}

fn bytes_field(out: &mut Vec<u8>, field: u32, data: &[u8]) {
    key(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

fn int_field(out: &mut Vec<u8>, field: u32, v: i64) {
    key(out, field, 0);
    varint(out, v as u64);
}

/// A `Summary.Value` holding `simple_value`.
fn scalar_value(tag: &str, value: f32) -> Vec<u8> {
    let mut v = Vec::new();
    bytes_field(&mut v, 1, tag.as_bytes());
    key(&mut v, 2, 5);
    v.extend_from_slice(&value.to_le_bytes());
    v
}

/// A `Summary.Value` holding an `Image` (PNG bytes; colorspace 1 grey, 3 RGB, 4 RGBA).
fn image_value(tag: &str, height: u32, width: u32, colorspace: u32, png: &[u8]) -> Vec<u8> {
    let mut img = Vec::new();
    int_field(&mut img, 1, height as i64);
    int_field(&mut img, 2, width as i64);
    int_field(&mut img, 3, colorspace as i64);
    bytes_field(&mut img, 4, png);
    let mut v = Vec::new();
    bytes_field(&mut v, 1, tag.as_bytes());
    bytes_field(&mut v, 4, &img);
    v
}

/// A serialized `Event{wall_time, step, session_log: START}`: the restart marker.
fn session_start(wall_time: f64, step: i64) -> Vec<u8> {
    let mut log = Vec::new();
    int_field(&mut log, 1, 1);
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    int_field(&mut e, 2, step);
    bytes_field(&mut e, 7, &log);
    e
}

/// A serialized `Event` at `wall_time`: `file_version` or a summary of `values`.
fn event(wall_time: f64, step: Option<i64>, file_version: Option<&str>, values: &[Vec<u8>]) -> Vec<u8> {
    let mut e = Vec::new();
    key(&mut e, 1, 1);
    e.extend_from_slice(&wall_time.to_le_bytes());
    if let Some(s) = step {
        int_field(&mut e, 2, s);
    }
    if let Some(v) = file_version {
        bytes_field(&mut e, 3, v.as_bytes());
    }
    if !values.is_empty() {
        let mut summary = Vec::new();
        for v in values {
            bytes_field(&mut summary, 1, v);
        }
        bytes_field(&mut e, 5, &summary);
    }
    e
}

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// An open event file in a log directory. Every call writes and flushes
/// its records, so TensorBoard shows a run while it trains.
pub struct EventWriter {
    path: PathBuf,
    file: BufWriter<File>,
}

/// Whether `name` is an event file of ours or another writer's (TensorBoard's test).
pub fn is_event_file(name: &str) -> bool {
    name.contains("tfevents")
}

/// The event files of `dir`, in the order TensorBoard reads them (by name).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).map_err(crate::read_err(dir))? {
            let e = e.map_err(crate::read_err(dir))?;
            if e.file_name().to_str().is_some_and(is_event_file) && e.path().is_file() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

impl EventWriter {
    /// Creates `dir/events.out.tfevents.<unix seconds>.<n>.chess-train.<pid>`
    /// (`n` counts the event files already there, so a new file sorts after
    /// them even within one second). With `purge_from`, the file starts with
    /// the restart marker: TensorBoard drops the earlier files' steps ≥ it.
    pub fn create(dir: &Path, purge_from: Option<i64>) -> Result<EventWriter> {
        let t = now();
        let n = event_files(dir)?.len();
        let path = dir.join(format!("events.out.tfevents.{:010}.{n:04}.chess-train.{}", t as u64, std::process::id()));
        let f = File::create(&path).map_err(write_err(&path))?;
        let mut w = EventWriter { path, file: BufWriter::new(f) };
        w.write(&event(t, None, Some("brain.Event:2"), &[]))?;
        if let Some(step) = purge_from {
            w.write(&session_start(t, step))?;
        }
        Ok(w)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, event: &[u8]) -> Result<()> {
        let rec = record(event);
        self.file.write_all(&rec).and_then(|_| self.file.flush()).map_err(write_err(&self.path))
    }

    /// Scalars at one step, in one event.
    pub fn scalars(&mut self, step: i64, values: &[(&str, f64)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        let v: Vec<Vec<u8>> = values.iter().map(|(tag, x)| scalar_value(tag, *x as f32)).collect();
        self.write(&event(now(), Some(step), None, &v))
    }

    /// A PNG image (`channels` 1, 3 or 4) under `tag` at `step`.
    pub fn image(&mut self, tag: &str, step: i64, width: u32, height: u32, channels: u32, png: &[u8]) -> Result<()> {
        let v = image_value(tag, height, width, channels, png);
        self.write(&event(now(), Some(step), None, &[v]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C (RFC 3720, B.4).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8a91_36aa);
    }

    #[test]
    fn varint_encoding() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let mut v = Vec::new();
        int_field(&mut v, 2, -1);
        assert_eq!(v.len(), 1 + 10, "negative int64 is a ten-byte varint");
    }

    #[test]
    fn session_start_is_event_field_7_status_1() {
        let e = session_start(0.0, 3);
        // wall_time (key 0x09 + 8 bytes), step (0x10, 3), session_log (0x3a, length 2, status: 0x08 0x01).
        assert_eq!(e[0], 0x09);
        assert_eq!(&e[9..], &[0x10, 3, 0x3a, 2, 0x08, 1]);
    }

    #[test]
    fn new_files_sort_after_the_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        let names: Vec<PathBuf> = (0..3).map(|_| EventWriter::create(dir.path(), None).unwrap().path).collect();
        assert_eq!(event_files(dir.path()).unwrap(), names, "creation order is name order");
    }

    #[test]
    fn record_framing() {
        let r = record(b"abc");
        assert_eq!(r.len(), 8 + 4 + 3 + 4);
        assert_eq!(&r[..8], &3u64.to_le_bytes());
        assert_eq!(&r[8..12], &masked_crc32c(&3u64.to_le_bytes()).to_le_bytes());
        assert_eq!(&r[12..15], b"abc");
    }
}
