//! `chess-ingest`: hospital DICOM archives to de-identified, clipped shards.
pub mod deid;
pub mod labels;
pub mod dicom;
pub mod discover;
pub mod pipeline;
pub mod reject;
pub mod select;
