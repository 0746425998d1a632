//! Test helpers: where the real test data and the venv live.
//!
//! Nothing is skipped silently: a missing fixture panics with a message that
//! says to run `scripts/setup.sh`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

pub fn venv() -> PathBuf {
    let cache = std::env::var_os("CHESS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/chess"));
    cache.join("venv")
}

pub fn python() -> PathBuf {
    let p = venv().join("bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh", p.display());
    p
}

fn must_exist(p: PathBuf) -> PathBuf {
    assert!(p.exists(), "test fixture {} is missing: run scripts/setup.sh", p.display());
    p
}

fn python_path(expr: &str) -> PathBuf {
    let out = Command::new(python()).args(["-c", &format!("print({expr})")]).output().expect("run venv python");
    assert!(
        out.status.success(),
        "venv python failed ({expr}): {}; run scripts/setup.sh",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A file from pydicom's bundled test files.
pub fn pydicom_test_file(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        python_path("__import__('os').path.dirname(__import__('pydicom.data').data.__file__) + '/test_files'")
    });
    must_exist(dir.join(name))
}

/// A file from PyPI pydicom-data (`data_store/data`).
pub fn pydicom_data_file(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| python_path("__import__('sysconfig').get_paths()['purelib'] + '/data_store/data'"));
    must_exist(dir.join(name))
}

/// A NEMA WG04 file from the shared data folder.
pub fn wg04(name: &str) -> PathBuf {
    let dir = std::env::var_os("CHESS_WG04")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data/dicom/wg04"));
    must_exist(dir.join(name))
}

/// A WG04 `*_UNC.zst` reference, decompressed into `dir`.
pub fn wg04_unc(name: &str, dir: &Path) -> PathBuf {
    let src = wg04(name);
    let out = dir.join(name.replace(".zst", ".dcm"));
    let bytes = zstd::decode_all(std::fs::File::open(&src).unwrap()).unwrap();
    std::fs::write(&out, bytes).unwrap();
    out
}

/// The `chess-ingest` binary under test.
pub fn chess_ingest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chess-ingest"))
}

/// The `chess-shards` binary: `CHESS_SHARDS_BIN`, or built with cargo (same target dir).
pub fn chess_shards_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("CHESS_SHARDS_BIN") {
            let p = PathBuf::from(p);
            assert!(p.is_file(), "CHESS_SHARDS_BIN={} does not exist", p.display());
            return p;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(&cargo)
            .current_dir(workspace)
            .args(["build", "-p", "chess-shards", "--bin", "chess-shards", "--message-format=json-render-diagnostics"])
            .output()
            .expect("run cargo to build chess-shards");
        assert!(
            out.status.success(),
            "could not build chess-shards (needed to check imported datasets; or set CHESS_SHARDS_BIN): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The executable path from cargo's JSON messages (honours CARGO_TARGET_DIR and profiles).
        let stdout = String::from_utf8_lossy(&out.stdout);
        let exe = stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "chess-shards")
            .find_map(|v| v["executable"].as_str().map(PathBuf::from))
            .expect("cargo reported no chess-shards executable");
        assert!(exe.is_file(), "{} is missing after cargo build -p chess-shards", exe.display());
        exe
    })
}

/// A committed fixture in `ingest/tests/data`.
pub fn fixture(name: &str) -> PathBuf {
    must_exist(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name))
}

/// What a synthetic radiograph looks like.
#[derive(Debug, Clone)]
pub struct Synth {
    pub sop: String,
    pub patient_id: String,
    pub modality: &'static str,
    pub rows: u32,
    pub columns: u32,
    /// Rows/Columns written to the header (default: the real ones).
    pub header_dims: Option<(u32, u32)>,
    pub seed: u32,
    /// Pixel Data bytes to write instead of the image (e.g. empty).
    pub pixel_data: Option<Vec<u8>>,
    pub no_pixel_data: bool,
}

impl Synth {
    pub fn new(sop: &str, seed: u32) -> Synth {
        Synth {
            sop: sop.into(),
            patient_id: format!("PAT{}", seed % 7),
            modality: "CR",
            rows: 96,
            columns: 80,
            header_dims: None,
            seed,
            pixel_data: None,
            no_pixel_data: false,
        }
    }

    /// Writes an explicit-VR-little-endian CR (chest) file.
    pub fn write(&self, path: &Path) {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        use dicom_dictionary_std::tags;
        use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
        let mut o = InMemDicomObject::new_empty();
        let s = |o: &mut InMemDicomObject, tag, vr, v: &str| {
            o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        };
        let u = |o: &mut InMemDicomObject, tag, v: u16| {
            o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        };
        const CR: &str = "1.2.840.10008.5.1.4.1.1.1";
        s(&mut o, tags::SOP_CLASS_UID, VR::UI, CR);
        s(&mut o, tags::SOP_INSTANCE_UID, VR::UI, &self.sop);
        s(&mut o, tags::STUDY_INSTANCE_UID, VR::UI, &format!("1.2.3.4.{}", self.seed));
        s(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &format!("1.2.3.5.{}", self.seed));
        s(&mut o, tags::PATIENT_ID, VR::LO, &self.patient_id);
        s(&mut o, tags::PATIENT_NAME, VR::PN, "DOE^JANE");
        s(&mut o, tags::MODALITY, VR::CS, self.modality);
        s(&mut o, tags::BODY_PART_EXAMINED, VR::CS, "CHEST");
        s(&mut o, tags::VIEW_POSITION, VR::CS, "PA");
        s(&mut o, tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        let (hr, hc) = self.header_dims.unwrap_or((self.rows, self.columns));
        for (tag, v) in [(tags::ROWS, hr), (tags::COLUMNS, hc)] {
            if v > u16::MAX as u32 {
                // Does not fit US: written with the wrong VR, as broken writers do.
                o.put(DataElement::new(tag, VR::UL, PrimitiveValue::from(v)));
            } else {
                u(&mut o, tag, v as u16);
            }
        }
        u(&mut o, tags::SAMPLES_PER_PIXEL, 1);
        u(&mut o, tags::BITS_ALLOCATED, 16);
        u(&mut o, tags::BITS_STORED, 12);
        u(&mut o, tags::HIGH_BIT, 11);
        u(&mut o, tags::PIXEL_REPRESENTATION, 0);
        if !self.no_pixel_data {
            let bytes = self.pixel_data.clone().unwrap_or_else(|| {
                let mut x = self.seed.wrapping_mul(2654435761).max(1);
                (0..self.rows * self.columns)
                    .flat_map(|i| {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        let v = ((i % self.columns) * 20 + (i / self.columns) * 7 + (x % 300)) as u16 & 0x0FFF;
                        v.to_le_bytes()
                    })
                    .collect()
            });
            o.put(DataElement::new(tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(bytes)));
        }
        let meta = FileMetaTableBuilder::new()
            .transfer_syntax("1.2.840.10008.1.2.1")
            .media_storage_sop_class_uid(CR)
            .media_storage_sop_instance_uid(&self.sop);
        o.with_meta(meta).unwrap().write_to_file(path).unwrap();
    }
}

/// Asserts that a tool run succeeded, showing its output when it did not.
pub fn ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
