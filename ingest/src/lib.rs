//! `chess-ingest`: hospital DICOM archives (and CheXpert, and paired
//! images) to de-identified, clipped, resized CheSS datasets.
//!
//! The DICOM core, each its own module: [`discover`] (inputs → items,
//! archives read in place) → [`dicom`] (parse, header, decode to stored
//! values) → [`select`] (which objects become samples) → [`pipeline`]
//! (stored values → shared pixels) → [`deid`] (allow-list
//! de-identification, pseudonyms), with [`reject`] reasons and [`lengths`]
//! (declared-length checks before parsing).
//!
//! The import front ends (feature `dataset`): [`run`] (DICOM exports:
//! threads, writer, [`journal`], [`labels`] join), [`chexpert`] (CheXpert
//! as released) and [`pairs`] (source/target/mask CSV), which share one
//! skeleton, [`frontend`] (settings and resume checks, accounting,
//! `rejected.parquet`, finishing), one error type, [`error`], and report
//! progress through [`progress`] callbacks; [`image`] decodes JPEG/PNG and
//! [`upload`] publishes a finished dataset to object storage.
//!
//! Without `dataset` only the DICOM core is built (no chess-shards, Parquet
//! or object storage): that is what the fuzz target and the trainer link.
//! The `chess-ingest` binary (feature `cli`) adds the command line.
pub mod burned_in;
#[cfg(feature = "dataset")]
pub mod chexpert;
#[cfg(feature = "dataset")]
pub mod datasets;
pub mod deid;
pub mod dicom;
pub mod discover;
#[cfg(feature = "dataset")]
pub mod error;
#[cfg(feature = "dataset")]
pub mod frontend;
#[cfg(feature = "dataset")]
pub mod image;
#[cfg(feature = "dataset")]
pub mod journal;
#[cfg(feature = "dataset")]
pub mod label_space;
#[cfg(feature = "dataset")]
pub mod labels;
pub mod lengths;
#[cfg(feature = "dataset")]
pub mod pairs;
pub mod pipeline;
pub mod private;
#[cfg(feature = "dataset")]
pub mod progress;
pub mod reject;
#[cfg(feature = "dataset")]
pub mod run;
pub mod select;
#[cfg(feature = "dataset")]
pub mod upload;

/// Parse, decode and run the pixel pipeline on one in-memory file, with no
/// selection, de-identification or writing: the fuzzing entry point (and a
/// convenient way to look at one file).
pub fn decode_and_process(
    bytes: &[u8],
    opts: &pipeline::PipelineOptions,
) -> Result<pipeline::Processed, reject::Reject> {
    let obj = dicom::parse(bytes)?;
    let h = dicom::Header::from_object(&obj);
    let stored = dicom::decode(&obj, &h)?;
    let sem = pipeline::PixelSemantics {
        monochrome1: h.photometric == "MONOCHROME1",
        rescale_slope: h.rescale_slope,
        rescale_intercept: h.rescale_intercept,
        modality_lut: h.modality_lut.as_ref(),
    };
    Ok(pipeline::run(&stored.values, stored.rows, stored.columns, &sem, opts))
}
