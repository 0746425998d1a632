//! `chess-ingest`: hospital DICOM archives to de-identified, clipped shards.
//!
//! The layers, each its own module: [`discover`] (inputs → items, archives
//! read in place) → [`dicom`] (parse, header, decode to stored values) →
//! [`select`] (which objects become samples) → [`pipeline`] (stored values →
//! shared pixels) → [`deid`] (allow-list de-identification, pseudonyms) and
//! [`labels`] (CSV join) → [`run`] (threads, writer, [`journal`],
//! accounting with [`reject`] reasons).
//!
//! Without the default `dataset` feature only the DICOM core is built
//! (no chess-shards, Parquet or object storage): that is what the fuzz
//! target links.
#[cfg(feature = "dataset")]
pub mod chexpert;
pub mod deid;
pub mod dicom;
pub mod discover;
#[cfg(feature = "dataset")]
pub mod journal;
#[cfg(feature = "dataset")]
pub mod labels;
pub mod lengths;
#[cfg(feature = "dataset")]
mod outputs;
#[cfg(feature = "dataset")]
pub mod pairs;
pub mod pipeline;
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
