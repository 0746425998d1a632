//! Selection: which DICOM objects become samples.
//!
//! Checked on the header alone, before any pixel is decoded, in this order:
//! DICOMDIR → presentation state → secondary capture → neither Pixel Data
//! nor Rows (other non-image objects) → modality (`--modalities`, default CR,DX) →
//! BurnedInAnnotation = YES → BodyPartExamined, when present, not chest →
//! ViewPosition (`--views`, when given; a missing view then rejects).
//! Each has its own [`Reason`].

use crate::dicom::Header;
use crate::reject::{Reason, Reject};

const DICOMDIR_CLASS: &str = "1.2.840.10008.1.3.10";
const PRESENTATION_STATE_PREFIX: &str = "1.2.840.10008.5.1.4.1.1.11.";
const SECONDARY_CAPTURE_PREFIX: &str = "1.2.840.10008.5.1.4.1.1.7";

/// Body parts counted as chest (BodyPartExamined defined terms and common
/// vendor spellings).
const CHEST_PARTS: [&str; 4] = ["CHEST", "THORAX", "LUNG", "PORTABLE CHEST"];

/// Selection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Upper-case modality codes to keep.
    pub modalities: Vec<String>,
    /// Upper-case view positions to keep; `None` keeps all.
    pub views: Option<Vec<String>>,
}

impl Default for Selection {
    fn default() -> Self {
        Selection { modalities: vec!["CR".into(), "DX".into()], views: None }
    }
}

impl Selection {
    /// Accepts the header or says why not.
    pub fn check(&self, h: &Header) -> Result<(), Reject> {
        if h.sop_class_uid == DICOMDIR_CLASS {
            return Err(Reject::new(Reason::Dicomdir, "DICOMDIR (media directory)"));
        }
        if h.sop_class_uid.starts_with(PRESENTATION_STATE_PREFIX) {
            return Err(Reject::new(Reason::PresentationState, format!("SOP class {}", h.sop_class_uid)));
        }
        if h.sop_class_uid == SECONDARY_CAPTURE_PREFIX
            || h.sop_class_uid.starts_with(&format!("{SECONDARY_CAPTURE_PREFIX}."))
            || h.modality == "SC"
        {
            return Err(Reject::new(Reason::SecondaryCapture, format!("SOP class {}", h.sop_class_uid)));
        }
        if !h.has_pixel_data && h.rows == 0 {
            return Err(Reject::new(Reason::NotAnImage, format!("no Pixel Data (SOP class {})", h.sop_class_uid)));
        }
        if !self.modalities.contains(&h.modality) {
            return Err(Reject::new(Reason::Modality, format!("Modality {:?}", h.modality)));
        }
        if h.burned_in_annotation == "YES" {
            return Err(Reject::new(Reason::BurnedInAnnotation, "BurnedInAnnotation = YES"));
        }
        if !h.body_part.is_empty() && !CHEST_PARTS.contains(&h.body_part.as_str()) {
            return Err(Reject::new(Reason::BodyPart, format!("BodyPartExamined {:?}", h.body_part)));
        }
        if let Some(views) = &self.views {
            if !views.contains(&h.view_position) {
                return Err(Reject::new(Reason::View, format!("ViewPosition {:?}", h.view_position)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cr() -> Header {
        Header {
            sop_class_uid: "1.2.840.10008.5.1.4.1.1.1".into(),
            modality: "CR".into(),
            body_part: "CHEST".into(),
            view_position: "PA".into(),
            has_pixel_data: true,
            ..Default::default()
        }
    }

    fn reason(sel: &Selection, h: &Header) -> Option<Reason> {
        sel.check(h).err().map(|r| r.reason)
    }

    #[test]
    fn each_rejection_has_its_reason() {
        let sel = Selection::default();
        assert_eq!(reason(&sel, &cr()), None);
        type Edit = Box<dyn Fn(&mut Header)>;
        let cases: Vec<(Edit, Reason)> = vec![
            (Box::new(|h| h.sop_class_uid = DICOMDIR_CLASS.into()), Reason::Dicomdir),
            (Box::new(|h| h.sop_class_uid = "1.2.840.10008.5.1.4.1.1.11.1".into()), Reason::PresentationState),
            (Box::new(|h| h.sop_class_uid = "1.2.840.10008.5.1.4.1.1.7".into()), Reason::SecondaryCapture),
            (Box::new(|h| h.sop_class_uid = "1.2.840.10008.5.1.4.1.1.7.2".into()), Reason::SecondaryCapture),
            (Box::new(|h| h.has_pixel_data = false), Reason::NotAnImage),
            // An image header whose Pixel Data is missing is caught later, as no_pixel_data.
            (Box::new(|h| h.modality = "CT".into()), Reason::Modality),
            (Box::new(|h| h.burned_in_annotation = "YES".into()), Reason::BurnedInAnnotation),
            (Box::new(|h| h.body_part = "HIP".into()), Reason::BodyPart),
        ];
        for (edit, want) in cases {
            let mut h = cr();
            edit(&mut h);
            assert_eq!(reason(&sel, &h), Some(want));
        }
        let mut h = cr();
        h.body_part.clear();
        assert_eq!(reason(&sel, &h), None, "absent BodyPartExamined is accepted");
        let views = Selection { views: Some(vec!["AP".into()]), ..Default::default() };
        assert_eq!(reason(&views, &cr()), Some(Reason::View));
    }
}
