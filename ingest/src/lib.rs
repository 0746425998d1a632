//! `chess-ingest`: hospital DICOM archives to de-identified, clipped shards.
//!
//! The layers, each its own module: [`discover`] (inputs → items, archives
//! read in place) → [`dicom`] (parse, header, decode to stored values) →
//! [`select`] (which objects become samples) → [`pipeline`] (stored values →
//! shared pixels) → [`deid`] (allow-list de-identification, pseudonyms) and
//! [`labels`] (CSV join) → [`run`] (threads, writer, [`journal`],
//! accounting with [`reject`] reasons).
pub mod chexpert;
pub mod deid;
pub mod dicom;
pub mod discover;
pub mod journal;
pub mod labels;
pub mod pipeline;
pub mod reject;
pub mod run;
pub mod select;
pub mod upload;
