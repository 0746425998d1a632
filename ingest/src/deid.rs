//! De-identification (DICOM PS3.15 Annex E, allow-list).
//!
//! Nothing from the DICOM header is copied to an output unless it is on the
//! allow-list below, and every allowed value is either derived through the
//! secret key or reduced to a closed vocabulary, so a free-text value can
//! never leak through an allowed attribute:
//!
//! | output | from | how |
//! |---|---|---|
//! | sample key | SOPInstanceUID | HMAC-SHA256, 32 hex chars |
//! | `patient_id` | PatientID | HMAC-SHA256, 16 hex chars (stable across studies) |
//! | `study_id` / `series_id` | Study/SeriesInstanceUID | new UID `2.25.<HMAC as decimal>` |
//! | `sex` | PatientSex | `M`, `F`, `O` or null (Retain Patient Characteristics) |
//! | `age_years` | PatientAge, else StudyDate − PatientBirthDate | years, capped at 90 |
//! | `shifted_study_date` | StudyDate | minus a per-patient shift of 1..=3650 days (Retain Longitudinal Temporal Information, Modified Dates) |
//! | `view_position` | ViewPosition | DICOM defined terms only, else null |
//! | `modality` | Modality | DICOM defined terms only, else null |
//! | `transfer_syntax` | transfer syntax | only UIDs the registry knows |
//!
//! Everything else — names, IDs, accession numbers, original UIDs and dates,
//! institution, physicians, operators, station and device serial numbers,
//! private tags, overlays (60xx), curves, icon image sequences, and every
//! sequence — is dropped simply by never being read into an output.
//! Different keys give unrelated pseudonyms; the same key gives the same
//! ones on every run.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::dicom::Header;

/// Minimum key length in bytes.
pub const MIN_KEY_BYTES: usize = 32;

/// `dataset.json` `deid_method`.
pub const DEID_METHOD: &str = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile (allow-list: only pseudonyms and closed-vocabulary values kept) with the Retain Patient Characteristics Option and the Retain Longitudinal Temporal Information with Modified Dates Option; HMAC-SHA256 pseudonyms and 2.25 UIDs from a secret key";

/// The de-identification codes (CID 7050) of the profile and options used.
pub const DEID_CODES: [(&str, &str); 3] = [
    ("113100", "Basic Application Confidentiality Profile"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
];

/// Why the key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An existing key file cannot be read (an input: exit 3).
    #[error("key file '{}': {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// A new key file cannot be written (an output: exit 4).
    #[error("key file '{}' cannot be created: {source}", path.display())]
    Create { path: PathBuf, source: std::io::Error },
    /// Too short to be a key (an input: exit 3).
    #[error("key file '{}' has {len} bytes; at least {MIN_KEY_BYTES} are needed (e.g. `head -c 32 /dev/urandom > key`)", path.display())]
    TooShort { path: PathBuf, len: usize },
}

impl chess_cli::Classify for KeyError {
    fn exit_class(&self) -> chess_cli::ExitClass {
        match self {
            KeyError::Read { source, .. } => chess_cli::exit::io_class(source, false),
            KeyError::Create { .. } => chess_cli::ExitClass::Output,
            KeyError::TooShort { .. } => chess_cli::ExitClass::Input,
        }
    }
}

/// The secret: a key file's bytes.
#[derive(Clone)]
pub struct Key {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(<secret>)")
    }
}

impl Key {
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Key, KeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort { path: PathBuf::from("<memory>"), len: bytes.len() });
        }
        Ok(Key { bytes })
    }

    /// Reads a key file, creating it (32 random bytes, mode 0600) when it
    /// does not exist. Creation is atomic: concurrent partitions racing to
    /// create the same file all end up with the one that won. Returns the key
    /// and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Key, bool), KeyError> {
        let io = |source| KeyError::Create { path: path.to_path_buf(), source };
        let mut created = false;
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::private::create_dir(dir).map_err(io)?;
            }
            let mut secret = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut secret))
                .map_err(io)?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            {
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                let mut f = opts.open(&tmp).map_err(io)?;
                f.write_all(&secret).map_err(io)?;
                f.sync_all().map_err(io)?;
            }
            // hard_link fails if the key appeared meanwhile: use that one.
            created = std::fs::hard_link(&tmp, path).is_ok();
            let _ = std::fs::remove_file(&tmp);
        }
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })?;
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort { path: path.to_path_buf(), len: bytes.len() });
        }
        Ok((Key { bytes }, created))
    }

    fn mac(&self, domain: &str, value: &str) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        m.update(domain.as_bytes());
        m.update(&[0]);
        m.update(value.as_bytes());
        m.finalize().into_bytes().into()
    }

    /// The sample key: 32 hex characters from the SOPInstanceUID.
    pub fn sample_key(&self, sop_instance_uid: &str) -> String {
        hex::encode(&self.mac("sop", sop_instance_uid)[..16])
    }

    /// Patient pseudonym: 16 hex characters.
    pub fn patient_pseudonym(&self, patient_id: &str) -> String {
        hex::encode(&self.mac("patient", patient_id)[..8])
    }

    /// A new UID under `2.25.` for an original UID of the given kind.
    pub fn new_uid(&self, kind: &str, uid: &str) -> String {
        let m = self.mac(kind, uid);
        let n = u128::from_be_bytes(m[..16].try_into().expect("16 bytes"));
        format!("2.25.{n}")
    }

    /// Days subtracted from every date of this patient: 1..=3650.
    pub fn date_shift_days(&self, patient_basis: &str) -> i64 {
        let m = self.mac("dateshift", patient_basis);
        (u64::from_be_bytes(m[..8].try_into().expect("8 bytes")) % 3650) as i64 + 1
    }
}

/// What becomes of the study date (`--dates`).
///
/// | choice | kept | corresponds to |
/// |---|---|---|
/// | `none` (default) | nothing | PS3.15 Basic Profile: dates removed |
/// | `shifted` | the study date minus the patient's shift (1..=3650 days from the key), intervals kept | PS3.15 Retain Longitudinal Temporal Information with Modified Dates Option (113107) |
/// | `year` | only the year of the shifted date | HIPAA Safe Harbor, §164.514(b)(2)(i)(C): "all elements of dates (except year)" removed; the year itself is shifted too |
///
/// Ages above 89 are aggregated to 90 whichever the choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dates {
    #[default]
    None,
    Shifted,
    Year,
}

impl Dates {
    /// The name used on the command line and in `dataset.json`.
    pub fn name(self) -> &'static str {
        match self {
            Dates::None => "none",
            Dates::Shifted => "shifted",
            Dates::Year => "year",
        }
    }

    /// The kept value of a shifted `YYYYMMDD` date.
    pub fn keep(self, shifted: Option<&str>) -> Option<String> {
        match self {
            Dates::None => None,
            Dates::Shifted => shifted.map(str::to_string),
            Dates::Year => shifted.and_then(|d| d.get(..4)).map(str::to_string),
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a DICOM DA value (`YYYYMMDD`, tolerating `YYYY.MM.DD`).
pub fn parse_da(s: &str) -> Option<i64> {
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() != 8 {
        return None;
    }
    let y: i64 = digits[..4].parse().ok()?;
    let m: i64 = digits[4..6].parse().ok()?;
    let d: i64 = digits[6..].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || y < 1800 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Reject impossible days such as 20230231.
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// Shifts a DA value back by `shift` days; `None` if it is not a valid date.
pub fn shift_date(s: &str, shift: i64) -> Option<String> {
    let (y, m, d) = civil_from_days(parse_da(s)? - shift);
    Some(format!("{y:04}{m:02}{d:02}"))
}

/// Age in years from PatientAge (`nnnD/W/M/Y`), else from StudyDate minus
/// PatientBirthDate; capped at 90 (ages above 89 identify).
pub fn age_years(h: &Header) -> Option<f32> {
    let a = h.patient_age.trim();
    let from_age = if a.len() >= 2 {
        let (num, unit) = a.split_at(a.len() - 1);
        num.trim().parse::<f64>().ok().and_then(|n| match unit {
            "Y" => Some(n),
            "M" => Some(n / 12.0),
            "W" => Some(n * 7.0 / 365.25),
            "D" => Some(n / 365.25),
            _ => None,
        })
    } else {
        None
    };
    let years = from_age.or_else(|| {
        let days = parse_da(&h.study_date)? - parse_da(&h.birth_date)?;
        (days >= 0).then(|| (days as f64 / 365.25).floor())
    })?;
    if !years.is_finite() || !(0.0..=150.0).contains(&years) {
        return None;
    }
    Some(years.min(90.0) as f32)
}

/// DICOM ViewPosition defined terms (and the common `LATERAL`/`LAT`).
pub const VIEW_TERMS: [&str; 12] =
    ["AP", "PA", "LL", "RL", "RLD", "LLD", "RLO", "LLO", "LATERAL", "LAT", "AP AXIAL", "PA AXIAL"];

/// Modality defined terms that make sense for radiographs and their rejects.
pub const MODALITY_TERMS: [&str; 16] =
    ["CR", "DX", "DR", "RF", "XA", "MG", "CT", "MR", "US", "NM", "PT", "OT", "SC", "PR", "SR", "IO"];

fn closed(value: &str, terms: &[&str]) -> Option<String> {
    terms.iter().find(|t| **t == value).map(|t| t.to_string())
}

/// The de-identified values of one image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deidentified {
    pub key: String,
    pub patient_id: Option<String>,
    pub study_id: Option<String>,
    pub series_id: Option<String>,
    pub sex: Option<String>,
    pub age_years: Option<f32>,
    pub shifted_study_date: Option<String>,
    pub view_position: Option<String>,
    pub modality: Option<String>,
    pub transfer_syntax: Option<String>,
}

/// Applies the allow-list to a header.
pub fn deidentify(key: &Key, h: &Header) -> Deidentified {
    use dicom_encoding::transfer_syntax::TransferSyntaxIndex;
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let basis = if h.patient_id.is_empty() { format!("study:{}", h.study_instance_uid) } else { h.patient_id.clone() };
    let shift = key.date_shift_days(&basis);
    Deidentified {
        key: key.sample_key(&h.sop_instance_uid),
        patient_id: nonempty(&h.patient_id).map(|p| key.patient_pseudonym(&p)),
        study_id: nonempty(&h.study_instance_uid).map(|u| key.new_uid("study", &u)),
        series_id: nonempty(&h.series_instance_uid).map(|u| key.new_uid("series", &u)),
        sex: closed(&h.sex, &["M", "F", "O"]),
        age_years: age_years(h),
        shifted_study_date: shift_date(&h.study_date, shift),
        view_position: closed(&h.view_position, &VIEW_TERMS),
        modality: closed(&h.modality, &MODALITY_TERMS),
        transfer_syntax: dicom_transfer_syntax_registry::TransferSyntaxRegistry
            .get(&h.transfer_syntax)
            .map(|ts| ts.uid().trim_end_matches('\0').to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> Key {
        Key::from_bytes(vec![b; 32]).unwrap()
    }

    #[test]
    fn pseudonyms_are_stable_keyed_and_well_formed() {
        let (k1, k2) = (key(1), key(2));
        assert_eq!(k1.sample_key("1.2.3"), k1.sample_key("1.2.3"));
        assert_ne!(k1.sample_key("1.2.3"), k2.sample_key("1.2.3"));
        assert_ne!(k1.sample_key("1.2.3"), k1.sample_key("1.2.4"));
        assert_eq!(k1.sample_key("x").len(), 32);
        chess_schemas::validate_key(&k1.sample_key("x")).unwrap();
        assert_ne!(k1.patient_pseudonym("P1"), k2.patient_pseudonym("P1"));
        // Domains are separated: the same string hashed as a patient and as a UID differ.
        assert_ne!(k1.new_uid("study", "P1"), k1.new_uid("series", "P1"));
        let uid = k1.new_uid("study", "1.2.840.1");
        assert!(uid.starts_with("2.25.") && uid.len() <= 64 && uid[5..].bytes().all(|b| b.is_ascii_digit()), "{uid}");
        assert!(Key::from_bytes(vec![0; 31]).is_err());
    }

    #[test]
    fn date_shift_preserves_intervals() {
        let k = key(3);
        let s = k.date_shift_days("PATIENT-1");
        assert!((1..=3650).contains(&s));
        assert_eq!(s, k.date_shift_days("PATIENT-1"));
        let a = shift_date("20200101", s).unwrap();
        let b = shift_date("20200301", s).unwrap();
        assert_eq!(parse_da(&b).unwrap() - parse_da(&a).unwrap(), 60);
        assert_ne!(a, "20200101");
        assert_eq!(shift_date("20200301", 1).unwrap(), "20200229");
        assert_eq!(shift_date("20230231", 1), None);
        assert_eq!(shift_date("garbage", 1), None);
    }

    #[test]
    fn dates_option_keeps_nothing_the_shifted_date_or_its_year() {
        assert_eq!(Dates::None.keep(Some("20190304")), None);
        assert_eq!(Dates::Shifted.keep(Some("20190304")).as_deref(), Some("20190304"));
        assert_eq!(Dates::Year.keep(Some("20190304")).as_deref(), Some("2019"));
        assert_eq!(Dates::Year.keep(None), None);
        assert_eq!(serde_json::to_string(&Dates::Year).unwrap(), "\"year\"");
    }

    #[test]
    fn age_from_attribute_or_dates_capped() {
        let mut h = Header { patient_age: "045Y".into(), ..Default::default() };
        assert_eq!(age_years(&h), Some(45.0));
        h.patient_age = "006M".into();
        assert_eq!(age_years(&h), Some(0.5));
        h.patient_age = "095Y".into();
        assert_eq!(age_years(&h), Some(90.0));
        h.patient_age = String::new();
        h.birth_date = "19500615".into();
        h.study_date = "20200614".into();
        assert_eq!(age_years(&h), Some(69.0));
        h.birth_date = "nonsense".into();
        assert_eq!(age_years(&h), None);
    }

    #[test]
    fn free_text_never_passes_the_closed_vocabularies() {
        let h = Header {
            sop_instance_uid: "1.2.3".into(),
            view_position: "PA MARKER_VIEW".into(),
            sex: "MARKER".into(),
            modality: "CR".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            study_date: "20200101".into(),
            ..Default::default()
        };
        let d = deidentify(&key(4), &h);
        assert_eq!(d.view_position, None);
        assert_eq!(d.sex, None);
        assert_eq!(d.modality.as_deref(), Some("CR"));
        assert_eq!(d.transfer_syntax.as_deref(), Some("1.2.840.10008.1.2.1"));
        assert_eq!(d.patient_id, None);
        assert!(d.shifted_study_date.is_some());
    }

    #[test]
    fn key_file_is_created_0600_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("private/key");
        let (k1, created) = Key::load_or_create(&p).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let (k2, created) = Key::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(k1.sample_key("a"), k2.sample_key("a"));
        std::fs::write(dir.path().join("short"), b"abc").unwrap();
        assert!(matches!(Key::load_or_create(&dir.path().join("short")), Err(KeyError::TooShort { .. })));
    }
}
