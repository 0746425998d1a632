//! The common label space (`--labels-as torchxrayvision`): every
//! importer's findings mapped to torchxrayvision's 18 default pathology
//! names, so that datasets imported from different releases have the same
//! label columns and can be merged (`chess-shards merge`) and evaluated on
//! shared labels.
//!
//! | torchxrayvision | NIH ChestX-ray14 | MIMIC-CXR (CheXpert labeler) | PadChest (label contains) | VinDr-CXR | folders (class name) |
//! |---|---|---|---|---|---|
//! | Atelectasis | Atelectasis | Atelectasis | `atelectasis` | Atelectasis | `atelectasis` |
//! | Consolidation | Consolidation | Consolidation | `consolidation`, `air bronchogram` | Consolidation | `consolidation` |
//! | Infiltration | Infiltration | – | `infiltrates`, `interstitial pattern`, `ground glass pattern`, `reticular interstitial pattern`, `reticulonodular interstitial pattern`, `alveolar pattern`, `consolidation`, `air bronchogram` | Infiltration | `infiltration` |
//! | Pneumothorax | Pneumothorax | Pneumothorax | `pneumothorax` | Pneumothorax | `pneumothorax` |
//! | Edema | Edema | Edema | `edema` | Edema | `edema` |
//! | Emphysema | Emphysema | – | `emphysema` | Emphysema | `emphysema` |
//! | Fibrosis | Fibrosis | – | `fibrosis` | Pulmonary fibrosis | `fibrosis` |
//! | Effusion | Effusion | Pleural Effusion | `effusion` | Pleural effusion | `effusion` |
//! | Pneumonia | Pneumonia | Pneumonia | `pneumonia` | Pneumonia | `pneumonia` |
//! | Pleural_Thickening | Pleural_Thickening | – | `pleural thickening` | Pleural thickening | `pleural_thickening` |
//! | Cardiomegaly | Cardiomegaly | Cardiomegaly | `cardiomegaly` | Cardiomegaly | `cardiomegaly` |
//! | Nodule | Nodule | – | `nodule` | – | `nodule` |
//! | Mass | Mass | – | `mass` | – | `mass` |
//! | Hernia | Hernia | – | `hernia` | – | `hernia` |
//! | Lung Lesion | – | Lung Lesion | – | – | `lung lesion` |
//! | Fracture | – | Fracture | `fracture` | Rib fracture, Clavicle fracture | `fracture` |
//! | Lung Opacity | – | Lung Opacity | – | Lung Opacity | `lung opacity` |
//! | Enlarged Cardiomediastinum | – | Enlarged Cardiomediastinum | – | – | `enlarged cardiomediastinum` |
//!
//! Values: a pathology the source does not label ("–") is null, as
//! torchxrayvision's NaN. Several source labels for one pathology combine
//! as positive (1) if any is 1, else uncertain (−1, MIMIC only) if any is
//! −1, else 0 if any is 0, else null. PadChest follows torchxrayvision's
//! rule: a pathology is 1 when one of the image's labels contains the
//! lower-case name (or one of the listed phrases), else 0. For a
//! folders tree, a pathology that is one of the tree's classes (compared
//! without case, `_` as a space) is 1 for images of that class and 0 for
//! the other classes; the other pathologies are null. NIH's and VinDr's
//! "No finding" and the labels without a counterpart (Support Devices,
//! Aortic enlargement, …) are not carried into this space.

use chess_schemas::{LabelColumn, LabelType};
use chess_shards::LabelValue;

/// The name given to `--labels-as`.
pub const TORCHXRAYVISION: &str = "torchxrayvision";

/// torchxrayvision's default pathologies, in its order.
pub const PATHOLOGIES: [&str; 18] = [
    "Atelectasis",
    "Consolidation",
    "Infiltration",
    "Pneumothorax",
    "Edema",
    "Emphysema",
    "Fibrosis",
    "Effusion",
    "Pneumonia",
    "Pleural_Thickening",
    "Cardiomegaly",
    "Nodule",
    "Mass",
    "Hernia",
    "Lung Lesion",
    "Fracture",
    "Lung Opacity",
    "Enlarged Cardiomediastinum",
];

/// Which release a label name comes from (its vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    Nih,
    /// CheXpert's 14 observations (MIMIC-CXR's labelers, CheXpert).
    Chexpert,
    Padchest,
    Vindr,
    /// Class folder names.
    Classes,
}

/// The pathologies a source label maps to (indices into [`PATHOLOGIES`]).
pub fn targets(vocabulary: Vocabulary, label: &str) -> Vec<usize> {
    let idx = |name: &str| PATHOLOGIES.iter().position(|p| *p == name);
    let one = |name: &str| idx(name).into_iter().collect::<Vec<_>>();
    match vocabulary {
        Vocabulary::Nih => one(label),
        Vocabulary::Chexpert => match label {
            "Pleural Effusion" => one("Effusion"),
            "Atelectasis"
            | "Consolidation"
            | "Pneumothorax"
            | "Edema"
            | "Pneumonia"
            | "Cardiomegaly"
            | "Lung Lesion"
            | "Fracture"
            | "Lung Opacity"
            | "Enlarged Cardiomediastinum" => one(label),
            _ => Vec::new(),
        },
        Vocabulary::Vindr => match label {
            "Pleural effusion" => one("Effusion"),
            "Pleural thickening" => one("Pleural_Thickening"),
            "Pulmonary fibrosis" => one("Fibrosis"),
            "Rib fracture" | "Clavicle fracture" => one("Fracture"),
            "Atelectasis" | "Consolidation" | "Infiltration" | "Pneumothorax" | "Edema" | "Emphysema" | "Pneumonia"
            | "Cardiomegaly" | "Lung Opacity" => one(label),
            _ => Vec::new(),
        },
        Vocabulary::Padchest => {
            let label = label.to_lowercase();
            (0..PATHOLOGIES.len()).filter(|&i| padchest_phrases(i).iter().any(|p| label.contains(p))).collect()
        }
        Vocabulary::Classes => {
            let norm = |s: &str| s.to_lowercase().replace('_', " ");
            let label = norm(label);
            (0..PATHOLOGIES.len()).filter(|&i| norm(PATHOLOGIES[i]) == label).collect()
        }
    }
}

/// The phrases of PadChest labels that mean pathology `i` (torchxrayvision's
/// substring rule and its extra mappings); none for the pathologies its
/// PadChest loader does not produce.
fn padchest_phrases(i: usize) -> &'static [&'static str] {
    match PATHOLOGIES[i] {
        "Atelectasis" => &["atelectasis"],
        "Consolidation" => &["consolidation", "air bronchogram"],
        "Infiltration" => &[
            "infiltrates",
            "interstitial pattern",
            "ground glass pattern",
            "reticular interstitial pattern",
            "reticulonodular interstitial pattern",
            "alveolar pattern",
            "consolidation",
            "air bronchogram",
        ],
        "Pneumothorax" => &["pneumothorax"],
        "Edema" => &["edema"],
        "Emphysema" => &["emphysema"],
        "Fibrosis" => &["fibrosis"],
        "Effusion" => &["effusion"],
        "Pneumonia" => &["pneumonia"],
        "Pleural_Thickening" => &["pleural thickening"],
        "Cardiomegaly" => &["cardiomegaly"],
        "Nodule" => &["nodule"],
        "Mass" => &["mass"],
        "Hernia" => &["hernia"],
        "Fracture" => &["fracture"],
        _ => &[],
    }
}

/// The label columns of the common space (Float32: 1, 0, −1 uncertain, null).
pub fn columns() -> Vec<LabelColumn> {
    PATHOLOGIES.iter().map(|p| LabelColumn { name: p.to_string(), label_type: LabelType::Float32 }).collect()
}

/// Maps a source's label columns to the common space: built once per
/// import from its column names, then applied to every row.
#[derive(Debug, Clone)]
pub struct Mapper {
    /// Per source column: the pathologies it feeds.
    feeds: Vec<Vec<usize>>,
    /// For a class column (Utf8): per pathology, whether some class maps to it.
    classes: Option<Vec<bool>>,
    /// Per pathology: 0 rather than null when the row is labelled but no
    /// column feeds it (PadChest: a label list without the phrase).
    zero_when_labelled: Vec<bool>,
}

impl Mapper {
    /// A mapper for numeric label columns named in `vocabulary`.
    pub fn new(vocabulary: Vocabulary, names: &[String]) -> Mapper {
        let zero_when_labelled = (0..PATHOLOGIES.len())
            .map(|i| vocabulary == Vocabulary::Padchest && !padchest_phrases(i).is_empty())
            .collect();
        Mapper { feeds: names.iter().map(|n| targets(vocabulary, n)).collect(), classes: None, zero_when_labelled }
    }

    /// A mapper for one Utf8 class column whose values are `classes`.
    pub fn for_classes(classes: &[String]) -> Mapper {
        let mut known = vec![false; PATHOLOGIES.len()];
        for c in classes {
            for t in targets(Vocabulary::Classes, c) {
                known[t] = true;
            }
        }
        Mapper { feeds: vec![Vec::new()], classes: Some(known), zero_when_labelled: vec![false; PATHOLOGIES.len()] }
    }

    /// The common-space values of one row of source values.
    pub fn map(&self, values: &[LabelValue]) -> Vec<LabelValue> {
        if let Some(known) = &self.classes {
            let hit: Vec<usize> = match values.first() {
                Some(LabelValue::Str(c)) => targets(Vocabulary::Classes, c),
                _ => Vec::new(),
            };
            return (0..PATHOLOGIES.len())
                .map(|i| match (known[i], hit.contains(&i)) {
                    (_, true) => LabelValue::Float(1.0),
                    (true, false) => LabelValue::Float(0.0),
                    (false, false) => LabelValue::Null,
                })
                .collect();
        }
        let mut best: Vec<Option<f64>> = vec![None; PATHOLOGIES.len()];
        let mut labelled = false;
        for (feeds, v) in self.feeds.iter().zip(values) {
            let x = match v {
                LabelValue::Float(x) => *x,
                LabelValue::Int(i) => *i as f64,
                LabelValue::Bool(b) => f64::from(u8::from(*b)),
                _ => continue,
            };
            labelled = true;
            for &t in feeds {
                best[t] = Some(match best[t] {
                    None => x,
                    Some(b) => combine(b, x),
                });
            }
        }
        for (b, zero) in best.iter_mut().zip(&self.zero_when_labelled) {
            if b.is_none() && *zero && labelled {
                *b = Some(0.0);
            }
        }
        best.into_iter().map(|b| b.map_or(LabelValue::Null, LabelValue::Float)).collect()
    }
}

/// 1 beats −1 beats 0.
fn combine(a: f64, b: f64) -> f64 {
    let rank = |x: f64| {
        if x == 1.0 {
            2
        } else if x == -1.0 {
            1
        } else {
            0
        }
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> LabelValue {
        LabelValue::Float(x)
    }

    #[test]
    fn each_vocabulary_maps_as_the_table_says() {
        let name = |v, l| targets(v, l).iter().map(|&i| PATHOLOGIES[i]).collect::<Vec<_>>();
        assert_eq!(name(Vocabulary::Nih, "Pleural_Thickening"), ["Pleural_Thickening"]);
        assert!(name(Vocabulary::Nih, "No Finding").is_empty());
        assert_eq!(name(Vocabulary::Chexpert, "Pleural Effusion"), ["Effusion"]);
        assert!(name(Vocabulary::Chexpert, "Support Devices").is_empty());
        assert_eq!(name(Vocabulary::Vindr, "Pulmonary fibrosis"), ["Fibrosis"]);
        assert_eq!(name(Vocabulary::Padchest, "pleural effusion"), ["Effusion"]);
        assert_eq!(name(Vocabulary::Padchest, "air bronchogram"), ["Consolidation", "Infiltration"]);
        assert!(name(Vocabulary::Padchest, "normal").is_empty());
        assert_eq!(name(Vocabulary::Classes, "PNEUMONIA"), ["Pneumonia"]);
        assert_eq!(name(Vocabulary::Classes, "pleural thickening"), ["Pleural_Thickening"]);
    }

    #[test]
    fn several_sources_combine_positive_first_and_unlabelled_is_null() {
        let m = Mapper::new(Vocabulary::Vindr, &["Rib fracture".into(), "Clavicle fracture".into()]);
        let frac = PATHOLOGIES.iter().position(|p| *p == "Fracture").unwrap();
        assert_eq!(m.map(&[f(0.0), f(1.0)])[frac], f(1.0));
        assert_eq!(m.map(&[f(0.0), f(0.0)])[frac], f(0.0));
        assert_eq!(m.map(&[LabelValue::Null, LabelValue::Null])[frac], LabelValue::Null);
        assert_eq!(m.map(&[f(0.0), f(1.0)])[0], LabelValue::Null, "Atelectasis is not among the columns");
        assert_eq!(combine(0.0, -1.0), -1.0);
        assert_eq!(combine(-1.0, 1.0), 1.0);
        assert_eq!(combine(1.0, 0.0), 1.0);
        let p = Mapper::new(Vocabulary::Padchest, &["pleural effusion".into(), "normal".into()]);
        let eff = PATHOLOGIES.iter().position(|p| *p == "Effusion").unwrap();
        let lesion = PATHOLOGIES.iter().position(|p| *p == "Lung Lesion").unwrap();
        assert_eq!(p.map(&[f(0.0), f(1.0)])[0], f(0.0), "a labelled PadChest row without atelectasis");
        assert_eq!(p.map(&[f(1.0), f(0.0)])[eff], f(1.0));
        assert_eq!(p.map(&[f(0.0), f(1.0)])[lesion], LabelValue::Null, "not in torchxrayvision's PadChest");
        assert_eq!(p.map(&[LabelValue::Null, LabelValue::Null])[0], LabelValue::Null, "an unlabelled row");
        let c = Mapper::for_classes(&["NORMAL".into(), "PNEUMONIA".into()]);
        let pn = PATHOLOGIES.iter().position(|p| *p == "Pneumonia").unwrap();
        assert_eq!(c.map(&[LabelValue::Str("PNEUMONIA".into())])[pn], f(1.0));
        assert_eq!(c.map(&[LabelValue::Str("NORMAL".into())])[pn], f(0.0));
        assert_eq!(c.map(&[LabelValue::Str("NORMAL".into())])[0], LabelValue::Null);
    }
}
