//! `chess-ingest`: hospital DICOM archives to de-identified, clipped shards.
pub mod dicom;
pub mod discover;
pub mod pipeline;
pub mod reject;
