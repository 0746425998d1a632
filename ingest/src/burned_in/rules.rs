//! A rules file of known burned-in regions (TOML), as CTP's
//! pixel-anonymizer signatures: regions that a given device always draws
//! text into, blanked on every matching image whatever the detector says.
//!
//! ```toml
//! [[region]]
//! manufacturer = "ACME"        # Manufacturer, case-insensitive; required
//! model = "Skyline 2"          # ManufacturerModelName; optional
//! rows = 2048                  # Rows and Columns; optional
//! columns = 2500
//! boxes = [[0, 0, 600, 120], [1900, 2380, 600, 120]]   # x, y, width, height in pixels
//! ```
//!
//! The file's BLAKE3 digest is recorded in `dataset.json`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Device, Rect};

/// Why a rules file cannot be used (an input: exit 3).
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("burned-in rules file '{}': {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("burned-in rules file '{}': {message}", path.display())]
    Parse { path: PathBuf, message: String },
}

impl chess_cli::Classify for RulesError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        match self {
            RulesError::Read { source, .. } => chess_cli::exit::io_class(source, false),
            RulesError::Parse { .. } => chess_cli::ExitClass::Input,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Region {
    manufacturer: String,
    model: Option<String>,
    rows: Option<usize>,
    columns: Option<usize>,
    boxes: Vec<[usize; 4]>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    region: Vec<Region>,
}

/// The known regions, and the digest of the file they came from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    regions: Vec<Region>,
    /// BLAKE3 of the file (hex); `None` without a file.
    pub digest: Option<String>,
}

impl Rules {
    pub fn load(path: &Path) -> Result<Rules, RulesError> {
        let bytes = std::fs::read(path).map_err(|source| RulesError::Read { path: path.to_path_buf(), source })?;
        Rules::parse(&bytes).map_err(|message| RulesError::Parse { path: path.to_path_buf(), message })
    }

    pub fn parse(bytes: &[u8]) -> Result<Rules, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
        let file: File = toml::from_str(text).map_err(|e| e.message().to_string())?;
        for (i, r) in file.region.iter().enumerate() {
            if r.manufacturer.trim().is_empty() {
                return Err(format!("region {}: `manufacturer` is empty", i + 1));
            }
            if let Some(b) = r.boxes.iter().find(|b| b[2] == 0 || b[3] == 0) {
                return Err(format!("region {}: box {b:?} has no area (x, y, width, height)", i + 1));
            }
        }
        Ok(Rules { regions: file.region, digest: Some(blake3::hash(bytes).to_hex().to_string()) })
    }

    /// The boxes of every rule that matches, clipped to the image.
    pub fn regions_for(&self, d: &Device<'_>, rows: usize, cols: usize) -> Vec<Rect> {
        let eq = |a: &str, b: &str| a.trim().eq_ignore_ascii_case(b.trim());
        self.regions
            .iter()
            .filter(|r| {
                eq(&r.manufacturer, d.manufacturer)
                    && r.model.as_deref().is_none_or(|m| eq(m, d.model))
                    && r.rows.is_none_or(|n| n == rows)
                    && r.columns.is_none_or(|n| n == cols)
            })
            .flat_map(|r| r.boxes.iter())
            .filter(|b| b[0] < cols && b[1] < rows)
            .map(|b| Rect { x: b[0], y: b[1], w: b[2].min(cols - b[0]), h: b[3].min(rows - b[1]) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_by_device_and_size_and_clip_their_boxes() {
        let r = Rules::parse(
            br#"
[[region]]
manufacturer = "ACME"
model = "X1"
rows = 100
columns = 80
boxes = [[0, 0, 40, 10], [70, 90, 40, 40]]

[[region]]
manufacturer = "other"
boxes = [[5, 5, 5, 5]]
"#,
        )
        .unwrap();
        assert_eq!(r.digest.as_ref().map(String::len), Some(64));
        let acme = Device { manufacturer: "acme ", model: "X1" };
        assert_eq!(
            r.regions_for(&acme, 100, 80),
            vec![Rect { x: 0, y: 0, w: 40, h: 10 }, Rect { x: 70, y: 90, w: 10, h: 10 }]
        );
        assert!(r.regions_for(&acme, 100, 81).is_empty(), "another size");
        assert!(r.regions_for(&Device { manufacturer: "ACME", model: "X2" }, 100, 80).is_empty());
        assert_eq!(r.regions_for(&Device { manufacturer: "OTHER", model: "" }, 10, 10).len(), 1);
        assert!(Rules::parse(b"[[region]]\nmanufacturer = \"A\"\nboxes = [[0, 0, 0, 4]]\n").is_err());
        assert!(Rules::parse(b"[[region]]\nmanufacturer = \"A\"\nboxes = [[0, 0, 1, 4]]\ncolour = 1\n").is_err());
        assert!(Rules::parse(b"not toml [").is_err());
    }
}
