//! Reasons an input file does not become a sample.
//!
//! Every input file ends either as a manifest row or as a row of
//! `private/rejected.parquet` with one of these reason codes (stable,
//! snake_case) and a free-text message. Messages may quote header values and
//! file paths, which is why the reject list lives under `private/`; the
//! shareable summary in `dataset.json` carries only the codes and counts.

use std::fmt;

/// A reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// Could not be read from disk.
    ReadError,
    /// A zip/tar archive (or one of its members) could not be read.
    ArchiveError,
    /// Larger than the per-file limit.
    TooLarge,
    /// Not a DICOM Part 10 file (no `DICM` magic).
    NotDicom,
    /// DICOM, but the parser failed (truncated, wrong VRs, ...).
    ParseError,
    /// A DICOMDIR (media directory), not an image.
    Dicomdir,
    /// A presentation state object.
    PresentationState,
    /// A secondary capture (screenshots, scanned documents, ...).
    SecondaryCapture,
    /// A non-image object (structured report, encapsulated PDF, ...).
    NotAnImage,
    /// Modality not in `--modalities`.
    Modality,
    /// BodyPartExamined present and not chest.
    BodyPart,
    /// ViewPosition not in `--views`.
    View,
    /// BurnedInAnnotation = YES.
    BurnedInAnnotation,
    /// Text found in the pixels (`--burned-in reject`).
    BurnedInText,
    /// More than one frame.
    MultiFrame,
    /// Not monochrome (colour, palette, ...).
    Colour,
    /// Rows/columns/bit depths that make no sense or exceed the limits.
    BadDimensions,
    /// Pixel Data missing or empty.
    NoPixelData,
    /// Pixel Data shorter than its header says.
    PixelDataTruncated,
    /// The transfer syntax has no decoder here.
    UnsupportedTransferSyntax,
    /// The decoder failed on this file.
    DecodeError,
    /// Same SOPInstanceUID as an earlier sample.
    DuplicateSopInstance,
    /// Same decoded pixels (hash) as an earlier sample.
    DuplicatePixels,
    /// No SOPInstanceUID to derive a stable key from.
    MissingSopInstanceUid,
}

impl Reason {
    pub const ALL: [Reason; 24] = [
        Reason::ReadError,
        Reason::ArchiveError,
        Reason::TooLarge,
        Reason::NotDicom,
        Reason::ParseError,
        Reason::Dicomdir,
        Reason::PresentationState,
        Reason::SecondaryCapture,
        Reason::NotAnImage,
        Reason::Modality,
        Reason::BodyPart,
        Reason::View,
        Reason::BurnedInAnnotation,
        Reason::BurnedInText,
        Reason::MultiFrame,
        Reason::Colour,
        Reason::BadDimensions,
        Reason::NoPixelData,
        Reason::PixelDataTruncated,
        Reason::UnsupportedTransferSyntax,
        Reason::DecodeError,
        Reason::DuplicateSopInstance,
        Reason::DuplicatePixels,
        Reason::MissingSopInstanceUid,
    ];

    /// The stable code written to `rejected.parquet` and the summary.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ReadError => "read_error",
            Reason::ArchiveError => "archive_error",
            Reason::TooLarge => "too_large",
            Reason::NotDicom => "not_dicom",
            Reason::ParseError => "parse_error",
            Reason::Dicomdir => "dicomdir",
            Reason::PresentationState => "presentation_state",
            Reason::SecondaryCapture => "secondary_capture",
            Reason::NotAnImage => "not_an_image",
            Reason::Modality => "modality",
            Reason::BodyPart => "body_part",
            Reason::View => "view_position",
            Reason::BurnedInAnnotation => "burned_in_annotation",
            Reason::BurnedInText => "burned_in_text",
            Reason::MultiFrame => "multi_frame",
            Reason::Colour => "colour",
            Reason::BadDimensions => "bad_dimensions",
            Reason::NoPixelData => "no_pixel_data",
            Reason::PixelDataTruncated => "pixel_data_truncated",
            Reason::UnsupportedTransferSyntax => "unsupported_transfer_syntax",
            Reason::DecodeError => "decode_error",
            Reason::DuplicateSopInstance => "duplicate_sop_instance",
            Reason::DuplicatePixels => "duplicate_pixels",
            Reason::MissingSopInstanceUid => "missing_sop_instance_uid",
        }
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.code() == code)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// Why one file was rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reason: Reason,
    pub message: String,
}

impl Reject {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Reject { reason, message: message.into() }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            assert!(seen.insert(r.code()));
            assert_eq!(Reason::from_code(r.code()), Some(r));
        }
    }
}
